//! PostgreSQL implementation of the store traits ([`super::TaskStore`]).
//!
//! Time comes from the database (`now()`), so several processes agree on it;
//! the worker side's statements read `COALESCE($n::timestamptz, now())`,
//! bound to a test's stubbed [`Clock`] or to NULL.
//! Multi-row statements lock their rows in id order (`ORDER BY id FOR
//! UPDATE`), so two of them can never deadlock on each other; the sweeper's
//! statements use `SKIP LOCKED` so replicas running it at once split the work.

use std::time::Duration;

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions, Row};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::console::{fill_series, group_backends, group_kinds, retry_statuses};
use super::{
    Attempt, AttemptOutcome, BackendQueue, CLAIM_OWNERS_PER_BATCH, CancelOutcome, ClaimRequest,
    ClaimScope, ConsoleStore, Created, FileStore, Finish, FinishOutcome, KindStats, LeaseScope,
    ListQuery, PoolStats, RecoveredLease, RetryFilter, RetryOutcome, Scope, SeriesPoint,
    StoreError, StoreInfo, TaskApi, TaskPage, TaskState, TaskStats, WatchStore, WorkerStore,
    static_kind,
};
use crate::clock::Clock;
use crate::config::PoolConfig;
use crate::file::{NewFile, StoredFile};
use crate::secret::DatabaseUrl;
use crate::store::{Cursor, TaskWatch};
use crate::task::{NewTask, OwnerId, Task, TaskId, TaskStatus};
use chrono::{DateTime, Utc};

/// Embedded PostgreSQL migrations (`migrations/postgres`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/postgres");

const COLUMNS: &str = "id, kind, status, payload, result, error, attempts, max_attempts, \
     timeout_secs, owner_id, created_at, started_at, finished_at, run_after, cancel_requested";

/// The SET clause of a retry (`$3`: the backend it is handed to next, or
/// NULL to keep the recorded one): a fresh attempt budget, due now, no lease,
/// no result; the last error stays until the next attempt ends.
const PG_RETRY_SET: &str = "status = 'queued', attempts = 0, result = NULL,
                started_at = NULL, finished_at = NULL, cancel_requested = false,
                run_after = now(), dispatched_at = now(), lease_owner = NULL,
                lease_expires_at = NULL, backend = COALESCE($3::text, backend),
                updated_at = now()";

/// The PostgreSQL task store.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    max: u32,
    notifier: Arc<Notifier>,
    inserter: Arc<tokio::sync::OnceCell<mpsc::Sender<InsertJob>>>,
    /// Written to `tasks.backend` on insert (the backend the web hands to).
    backend: Option<&'static str>,
    /// The worker side's time: the server's `now()` unless a test stubs it.
    clock: Clock,
}

/// One submission waiting for its batch: `Some(task)` once inserted, `None`
/// when (owner, idempotency key) existed already.
struct InsertJob {
    new: NewTask,
    done: oneshot::Sender<Result<Option<Task>, StoreError>>,
}

/// Advisory lock key serialising claims while `OWNER_MAX_RUNNING` is set
/// ("RA-claim" in ASCII).
const CLAIM_CAP_LOCK: i64 = 0x5241_2d63_6c61_696d;

/// Batches in flight at once.
const INSERT_EXECUTORS: usize = 4;

fn spawn_inserter(pool: PgPool, backend: Option<&'static str>) -> mpsc::Sender<InsertJob> {
    let (tx, rx) = mpsc::channel(4096);
    tokio::spawn(insert_batches(pool, backend, rx));
    tx
}

/// Group commit for submissions: whatever arrived while the previous
/// batches were executing goes into one multi-row INSERT, so under load the
/// database parses, plans and commits once per batch rather than once per
/// task, and an idle system still inserts a lone task at once.
async fn insert_batches(
    pool: PgPool,
    backend: Option<&'static str>,
    mut rx: mpsc::Receiver<InsertJob>,
) {
    let executors = Arc::new(tokio::sync::Semaphore::new(INSERT_EXECUTORS));
    let mut buf = Vec::with_capacity(256);
    loop {
        let Ok(permit) = executors.clone().acquire_owned().await else {
            return;
        };
        if rx.recv_many(&mut buf, 512).await == 0 {
            return;
        }
        let jobs = std::mem::take(&mut buf);
        let pool = pool.clone();
        tokio::spawn(async move {
            insert_batch(&pool, backend, jobs).await;
            drop(permit);
        });
    }
}

async fn insert_batch(pool: &PgPool, backend: Option<&'static str>, jobs: Vec<InsertJob>) {
    let rows: Vec<&NewTask> = jobs.iter().map(|j| &j.new).collect();
    match insert_rows(pool, backend, &rows).await {
        Ok(tasks) => {
            let mut by_id: HashMap<Uuid, Task> = tasks.into_iter().map(|t| (t.id.0, t)).collect();
            for j in jobs {
                let _ = j.done.send(Ok(by_id.remove(&j.new.id.0)));
            }
        }
        // One row the database refuses (a value it cannot store, a
        // constraint) fails the whole statement: the batch holds other
        // people's requests, so each row is tried again on its own and only
        // the bad one fails. A database that is down fails them all at once.
        Err(StoreError::Internal(cause)) if jobs.len() > 1 => {
            tracing::warn!(rows = jobs.len(), %cause, "a batched insert failed; inserting its rows one by one");
            for j in jobs {
                let one = insert_rows(pool, backend, &[&j.new])
                    .await
                    .map(|tasks| tasks.into_iter().find(|t| t.id == j.new.id));
                let _ = j.done.send(one);
            }
        }
        Err(e) => {
            for j in jobs {
                let _ = j.done.send(Err(e.clone()));
            }
        }
    }
}

/// One multi-row INSERT. Rows whose (owner, key) exists already (or repeats
/// within `rows`) are skipped by ON CONFLICT and not returned.
async fn insert_rows(
    pool: &PgPool,
    backend: Option<&'static str>,
    rows: &[&NewTask],
) -> Result<Vec<Task>, StoreError> {
    let n = rows.len();
    let (mut ids, mut owners, mut kinds, mut payloads) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut attempts, mut timeouts, mut keys) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for t in rows {
        ids.push(t.id.0);
        owners.push(t.owner.as_str().to_owned());
        kinds.push(t.kind().as_str());
        payloads.push(t.payload.to_value().to_string());
        attempts.push(t.max_attempts);
        timeouts.push(t.timeout_secs);
        keys.push(t.idempotency_key.as_ref().map(|k| k.as_str().to_owned()));
    }
    let sql = format!(
        "INSERT INTO tasks (id, owner_id, kind, status, payload, max_attempts, timeout_secs, idempotency_key, backend)
         SELECT u.id, u.owner_id, u.kind, 'queued', u.payload::jsonb, u.max_attempts, u.timeout_secs, u.key, $8
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int[], $6::int[], $7::text[])
              WITH ORDINALITY AS u(id, owner_id, kind, payload, max_attempts, timeout_secs, key, n)
         ORDER BY u.n
         ON CONFLICT (owner_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
         RETURNING {COLUMNS}"
    );
    let rows = sqlx::query(&sql)
        .bind(&ids)
        .bind(&owners)
        .bind(&kinds)
        .bind(&payloads)
        .bind(&attempts)
        .bind(&timeouts)
        .bind(&keys)
        .bind(backend)
        .fetch_all(pool)
        .await?;
    rows.iter().map(task_from_row).collect()
}

/// `COLUMNS` qualified with a table alias (for statements that join).
fn columns_of(alias: &str) -> String {
    COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Fans `task_status` notifications out to the streams watching each task.
/// One LISTEN connection per process, opened on the first watch.
#[derive(Default)]
struct Notifier {
    watchers: std::sync::Mutex<HashMap<Uuid, (watch::Sender<u64>, usize)>>,
    started: tokio::sync::OnceCell<()>,
}

impl Notifier {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, (watch::Sender<u64>, usize)>> {
        self.watchers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn wake(&self, id: Uuid) {
        if let Some((tx, _)) = self.map().get(&id) {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    fn wake_all(&self) {
        for (tx, _) in self.map().values() {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    async fn listen(self: Arc<Self>, pool: PgPool) {
        loop {
            match PgListener::connect_with(&pool).await {
                Ok(mut listener) => {
                    if let Err(e) = listener.listen("task_status").await {
                        tracing::warn!(error = %e, "LISTEN task_status failed; retrying");
                    } else {
                        // Anything may have changed while we were not listening.
                        self.wake_all();
                        loop {
                            match listener.try_recv().await {
                                Ok(Some(n)) => {
                                    if let Ok(id) = Uuid::parse_str(n.payload()) {
                                        self.wake(id);
                                    }
                                }
                                // The connection dropped: notifications may be lost.
                                Ok(None) => self.wake_all(),
                                Err(e) => {
                                    tracing::warn!(error = %e, "task_status listener failed; reconnecting");
                                    break;
                                }
                            }
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "cannot open the LISTEN connection yet"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

struct Unsubscribe {
    notifier: Arc<Notifier>,
    id: Uuid,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        let mut map = self.notifier.map();
        if let Some(entry) = map.get_mut(&self.id) {
            entry.1 -= 1;
            if entry.1 == 0 {
                map.remove(&self.id);
            }
        }
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl PgStore {
    /// Opens a bounded pool. Connections are made lazily, so a service can
    /// start (and report not-ready) while the database is down.
    ///
    /// # Errors
    /// When the URL does not parse.
    pub async fn connect(url: &DatabaseUrl, pool: &PoolConfig) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url
            .expose()
            .parse::<PgConnectOptions>()
            .map_err(|_| StoreError::Internal(format!("invalid database URL {url}")))?
            .application_name("resume-agent")
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
        let pg = PgPoolOptions::new()
            .max_connections(pool.max_connections)
            .min_connections(pool.min_connections)
            .acquire_timeout(pool.acquire_timeout)
            .idle_timeout(Some(Duration::from_secs(300)))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // No JIT: every statement here is short, and the claim's
                    // cost estimate grows with the table (its per-owner LIMIT
                    // is a parameter), so from ~100,000 queued rows on it
                    // crossed jit_above_cost and spent ~20 ms compiling each
                    // claim of a few rows. A server without the setting
                    // (before PostgreSQL 11) refuses it harmlessly.
                    if let Err(e) = sqlx::Executor::execute(&mut *conn, "SET jit = off").await {
                        tracing::debug!(error = %e, "SET jit = off refused");
                    }
                    Ok(())
                })
            })
            .connect_lazy_with(options);
        Ok(Self {
            pool: pg,
            max: pool.max_connections,
            notifier: Arc::default(),
            inserter: Arc::default(),
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

    /// Uses `clock` for the worker side's statements (a stubbed one in
    /// tests; see [`crate::clock`]).
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Wraps an existing pool (tests).
    #[must_use]
    pub fn from_pool(pool: PgPool) -> Self {
        let max = pool.options().get_max_connections();
        Self {
            pool,
            max,
            notifier: Arc::default(),
            inserter: Arc::default(),
            backend: None,
            clock: Clock::real(),
        }
    }

    /// The pool, for callers that need PostgreSQL itself (advisory locks,
    /// LISTEN/NOTIFY).
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// One owner's page for the console: like `list_tasks`, but the SQL
    /// names only the filters given, so each combination gets a plan for
    /// its own index (a generic `$2 IS NULL OR status = $2` plan cannot use
    /// the partial per-status indexes, and an owner with few failed tasks
    /// among many would have every row scanned).
    async fn list_owner_tasks(
        &self,
        owner: &OwnerId,
        q: &ListQuery,
    ) -> Result<TaskPage, StoreError> {
        let mut sql = format!("SELECT {COLUMNS} FROM tasks WHERE owner_id = $1");
        let mut n = 1;
        if q.status.is_some() {
            n += 1;
            sql.push_str(&format!(" AND status = ${n}"));
        }
        if q.kind.is_some() {
            n += 1;
            sql.push_str(&format!(" AND kind = ${n}"));
        }
        if q.cursor.is_some() {
            sql.push_str(&format!(" AND (created_at, id) < (${}, ${})", n + 1, n + 2));
            n += 2;
        }
        sql.push_str(&format!(
            " ORDER BY created_at DESC, id DESC LIMIT ${}",
            n + 1
        ));
        let limit = i64::from(q.limit.clamp(1, 500));
        let mut query = sqlx::query(&sql).bind(owner.as_str());
        if let Some(st) = q.status {
            query = query.bind(st.as_str());
        }
        if let Some(k) = q.kind {
            query = query.bind(k.as_str());
        }
        if let Some(c) = &q.cursor {
            query = query.bind(c.created_at()?).bind(c.id.0);
        }
        let rows = query.bind(limit + 1).fetch_all(&self.pool).await?;
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

    /// Applies pending migrations. Safe when several processes run it at
    /// once: sqlx serialises them on an advisory lock.
    ///
    /// # Errors
    /// When a migration fails or the database is unreachable.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(inner) => StoreError::from(inner),
            other => StoreError::Internal(other.to_string()),
        })
    }
}

fn task_from_row(row: &PgRow) -> Result<Task, StoreError> {
    let status: String = row.try_get("status")?;
    Ok(Task {
        id: TaskId(row.try_get::<Uuid, _>("id")?),
        kind: row.try_get("kind")?,
        status: status
            .parse::<TaskStatus>()
            .map_err(|e| StoreError::Internal(e.to_string()))?,
        payload: row.try_get("payload")?,
        result: row.try_get("result")?,
        error: row.try_get("error")?,
        attempts: row.try_get("attempts")?,
        max_attempts: row.try_get("max_attempts")?,
        timeout_secs: row.try_get("timeout_secs")?,
        owner_id: row.try_get("owner_id")?,
        created_at: row.try_get("created_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        run_after: row.try_get("run_after")?,
        cancel_requested: row.try_get("cancel_requested")?,
    })
}

fn file_from_row(row: &PgRow) -> Result<StoredFile, StoreError> {
    Ok(StoredFile {
        id: row.try_get("id")?,
        owner_id: row.try_get("owner_id")?,
        filename: row.try_get("filename")?,
        content_type: row.try_get("content_type")?,
        size: row.try_get("size")?,
        sha256: row.try_get("sha256")?,
        created_at: row.try_get("created_at")?,
    })
}

fn uuids(ids: &[TaskId]) -> Vec<Uuid> {
    ids.iter().map(|i| i.0).collect()
}

#[async_trait]
impl FileStore for PgStore {
    async fn create_file(&self, f: &NewFile) -> Result<StoredFile, StoreError> {
        let row = sqlx::query(
            "INSERT INTO files (id, owner_id, filename, content_type, size, sha256)
             VALUES ($1, $2, $3, $4, $5, $6)
             RETURNING id, owner_id, filename, content_type, size, sha256, created_at",
        )
        .bind(f.id)
        .bind(f.owner.as_str())
        .bind(&f.filename)
        .bind(&f.content_type)
        .bind(f.size)
        .bind(&f.sha256)
        .fetch_one(&self.pool)
        .await?;
        file_from_row(&row)
    }

    async fn get_file(&self, owner: &OwnerId, id: Uuid) -> Result<Option<StoredFile>, StoreError> {
        let row = sqlx::query(
            "SELECT id, owner_id, filename, content_type, size, sha256, created_at
             FROM files WHERE id = $1 AND owner_id = $2",
        )
        .bind(id)
        .bind(owner.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(file_from_row).transpose()
    }

    async fn owner_stored_bytes(&self, owner: &OwnerId) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(size), 0)::bigint AS n FROM files WHERE owner_id = $1",
        )
        .bind(owner.as_str())
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }

    async fn delete_file(&self, owner: &OwnerId, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM files WHERE id = $1 AND owner_id = $2")
            .bind(id)
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
        // On files_created_idx (0010).
        let rows = sqlx::query(
            "SELECT id, owner_id, filename, content_type, size, sha256, created_at
             FROM files WHERE created_at < now() - make_interval(secs => $1)
             ORDER BY created_at LIMIT $2",
        )
        .bind(age.as_secs_f64())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(file_from_row).collect()
    }
}

#[async_trait]
impl WatchStore for PgStore {
    async fn watch(&self, id: TaskId) -> Result<Option<TaskWatch>, StoreError> {
        let notifier = self.notifier.clone();
        let pool = self.pool.clone();
        self.notifier
            .started
            .get_or_init(|| async move {
                tokio::spawn(notifier.listen(pool));
            })
            .await;
        // Flag the row so that the trigger notifies its status changes.
        sqlx::query("UPDATE tasks SET watched = true WHERE id = $1 AND NOT watched")
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        let rx = {
            let mut map = self.notifier.map();
            let entry = map.entry(id.0).or_insert_with(|| (watch::channel(0).0, 0));
            entry.1 += 1;
            entry.0.subscribe()
        };
        let unsubscribe = Unsubscribe {
            notifier: self.notifier.clone(),
            id: id.0,
        };
        Ok(Some(TaskWatch::new(rx, Box::new(unsubscribe))))
    }
}

#[async_trait]
impl StoreInfo for PgStore {
    fn name(&self) -> &'static str {
        "postgres"
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
impl TaskApi for PgStore {
    async fn create_task(&self, new: NewTask) -> Result<Created, StoreError> {
        // Concurrent submissions are inserted together (see `insert_batches`).
        let tx = self
            .inserter
            .get_or_init(|| async { spawn_inserter(self.pool.clone(), self.backend) })
            .await;
        let owner = new.owner.clone();
        let key = new.idempotency_key.as_ref().map(|k| k.as_str().to_owned());
        let (done, inserted) = oneshot::channel();
        tx.send(InsertJob { new, done })
            .await
            .map_err(|_| StoreError::Unavailable("the insert batcher stopped".into()))?;
        let inserted = inserted
            .await
            .map_err(|_| StoreError::Unavailable("the insert batcher stopped".into()))??;
        if let Some(task) = inserted {
            return Ok(Created {
                task,
                created: true,
            });
        }
        // The key was used before: return the task first created with it.
        let sql =
            format!("SELECT {COLUMNS} FROM tasks WHERE owner_id = $1 AND idempotency_key = $2");
        let row = sqlx::query(&sql)
            .bind(owner.as_str())
            .bind(&key)
            .fetch_one(&self.pool)
            .await?;
        Ok(Created {
            task: task_from_row(&row)?,
            created: false,
        })
    }

    async fn get_task(&self, owner: &OwnerId, id: TaskId) -> Result<Option<Task>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM tasks WHERE id = $1 AND owner_id = $2");
        let row = sqlx::query(&sql)
            .bind(id.0)
            .bind(owner.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(task_from_row).transpose()
    }

    async fn list_tasks(&self, owner: &OwnerId, q: &ListQuery) -> Result<TaskPage, StoreError> {
        // Keyset pagination on the (owner_id, created_at DESC, id DESC) index.
        let sql = format!(
            "SELECT {COLUMNS} FROM tasks
             WHERE owner_id = $1
               AND ($2::text IS NULL OR status = $2)
               AND ($3::text IS NULL OR kind = $3)
               AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))
             ORDER BY created_at DESC, id DESC
             LIMIT $6"
        );
        let (cursor_ts, cursor_id) = match &q.cursor {
            Some(c) => (Some(c.created_at()?), Some(c.id.0)),
            None => (None, None),
        };
        let limit = i64::from(q.limit.clamp(1, 500));
        let rows = sqlx::query(&sql)
            .bind(owner.as_str())
            .bind(q.status.map(TaskStatus::as_str))
            .bind(q.kind.map(|k| k.as_str()))
            .bind(cursor_ts)
            .bind(cursor_id)
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
            "SELECT status, count(*) AS n FROM tasks WHERE owner_id = $1 GROUP BY status",
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
        // queued → cancelled at once; running → flag it for the worker.
        let sql = format!(
            "UPDATE tasks SET
                status = CASE WHEN status = 'queued' THEN 'cancelled' ELSE status END,
                finished_at = CASE WHEN status = 'queued' THEN now() ELSE finished_at END,
                cancel_requested = (status = 'running'),
                updated_at = now()
             WHERE id = $1 AND owner_id = $2 AND status IN ('queued', 'running')
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(id.0)
            .bind(owner.as_str())
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
        if new.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<&NewTask> = new.iter().collect();
        let inserted = insert_rows(&self.pool, self.backend, &rows).await?;
        let by_id: HashMap<Uuid, Task> = inserted.into_iter().map(|t| (t.id.0, t)).collect();
        // Items not inserted repeat an idempotency key: fetch the tasks first
        // created with those keys (earlier, or earlier in this batch).
        let missing: Vec<(String, String)> = new
            .iter()
            .filter(|t| !by_id.contains_key(&t.id.0))
            .filter_map(|t| {
                t.idempotency_key
                    .as_ref()
                    .map(|k| (t.owner.as_str().to_owned(), k.as_str().to_owned()))
            })
            .collect();
        let mut by_key: HashMap<(String, String), Task> = HashMap::new();
        if !missing.is_empty() {
            let (owners, keys): (Vec<String>, Vec<String>) = missing.into_iter().unzip();
            let sql = format!(
                "SELECT {}, t.idempotency_key AS ikey
                 FROM unnest($1::text[], $2::text[]) AS k(owner_id, key)
                 JOIN tasks t ON t.owner_id = k.owner_id AND t.idempotency_key = k.key",
                columns_of("t")
            );
            let rows = sqlx::query(&sql)
                .bind(&owners)
                .bind(&keys)
                .fetch_all(&self.pool)
                .await?;
            for row in &rows {
                let key: String = row.try_get("ikey")?;
                let task = task_from_row(row)?;
                by_key.insert((task.owner_id.clone(), key), task);
            }
        }
        new.iter()
            .map(|t| {
                if let Some(task) = by_id.get(&t.id.0)
                    && task.id == t.id
                {
                    return Ok(Created {
                        task: task.clone(),
                        created: true,
                    });
                }
                let key = t
                    .idempotency_key
                    .as_ref()
                    .map(|k| (t.owner.as_str().to_owned(), k.as_str().to_owned()));
                key.and_then(|k| by_key.get(&k).cloned())
                    .map(|task| Created {
                        task,
                        created: false,
                    })
                    .ok_or_else(|| {
                        StoreError::Internal("a batch item was neither inserted nor found".into())
                    })
            })
            .collect()
    }

    async fn owner_queued_tasks(&self, owner: &OwnerId, cap: u32) -> Result<i64, StoreError> {
        // On tasks_queued_owner_idx; LIMIT bounds the work at the cap.
        let row = sqlx::query(
            "SELECT count(*) AS n FROM (
                SELECT 1 FROM tasks WHERE owner_id = $1 AND status = 'queued' LIMIT $2) q",
        )
        .bind(owner.as_str())
        .bind(i64::from(cap))
        .fetch_one(&self.pool)
        .await?;
        Ok(row.try_get("n")?)
    }
}

#[async_trait]
impl WorkerStore for PgStore {
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
        // queued → running. Rows another claimer holds are skipped, not
        // waited on; owners at their running cap are skipped too.
        let sql = format!(
            "WITH c AS (
                SELECT id FROM tasks q
                WHERE id = ANY($1) AND status = 'queued' AND run_after <= COALESCE($5::timestamptz, now())
                  AND ($4::int IS NULL OR (SELECT count(*) FROM tasks r
                        WHERE r.status = 'running' AND r.owner_id = q.owner_id) < $4)
                ORDER BY id FOR UPDATE SKIP LOCKED
             )
             UPDATE tasks t SET
                status = 'running',
                attempts = t.attempts + 1,
                started_at = COALESCE($5::timestamptz, now()),
                lease_owner = $2,
                lease_expires_at = COALESCE($5::timestamptz, now()) + make_interval(secs => $3),
                updated_at = now()
             FROM c WHERE t.id = c.id
             RETURNING {}",
            columns_of("t")
        );
        let cap = owner_max_running.map(|n| i32::try_from(n).unwrap_or(i32::MAX));
        let query = sqlx::query(&sql)
            .bind(uuids(ids))
            .bind(worker)
            .bind(lease.as_secs_f64())
            .bind(cap)
            .bind(self.clock.stub());
        let rows = self.run_claim(query, cap.is_some()).await?;
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
        let rows = sqlx::query("SELECT id, status, run_after FROM tasks WHERE id = ANY($1)")
            .bind(uuids(ids))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TaskState {
                    id: TaskId(r.try_get("id")?),
                    status: r.try_get::<&str, _>("status")?.parse().map_err(
                        |e: crate::task::UnknownStatus| StoreError::Internal(e.to_string()),
                    )?,
                    run_after: r.try_get("run_after")?,
                })
            })
            .collect()
    }

    async fn finish(&self, worker: &str, items: &[Finish]) -> Result<Vec<TaskId>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut ids = Vec::with_capacity(items.len());
        let mut attempts = Vec::with_capacity(items.len());
        let mut statuses = Vec::with_capacity(items.len());
        let mut results: Vec<Option<String>> = Vec::with_capacity(items.len());
        let mut errors: Vec<Option<String>> = Vec::with_capacity(items.len());
        let mut delays = Vec::with_capacity(items.len());
        // In id order, so two batches (which never share a task) lock in one
        // order. The heartbeat never waits on these locks (SKIP LOCKED), so
        // the two cannot deadlock whatever order the plan takes rows in.
        let mut sorted: Vec<&Finish> = items.iter().collect();
        sorted.sort_by_key(|f| f.id.0);
        for f in sorted {
            ids.push(f.id.0);
            attempts.push(f.attempt);
            let (status, result, error, delay) = match &f.outcome {
                FinishOutcome::Succeeded(v) => ("succeeded", Some(v.to_string()), None, 0.0),
                FinishOutcome::Retry { error, delay } => {
                    ("queued", None, Some(error.clone()), delay.as_secs_f64())
                }
                FinishOutcome::Failed(e) => ("failed", None, Some(e.clone()), 0.0),
                FinishOutcome::Cancelled => ("cancelled", None, None, 0.0),
                FinishOutcome::HandBack => ("handback", None, None, 0.0),
            };
            statuses.push(status);
            results.push(result);
            errors.push(error);
            delays.push(delay);
        }
        // One statement for the whole batch. Only rows still running under
        // this worker's lease at this attempt change (the conditions are the
        // UPDATE's own, re-checked on a row another transaction changed
        // meanwhile). `lease_owner` is set exactly while a task runs (every
        // statement that ends `running` clears it), so the lease holder and
        // the attempt are the whole fence: a `status = 'running'` test here
        // let the planner, trusting a stale estimate of the running partial
        // index (125 rows; 24,911 entries, 1,152 live), scan every running
        // row and loop over the batch for each: 128 ms for 256 rows, slower
        // the more attempts were in flight, so a worker once behind stayed
        // behind. `t.id = ANY($2)` gives the primary key an index condition
        // (costed per array element on any other path, so a sequential scan
        // and hash join never look cheaper: without it, a 20,000-row table
        // was scanned whole per batch). Planned with its parameters every
        // time, like the claims. A retry of a task whose cancellation was
        // requested ends it `cancelled` instead. The attempt's history row is written by the
        // same statement. (A separate `FOR UPDATE` pass to lock the rows
        // first made this statement 2.7 times as costly: 62 against 23 µs a
        // row.) And joined by hashing: the lease holder's rarity (most rows
        // have none) has the planner expect one matching row, so it looped
        // the whole batch over each task (256 × 256 rows, the batch
        // unnested again every time: 22 ms of a 26 ms statement). Nested
        // loops are off for this transaction alone.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL enable_nestloop = off")
            .execute(&mut *tx)
            .await?;
        let rows = sqlx::query(
            "WITH u AS (
                SELECT * FROM unnest($2::uuid[], $3::int[], $4::text[], $5::text[], $6::text[], $7::float8[])
                    AS u(id, attempt, status, result, error, delay_secs)
             ), done AS (
                UPDATE tasks t SET
                    status = CASE
                        WHEN u.status IN ('queued', 'handback') AND t.cancel_requested THEN 'cancelled'
                        WHEN u.status = 'handback' THEN 'queued'
                        ELSE u.status END,
                    result = u.result::jsonb,
                    error = COALESCE(u.error, t.error),
                    attempts = CASE WHEN u.status = 'handback' THEN t.attempts - 1 ELSE t.attempts END,
                    finished_at = CASE
                        WHEN u.status IN ('queued', 'handback') AND NOT t.cancel_requested THEN NULL
                        ELSE COALESCE($8::timestamptz, now()) END,
                    run_after = CASE
                        WHEN u.status IN ('queued', 'handback') THEN COALESCE($8::timestamptz, now()) + make_interval(secs => u.delay_secs)
                        ELSE t.run_after END,
                    dispatched_at = now(),
                    lease_owner = NULL,
                    lease_expires_at = NULL,
                    updated_at = now()
                 FROM u
                 WHERE t.id = ANY($2) AND t.id = u.id AND t.lease_owner = $1
                   AND t.attempts = u.attempt
                 RETURNING t.id, u.attempt, t.started_at, u.status AS reported, t.status AS final, u.error
             ), history AS (
                INSERT INTO task_attempts (task_id, attempt, worker, started_at, outcome, error)
                SELECT id, attempt, $1, started_at,
                       CASE WHEN final IN ('succeeded', 'failed', 'cancelled') THEN final
                            WHEN reported = 'handback' THEN 'handed_back'
                            ELSE 'retried' END,
                       error
                FROM done
             )
             SELECT id FROM done",
        )
        .persistent(false)
        .bind(worker)
        .bind(&ids)
        .bind(&attempts)
        .bind(&statuses)
        .bind(&results)
        .bind(&errors)
        .bind(&delays)
        .bind(self.clock.stub())
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        rows.iter().map(|r| Ok(TaskId(r.try_get("id")?))).collect()
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
        // Rows another transaction holds are skipped, not waited on (a
        // finish of this worker's own, mostly, which ends the lease anyway):
        // waiting made the heartbeat and a finish batch deadlock when the
        // finish's plan took its rows in another order. What is reported
        // held is what the statement's snapshot shows running under this
        // worker, skipped rows included; the next heartbeat sees the rest.
        let rows = sqlx::query(
            "WITH h AS (
                SELECT id FROM tasks
                WHERE id = ANY($1) AND status = 'running' AND lease_owner = $2
                FOR UPDATE SKIP LOCKED
             ), extended AS (
                UPDATE tasks t SET lease_expires_at = COALESCE($4::timestamptz, now()) + make_interval(secs => $3)
                FROM h WHERE t.id = h.id
             )
             SELECT id FROM tasks
             WHERE id = ANY($1) AND status = 'running' AND lease_owner = $2",
        )
        .bind(uuids(ids))
        .bind(worker)
        .bind(lease.as_secs_f64())
        .bind(self.clock.stub())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(TaskId(r.try_get("id")?))).collect()
    }

    async fn cancel_requested(&self, ids: &[TaskId]) -> Result<Vec<TaskId>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query("SELECT id FROM tasks WHERE id = ANY($1) AND cancel_requested")
            .bind(uuids(ids))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(TaskId(r.try_get("id")?))).collect()
    }

    async fn prune_finished(&self, age: Duration, limit: u32) -> Result<u64, StoreError> {
        // Through the partial index tasks_finished_idx; SKIP LOCKED so
        // replicas pruning at once split the work.
        let done = sqlx::query(
            "DELETE FROM tasks WHERE id IN (
                SELECT id FROM tasks
                WHERE status IN ('succeeded', 'failed', 'cancelled')
                  AND finished_at < COALESCE($3::timestamptz, now()) - make_interval(secs => $1)
                ORDER BY finished_at
                LIMIT $2
                FOR UPDATE SKIP LOCKED)",
        )
        .bind(age.as_secs_f64())
        .bind(i64::from(limit))
        .bind(self.clock.stub())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn recover_leases(
        &self,
        scope: LeaseScope<'_>,
        limit: u32,
    ) -> Result<Vec<RecoveredLease>, StoreError> {
        // running with an expired lease → queued (due now; the caller
        // dispatches it) while attempts remain, else failed.
        let (filter, me) = match scope {
            LeaseScope::Expired => ("lease_expires_at < COALESCE($2::timestamptz, now())", ""),
            LeaseScope::AllExcept(me) => (
                "lease_owner IS DISTINCT FROM $3 AND starts_with(lease_owner, $4)",
                me,
            ),
        };
        let sql = format!(
            "WITH e AS (
                SELECT id, lease_owner, started_at FROM tasks
                WHERE status = 'running' AND {filter}
                ORDER BY lease_expires_at
                LIMIT $1
                FOR UPDATE SKIP LOCKED
             ), done AS (
                UPDATE tasks t SET
                    status = CASE
                        WHEN t.cancel_requested THEN 'cancelled'
                        WHEN t.attempts >= t.max_attempts THEN 'failed'
                        ELSE 'queued' END,
                    error = 'lease expired: the worker running attempt ' || t.attempts || ' stopped',
                    finished_at = CASE
                        WHEN t.cancel_requested OR t.attempts >= t.max_attempts THEN COALESCE($2::timestamptz, now())
                        ELSE NULL END,
                    run_after = COALESCE($2::timestamptz, now()),
                    dispatched_at = now(),
                    lease_owner = NULL,
                    lease_expires_at = NULL,
                    updated_at = now()
                 FROM e WHERE t.id = e.id
                 RETURNING t.id, t.status, t.kind, t.attempts, t.error, e.lease_owner, e.started_at
             ), history AS (
                INSERT INTO task_attempts (task_id, attempt, worker, started_at, outcome, error)
                SELECT id, attempts, lease_owner, started_at, 'lease_expired', error FROM done
             )
             SELECT id, status, kind FROM done"
        );
        let mut query = sqlx::query(&sql)
            .bind(i64::from(limit))
            .bind(self.clock.stub());
        if !me.is_empty() {
            query = query.bind(me).bind(super::worker_kind_prefix(me));
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(RecoveredLease {
                    id: TaskId(r.try_get("id")?),
                    status: r.try_get::<&str, _>("status")?.parse().map_err(
                        |e: crate::task::UnknownStatus| StoreError::Internal(e.to_string()),
                    )?,
                    kind: static_kind(r.try_get("kind")?),
                })
            })
            .collect()
    }
}

#[async_trait]
impl ConsoleStore for PgStore {
    // --- The operator's console (issue 13). Each query names the index it
    // runs on; the owner-scoped and every-owner variants are separate
    // statements so that each gets a plan for its own index.

    async fn get_task_in(&self, scope: &Scope, id: TaskId) -> Result<Option<Task>, StoreError> {
        match scope {
            Scope::Owner(owner) => self.get_task(owner, id).await,
            Scope::All => {
                let sql = format!("SELECT {COLUMNS} FROM tasks WHERE id = $1");
                let row = sqlx::query(&sql)
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await?;
                row.as_ref().map(task_from_row).transpose()
            }
        }
    }

    async fn list_tasks_in(&self, scope: &Scope, q: &ListQuery) -> Result<TaskPage, StoreError> {
        if let Scope::Owner(owner) = scope {
            return self.list_owner_tasks(owner, q).await;
        }
        // Every owner: newest first by id on the primary key (ids are
        // UUIDv7, time-ordered), so no index on created_at is needed.
        let sql = format!(
            "SELECT {COLUMNS} FROM tasks
             WHERE ($1::text IS NULL OR status = $1)
               AND ($2::text IS NULL OR kind = $2)
               AND ($3::uuid IS NULL OR id < $3)
             ORDER BY id DESC
             LIMIT $4"
        );
        let limit = i64::from(q.limit.clamp(1, 500));
        let rows = sqlx::query(&sql)
            .bind(q.status.map(TaskStatus::as_str))
            .bind(q.kind.map(|k| k.as_str()))
            .bind(q.cursor.map(|c| c.id.0))
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
        // Live: the partial queued/running indexes. Finished: a range of
        // tasks_owner_finished_idx (owner) or tasks_finished_idx (all).
        let sql = match scope {
            // One branch per partial index (`status IN (…)` would not imply
            // either predicate, and the planner would scan the owner's rows).
            Scope::Owner(_) => {
                "SELECT kind, status, count(*) AS n FROM tasks
                 WHERE owner_id = $1 AND status = 'queued' GROUP BY kind, status
                 UNION ALL
                 SELECT kind, status, count(*) FROM tasks
                 WHERE owner_id = $1 AND status = 'running' GROUP BY kind, status
                 UNION ALL
                 SELECT kind, status, count(*) FROM tasks
                 WHERE owner_id = $1 AND status IN ('succeeded', 'failed', 'cancelled')
                   AND finished_at >= $2
                 GROUP BY kind, status"
            }
            Scope::All => {
                "SELECT kind, status, count(*) AS n FROM tasks
                 WHERE status = 'queued' AND $1::text IS NULL GROUP BY kind, status
                 UNION ALL
                 SELECT kind, status, count(*) FROM tasks
                 WHERE status = 'running' GROUP BY kind, status
                 UNION ALL
                 SELECT kind, status, count(*) FROM tasks
                 WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished_at >= $2
                 GROUP BY kind, status"
            }
        };
        let rows = sqlx::query(sql)
            .bind(scope.owner())
            .bind(finished_since)
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
        // failed | cancelled → queued, fresh budget, due now. The WHERE names
        // the statuses it leaves, so a concurrent retry or a task that is
        // not finished matches nothing (409 below).
        let sql = format!(
            "UPDATE tasks SET {PG_RETRY_SET}
             WHERE id = $1 AND ($2::text IS NULL OR owner_id = $2)
               AND status IN ('failed', 'cancelled')
             RETURNING {COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(id.0)
            .bind(scope.owner())
            .bind(backend)
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
        // The oldest finishes first, on tasks_owner_finished_idx (owner) or
        // tasks_finished_idx (all); SKIP LOCKED so a row a worker or another
        // retry holds is left for the next call.
        let owner_filter = match scope {
            Scope::Owner(_) => "owner_id = $1",
            Scope::All => "$1::text IS NULL",
        };
        let sql = format!(
            "WITH r AS (
                SELECT id FROM tasks
                WHERE {owner_filter}
                  AND status IN ('succeeded', 'failed', 'cancelled')
                  AND status = ANY($4::text[])
                  AND ($5::text IS NULL OR kind = $5)
                  AND finished_at >= COALESCE($6::timestamptz, '-infinity')
                  AND finished_at < COALESCE($7::timestamptz, 'infinity')
                ORDER BY finished_at
                LIMIT $8
                FOR UPDATE SKIP LOCKED
             )
             UPDATE tasks SET {PG_RETRY_SET}
             FROM r WHERE tasks.id = r.id AND tasks.status IN ('failed', 'cancelled')
             RETURNING tasks.id"
        );
        let rows = sqlx::query(&sql)
            .bind(scope.owner())
            .bind(Option::<Uuid>::None) // $2: unused here (shared SET clause)
            .bind(backend)
            .bind(&statuses)
            .bind(f.kind.map(|k| k.as_str()))
            .bind(f.finished_after)
            .bind(f.finished_before)
            .bind(i64::from(f.limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(TaskId(r.try_get("id")?))).collect()
    }

    async fn attempts(
        &self,
        scope: &Scope,
        id: TaskId,
    ) -> Result<Option<Vec<Attempt>>, StoreError> {
        // The task row decides visibility and is the attempt in progress;
        // the finished ones come from task_attempts_task_idx.
        let task = sqlx::query(
            "SELECT status, attempts, started_at, lease_owner FROM tasks
             WHERE id = $1 AND ($2::text IS NULL OR owner_id = $2)",
        )
        .bind(id.0)
        .bind(scope.owner())
        .fetch_optional(&self.pool)
        .await?;
        let Some(task) = task else {
            return Ok(None);
        };
        let rows = sqlx::query(
            "SELECT attempt, worker, started_at, finished_at, outcome, error
             FROM task_attempts WHERE task_id = $1 ORDER BY id",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                let outcome: &str = r.try_get("outcome")?;
                Ok(Attempt {
                    attempt: r.try_get("attempt")?,
                    worker: r.try_get("worker")?,
                    started_at: r.try_get("started_at")?,
                    finished_at: r.try_get("finished_at")?,
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
                started_at: task.try_get("started_at")?,
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
        // A range scan of the finished indexes from `since`.
        let owner_filter = match scope {
            Scope::Owner(_) => "owner_id = $1",
            Scope::All => "$1::text IS NULL",
        };
        let sql = format!(
            "SELECT floor(extract(epoch FROM finished_at) / $3)::bigint AS b, status, count(*) AS n
             FROM tasks
             WHERE {owner_filter} AND status IN ('succeeded', 'failed', 'cancelled')
               AND finished_at >= $2
             GROUP BY 1, 2"
        );
        let interval = interval_secs.max(1);
        let rows = sqlx::query(&sql)
            .bind(scope.owner())
            .bind(since)
            .bind(interval as f64)
            .fetch_all(&self.pool)
            .await?;
        let rows = rows
            .iter()
            .map(|r| Ok((r.try_get("b")?, r.try_get("status")?, r.try_get("n")?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let now: DateTime<Utc> = sqlx::query_scalar("SELECT now()")
            .fetch_one(&self.pool)
            .await?;
        Ok(fill_series(since, now, interval, &rows))
    }

    async fn backend_queues(&self, scope: &Scope) -> Result<Vec<BackendQueue>, StoreError> {
        // The partial queued/running indexes (per owner or over all).
        let sql = match scope {
            Scope::Owner(_) => {
                "SELECT backend, status, count(*) AS n FROM tasks
                 WHERE owner_id = $1 AND status = 'queued' GROUP BY backend, status
                 UNION ALL
                 SELECT backend, status, count(*) FROM tasks
                 WHERE owner_id = $1 AND status = 'running' GROUP BY backend, status"
            }
            Scope::All => {
                "SELECT backend, status, count(*) AS n FROM tasks
                 WHERE status = 'queued' AND $1::text IS NULL GROUP BY backend, status
                 UNION ALL
                 SELECT backend, status, count(*) FROM tasks
                 WHERE status = 'running' GROUP BY backend, status"
            }
        };
        let rows = sqlx::query(sql)
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

impl PgStore {
    async fn claim_due_once(&self, req: &ClaimRequest<'_>) -> Result<Vec<Task>, StoreError> {
        let cap = req
            .owner_max_running
            .map(|n| i32::try_from(n).unwrap_or(i32::MAX));
        let update = format!(
            "UPDATE tasks t SET
                status = 'running',
                attempts = t.attempts + 1,
                started_at = COALESCE($8::timestamptz, now()),
                lease_owner = $1,
                lease_expires_at = COALESCE($8::timestamptz, now()) + make_interval(secs => $2),
                updated_at = now()
             FROM chosen WHERE t.id = chosen.id AND t.status = 'queued'
             RETURNING {}",
            columns_of("t")
        );
        let limit = i64::from(req.limit);
        let sql;
        let query = match req.scope {
            ClaimScope::All => {
                // A loose index scan finds up to CLAIM_OWNERS_PER_BATCH owners
                // with queued work after the round-robin position; each gets
                // an equal share (minus what its running cap leaves), and the
                // batch takes the first of every owner before the second of any.
                sql = format!(
                    "WITH RECURSIVE owners(owner_id, pos) AS (
                        (SELECT owner_id, 1 FROM tasks
                         WHERE status = 'queued' AND owner_id > $3
                         ORDER BY owner_id LIMIT 1)
                      UNION ALL
                        SELECT (SELECT q.owner_id FROM tasks q
                                WHERE q.status = 'queued' AND q.owner_id > o.owner_id
                                ORDER BY q.owner_id LIMIT 1), o.pos + 1
                        FROM owners o WHERE o.owner_id IS NOT NULL AND o.pos < $5
                     ),
                     live AS (
                        SELECT owner_id, pos FROM owners
                        WHERE owner_id IS NOT NULL AND owner_id IS DISTINCT FROM $7
                     ),
                     share AS (
                        SELECT GREATEST(1, ceil($4::float8 / GREATEST(count(*), 1)))::bigint AS n
                        FROM live
                     ),
                     picked AS (
                        SELECT p.id, p.run_after, l.pos FROM live l CROSS JOIN share s
                        CROSS JOIN LATERAL (
                            SELECT q.id, q.run_after FROM tasks q
                            WHERE q.status = 'queued' AND q.owner_id = l.owner_id
                              AND q.run_after <= COALESCE($8::timestamptz, now())
                            ORDER BY q.run_after
                            LIMIT CASE WHEN $6::int IS NULL THEN s.n
                                  ELSE LEAST(s.n, GREATEST(0, $6 - (
                                      SELECT count(*) FROM tasks r
                                      WHERE r.status = 'running' AND r.owner_id = l.owner_id)))
                                  END
                            FOR UPDATE OF q SKIP LOCKED
                        ) p
                     ),
                     chosen AS (
                        SELECT id FROM (
                            SELECT id, pos,
                                   row_number() OVER (PARTITION BY pos ORDER BY run_after) AS rn
                            FROM picked) x
                        ORDER BY rn, pos LIMIT $4
                     )
                     {update}"
                );
                sqlx::query(&sql)
                    // Planned with its parameters every time: a cached
                    // generic plan (the owner, limit and cap unknown) was
                    // seen to materialise every queued row of an owner.
                    .persistent(false)
                    .bind(req.worker)
                    .bind(req.lease.as_secs_f64())
                    .bind(req.after_owner)
                    .bind(limit)
                    .bind(i32::try_from(CLAIM_OWNERS_PER_BATCH).unwrap_or(64))
                    .bind(cap)
                    .bind(req.exclude_owner)
                    .bind(self.clock.stub())
            }
            ClaimScope::NotDeliveredBy { backend, stale } => {
                // Two index range scans: tasks handed to another backend
                // (tasks_queued_foreign_idx, whose predicate names the Azure
                // backend literally) and hand-offs older than `stale`
                // (tasks_queued_due_idx).
                let foreign = if backend == "azure-queue" {
                    "backend IS DISTINCT FROM 'azure-queue'"
                } else {
                    "backend IS DISTINCT FROM $6"
                };
                sql = format!(
                    "WITH foreign_ AS (
                        SELECT id FROM tasks
                        WHERE status = 'queued' AND run_after <= COALESCE($8::timestamptz, now()) AND {foreign}
                        ORDER BY run_after LIMIT $3 FOR UPDATE SKIP LOCKED
                     ),
                     stale AS (
                        SELECT id FROM tasks
                        WHERE status = 'queued'
                          AND GREATEST(run_after, dispatched_at) <= COALESCE($8::timestamptz, now()) - make_interval(secs => $4)
                        ORDER BY GREATEST(run_after, dispatched_at) LIMIT $3
                        FOR UPDATE SKIP LOCKED
                     ),
                     chosen AS (
                        SELECT id FROM (SELECT id FROM foreign_ UNION SELECT id FROM stale) u
                        WHERE ($7::text IS NULL OR NOT EXISTS (
                            SELECT 1 FROM tasks x WHERE x.id = u.id AND x.owner_id = $7))
                          AND ($5::int IS NULL OR (
                            SELECT count(*) FROM tasks r JOIN tasks me ON me.id = u.id
                            WHERE r.status = 'running' AND r.owner_id = me.owner_id) < $5)
                        LIMIT $3
                     )
                     {update}"
                );
                sqlx::query(&sql)
                    // Planned with its parameters every time: a cached
                    // generic plan (the owner, limit and cap unknown) was
                    // seen to materialise every queued row of an owner.
                    .persistent(false)
                    .bind(req.worker)
                    .bind(req.lease.as_secs_f64())
                    .bind(limit)
                    .bind(stale.as_secs_f64())
                    .bind(cap)
                    .bind(backend)
                    .bind(req.exclude_owner)
                    .bind(self.clock.stub())
            }
        };
        let rows = self.run_claim(query, cap.is_some()).await?;
        rows.iter().map(task_from_row).collect()
    }

    /// Runs a claim statement. While an owner cap is set (`serialised`),
    /// claims are serialised on an advisory lock, so two workers cannot both
    /// see an owner below its cap and both claim.
    async fn run_claim(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
        serialised: bool,
    ) -> Result<Vec<PgRow>, StoreError> {
        if !serialised {
            return Ok(query.fetch_all(&self.pool).await?);
        }
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(CLAIM_CAP_LOCK)
            .execute(&mut *tx)
            .await?;
        let rows = query.fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok(rows)
    }
}
