//! The `postgres` backend: any number of workers take their work straight
//! from the PostgreSQL task table (the store's batch claim, `FOR UPDATE
//! SKIP LOCKED`), woken by `LISTEN/NOTIFY` on channel [`CHANNEL`].
//!
//! - [`PgNotifyBackend`] is the web's side: a hand-off is one `NOTIFY`,
//!   coalesced (however many tasks arrive while a `NOTIFY` is in flight,
//!   one more follows), so the database sees a few notifications per
//!   second under load, not one per task.
//! - [`listen`] is the worker's side: one `LISTEN` connection per process
//!   that turns notifications into [`Wakeups`]; it reconnects on failure and
//!   wakes the worker after every (re)connect, since notifications sent
//!   meanwhile are lost. Workers also poll (`INTAKE_POLL_MS`), so a lost
//!   notification costs one poll interval at most.
//!
//! No web→worker hop and no queue service: the task row is the message.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgListener;
pub use sqlx::postgres::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::wake::Wakeups;
use crate::{BackendError, Message, TaskBackend};

/// The backend name used in metrics and in `tasks.backend`.
pub const NAME: &str = "postgres";

/// The notification channel.
pub const CHANNEL: &str = "task_queued";

/// A small pool of its own for `LISTEN/NOTIFY` (lazy: the process starts
/// while the database is down).
///
/// # Errors
/// When the URL does not parse.
pub fn pool_for(url: &str) -> Result<PgPool, BackendError> {
    let options: sqlx::postgres::PgConnectOptions = url
        .parse()
        .map_err(|_| BackendError::Unavailable("invalid PostgreSQL URL".into()))?;
    Ok(sqlx::postgres::PgPoolOptions::new()
        .max_connections(2)
        .min_connections(0)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy_with(options.application_name("resume-agent-wake")))
}

/// The web's side: wakes workers with a coalesced `NOTIFY`.
pub struct PgNotifyBackend {
    pool: PgPool,
    pending: Arc<AtomicBool>,
    kick: Arc<Notify>,
}

impl std::fmt::Debug for PgNotifyBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgNotifyBackend").finish_non_exhaustive()
    }
}

impl PgNotifyBackend {
    /// Notifies through `pool` (a small one of its own is enough). Spawns
    /// the coalescing loop on the current runtime.
    #[must_use]
    pub fn new(pool: PgPool) -> Arc<Self> {
        let pending = Arc::new(AtomicBool::new(false));
        let kick = Arc::new(Notify::new());
        tokio::spawn(notify_loop(pool.clone(), pending.clone(), kick.clone()));
        Arc::new(Self {
            pool,
            pending,
            kick,
        })
    }
}

async fn notify_loop(pool: PgPool, pending: Arc<AtomicBool>, kick: Arc<Notify>) {
    loop {
        kick.notified().await;
        while pending.swap(false, Ordering::SeqCst) {
            if let Err(e) = sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&pool)
                .await
            {
                // The task is stored: workers find it at their next poll.
                metrics::counter!("task_dispatch_errors_total").increment(1);
                tracing::debug!(error = %e, "NOTIFY failed; workers will poll");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[async_trait]
impl TaskBackend for PgNotifyBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn enqueue(&self, messages: &[Message], _delay: Duration) -> Result<(), BackendError> {
        if !messages.is_empty() {
            self.pending.store(true, Ordering::SeqCst);
            self.kick.notify_one();
        }
        Ok(())
    }

    async fn check(&self) -> Result<(), BackendError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| BackendError::Unavailable(format!("PostgreSQL: {e}")))
    }
}

/// The worker's side: `LISTEN` on [`CHANNEL`] and wake `wakeups` on every
/// notification, until `stop`. Reconnects with a pause on failure.
pub async fn listen(pool: PgPool, wakeups: Wakeups, stop: CancellationToken) {
    loop {
        let connected = tokio::select! {
            () = stop.cancelled() => return,
            l = PgListener::connect_with(&pool) => l,
        };
        match connected {
            Ok(mut listener) => match listener.listen(CHANNEL).await {
                Ok(()) => {
                    // Anything may have arrived while we were not listening.
                    wakeups.wake();
                    loop {
                        let next = tokio::select! {
                            () = stop.cancelled() => return,
                            n = listener.try_recv() => n,
                        };
                        match next {
                            Ok(Some(_)) => wakeups.wake(),
                            // The connection dropped and was re-made:
                            // notifications may have been lost.
                            Ok(None) => wakeups.wake(),
                            Err(e) => {
                                tracing::warn!(error = %e, "LISTEN {CHANNEL} failed; reconnecting");
                                break;
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "LISTEN {CHANNEL} failed; retrying"),
            },
            Err(e) => tracing::debug!(error = %e, "cannot open the LISTEN connection yet"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
