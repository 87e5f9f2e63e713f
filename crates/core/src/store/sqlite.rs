//! The embedded implementation of the store traits ([`super::TaskStore`]):
//! one SQLite file (WAL mode) under `DATA_DIR`, so a first run needs
//! nothing installed. Web and worker may share the file from two processes
//! on one machine.
//!
//! The rules are PostgreSQL's (see `postgres.rs`): one conditional UPDATE per
//! transition. SQLite has one writer at a time, which makes every statement
//! trivially serialised; time comes from this process's clock, in integer
//! microseconds.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

use super::console::{fill_series, group_backends, group_kinds, retry_statuses};
use super::{
    Attempt, AttemptOutcome, BackendQueue, CLAIM_OWNERS_PER_BATCH, CancelOutcome, ClaimRequest,
    ClaimScope, ConsoleStore, Created, Cursor, FileStore, Finish, FinishOutcome, KindStats,
    LeaseScope, ListQuery, PoolStats, RecoveredLease, RetryFilter, RetryOutcome, Scope,
    SeriesPoint, StoreError, StoreInfo, TaskApi, TaskPage, TaskState, TaskStats, WatchStore,
    WorkerStore, micros, static_kind,
};
use crate::clock::Clock;
use crate::config::PoolConfig;
use crate::file::{NewFile, StoredFile};
use crate::task::{NewTask, OwnerId, Task, TaskId, TaskStatus};

/// Embedded SQLite migrations (`migrations/sqlite`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

const COLUMNS: &str = "id, kind, status, payload, result, error, attempts, max_attempts, \
     timeout_secs, owner_id, created_at, started_at, finished_at, run_after, cancel_requested";

/// The SET clause of a retry (`?3`: the backend it is handed to next, or
/// NULL to keep the recorded one; `?4`: now): see postgres.rs.
const SQ_RETRY_SET: &str = "status = 'queued', attempts = 0, result = NULL,
                started_at = NULL, finished_at = NULL, cancel_requested = 0,
                run_after = ?4, dispatched_at = ?4, lease_owner = NULL,
                lease_expires_at = NULL, backend = COALESCE(?3, backend),
                updated_at = ?4";

/// The embedded SQLite task store.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    max: u32,
    /// Written to `tasks.backend` on insert.
    backend: Option<&'static str>,
    /// Every statement's time (the system clock unless a test stubs it).
    clock: Clock,
}

fn ts(us: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::Internal(format!("bad timestamp {us}")))
}

fn json(text: &str) -> Result<Value, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Internal(format!("stored JSON unreadable: {e}")))
}

fn parse_status(s: &str) -> Result<TaskStatus, StoreError> {
    s.parse()
        .map_err(|e: crate::task::UnknownStatus| StoreError::Internal(e.to_string()))
}

fn parse_id(s: &str) -> Result<TaskId, StoreError> {
    s.parse()
        .map_err(|e: uuid::Error| StoreError::Internal(e.to_string()))
}

fn task_from_row(row: &SqliteRow) -> Result<Task, StoreError> {
    Ok(Task {
        id: parse_id(row.try_get("id")?)?,
        kind: row.try_get("kind")?,
        status: parse_status(row.try_get("status")?)?,
        payload: json(row.try_get("payload")?)?,
        result: row
            .try_get::<Option<&str>, _>("result")?
            .map(json)
            .transpose()?,
        error: row.try_get("error")?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        timeout_secs: row.try_get("timeout_secs")?,
        owner_id: row.try_get("owner_id")?,
        created_at: ts(row.try_get("created_at")?)?,
        started_at: row
            .try_get::<Option<i64>, _>("started_at")?
            .map(ts)
            .transpose()?,
        finished_at: row
            .try_get::<Option<i64>, _>("finished_at")?
            .map(ts)
            .transpose()?,
        run_after: ts(row.try_get("run_after")?)?,
        cancel_requested: row.try_get::<i64, _>("cancel_requested")? != 0,
    })
}

fn file_from_row(row: &SqliteRow) -> Result<StoredFile, StoreError> {
    Ok(StoredFile {
        id: uuid::Uuid::parse_str(row.try_get("id")?)
            .map_err(|e| StoreError::Internal(e.to_string()))?,
        owner_id: row.try_get("owner_id")?,
        filename: row.try_get("filename")?,
        content_type: row.try_get("content_type")?,
        size: row.try_get("size")?,
        sha256: row.try_get("sha256")?,
        created_at: ts(row.try_get("created_at")?)?,
    })
}

type SqQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

fn bind_ids<'q>(mut q: SqQuery<'q>, ids: &[TaskId]) -> SqQuery<'q> {
    for id in ids {
        q = q.bind(id.to_string());
    }
    q
}

async fn returned_ids(q: SqQuery<'_>, pool: &SqlitePool) -> Result<Vec<TaskId>, StoreError> {
    let rows = q.fetch_all(pool).await?;
    rows.iter().map(|r| parse_id(r.try_get("id")?)).collect()
}

/// `?N, ?N+1, …` placeholders for an IN list starting at parameter `first`.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl SqliteStore {
    /// Opens (creating when missing) the database file and its folder.
    ///
    /// # Errors
    /// When the file cannot be created or opened.
    pub async fn open(path: &Path, pool: &PoolConfig) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await.map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        let max = pool.max_connections.min(8);
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .min_connections(1)
            .acquire_timeout(pool.acquire_timeout)
            .connect_with(options)
            .await?;
        Ok(Self {
            pool,
            max,
            backend: None,
            clock: Clock::real(),
        })
    }

    /// Records `backend` as the backend new tasks are handed to.
    #[must_use]
    pub fn with_backend(mut self, backend: &'static str) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Uses `clock` for every statement's time (a stubbed one in tests; see
    /// [`crate::clock`]).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Now, in the columns' unit (microseconds since the epoch).
    fn now_us(&self) -> i64 {
        self.clock.now().timestamp_micros()
    }

    /// The pool (tests that read or seed rows directly).
    #[must_use]
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Applies pending migrations (single process; see [`open_shared`]
    /// when several processes share the file).
    ///
    /// # Errors
    /// When a migration fails.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))
    }
}

/// Opens the embedded database and brings it up to date when web and worker
/// (two processes) may do so at the same moment. SQLite has no advisory
/// lock, and switching a new file to WAL or migrating it while another
/// process does the same fails with "database is locked", so the whole
/// open-and-migrate runs under an exclusive file lock beside the database.
///
/// # Errors
/// When the file cannot be opened or migrated, or the lock file used.
pub async fn open_shared(path: &Path, pool: &PoolConfig) -> Result<SqliteStore, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await.map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
        })?;
    }
    let lock_path = path.with_extension("migrate-lock");
    let lock = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        f.lock()?;
        Ok(f)
    })
    .await
    .map_err(|e| StoreError::Internal(e.to_string()))?
    .map_err(|e| StoreError::Unavailable(format!("cannot take the database open lock: {e}")))?;
    let result = async {
        let store = SqliteStore::open(path, pool).await?;
        store.migrate().await?;
        Ok(store)
    }
    .await;
    drop(lock);
    result
}

#[async_trait]
impl FileStore for SqliteStore {
    async fn create_file(&self, f: &NewFile) -> Result<StoredFile, StoreError> {
        let row = sqlx::query(
            "INSERT INTO files (id, owner_id, filename, content_type, size, sha256, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             RETURNING id, owner_id, filename, content_type, size, sha256, created_at",
        )
        .bind(f.id.to_string())
        .bind(f.owner.as_str())
        .bind(&f.filename)
        .bind(&f.content_type)
        .bind(f.size)
        .bind(&f.sha256)
        .bind(self.now_us())
        .fetch_one(&self.pool)
        .await?;
        file_from_row(&row)
    }

    async fn get_file(
        &self,
        owner: &OwnerId,
        id: uuid::Uuid,
    ) -> Result<Option<StoredFile>, StoreError> {
        let row = sqlx::query(
            "SELECT id, owner_id, filename, content_type, size, sha256, created_at
             FROM files WHERE id = ?1 AND owner_id = ?2",
        )
        .bind(id.to_string())
        .bind(owner.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(file_from_row).transpose()
    }

    async fn owner_stored_bytes(&self, owner: &OwnerId) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(SUM(size), 0) AS n FROM files WHERE owner_id = ?1")
            .bind(owner.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get("n")?)
    }

    async fn delete_file(&self, owner: &OwnerId, id: uuid::Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM files WHERE id = ?1 AND owner_id = ?2")
            .bind(id.to_string())
            .bind(owner.as_str())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn expired_files(
        &self,
        age: Duration,
        limit: u32,
    ) -> Result<Vec<StoredFile>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, owner_id, filename, content_type, size, sha256, created_at
             FROM files WHERE created_at < ?1 ORDER BY created_at LIMIT ?2",
        )
        .bind(self.now_us() - micros(age))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(file_from_row).collect()
    }
}

/// No push: SQLite has no LISTEN/NOTIFY, so event streams poll.
impl WatchStore for SqliteStore {}

#[async_trait]
impl StoreInfo for SqliteStore {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn pool_stats(&self) -> PoolStats {
        let size = self.pool.size();
        let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
        PoolStats {
            active: size.saturating_sub(idle),
            idle,
            max: self.max,
        }
    }
}

#[async_trait]
impl TaskApi for SqliteStore {
    async fn create_task(&self, new: NewTask) -> Result<Created, StoreError> {
        let now = self.now_us();
        let key = new.idempotency_key.as_ref().map(|k| k.as_str().to_owned());
        let sql = format!(
            "INSERT INTO tasks (id, owner_id, kind, status, payload, max_attempts, timeout_secs,
                                idempotency_key, created_at, run_after, dispatched_at, updated_at, backend)
             VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7, ?8, ?8, ?8, ?8, ?9)
             ON CONFLICT (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(new.id.to_string())
            .bind(new.owner.as_str())
            .bind(new.kind().as_str())
            .bind(new.payload.to_value().to_string())
            .bind(new.max_attempts)
            .bind(new.timeout_secs)
            .bind(&key)
            .bind(now)
            .bind(self.backend)
            .fetch_optional(&self.pool)
            .await?;
        if let Some(row) = row {
            return Ok(Created {
                task: task_from_row(&row)?,
                created: true,
            });
        }
        let sql =
            format!("SELECT {COLUMNS} FROM tasks WHERE owner_id = ?1 AND idempotency_key = ?2");
        let row = sqlx::query(&sql)
            .bind(new.owner.as_str())
            .bind(&key)
            .fetch_one(&self.pool)
            .await?;
        Ok(Created {
            task: task_from_row(&row)?,
            created: false,
        })
    }

    async fn get_task(&self, owner: &OwnerId, id: TaskId) -> Result<Option<Task>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM tasks WHERE id = ?1 AND owner_id = ?2");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(owner.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn list_tasks(&self, owner: &OwnerId, q: &ListQuery) -> Result<TaskPage, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM tasks
             WHERE owner_id = ?1
               AND (?2 IS NULL OR status = ?2)
               AND (?3 IS NULL OR kind = ?3)
               AND (?4 IS NULL OR (created_at, id) < (?4, ?5))
             ORDER BY created_at DESC, id DESC
             LIMIT ?6"
        );
        let limit = i64::from(q.limit.clamp(1, 500));
        let rows = sqlx::query(&sql)
            .bind(owner.as_str())
            .bind(q.status.map(TaskStatus::as_str))
            .bind(q.kind.map(|k| k.as_str()))
            .bind(q.cursor.map(|c| c.created_at_us))
            .bind(q.cursor.map(|c| c.id.to_string()))
            .bind(limit + 1)
            .fetch_all(&self.pool)
            .await?;
        let mut items = rows
            .iter()
            .map(task_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if items.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
            items.pop();
            items.last().map(Cursor::after)
        } else {
            None
        };
        Ok(TaskPage { items, next_cursor })
    }

    async fn stats(&self, owner: &OwnerId) -> Result<TaskStats, StoreError> {
        let rows = sqlx::query(
            "SELECT status, count(*) AS n FROM tasks WHERE owner_id = ?1 GROUP BY status",
        )
        .bind(owner.as_str())
        .fetch_all(&self.pool)
        .await?;
        let mut stats = TaskStats::default();
        for row in rows {
            stats.add(row.try_get::<&str, _>("status")?, row.try_get("n")?);
        }
        Ok(stats)
    }

    async fn cancel_task(&self, owner: &OwnerId, id: TaskId) -> Result<CancelOutcome, StoreError> {
        let sql = format!(
            "UPDATE tasks SET
                status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
                finished_at = CASE WHEN status = 'queued' THEN ?3 ELSE finished_at END,
                cancel_requested = (status = 'running'),
                updated_at = ?3
             WHERE id = ?1 AND owner_id = ?2 AND status IN ('queued', 'running')
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(owner.as_str())
            .bind(self.now_us())
            .fetch_optional(&self.pool)
            .await?;
        if let Some(row) = row {
            let task = task_from_row(&row)?;
            return Ok(if task.status == TaskStatus::Cancelled {
                CancelOutcome::Cancelled(task)
            } else {
                CancelOutcome::Requested(task)
            });
        }
        Ok(match self.get_task(owner, id).await? {
            Some(task) => CancelOutcome::AlreadyTerminal(task),
            None => CancelOutcome::NotFound,
        })
    }

    async fn create_tasks(&self, new: Vec<NewTask>) -> Result<Vec<Created>, StoreError> {
        let now = self.now_us();
        let insert = format!(
            "INSERT INTO tasks (id, owner_id, kind, status, payload, max_attempts, timeout_secs,
                                idempotency_key, created_at, run_after, dispatched_at, updated_at, backend)
             VALUES (?1, ?2, ?3, 'queued', ?4, ?5, ?6, ?7, ?8, ?8, ?8, ?8, ?9)
             ON CONFLICT (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
             RETURNING {COLUMNS}"
        );
        let existing =
            format!("SELECT {COLUMNS} FROM tasks WHERE owner_id = ?1 AND idempotency_key = ?2");
        // One transaction: the whole batch or nothing.
        let mut tx = self.pool.begin().await?;
        let mut out = Vec::with_capacity(new.len());
        for t in &new {
            let key = t.idempotency_key.as_ref().map(|k| k.as_str().to_owned());
            let row = sqlx::query(&insert)
                .bind(t.id.to_string())
                .bind(t.owner.as_str())
                .bind(t.kind().as_str())
                .bind(t.payload.to_value().to_string())
                .bind(t.max_attempts)
                .bind(t.timeout_secs)
                .bind(&key)
                .bind(now)
                .bind(self.backend)
                .fetch_optional(&mut *tx)
                .await?;
            out.push(match row {
                Some(row) => Created {
                    task: task_from_row(&row)?,
                    created: true,
                },
                None => Created {
                    task: task_from_row(
                        &sqlx::query(&existing)
                            .bind(t.owner.as_str())
                            .bind(&key)
                            .fetch_one(&mut *tx)
                            .await?,
                    )?,
                    created: false,
                },
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn owner_queued_tasks(&self, owner: &OwnerId, cap: u32) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT count(*) AS n FROM (
                SELECT 1 FROM tasks WHERE owner_id = ?1 AND status = 'queued' LIMIT ?2)",
        )
        .bind(owner.as_str())
        .bind(i64::from(cap))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }
}

#[async_trait]
impl WorkerStore for SqliteStore {
    fn clock(&self) -> &Clock {
        &self.clock
    }

    async fn claim(
        &self,
        ids: &[TaskId],
        worker: &str,
        lease: Duration,
        owner_max_running: Option<u32>,
    ) -> Result<Vec<Task>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now_us();
        // SQLite runs one writer at a time: the cap check and the claim are
        // one statement, so they cannot interleave with another claim.
        let sql = format!(
            "UPDATE tasks SET
                status = 'running',
                attempts = attempts + 1,
                started_at = ?1,
                lease_owner = ?2,
                lease_expires_at = ?3,
                updated_at = ?1
             WHERE id IN ({}) AND status = 'queued' AND run_after <= ?1
               AND (?4 IS NULL OR (SELECT count(*) FROM tasks r
                     WHERE r.status = 'running' AND r.owner_id = tasks.owner_id) < ?4)
             RETURNING {COLUMNS}",
            placeholders(5, ids.len())
        );
        let query = sqlx::query(&sql)
            .bind(now)
            .bind(worker)
            .bind(now + micros(lease))
            .bind(owner_max_running.map(i64::from));
        let rows = bind_ids(query, ids).fetch_all(&self.pool).await?;
        rows.iter().map(task_from_row).collect()
    }

    async fn claim_due(&self, req: &ClaimRequest<'_>) -> Result<Vec<Task>, StoreError> {
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        let got = self.claim_due_once(req).await?;
        if got.is_empty() && !req.after_owner.is_empty() && req.scope == ClaimScope::All {
            // Past the last owner: wrap around to the first.
            return self
                .claim_due_once(&ClaimRequest {
                    after_owner: "",
                    ..*req
                })
                .await;
        }
        Ok(got)
    }
    async fn queued_count(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query("SELECT count(*) AS n FROM tasks WHERE status = 'queued'")
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn task_states(&self, ids: &[TaskId]) -> Result<Vec<TaskState>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id, status, run_after FROM tasks WHERE id IN ({})",
            placeholders(1, ids.len())
        );
        let rows = bind_ids(sqlx::query(&sql), ids)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TaskState {
                    id: parse_id(r.try_get("id")?)?,
                    status: parse_status(r.try_get("status")?)?,
                    run_after: ts(r.try_get("run_after")?)?,
                })
            })
            .collect()
    }

    async fn finish(&self, worker: &str, items: &[Finish]) -> Result<Vec<TaskId>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now_us();
        let mut done = Vec::with_capacity(items.len());
        // One transaction (one fsync) for the batch; each row one conditional UPDATE.
        let mut tx = self.pool.begin().await?;
        for f in items {
            let (status, result, error, delay) = match &f.outcome {
                FinishOutcome::Succeeded(v) => {
                    ("succeeded", Some(v.to_string()), None, Duration::ZERO)
                }
                FinishOutcome::Retry { error, delay } => {
                    ("queued", None, Some(error.clone()), *delay)
                }
                FinishOutcome::Failed(e) => ("failed", None, Some(e.clone()), Duration::ZERO),
                FinishOutcome::Cancelled => ("cancelled", None, None, Duration::ZERO),
                FinishOutcome::HandBack => ("handback", None, None, Duration::ZERO),
            };
            let row = sqlx::query(
                "UPDATE tasks SET
                    status = CASE
                        WHEN ?4 IN ('queued', 'handback') AND cancel_requested THEN 'cancelled'
                        WHEN ?4 = 'handback' THEN 'queued'
                        ELSE ?4 END,
                    result = ?5,
                    error = COALESCE(?6, error),
                    attempts = CASE WHEN ?4 = 'handback' THEN attempts - 1 ELSE attempts END,
                    finished_at = CASE
                        WHEN ?4 IN ('queued', 'handback') AND NOT cancel_requested THEN NULL
                        ELSE ?7 END,
                    run_after = CASE WHEN ?4 IN ('queued', 'handback') THEN ?7 + ?8 ELSE run_after END,
                    dispatched_at = ?7,
                    lease_owner = NULL,
                    lease_expires_at = NULL,
                    updated_at = ?7
                 WHERE id = ?1 AND status = 'running' AND lease_owner = ?2 AND attempts = ?3
                 RETURNING id, status, started_at",
            )
            .bind(f.id.to_string())
            .bind(worker)
            .bind(f.attempt)
            .bind(status)
            .bind(result)
            .bind(error)
            .bind(now)
            .bind(micros(delay))
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                let final_status: &str = row.try_get("status")?;
                let outcome = match (final_status, status) {
                    ("succeeded" | "failed" | "cancelled", _) => final_status.to_owned(),
                    (_, "handback") => "handed_back".to_owned(),
                    _ => "retried".to_owned(),
                };
                let started: Option<i64> = row.try_get("started_at")?;
                sqlx::query(
                    "INSERT INTO task_attempts (task_id, attempt, worker, started_at, finished_at, outcome, error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .bind(f.id.to_string())
                .bind(f.attempt)
                .bind(worker)
                .bind(started)
                .bind(now)
                .bind(outcome)
                .bind(match &f.outcome {
                    FinishOutcome::Retry { error, .. } | FinishOutcome::Failed(error) => {
                        Some(error.as_str())
                    }
                    _ => None,
                })
                .execute(&mut *tx)
                .await?;
                done.push(f.id);
            }
        }
        tx.commit().await?;
        Ok(done)
    }

    async fn heartbeat(
        &self,
        worker: &str,
        ids: &[TaskId],
        lease: Duration,
    ) -> Result<Vec<TaskId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "UPDATE tasks SET lease_expires_at = ?1
             WHERE id IN ({}) AND status = 'running' AND lease_owner = ?2
             RETURNING id",
            placeholders(3, ids.len())
        );
        let q = sqlx::query(&sql)
            .bind(self.now_us() + micros(lease))
            .bind(worker);
        returned_ids(bind_ids(q, ids), &self.pool).await
    }

    async fn cancel_requested(&self, ids: &[TaskId]) -> Result<Vec<TaskId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id FROM tasks WHERE id IN ({}) AND cancel_requested",
            placeholders(1, ids.len())
        );
        returned_ids(bind_ids(sqlx::query(&sql), ids), &self.pool).await
    }

    async fn prune_finished(&self, age: Duration, limit: u32) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM tasks WHERE id IN (
                SELECT id FROM tasks
                WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished_at < ?1
                ORDER BY finished_at
                LIMIT ?2)",
        )
        .bind(self.now_us() - micros(age))
        .bind(i64::from(limit))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn recover_leases(
        &self,
        scope: LeaseScope<'_>,
        limit: u32,
    ) -> Result<Vec<RecoveredLease>, StoreError> {
        let now = self.now_us();
        let (filter, me) = match scope {
            LeaseScope::Expired => ("lease_expires_at < ?1", ""),
            LeaseScope::AllExcept(me) => (
                "lease_owner IS NOT ?3 AND substr(lease_owner, 1, length(?4)) = ?4",
                me,
            ),
        };
        let sql = format!(
            "UPDATE tasks SET
                status = CASE
                    WHEN cancel_requested THEN 'cancelled'
                    WHEN attempts >= max_attempts THEN 'failed'
                    ELSE 'queued' END,
                error = 'lease expired: the worker running attempt ' || attempts || ' stopped',
                finished_at = CASE
                    WHEN cancel_requested OR attempts >= max_attempts THEN ?1
                    ELSE NULL END,
                run_after = ?1,
                dispatched_at = ?1,
                lease_owner = NULL,
                lease_expires_at = NULL,
                updated_at = ?1
             WHERE id IN (
                SELECT id FROM tasks
                WHERE status = 'running' AND {filter}
                ORDER BY lease_expires_at, id
                LIMIT ?2)
             RETURNING id, status, kind"
        );
        // The history rows are written first, from the rows about to change,
        // in the same transaction.
        let history = format!(
            "INSERT INTO task_attempts (task_id, attempt, worker, started_at, finished_at, outcome, error)
             SELECT id, attempts, lease_owner, started_at, ?1, 'lease_expired',
                    'lease expired: the worker running attempt ' || attempts || ' stopped'
             FROM tasks WHERE id IN (
                SELECT id FROM tasks
                WHERE status = 'running' AND {filter}
                ORDER BY lease_expires_at, id
                LIMIT ?2)"
        );
        let mut tx = self.pool.begin().await?;
        let mut h = sqlx::query(&history).bind(now).bind(i64::from(limit));
        if !me.is_empty() {
            h = h.bind(me).bind(super::worker_kind_prefix(me));
        }
        h.execute(&mut *tx).await?;
        let mut query = sqlx::query(&sql).bind(now).bind(i64::from(limit));
        if !me.is_empty() {
            query = query.bind(me).bind(super::worker_kind_prefix(me));
        }
        let rows = query.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        rows.iter()
            .map(|r| {
                Ok(RecoveredLease {
                    id: parse_id(r.try_get("id")?)?,
                    status: parse_status(r.try_get("status")?)?,
                    kind: static_kind(r.try_get("kind")?),
                })
            })
            .collect()
    }
}

#[async_trait]
impl ConsoleStore for SqliteStore {
    // --- The operator's console (issue 13): the PostgreSQL statements
    // (see postgres.rs) in SQLite's dialect, on the same indexes.

    async fn get_task_in(&self, scope: &Scope, id: TaskId) -> Result<Option<Task>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM tasks WHERE id = ?1 AND (?2 IS NULL OR owner_id = ?2)");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(scope.owner())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn list_tasks_in(&self, scope: &Scope, q: &ListQuery) -> Result<TaskPage, StoreError> {
        if let Scope::Owner(owner) = scope {
            return self.list_tasks(owner, q).await;
        }
        // Every owner: newest first by (time-ordered UUIDv7) id, on the primary key.
        let sql = format!(
            "SELECT {COLUMNS} FROM tasks
             WHERE (?1 IS NULL OR status = ?1)
               AND (?2 IS NULL OR kind = ?2)
               AND (?3 IS NULL OR id < ?3)
             ORDER BY id DESC
             LIMIT ?4"
        );
        let limit = i64::from(q.limit.clamp(1, 500));
        let rows = sqlx::query(&sql)
            .bind(q.status.map(TaskStatus::as_str))
            .bind(q.kind.map(|k| k.as_str()))
            .bind(q.cursor.map(|c| c.id.to_string()))
            .bind(limit + 1)
            .fetch_all(&self.pool)
            .await?;
        let mut items = rows
            .iter()
            .map(task_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = if items.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
            items.pop();
            items.last().map(Cursor::after)
        } else {
            None
        };
        Ok(TaskPage { items, next_cursor })
    }

    async fn stats_by_kind(
        &self,
        scope: &Scope,
        finished_since: DateTime<Utc>,
    ) -> Result<Vec<KindStats>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, status, count(*) AS n FROM tasks
             WHERE (?1 IS NULL OR owner_id = ?1) AND status = 'queued' GROUP BY kind, status
             UNION ALL
             SELECT kind, status, count(*) FROM tasks
             WHERE (?1 IS NULL OR owner_id = ?1) AND status = 'running' GROUP BY kind, status
             UNION ALL
             SELECT kind, status, count(*) FROM tasks
             WHERE (?1 IS NULL OR owner_id = ?1) AND status IN ('succeeded', 'failed', 'cancelled')
               AND finished_at >= ?2
             GROUP BY kind, status",
        )
        .bind(scope.owner())
        .bind(finished_since.timestamp_micros())
        .fetch_all(&self.pool)
        .await?;
        let rows = rows
            .iter()
            .map(|r| Ok((r.try_get("kind")?, r.try_get("status")?, r.try_get("n")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(group_kinds(rows))
    }

    async fn retry_task(
        &self,
        scope: &Scope,
        id: TaskId,
        backend: Option<&str>,
    ) -> Result<RetryOutcome, StoreError> {
        let sql = format!(
            "UPDATE tasks SET {SQ_RETRY_SET}
             WHERE id = ?1 AND (?2 IS NULL OR owner_id = ?2)
               AND status IN ('failed', 'cancelled')
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(scope.owner())
            .bind(backend)
            .bind(self.now_us())
            .fetch_optional(&self.pool)
            .await?;
        if let Some(row) = row {
            return Ok(RetryOutcome::Retried(task_from_row(&row)?));
        }
        Ok(match self.get_task_in(scope, id).await? {
            Some(task) => RetryOutcome::NotRetryable(task),
            None => RetryOutcome::NotFound,
        })
    }

    async fn retry_tasks(
        &self,
        scope: &Scope,
        f: &RetryFilter,
        backend: Option<&str>,
    ) -> Result<Vec<TaskId>, StoreError> {
        let statuses = retry_statuses(f);
        if statuses.is_empty() || f.limit == 0 {
            return Ok(Vec::new());
        }
        let sql = format!(
            "UPDATE tasks SET {SQ_RETRY_SET}
             WHERE id IN (
                SELECT id FROM tasks
                WHERE (?2 IS NULL OR owner_id = ?2)
                  AND status IN ('succeeded', 'failed', 'cancelled')
                  AND status IN ({})
                  AND (?5 IS NULL OR kind = ?5)
                  AND (?6 IS NULL OR finished_at >= ?6)
                  AND (?7 IS NULL OR finished_at < ?7)
                ORDER BY finished_at
                LIMIT ?8)
             AND status IN ('failed', 'cancelled')
             RETURNING id",
            placeholders(9, statuses.len())
        );
        let mut q = sqlx::query(&sql)
            .bind(Option::<String>::None) // ?1: unused (shared SET clause)
            .bind(scope.owner())
            .bind(backend)
            .bind(self.now_us())
            .bind(f.kind.map(|k| k.as_str()))
            .bind(f.finished_after.map(|t| t.timestamp_micros()))
            .bind(f.finished_before.map(|t| t.timestamp_micros()))
            .bind(i64::from(f.limit));
        for s in statuses {
            q = q.bind(s);
        }
        returned_ids(q, &self.pool).await
    }

    async fn attempts(
        &self,
        scope: &Scope,
        id: TaskId,
    ) -> Result<Option<Vec<Attempt>>, StoreError> {
        let task = sqlx::query(
            "SELECT status, attempts, started_at, lease_owner FROM tasks
             WHERE id = ?1 AND (?2 IS NULL OR owner_id = ?2)",
        )
        .bind(id.to_string())
        .bind(scope.owner())
        .fetch_optional(&self.pool)
        .await?;
        let Some(task) = task else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT attempt, worker, started_at, finished_at, outcome, error
             FROM task_attempts WHERE task_id = ?1 ORDER BY id",
        )
        .bind(id.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                let outcome: &str = r.try_get("outcome")?;
                Ok(Attempt {
                    attempt: r.try_get("attempt")?,
                    worker: r.try_get("worker")?,
                    started_at: r
                        .try_get::<Option<i64>, _>("started_at")?
                        .map(ts)
                        .transpose()?,
                    finished_at: Some(ts(r.try_get("finished_at")?)?),
                    outcome: AttemptOutcome::parse(outcome).ok_or_else(|| {
                        StoreError::Internal(format!("unknown attempt outcome {outcome:?}"))
                    })?,
                    error: r.try_get("error")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        if task.try_get::<&str, _>("status")? == "running" {
            out.push(Attempt {
                attempt: task.try_get("attempts")?,
                worker: task.try_get("lease_owner")?,
                started_at: task
                    .try_get::<Option<i64>, _>("started_at")?
                    .map(ts)
                    .transpose()?,
                finished_at: None,
                outcome: AttemptOutcome::Running,
                error: None,
            });
        }
        Ok(Some(out))
    }

    async fn finished_series(
        &self,
        scope: &Scope,
        since: DateTime<Utc>,
        interval_secs: i64,
    ) -> Result<Vec<SeriesPoint>, StoreError> {
        let interval = interval_secs.max(1);
        let rows = sqlx::query(
            "SELECT (finished_at / 1000000) / ?3 AS b, status, count(*) AS n
             FROM tasks
             WHERE (?1 IS NULL OR owner_id = ?1) AND status IN ('succeeded', 'failed', 'cancelled')
               AND finished_at >= ?2
             GROUP BY 1, 2",
        )
        .bind(scope.owner())
        .bind(since.timestamp_micros())
        .bind(interval)
        .fetch_all(&self.pool)
        .await?;
        let rows = rows
            .iter()
            .map(|r| Ok((r.try_get("b")?, r.try_get("status")?, r.try_get("n")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(fill_series(since, self.clock.now(), interval, &rows))
    }

    async fn backend_queues(&self, scope: &Scope) -> Result<Vec<BackendQueue>, StoreError> {
        let rows = sqlx::query(
            "SELECT backend, status, count(*) AS n FROM tasks
             WHERE (?1 IS NULL OR owner_id = ?1) AND status = 'queued' GROUP BY backend, status
             UNION ALL
             SELECT backend, status, count(*) FROM tasks
             WHERE (?1 IS NULL OR owner_id = ?1) AND status = 'running' GROUP BY backend, status",
        )
        .bind(scope.owner())
        .fetch_all(&self.pool)
        .await?;
        let rows = rows
            .iter()
            .map(|r| Ok((r.try_get("backend")?, r.try_get("status")?, r.try_get("n")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(group_backends(rows))
    }
}

impl SqliteStore {
    async fn claim_due_once(&self, req: &ClaimRequest<'_>) -> Result<Vec<Task>, StoreError> {
        let now = self.now_us();
        let (scope, stale, backend) = match req.scope {
            ClaimScope::All => ("1", 0, ""),
            ClaimScope::NotDeliveredBy { backend, stale } => (
                "(backend IS NOT ?7 OR max(run_after, dispatched_at) <= ?1 - ?8)",
                micros(stale),
                backend,
            ),
        };
        // Owners after the round-robin position first; within the batch the
        // first task of every owner comes before the second of any; an owner
        // gets no more than its running cap leaves.
        let sql = format!(
            "UPDATE tasks SET
                status = 'running',
                attempts = attempts + 1,
                started_at = ?1,
                lease_owner = ?2,
                lease_expires_at = ?3,
                updated_at = ?1
             WHERE id IN (
                SELECT id FROM (
                    SELECT q.id, q.owner_id, q.run_after,
                           row_number() OVER (PARTITION BY q.owner_id ORDER BY q.run_after) AS rn,
                           CASE WHEN ?4 IS NULL THEN 0 ELSE
                               (SELECT count(*) FROM tasks r
                                WHERE r.status = 'running' AND r.owner_id = q.owner_id)
                           END AS running
                    FROM tasks q
                    WHERE q.status = 'queued' AND q.run_after <= ?1 AND {scope}
                      AND q.owner_id IS NOT ?10
                      AND q.owner_id IN (
                        SELECT owner_id FROM (
                            SELECT DISTINCT owner_id FROM tasks
                            WHERE status = 'queued' AND run_after <= ?1)
                        ORDER BY owner_id > ?5 DESC, owner_id LIMIT ?6)
                ) x
                WHERE ?4 IS NULL OR rn <= ?4 - running
                ORDER BY rn, owner_id > ?5 DESC, owner_id
                LIMIT ?9)
             RETURNING {COLUMNS}"
        );
        let rows = sqlx::query(&sql)
            .bind(now)
            .bind(req.worker)
            .bind(now + micros(req.lease))
            .bind(req.owner_max_running.map(i64::from))
            .bind(req.after_owner)
            .bind(i64::from(CLAIM_OWNERS_PER_BATCH))
            .bind(backend)
            .bind(stale)
            .bind(i64::from(req.limit))
            .bind(req.exclude_owner)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(task_from_row).collect()
    }
}
