//! The store and blob conformance suites against every implementation:
//! PostgreSQL (a fresh database on the test server) and the embedded SQLite.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use resume_agent_core::blob::LocalBlobStore;
use resume_agent_core::testing;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_conformance_suite() {
    let (store, _url) = testing::pg_store().await;
    testing::store_conformance(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_passes_the_conformance_suite() {
    let store = testing::sqlite_store().await;
    testing::store_conformance(store).await;
}

#[tokio::test]
async fn local_blob_store_passes_the_conformance_suite() {
    let dir = std::env::temp_dir().join(format!("ra-blob-{}", uuid::Uuid::new_v4().simple()));
    let store = LocalBlobStore::open(&dir).await.unwrap();
    testing::blob_conformance(Arc::new(store)).await;
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_claim_suite() {
    testing::claim_conformance(testing::pg_pair).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_passes_the_claim_suite() {
    testing::claim_conformance(testing::sqlite_pair).await;
}
