//! The `TaskStore` seam: the source of truth for every task.
//!
//! Two implementations live beside the trait: [`postgres::PgStore`]
//! (production) and [`sqlite::SqliteStore`] (the embedded default). Both run
//! the same conformance suite (`testing::store_conformance`).
//!
//! Every status transition is **one conditional UPDATE**: the `WHERE` clause
//! names the state the row must be in (and, for a running task, the worker
//! holding it and the attempt), so a duplicate message, a second replica or
//! a late worker can never run a task twice at once or overwrite a newer
//! state.

pub mod postgres;
pub mod sqlite;

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::config::{Config, DatabaseConfig};
use crate::file::{NewFile, StoredFile};
use crate::task::{NewTask, OwnerId, Task, TaskId, TaskKind, TaskStatus};

/// Store failures.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached (connection refused, pool timed out):
    /// the caller should answer 503 and may retry.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A pagination cursor that this store did not issue.
    #[error("invalid cursor")]
    InvalidCursor,
    /// Anything else (a bug or a broken schema).
    #[error("database error: {0}")]
    Internal(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(e.to_string()),
            sqlx::Error::Database(db) => {
                // 08xxx: connection exceptions; 57P01..03: admin shutdown,
                // crash shutdown, cannot connect now; SQLite BUSY/LOCKED (5, 6).
                let code = db.code().unwrap_or_default();
                if code.starts_with("08")
                    || code.starts_with("57P")
                    || code == "53300"
                    || code == "5"
                    || code == "6"
                {
                    StoreError::Unavailable(e.to_string())
                } else {
                    StoreError::Internal(e.to_string())
                }
            }
            _ => StoreError::Internal(e.to_string()),
        }
    }
}

/// Result of [`TaskStore::create_task`].
#[derive(Debug, Clone)]
pub struct Created {
    /// The task (the earlier one when the idempotency key was seen before).
    pub task: Task,
    /// False when an earlier task with the same idempotency key was returned.
    pub created: bool,
}

/// Filters and page of [`TaskStore::list_tasks`].
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only this status.
    pub status: Option<TaskStatus>,
    /// Only this kind.
    pub kind: Option<TaskKind>,
    /// 1..=500.
    pub limit: u32,
    /// Continue after this cursor.
    pub cursor: Option<Cursor>,
}

/// Cursor times accepted: 0001-01-01T00:00:00Z ..= 9999-12-31T23:59:59.999999Z.
const CURSOR_RANGE_US: std::ops::RangeInclusive<i64> =
    -62_135_596_800_000_000..=253_402_300_799_999_999;

/// A keyset position: the (created_at, id) of the last task of a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Creation time of the last row, in microseconds since the epoch.
    pub created_at_us: i64,
    /// Its id.
    pub id: TaskId,
}

impl Cursor {
    /// The cursor of a task.
    #[must_use]
    pub fn after(task: &Task) -> Self {
        Self {
            created_at_us: task.created_at.timestamp_micros(),
            id: task.id,
        }
    }

    /// Opaque text form for clients.
    #[must_use]
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(format!("{}.{}", self.created_at_us, self.id))
    }

    /// Parses [`Cursor::encode`]'s output.
    ///
    /// # Errors
    /// [`StoreError::InvalidCursor`] for anything else.
    pub fn decode(s: &str) -> Result<Self, StoreError> {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| StoreError::InvalidCursor)?;
        let text = String::from_utf8(raw).map_err(|_| StoreError::InvalidCursor)?;
        let (ts, id) = text.split_once('.').ok_or(StoreError::InvalidCursor)?;
        let created_at_us: i64 = ts.parse().map_err(|_| StoreError::InvalidCursor)?;
        // Only times a task can have: years 1..=9999. PostgreSQL's
        // timestamptz refuses some others (before 4713 BC), SQLite takes
        // any integer; checked here so that both stores answer the same.
        if !CURSOR_RANGE_US.contains(&created_at_us) {
            return Err(StoreError::InvalidCursor);
        }
        Ok(Self {
            created_at_us,
            id: id.parse().map_err(|_| StoreError::InvalidCursor)?,
        })
    }

    pub(crate) fn created_at(&self) -> Result<DateTime<Utc>, StoreError> {
        if !CURSOR_RANGE_US.contains(&self.created_at_us) {
            return Err(StoreError::InvalidCursor);
        }
        DateTime::from_timestamp_micros(self.created_at_us).ok_or(StoreError::InvalidCursor)
    }
}

/// One page of tasks.
#[derive(Debug, Clone)]
pub struct TaskPage {
    /// Newest first.
    pub items: Vec<Task>,
    /// Where the next page starts, if there is one.
    pub next_cursor: Option<Cursor>,
}

/// Counts per status for one owner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskStats {
    /// Queued.
    pub queued: i64,
    /// Running.
    pub running: i64,
    /// Succeeded.
    pub succeeded: i64,
    /// Failed.
    pub failed: i64,
    /// Cancelled.
    pub cancelled: i64,
}

impl TaskStats {
    pub(crate) fn add(&mut self, status: &str, n: i64) {
        match status {
            "queued" => self.queued += n,
            "running" => self.running += n,
            "succeeded" => self.succeeded += n,
            "failed" => self.failed += n,
            "cancelled" => self.cancelled += n,
            _ => {}
        }
    }
}

/// Result of [`TaskStore::cancel_task`].
#[derive(Debug, Clone)]
pub enum CancelOutcome {
    /// It was queued and is now `cancelled`.
    Cancelled(Task),
    /// It is running; the worker has been asked to stop it.
    Requested(Task),
    /// It had already finished (409).
    AlreadyTerminal(Task),
    /// Unknown, or another owner's (404).
    NotFound,
}

/// The end of one attempt, written by the worker that holds the lease.
#[derive(Debug, Clone)]
pub struct Finish {
    /// The task.
    pub id: TaskId,
    /// The attempt number the worker claimed (fencing: a stale attempt's
    /// write matches no row).
    pub attempt: i32,
    /// What happened.
    pub outcome: FinishOutcome,
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub enum FinishOutcome {
    /// `running → succeeded` with a result.
    Succeeded(Value),
    /// `running → queued`, claimable again after `delay` (a retry). When a
    /// cancellation was requested meanwhile the task ends `cancelled` instead.
    Retry {
        /// The attempt's error.
        error: String,
        /// Backoff before the next attempt.
        delay: Duration,
    },
    /// `running → failed`.
    Failed(String),
    /// `running → cancelled`.
    Cancelled,
    /// `running → queued` without spending the attempt (graceful drain hands
    /// unfinished work back).
    HandBack,
}

/// A task's status as seen by a worker deciding what to do with a delivery
/// it could not claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskState {
    /// The task.
    pub id: TaskId,
    /// Its status.
    pub status: TaskStatus,
    /// Not claimable before.
    pub run_after: DateTime<Utc>,
}

/// Which due queued tasks [`TaskStore::claim_due`] may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimScope<'a> {
    /// Every due queued task, owners interleaved (the store-backed backends:
    /// in-process and postgres, whose workers take work from the store).
    All,
    /// Tasks a queue-delivered backend did not get (Azure): those last
    /// handed to another backend than `backend` (a flip), and those handed
    /// to it whose hand-off is older than `stale` (a lost message).
    NotDeliveredBy {
        /// This worker's backend name (`tasks.backend`).
        backend: &'a str,
        /// How long a hand-off may go unreceived.
        stale: Duration,
    },
}

/// One batch claim from the store: see [`TaskStore::claim_due`].
#[derive(Debug, Clone, Copy)]
pub struct ClaimRequest<'a> {
    /// The lease holder.
    pub worker: &'a str,
    /// At most this many tasks (the worker's free slots).
    pub limit: u32,
    /// Lease length.
    pub lease: Duration,
    /// Which tasks.
    pub scope: ClaimScope<'a>,
    /// Owners holding this many running attempts get nothing more.
    pub owner_max_running: Option<u32>,
    /// Round-robin position: owners after this one (in id order) come
    /// first; `""` starts at the first owner.
    pub after_owner: &'a str,
    /// Skip this owner's tasks (a worker keeps its last free slot for the
    /// other owners while one owner holds every other slot).
    pub exclude_owner: Option<&'a str>,
}

/// Owners visited per claim at most (the rest get their turn next claim).
pub const CLAIM_OWNERS_PER_BATCH: u32 = 64;

/// What an expired lease came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveredLease {
    /// The task.
    pub id: TaskId,
    /// `queued` (retry) or `failed` (attempts spent).
    pub status: TaskStatus,
    /// Its kind, for metrics.
    pub kind: &'static str,
}

/// Which running tasks [`TaskStore::recover_leases`] recovers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseScope<'a> {
    /// Leases that expired (any backend, any replica).
    Expired,
    /// Every lease held by another worker of this worker's kind: worker ids
    /// are `<kind>/<unique>` and this recovers the running tasks whose lease
    /// holder starts with the same `<kind>/` and is not this worker. Only
    /// for the in-process backend's single lock holder: no other in-process
    /// worker can be alive (workers of other backends, during a flip, keep
    /// their tasks).
    AllExcept(&'a str),
}

/// A subscription to one task's status changes (see [`TaskStore::watch`]).
/// Dropping it unsubscribes.
pub struct TaskWatch {
    rx: tokio::sync::watch::Receiver<u64>,
    _unsubscribe: Box<dyn Send + Sync>,
}

impl TaskWatch {
    /// Wraps a receiver and whatever unsubscribes on drop.
    #[must_use]
    pub fn new(rx: tokio::sync::watch::Receiver<u64>, unsubscribe: Box<dyn Send + Sync>) -> Self {
        Self {
            rx,
            _unsubscribe: unsubscribe,
        }
    }

    /// Waits for the next change signal. Once the feed has stopped it never
    /// returns, so callers also poll at a slow pace.
    pub async fn changed(&mut self) {
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl std::fmt::Debug for TaskWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskWatch").finish_non_exhaustive()
    }
}

/// Pool occupancy for the `db_pool_connections{state}` gauge.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolStats {
    /// Open connections in use.
    pub active: u32,
    /// Open connections idle.
    pub idle: u32,
    /// The pool's bound.
    pub max: u32,
}

/// The source of truth for tasks. See the module docs for the rules every
/// implementation keeps.
#[async_trait]
pub trait TaskStore: Send + Sync + 'static {
    /// `postgres` or `sqlite`.
    fn name(&self) -> &'static str;

    /// Records an uploaded file's metadata.
    async fn create_file(&self, file: &NewFile) -> Result<StoredFile, StoreError>;

    /// One of the owner's files.
    async fn get_file(
        &self,
        owner: &OwnerId,
        id: uuid::Uuid,
    ) -> Result<Option<StoredFile>, StoreError>;

    /// Cheap round trip for readiness.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Connection pool occupancy.
    fn pool_stats(&self) -> PoolStats;

    /// Inserts a `queued` task, or returns the owner's earlier task with the
    /// same idempotency key.
    async fn create_task(&self, new: NewTask) -> Result<Created, StoreError>;

    /// One of the owner's tasks.
    async fn get_task(&self, owner: &OwnerId, id: TaskId) -> Result<Option<Task>, StoreError>;

    /// The owner's tasks, newest first.
    async fn list_tasks(&self, owner: &OwnerId, query: &ListQuery) -> Result<TaskPage, StoreError>;

    /// Counts per status of the owner's tasks.
    async fn stats(&self, owner: &OwnerId) -> Result<TaskStats, StoreError>;

    /// `queued → cancelled`, or flags a running task for cancellation.
    async fn cancel_task(&self, owner: &OwnerId, id: TaskId) -> Result<CancelOutcome, StoreError>;

    /// Inserts several `queued` tasks of one owner in one statement (one
    /// transaction). The answer is in input order: each item's new task, or
    /// the owner's earlier task with the same idempotency key (also when the
    /// key repeats inside `new`).
    async fn create_tasks(&self, new: Vec<NewTask>) -> Result<Vec<Created>, StoreError>;

    /// `queued → running` for those of `ids` that are queued and due, under
    /// `worker`'s lease, skipping owners at `owner_max_running`. Returns the
    /// claimed tasks (attempt counted).
    async fn claim(
        &self,
        ids: &[TaskId],
        worker: &str,
        lease: Duration,
        owner_max_running: Option<u32>,
    ) -> Result<Vec<Task>, StoreError>;

    /// `queued → running` for up to `limit` due queued tasks in `scope`, in
    /// one statement that skips rows other claimers hold (`FOR UPDATE SKIP
    /// LOCKED`): up to [`CLAIM_OWNERS_PER_BATCH`] owners after
    /// `after_owner` share the batch (oldest `run_after` first within each
    /// owner), and owners at `owner_max_running` are skipped.
    async fn claim_due(&self, req: &ClaimRequest<'_>) -> Result<Vec<Task>, StoreError>;

    /// Queued tasks of every owner (the store-backed backends' queue depth;
    /// an index-only count on the partial queued index).
    async fn queued_count(&self) -> Result<u64, StoreError>;

    /// Status of tasks (for deliveries that could not be claimed).
    async fn task_states(&self, ids: &[TaskId]) -> Result<Vec<TaskState>, StoreError>;

    /// Records the end of attempts held by `worker`. Returns the ids whose
    /// row was updated (a stale lease updates nothing).
    async fn finish(&self, worker: &str, items: &[Finish]) -> Result<Vec<TaskId>, StoreError>;

    /// Extends `worker`'s leases on `ids`; returns those still held.
    async fn heartbeat(
        &self,
        worker: &str,
        ids: &[TaskId],
        lease: Duration,
    ) -> Result<Vec<TaskId>, StoreError>;

    /// Those of `ids` with a cancellation request.
    async fn cancel_requested(&self, ids: &[TaskId]) -> Result<Vec<TaskId>, StoreError>;

    /// Deletes up to `limit` finished tasks that finished more than `age`
    /// ago, oldest first; returns how many.
    async fn prune_finished(&self, age: Duration, limit: u32) -> Result<u64, StoreError>;

    /// A wake-up whenever the task's status may have changed, when this
    /// store can push changes (PostgreSQL: LISTEN/NOTIFY). `None` means the
    /// caller polls.
    async fn watch(&self, _id: TaskId) -> Result<Option<TaskWatch>, StoreError> {
        Ok(None)
    }

    /// Running tasks whose lease is void: back to `queued` (run now) while
    /// attempts remain, else `failed` (`cancelled` when that was requested).
    async fn recover_leases(
        &self,
        scope: LeaseScope<'_>,
        limit: u32,
    ) -> Result<Vec<RecoveredLease>, StoreError>;

    // ---- Quotas, file deletion and retention (issue 11, the edge) ----

    /// Bytes of the owner's stored files (the sum of their `size`).
    async fn owner_stored_bytes(&self, owner: &OwnerId) -> Result<i64, StoreError>;

    /// The owner's queued tasks, counted up to `cap` (the count stops
    /// there, so the cost is bounded however many are queued).
    async fn owner_queued_tasks(&self, owner: &OwnerId, cap: u32) -> Result<i64, StoreError>;

    /// Deletes one of the owner's files' metadata. False when unknown or
    /// another owner's. The caller deletes the blobs first.
    async fn delete_file(&self, owner: &OwnerId, id: uuid::Uuid) -> Result<bool, StoreError>;

    /// Up to `limit` files (any owner) uploaded more than `age` ago, oldest
    /// first: the retention sweep's work list.
    async fn expired_files(&self, age: Duration, limit: u32)
    -> Result<Vec<StoredFile>, StoreError>;
}

/// Opens the store the configuration names, running migrations first when
/// `migrate` is set.
///
/// # Errors
/// When the database cannot be opened or migrated.
pub async fn open(
    config: &Config,
    migrate: bool,
) -> Result<std::sync::Arc<dyn TaskStore>, StoreError> {
    let backend = config.task_backend.as_str();
    Ok(match &config.database {
        DatabaseConfig::Postgres(url) => {
            let store = postgres::PgStore::connect(url, &config.pool)
                .await?
                .with_backend(backend);
            if migrate {
                store.migrate().await?;
            }
            std::sync::Arc::new(store)
        }
        DatabaseConfig::Embedded(path) => {
            // The embedded file has no operator running `migrate`: always
            // bring it up to date (under a lock shared by web and worker).
            std::sync::Arc::new(
                sqlite::open_shared(path, &config.pool)
                    .await?
                    .with_backend(backend),
            )
        }
    })
}

/// Kind names as `&'static str` for metrics labels (unknown kinds → "other").
#[must_use]
pub fn static_kind(kind: &str) -> &'static str {
    kind.parse::<TaskKind>().map_or("other", TaskKind::as_str)
}

/// The `<kind>/` prefix of a worker id (see [`LeaseScope::AllExcept`]).
pub(crate) fn worker_kind_prefix(worker: &str) -> String {
    match worker.split_once('/') {
        Some((kind, _)) => format!("{kind}/"),
        None => worker.to_owned(),
    }
}

pub(crate) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }

    #[test]
    fn cursors_outside_years_1_to_9999_are_invalid() {
        let id = TaskId::new();
        // 5000 BC (PostgreSQL refuses it) and year 10000.
        for us in [
            -219_946_000_000_000_000_i64,
            253_402_300_800_000_000,
            i64::MIN,
            i64::MAX,
        ] {
            assert!(matches!(
                Cursor::decode(&raw(&format!("{us}.{id}"))),
                Err(StoreError::InvalidCursor)
            ));
            let c = Cursor {
                created_at_us: us,
                id,
            };
            assert!(matches!(c.created_at(), Err(StoreError::InvalidCursor)));
        }
        let ok = Cursor {
            created_at_us: 1_700_000_000_000_000,
            id,
        };
        assert_eq!(Cursor::decode(&ok.encode()).unwrap(), ok);
    }
}
