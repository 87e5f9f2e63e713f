//! The sweeper: running tasks whose lease expired (their worker died) go
//! back to `queued` (or `failed` once their attempts are spent), and finished
//! tasks past `TASK_RETENTION_DAYS` are deleted in bounded batches. It never
//! hands out queued tasks: workers claim those from the store themselves.

use std::sync::Arc;

use resume_agent_core::store::{LeaseScope, StoreError};
use resume_agent_core::task::TaskStatus;
use tokio_util::sync::CancellationToken;

use super::Inner;

/// Leases recovered per sweep at most.
const SWEEP_BATCH: u32 = 500;

/// Finished tasks deleted per retention pass at most.
const PRUNE_BATCH: u32 = 1000;

/// Retention runs every this many sweeps (about once a minute by default),
/// so an idle worker makes few queries.
const PRUNE_EVERY: u32 = 12;

impl Inner {
    pub(super) async fn sweeper_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.cfg.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut n = 0u32;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.recover_expired().await {
                tracing::warn!(error = %e, "lease recovery failed");
            }
            if n.is_multiple_of(PRUNE_EVERY)
                && let Err(e) = self.prune().await
            {
                tracing::warn!(error = %e, "retention sweep failed");
            }
            n = n.wrapping_add(1);
            self.sweeps
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    async fn recover_expired(&self) -> Result<(), StoreError> {
        let recovered = self
            .deps
            .store
            .recover_leases(LeaseScope::Expired, SWEEP_BATCH)
            .await?;
        for r in &recovered {
            metrics::counter!("tasks_recovered_total", "kind" => r.kind).increment(1);
            tracing::warn!(task_id = %r.id, kind = r.kind, status = %r.status, "recovered a task whose lease expired");
        }
        if recovered.iter().any(|r| r.status == TaskStatus::Queued) {
            // Due at once: a store-backed intake may take them now.
            self.deps.intake.wakeups.wake();
        }
        Ok(())
    }

    async fn prune(&self) -> Result<(), StoreError> {
        let Some(age) = self.cfg.retention else {
            return Ok(());
        };
        let n = self.deps.store.prune_finished(age, PRUNE_BATCH).await?;
        if n > 0 {
            metrics::counter!("tasks_pruned_total").increment(n);
            tracing::debug!(n, "pruned finished tasks past retention");
        }
        Ok(())
    }
}
