//! The in-process backend's single-replica guard: wait for the lock
//! (standing by, not ready), watch it while running, and recover the tasks
//! a dead predecessor left running.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use resume_agent_core::lock::SingletonLock;
use resume_agent_core::store::LeaseScope;
use tokio_util::sync::CancellationToken;

use super::Inner;

/// The lock holder confirms its lock no more often than this.
const HOLDER_CHECK_MIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Told to the operator when a second in-process worker stands by.
pub const REPLICA_CONFLICT: &str = "another worker replica holds the in-process lock: this replica stands by and runs nothing. \
With TASK_BACKEND=in-process run exactly one worker replica (Deployment replicas: 1, strategy Recreate), \
or switch to TASK_BACKEND=postgres or azure-queue to run several";

impl Inner {
    /// Waits for the lock, standing by (not ready) meanwhile. False when
    /// shutdown came first.
    pub(super) async fn wait_for_lock(
        &self,
        lock: &dyn SingletonLock,
        shutdown: &CancellationToken,
    ) -> bool {
        let mut told = false;
        loop {
            match lock.try_acquire().await {
                Ok(true) => {
                    if told {
                        tracing::info!("took over the in-process lock: this worker now runs tasks");
                    }
                    self.standby.store(false, Ordering::SeqCst);
                    metrics::gauge!("worker_replica_conflict").set(0.0);
                    return true;
                }
                Ok(false) => {
                    self.standby.store(true, Ordering::SeqCst);
                    metrics::gauge!("worker_replica_conflict").set(1.0);
                    if !told {
                        tracing::error!("{REPLICA_CONFLICT}");
                        told = true;
                    }
                }
                Err(e) => {
                    self.standby.store(true, Ordering::SeqCst);
                    tracing::warn!(error = %e, "cannot take the in-process lock yet (database unreachable?)");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return false,
                () = tokio::time::sleep(self.cfg.lock_retry) => {}
            }
        }
    }

    /// Checks the lock while running; steps down when another replica got it.
    pub(super) async fn watch_lock(
        self: Arc<Self>,
        lock: Arc<dyn SingletonLock>,
        stop: CancellationToken,
        lost: Arc<AtomicBool>,
    ) {
        // The holder only confirms its session (a database restart drops
        // it); a standby's retry (LOCK_RETRY_MS) decides how fast it takes
        // over. At most one check per 5 s keeps an idle worker quiet.
        let every = self.cfg.lock_retry.max(HOLDER_CHECK_MIN);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
            if let Ok(true) = lock.is_held().await {
                continue;
            }
            // The lock session was lost (database restart, network cut): take
            // it again unless someone else has.
            match lock.try_acquire().await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::error!(
                        "lost the in-process lock to another replica: draining and exiting"
                    );
                    lost.store(true, Ordering::SeqCst);
                    stop.cancel();
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot confirm the in-process lock (database unreachable?)");
                }
            }
        }
    }

    /// A new lock holder: no other in-process worker is alive, so every
    /// task still `running` belongs to a dead one.
    pub(super) async fn recover_orphans(&self) {
        match self
            .deps
            .store
            .recover_leases(LeaseScope::AllExcept(&self.worker_id), u32::MAX)
            .await
        {
            Ok(rec) if !rec.is_empty() => {
                for r in &rec {
                    metrics::counter!("tasks_recovered_total", "kind" => r.kind).increment(1);
                }
                tracing::warn!(
                    n = rec.len(),
                    "recovered tasks left running by a previous worker"
                );
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "recovering orphaned tasks failed; their leases will expire");
            }
        }
    }
}
