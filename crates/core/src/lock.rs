//! The single-replica guard of the in-process backend: at most one worker
//! may consume, because its queue lives in its memory.
//!
//! - PostgreSQL: a session-level advisory lock held on a dedicated
//!   connection. It is released by the server the moment the holder's
//!   session ends (process killed, connection cut), so a standby takes over
//!   within one retry interval.
//! - Embedded SQLite: an exclusive `flock` on a file beside the database.

use std::path::PathBuf;

use async_trait::async_trait;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::Mutex;

use crate::secret::DatabaseUrl;
use crate::store::StoreError;

/// The advisory lock key: a fixed number that outlives deploys
/// (`0x5241_5f49_4e50_524f` is "RA_INPRO" in ASCII).
pub const IN_PROCESS_LOCK_KEY: i64 = 0x5241_5f49_4e50_524f;

/// A lock that at most one process holds.
#[async_trait]
pub trait SingletonLock: Send + Sync + 'static {
    /// Takes the lock if free. `Ok(true)` when this process holds it now.
    async fn try_acquire(&self) -> Result<bool, StoreError>;

    /// Whether this process still holds it (`Err` when that cannot be
    /// told right now, e.g. the database is unreachable).
    async fn is_held(&self) -> Result<bool, StoreError>;
}

/// A PostgreSQL session advisory lock on its own connection.
pub struct PgAdvisoryLock {
    options: PgConnectOptions,
    key: i64,
    conn: Mutex<Option<PgConnection>>,
}

impl PgAdvisoryLock {
    /// A lock on `key`, connecting with `url` when first tried.
    ///
    /// # Errors
    /// When the URL does not parse.
    pub fn new(url: &DatabaseUrl, key: i64) -> Result<Self, StoreError> {
        let options = url
            .expose()
            .parse::<PgConnectOptions>()
            .map_err(|_| StoreError::Internal(format!("invalid database URL {url}")))?
            .application_name("resume-agent-lock");
        Ok(Self {
            options,
            key,
            conn: Mutex::new(None),
        })
    }
}

#[async_trait]
impl SingletonLock for PgAdvisoryLock {
    async fn try_acquire(&self) -> Result<bool, StoreError> {
        let mut guard = self.conn.lock().await;
        if guard.is_none() {
            *guard = Some(PgConnection::connect_with(&self.options).await?);
        }
        let Some(conn) = guard.as_mut() else {
            return Ok(false);
        };
        // Ask whether this session holds it already (the lock is re-entrant:
        // taking it twice would need two unlocks), else try to take it.
        let got: Result<bool, sqlx::Error> = sqlx::query_scalar(
            "SELECT CASE WHEN EXISTS (
                        SELECT 1 FROM pg_locks
                        WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted)
                    THEN true ELSE pg_try_advisory_lock($1) END",
        )
        .bind(self.key)
        .fetch_one(&mut *conn)
        .await;
        got.map_err(|e| {
            // The session is gone, and the lock with it.
            *guard = None;
            e.into()
        })
    }

    async fn is_held(&self) -> Result<bool, StoreError> {
        let mut guard = self.conn.lock().await;
        let Some(conn) = guard.as_mut() else {
            return Ok(false);
        };
        let held: Result<bool, sqlx::Error> = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted)",
        )
        .fetch_one(&mut *conn)
        .await;
        held.map_err(|e| {
            *guard = None;
            e.into()
        })
    }
}

/// An exclusive file lock (the embedded store's guard).
pub struct FileLock {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

impl FileLock {
    /// A lock on `path` (created when missing).
    #[must_use]
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            file: Mutex::new(None),
        }
    }
}

#[async_trait]
impl SingletonLock for FileLock {
    async fn try_acquire(&self) -> Result<bool, StoreError> {
        let mut guard = self.file.lock().await;
        if guard.is_some() {
            return Ok(true);
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.path)
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot open {}: {e}", self.path.display()))
            })?;
        match file.try_lock() {
            Ok(()) => {
                *guard = Some(file);
                Ok(true)
            }
            Err(std::fs::TryLockError::WouldBlock) => Ok(false),
            Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Unavailable(format!(
                "cannot lock {}: {e}",
                self.path.display()
            ))),
        }
    }

    async fn is_held(&self) -> Result<bool, StoreError> {
        Ok(self.file.lock().await.is_some())
    }
}
