//! [`AzureBlobStore`]: the `BlobStore` on Azure Blob Storage
//! (`azure_storage_blob` 1.x), one container (`AZURE_STORAGE_CONTAINER_NAME`)
//! created at start when missing. Keys become blob names as they are.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use azure_core::http::RequestContent;
use azure_storage_blob::models::{BlobClientUploadOptions, BlobContainerClientListBlobsOptions};
use azure_storage_blob::{BlobContainerClient, BlobContainerClientOptions};
use futures::{StreamExt, TryStreamExt};
use resume_agent_core::blob::{BlobError, BlobKey, BlobStore, BlobStream};

use crate::account::{StorageAccount, client_options};
use crate::ops::{StorageError, StorageErrorKind, call};

/// Blobs in one Azure Storage container.
pub struct AzureBlobStore {
    account: Arc<StorageAccount>,
    container: String,
    timeout: Duration,
    client: Mutex<Option<(u64, Arc<BlobContainerClient>)>>,
}

impl std::fmt::Debug for AzureBlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureBlobStore")
            .field("account", &self.account)
            .field("container", &self.container)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: &StorageError) -> BlobError {
    BlobError::Unavailable(e.to_string())
}

impl AzureBlobStore {
    /// Opens the container, creating it when missing. `timeout` bounds each
    /// storage call.
    ///
    /// # Errors
    /// [`BlobError::Unavailable`] when the account cannot be reached or the
    /// container cannot be created.
    pub async fn open(
        account: Arc<StorageAccount>,
        container: &str,
        timeout: Duration,
    ) -> Result<Self, BlobError> {
        let me = Self::new(account, container, timeout)?;
        me.ensure_container().await?;
        Ok(me)
    }

    /// Like [`AzureBlobStore::open`] without touching the network: the
    /// container is created by the first [`BlobStore::check`] that finds it
    /// missing (a process may start while storage is down and report
    /// not-ready until it is back).
    ///
    /// # Errors
    /// An invalid container name.
    pub fn new(
        account: Arc<StorageAccount>,
        container: &str,
        timeout: Duration,
    ) -> Result<Self, BlobError> {
        let me = Self {
            account,
            container: container.to_owned(),
            timeout,
            client: Mutex::new(None),
        };
        me.client()?;
        Ok(me)
    }

    /// Creates the container when missing (409 = it exists).
    ///
    /// # Errors
    /// When the storage cannot be reached.
    pub async fn ensure_container(&self) -> Result<(), BlobError> {
        let c = self.client()?;
        match call("blob_create_container", self.timeout, c.create(None)).await {
            Ok(_) => {
                tracing::info!(container = %self.container, "created the blob container");
                Ok(())
            }
            Err(e) if e.kind == StorageErrorKind::Conflict => Ok(()),
            Err(e) => Err(unavailable(&e)),
        }
    }

    fn client(&self) -> Result<Arc<BlobContainerClient>, BlobError> {
        let generation = self.account.generation();
        let mut slot = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((g, c)) = slot.as_ref()
            && *g == generation
        {
            return Ok(c.clone());
        }
        let (url, g) = self
            .account
            .container_url(&self.container)
            .map_err(|e| BlobError::Unavailable(e.to_string()))?;
        let options = BlobContainerClientOptions {
            client_options: client_options(),
            ..Default::default()
        };
        let c = Arc::new(
            BlobContainerClient::new(url, self.account.credential(), Some(options))
                .map_err(|e| BlobError::Unavailable(crate::sas::redact_sas(&e.to_string())))?,
        );
        *slot = Some((g, c.clone()));
        Ok(c)
    }
}

#[async_trait]
impl BlobStore for AzureBlobStore {
    fn name(&self) -> &'static str {
        "azure-blob"
    }

    async fn put(
        &self,
        key: &BlobKey,
        bytes: Vec<u8>,
        content_type: &str,
    ) -> Result<(), BlobError> {
        let blob = self.client()?.blob_client(key.as_str());
        let options = BlobClientUploadOptions {
            blob_content_type: Some(content_type.to_owned()),
            ..Default::default()
        };
        call(
            "blob_put",
            self.timeout,
            blob.upload(RequestContent::from(bytes), Some(options)),
        )
        .await
        .map(|_| ())
        .map_err(|e| unavailable(&e))
    }

    async fn get(&self, key: &BlobKey) -> Result<Option<Vec<u8>>, BlobError> {
        let blob = self.client()?.blob_client(key.as_str());
        let fetch = async {
            let r = blob.download(None).await?;
            r.body.collect().await
        };
        match call("blob_get", self.timeout, fetch).await {
            Ok(bytes) => Ok(Some(bytes.to_vec())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(unavailable(&e)),
        }
    }

    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        let blob = self.client()?.blob_client(key.as_str());
        match call("blob_delete", self.timeout, blob.delete(None)).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(unavailable(&e)),
        }
    }

    async fn get_stream(&self, key: &BlobKey) -> Result<Option<BlobStream>, BlobError> {
        let blob = self.client()?.blob_client(key.as_str());
        let r = match call("blob_get", self.timeout, blob.download(None)).await {
            Ok(r) => r,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(unavailable(&e)),
        };
        let size = r.properties.content_length;
        let timeout = self.timeout;
        // Each chunk is bounded by the storage timeout too: a stalled
        // download ends the response instead of holding it open.
        let chunks = futures::stream::unfold(Some(r.body), move |body| async move {
            let mut body = body?;
            match tokio::time::timeout(timeout, body.next()).await {
                Ok(None) => None,
                Ok(Some(Ok(b))) => Some((Ok(b), Some(body))),
                Ok(Some(Err(e))) => Some((
                    Err(BlobError::Unavailable(crate::sas::redact_sas(
                        &e.to_string(),
                    ))),
                    None,
                )),
                Err(_) => Some((
                    Err(BlobError::Unavailable(format!(
                        "blob download stalled for {timeout:?}"
                    ))),
                    None,
                )),
            }
        });
        Ok(Some(BlobStream {
            size,
            chunks: Box::pin(chunks),
        }))
    }

    async fn delete_prefix(&self, prefix: &BlobKey) -> Result<u64, BlobError> {
        let c = self.client()?;
        let options = BlobContainerClientListBlobsOptions {
            prefix: Some(format!("{}/", prefix.as_str())),
            ..Default::default()
        };
        let mut pages = c
            .list_blobs(Some(options))
            .map_err(|e| BlobError::Unavailable(crate::sas::redact_sas(&e.to_string())))?
            .into_pages();
        let mut names = Vec::new();
        while let Some(page) = call("blob_list", self.timeout, pages.try_next())
            .await
            .map_err(|e| unavailable(&e))?
        {
            let page = page
                .into_model()
                .map_err(|e| BlobError::Unavailable(crate::sas::redact_sas(&e.to_string())))?;
            names.extend(page.blob_items.into_iter().filter_map(|b| b.name));
        }
        let mut n = 0;
        for name in names {
            let blob = c.blob_client(&name);
            match call("blob_delete", self.timeout, blob.delete(None)).await {
                Ok(_) => n += 1,
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(unavailable(&e)),
            }
        }
        Ok(n)
    }

    async fn check(&self) -> Result<(), BlobError> {
        let c = self.client()?;
        match call(
            "blob_container_properties",
            self.timeout,
            c.get_properties(None),
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => self.ensure_container().await,
            Err(e) => Err(unavailable(&e)),
        }
    }
}
