//! # resume-agent-queue
//!
//! How a task, once stored, reaches a worker. This crate owns:
//!
//! - the [`TaskBackend`] trait (the producer side the web uses: hand task
//!   ids to the backend) and the [`TaskSource`] trait (the consumer side the
//!   worker uses: receive, extend, complete, release, dead-letter);
//! - [`Message`], the plain JSON every backend carries: a task id and the
//!   attempt number, never the payload (the database holds the truth);
//! - [`azure_queue`]: Phase 6 — Azure Queue Storage (any number of workers;
//!   the queue delivers, the store finds what the queue never got);
//! - [`in_process`]: Phase 5 — one worker taking its work from the store,
//!   woken over HTTP by the web (or directly in `serve`);
//! - [`postgres`]: any number of workers taking their work from PostgreSQL,
//!   woken by `LISTEN/NOTIFY`;
//! - [`wake`]: the wake-up signal of the store-backed backends;
//! - `conformance` (feature `testing`): the suites every backend must pass.
//!
//! It must not touch the task store or run tasks: deciding whether a
//! delivery may run (the conditional claim) is the worker's job, and a
//! backend may deliver a message more than once. (The `postgres` backend
//! talks to PostgreSQL only for `LISTEN/NOTIFY`, never to the task table.)

pub mod azure_queue;
#[cfg(feature = "testing")]
pub mod conformance;
pub mod in_process;
pub mod postgres;
pub mod wake;

use std::time::Duration;

use async_trait::async_trait;
use resume_agent_core::TaskId;
use serde::{Deserialize, Serialize};

/// What a backend carries for one task: `{"task_id": "...", "attempt": n}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message {
    /// The task to run.
    pub task_id: TaskId,
    /// Attempts already spent when this message was sent (0 for a new task).
    pub attempt: i32,
}

/// Backend failures.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BackendError {
    /// The backend cannot be reached right now; the task stays `queued` in
    /// the store and the recovery sweeper hands it over again later.
    #[error("task backend unavailable: {0}")]
    Unavailable(String),
    /// The backend is full (bounded in-process queue).
    #[error("task backend full")]
    Full,
    /// The caller is not allowed (bad worker token).
    #[error("unauthorized")]
    Unauthorized,
}

/// The producer side: hand stored tasks to the backend.
#[async_trait]
pub trait TaskBackend: Send + Sync + 'static {
    /// `in-process`, `postgres` or `azure-queue` (the `backend` metrics label).
    fn name(&self) -> &'static str;

    /// Delivers `messages`, visible to workers after `delay`.
    async fn enqueue(&self, messages: &[Message], delay: Duration) -> Result<(), BackendError>;

    /// Readiness: can the backend accept work now?
    async fn check(&self) -> Result<(), BackendError>;

    /// Removes the dead-letter copies of `tasks` (they were retried): on
    /// Azure, their messages in `<queue>-poison`. Returns how many were
    /// removed. Backends without a dead-letter place have nothing to do.
    async fn forget_dead_letters(&self, _tasks: &[TaskId]) -> Result<u64, BackendError> {
        Ok(0)
    }

    /// Messages in the dead-letter place (approximate), if there is one.
    async fn dead_letter_depth(&self) -> Option<u64> {
        None
    }
}

/// A received message and what the backend needs to acknowledge it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The message.
    pub message: Message,
    /// Backend-specific receipt (Azure: message id and pop receipt).
    pub receipt: Receipt,
    /// How many times this message has been received (1 on first delivery).
    pub dequeue_count: u32,
}

/// How a backend identifies one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// In-process deliveries need no receipt.
    None,
    /// A queue message id and its current pop receipt.
    Queue {
        /// Message id.
        id: String,
        /// Pop receipt (changes on every update).
        pop_receipt: String,
    },
}

/// The consumer side, used by the worker runtime.
#[async_trait]
pub trait TaskSource: Send + Sync + 'static {
    /// `in-process` or `azure-queue`.
    fn name(&self) -> &'static str;

    /// Up to `max` deliveries, waiting up to `wait` when none is available.
    /// Each is invisible to other consumers for `lease`.
    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        lease: Duration,
    ) -> Result<Vec<Delivery>, BackendError>;

    /// Keeps a delivery invisible for another `lease` (long tasks).
    async fn extend(&self, delivery: &mut Delivery, lease: Duration) -> Result<(), BackendError>;

    /// Removes a delivery for good (the store recorded the outcome).
    async fn complete(&self, delivery: &Delivery) -> Result<(), BackendError>;

    /// Makes a delivery visible again after `delay` (retry, hand-back).
    async fn release(&self, delivery: &Delivery, delay: Duration) -> Result<(), BackendError>;

    /// Moves a delivery to the dead-letter place, if the backend has one
    /// (Azure: `<queue>-poison`), and removes it.
    async fn dead_letter(&self, delivery: &Delivery) -> Result<(), BackendError>;

    /// Approximate number of waiting messages, if the backend can tell.
    async fn depth(&self) -> Option<u64>;
}

/// Constant-time comparison for shared tokens (length is not secret).
#[must_use]
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
