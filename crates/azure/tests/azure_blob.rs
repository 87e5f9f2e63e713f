//! Azure Blob storage against a real Azurite (`TEST_AZURE_CONNECTION_STRING`,
//! exported by `scripts/test.sh`): the blob conformance suite, container
//! creation, and readiness failing when storage is unreachable.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use resume_agent_azure::{AzureBlobStore, StorageAccount};
use resume_agent_core::blob::{BlobError, BlobStore};
use resume_agent_core::secret::Secret;

fn connection_string() -> Secret {
    Secret::new(std::env::var("TEST_AZURE_CONNECTION_STRING").expect(
        "TEST_AZURE_CONNECTION_STRING is not set: run the tests with scripts/test.sh, which starts Azurite",
    ))
}

fn container() -> String {
    format!("c-{}", &uuid::Uuid::new_v4().simple().to_string()[..20])
}

#[tokio::test]
async fn azure_blob_passes_the_blob_conformance_suite() {
    let account = StorageAccount::from_connection_string(&connection_string()).unwrap();
    let store = AzureBlobStore::open(account, &container(), Duration::from_secs(10))
        .await
        .unwrap();
    resume_agent_core::testing::blob_conformance(Arc::new(store)).await;
}

#[tokio::test]
async fn the_container_is_created_when_missing_and_opening_twice_is_fine() {
    let account = StorageAccount::from_connection_string(&connection_string()).unwrap();
    let name = container();
    let a = AzureBlobStore::open(account.clone(), &name, Duration::from_secs(10))
        .await
        .unwrap();
    a.check().await.unwrap();
    let b = AzureBlobStore::open(account, &name, Duration::from_secs(10))
        .await
        .unwrap();
    b.check().await.unwrap();
    assert_eq!(b.name(), "azure-blob");
}

#[tokio::test]
async fn unreachable_blob_storage_fails_readiness_without_printing_the_sas() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let cs = Secret::new(format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={};BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1",
        resume_agent_azure::connection::DEV_KEY
    ));
    let account = StorageAccount::from_connection_string(&cs).unwrap();
    let err = AzureBlobStore::open(account, "files", Duration::from_secs(2))
        .await
        .unwrap_err();
    let BlobError::Unavailable(text) = err else {
        panic!("expected Unavailable");
    };
    assert!(
        !text.contains("sig=") || text.contains("sig=[redacted]"),
        "{text}"
    );
    assert!(
        !text.contains(resume_agent_azure::connection::DEV_KEY),
        "{text}"
    );
}
