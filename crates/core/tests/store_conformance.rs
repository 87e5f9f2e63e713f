//! The store and blob conformance suites against every implementation:
//! PostgreSQL (a fresh database on the test server) and the embedded SQLite.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use resume_agent_core::blob::LocalBlobStore;
use resume_agent_core::clock::Clock;
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

/// Leases, backoff and retention follow the store's clock (stubbed here, so
/// a 30 s lease and a day of retention pass in milliseconds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_follows_its_clock() {
    let clock = Clock::stubbed_ahead();
    let (store, _url) = testing::pg_store_on(clock.clone()).await;
    testing::clock_conformance(store, clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_store_follows_its_clock() {
    let clock = Clock::stubbed_ahead();
    let store = testing::sqlite_store_on(clock.clone()).await;
    testing::clock_conformance(store, clock).await;
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

/// A row PostgreSQL refuses (a NUL in jsonb; the domain refuses it before
/// it gets here, this goes round that on purpose) fails only its own
/// submission, never the others group-committed in the same INSERT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_group_commit_fails_only_the_bad_row() {
    use resume_agent_core::payload::{FailPayload, TaskPayload};
    use resume_agent_core::{NewTask, OwnerId, TaskId};
    let (store, _url) = testing::pg_store().await;
    let mut joins = Vec::new();
    for i in 0..290 {
        let store = store.clone();
        joins.push(tokio::spawn(async move {
            let message = if i % 29 == 0 { "bad\u{0}row" } else { "fine" };
            let new = NewTask {
                id: TaskId::new(),
                owner: OwnerId::parse(&format!("owner-{}", i % 7)).unwrap(),
                // Built directly, round the edge's parse (which refuses NUL).
                payload: TaskPayload::SystemFail(FailPayload {
                    message: Some(message.to_owned()),
                }),
                max_attempts: 1,
                timeout_secs: 10,
                idempotency_key: None,
            };
            resume_agent_core::store::TaskApi::create_task(&*store, new)
                .await
                .is_ok()
        }));
    }
    let mut ok = 0;
    for j in joins {
        if j.await.unwrap() {
            ok += 1;
        }
    }
    assert_eq!(ok, 280, "only the 10 bad rows may fail");
}
