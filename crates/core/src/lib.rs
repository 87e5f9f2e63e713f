//! # resume-agent-core
//!
//! The domain of Resume Agent and its persistence seams. This crate owns:
//!
//! - [`task`]: `Task`, `TaskStatus` and its legal transitions, task kinds,
//!   owner ids and idempotency keys (parsed at the edge);
//! - [`payload`]: task payloads typed per kind (`TaskPayload`): parsed once
//!   at the edge, stored as the accepted JSON, read back by the handlers,
//!   and (feature `openapi`) the payloads' OpenAPI schemas;
//! - [`clock`]: the worker side's time, real or stubbed by a test;
//! - [`config`]: the typed configuration, parsed once from the environment;
//! - [`secret`]: wrappers that keep passwords and tokens out of logs;
//! - [`store`]: the store traits, one per caller (`TaskApi` for the API,
//!   `FileStore` for file metadata, `WorkerStore` for the worker's claims
//!   and leases, `WatchStore` for change notifications, `ConsoleStore` for
//!   the operator's console; `TaskStore` is all of them), their PostgreSQL
//!   implementation and the embedded SQLite one (migrations in
//!   `migrations/`);
//! - [`blob`]: the `BlobStore` trait and the local-folder implementation;
//! - `testing` (feature `testing`): fresh databases and the conformance
//!   suites every store implementation must pass.
//!
//! It must not touch HTTP, queues or task execution: those belong to the
//! `web`, `queue` and `worker` crates, which depend on this one.

pub mod blob;
pub mod clock;
pub mod config;
pub mod file;
pub mod lock;
pub mod payload;
pub mod secret;
pub mod store;
pub mod task;
#[cfg(feature = "testing")]
pub mod testing;

pub use payload::TaskPayload;
pub use task::{IdempotencyKey, NewTask, OwnerId, Task, TaskId, TaskKind, TaskStatus};
