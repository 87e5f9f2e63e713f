//! The store seams: the source of truth for every task.
//!
//! The store is split by caller, so that each crate sees what it uses:
//!
//! | trait | caller | what |
//! | --- | --- | --- |
//! | [`StoreInfo`] | everyone (a supertrait of the others) | name, ping, pool occupancy |
//! | [`TaskApi`] | the web's task routes and queued quota | an owner's create, get, list, stats, cancel |
//! | [`FileStore`] | the web's file routes and retention sweep; the worker's résumé handlers | file metadata |
//! | [`WorkerStore`] | the worker runtime | claim, heartbeat, finish, recover leases, prune |
//! | [`WatchStore`] | the web's event streams | push notification of status changes (a capability) |
//! | [`ConsoleStore`] | the web's console routes and scoped reads | scoped reads, retry, history, series, queues |
//! | [`TaskStore`] | the binary that composes the crates, the conformance suites | all of the above |
//!
//! Two implementations live beside the traits: [`postgres::PgStore`]
//! (production) and [`sqlite::SqliteStore`] (the embedded default). Both run
//! the same conformance suite (`testing::store_conformance`).
//!
//! Every status transition is **one conditional UPDATE**: the `WHERE` clause
//! names the state the row must be in (and, for a running task, the worker
//! holding it and the attempt), so a duplicate message, a second replica or
//! a late worker can never run a task twice at once or overwrite a newer
//! state.

pub mod console;
pub mod postgres;
pub mod sqlite;

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::clock::Clock;
use crate::config::{Config, DatabaseConfig};
use crate::file::{NewFile, StoredFile};
use crate::task::{NewTask, OwnerId, Task, TaskId, TaskKind, TaskStatus};

pub use console::{
    Attempt, AttemptOutcome, BackendQueue, KindStats, RetryFilter, RetryOutcome, Scope, SeriesPoint,
};

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

/// Result of [`TaskApi::create_task`].
#[derive(Debug, Clone)]
pub struct Created {
    /// The task (the earlier one when the idempotency key was seen before).
    pub task: Task,
    /// False when an earlier task with the same idempotency key was returned.
    pub created: bool,
}

/// Filters and page of [`TaskApi::list_tasks`].
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

/// Result of [`TaskApi::cancel_task`].
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

/// Which due queued tasks [`WorkerStore::claim_due`] may take.
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

/// One batch claim from the store: see [`WorkerStore::claim_due`].
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

/// Which running tasks [`WorkerStore::recover_leases`] recovers.
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

/// A subscription to one task's status changes (see [`WatchStore::watch`]).
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

/// What every caller of a store may ask: which store it is, whether it
/// answers, how busy its pool is (readiness checks and the
/// `db_pool_connections` gauge of both services). A supertrait of every
/// caller's trait below, so whichever one a crate holds also answers these.
#[async_trait]
pub trait StoreInfo: Send + Sync + 'static {
    /// `postgres` or `sqlite`.
    fn name(&self) -> &'static str;

    /// Cheap round trip for readiness.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Connection pool occupancy.
    fn pool_stats(&self) -> PoolStats;
}

/// The public API's side of tasks (`crates/web`'s task routes and the
/// queued-tasks quota): an owner creates, reads, lists, counts and cancels
/// its own tasks. Every method is scoped to one owner.
#[async_trait]
pub trait TaskApi: StoreInfo {
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

    /// The owner's queued tasks, counted up to `cap` (the count stops
    /// there, so the cost is bounded however many are queued).
    async fn owner_queued_tasks(&self, owner: &OwnerId, cap: u32) -> Result<i64, StoreError>;
}

/// File metadata (the bytes live in a [`crate::blob::BlobStore`]): the
/// web's file routes, upload quota and retention sweep write and delete it,
/// the worker's résumé handlers read it.
#[async_trait]
pub trait FileStore: StoreInfo {
    /// Records an uploaded file's metadata.
    async fn create_file(&self, file: &NewFile) -> Result<StoredFile, StoreError>;

    /// One of the owner's files.
    async fn get_file(
        &self,
        owner: &OwnerId,
        id: uuid::Uuid,
    ) -> Result<Option<StoredFile>, StoreError>;

    /// Bytes of the owner's stored files (the sum of their `size`).
    async fn owner_stored_bytes(&self, owner: &OwnerId) -> Result<i64, StoreError>;

    /// Deletes one of the owner's files' metadata. False when unknown or
    /// another owner's. The caller deletes the blobs first.
    async fn delete_file(&self, owner: &OwnerId, id: uuid::Uuid) -> Result<bool, StoreError>;

    /// Up to `limit` files (any owner) uploaded more than `age` ago, oldest
    /// first: the retention sweep's work list.
    async fn expired_files(&self, age: Duration, limit: u32)
    -> Result<Vec<StoredFile>, StoreError>;
}

/// The worker's side (`crates/worker`'s runtime): claim tasks under a lease,
/// extend and recover leases, record how attempts end, prune. Every write
/// names the lease holder (and the attempt), so a stale worker changes
/// nothing.
#[async_trait]
pub trait WorkerStore: StoreInfo {
    /// The time these statements use (see [`crate::clock`]): the worker
    /// reads it to tell how long until a queued task is due.
    fn clock(&self) -> &Clock;

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

    /// Running tasks whose lease is void: back to `queued` (run now) while
    /// attempts remain, else `failed` (`cancelled` when that was requested).
    async fn recover_leases(
        &self,
        scope: LeaseScope<'_>,
        limit: u32,
    ) -> Result<Vec<RecoveredLease>, StoreError>;
}

/// The watch capability (the web's event streams): a store that can push
/// status changes says so here; one that cannot keeps the default, and its
/// callers poll.
#[async_trait]
pub trait WatchStore: Send + Sync + 'static {
    /// A wake-up whenever the task's status may have changed, when this
    /// store can push changes (PostgreSQL: LISTEN/NOTIFY). `None` means the
    /// caller polls.
    async fn watch(&self, _id: TaskId) -> Result<Option<TaskWatch>, StoreError> {
        Ok(None)
    }
}

/// The operator's console (`crates/web`'s console routes, and the task
/// reads that must see what a [`Scope`] allows): scoped reads, retry,
/// history, series and queue views. Types in `console.rs`; `Scope::All`
/// only for the configured admin role.
#[async_trait]
pub trait ConsoleStore: StoreInfo {
    /// One task within `scope`.
    async fn get_task_in(&self, scope: &Scope, id: TaskId) -> Result<Option<Task>, StoreError>;

    /// Tasks within `scope`, newest first (keyset-paginated like
    /// [`TaskApi::list_tasks`]).
    async fn list_tasks_in(&self, scope: &Scope, query: &ListQuery)
    -> Result<TaskPage, StoreError>;

    /// Counts per kind within `scope`: every queued and running task (on
    /// the partial queued/running indexes) and the tasks that finished since
    /// `finished_since` (a range of the finished indexes: all-time totals
    /// would count every row; those stay with [`TaskApi::stats`]).
    async fn stats_by_kind(
        &self,
        scope: &Scope,
        finished_since: DateTime<Utc>,
    ) -> Result<Vec<KindStats>, StoreError>;

    /// `failed | cancelled → queued` with a fresh attempt budget
    /// (`attempts = 0`), due now, one conditional UPDATE. The last error
    /// stays on the row until the next attempt ends; the attempt history in
    /// `task_attempts` is kept. `backend` (when given) is recorded as the
    /// backend the task is handed to next.
    async fn retry_task(
        &self,
        scope: &Scope,
        id: TaskId,
        backend: Option<&str>,
    ) -> Result<RetryOutcome, StoreError>;

    /// [`ConsoleStore::retry_task`] for up to `filter.limit` finished tasks
    /// matching `filter`, oldest finish first; returns the re-queued ids.
    async fn retry_tasks(
        &self,
        scope: &Scope,
        filter: &RetryFilter,
        backend: Option<&str>,
    ) -> Result<Vec<TaskId>, StoreError>;

    /// Every attempt of a task within `scope`, oldest first, the running one
    /// (from the task row) last; `None` when the task is not visible.
    async fn attempts(&self, scope: &Scope, id: TaskId)
    -> Result<Option<Vec<Attempt>>, StoreError>;

    /// Tasks within `scope` that finished in `[since, now]`, per
    /// `interval_secs` bucket (aligned to the epoch) and outcome; every
    /// bucket present.
    async fn finished_series(
        &self,
        scope: &Scope,
        since: DateTime<Utc>,
        interval_secs: i64,
    ) -> Result<Vec<SeriesPoint>, StoreError>;

    /// Queued and running tasks within `scope`, per backend they were last
    /// handed to.
    async fn backend_queues(&self, scope: &Scope) -> Result<Vec<BackendQueue>, StoreError>;
}

/// The whole store: every caller's trait at once. Only for what truly needs
/// all of it: the binary that opens one store and hands each crate its part
/// ([`open`]), and the conformance suites. Implemented for every type that
/// implements the parts; a `dyn TaskStore` coerces to any of them.
pub trait TaskStore: TaskApi + FileStore + WorkerStore + WatchStore + ConsoleStore {}

impl<T> TaskStore for T where
    T: TaskApi + FileStore + WorkerStore + WatchStore + ConsoleStore + ?Sized
{
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
