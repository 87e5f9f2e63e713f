//! # resume-agent-azure
//!
//! Azure Storage plumbing shared by the queue backend and the blob store.
//! This crate owns:
//!
//! - [`connection`]: parsing `AZURE_STORAGE_CONNECTION_STRING` (account key,
//!   `UseDevelopmentStorage=true` for Azurite, explicit endpoints, SAS);
//! - [`sas`]: account SAS tokens signed locally with HMAC-SHA256, and
//!   [`sas::redact_sas`] for anything that might print a signed URL;
//! - [`account`]: the [`StorageAccount`] — endpoints plus authorisation, in
//!   the documented order (connection string, else account name with
//!   workload identity or managed identity), re-signing its SAS before it
//!   expires;
//! - [`ops`]: every storage call time-boxed, classified (transient or not),
//!   counted in `azure_storage_requests_total{operation,outcome}`;
//! - [`blob`]: [`AzureBlobStore`], the `BlobStore` on Azure Blob Storage.
//!
//! It must not touch tasks, the task store or the queue protocol (that is
//! `resume-agent-queue`'s `azure_queue` module, which builds on this one),
//! and it never logs, prints or returns a key, token or SAS: secrets are
//! wrapped in `Secret`, errors pass through [`sas::redact_sas`].

pub mod account;
pub mod blob;
pub mod connection;
pub mod ops;
pub mod sas;

pub use account::{AccountError, StorageAccount};
pub use blob::AzureBlobStore;
pub use ops::{StorageError, StorageErrorKind};
