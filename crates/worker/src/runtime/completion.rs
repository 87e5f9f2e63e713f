//! Completion: outcomes are recorded in the store in batches (one UPDATE per
//! batch, split so that no statement carries more than
//! [`FINISH_BATCH_BYTES`] of results), then counted, then acknowledged to
//! the backend concurrently (one REST call each on Azure).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use resume_agent_core::TaskId;
use resume_agent_core::store::{Finish, FinishOutcome, StoreError};
use resume_agent_queue::{Delivery, Message};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{ACK_CONCURRENCY, Done, Inner};

/// Outcomes recorded per statement at most.
pub(super) const FINISH_BATCH: usize = 256;

/// Result bytes one finish statement carries at most (a batch of large
/// results is split; a single result is bounded by TASK_RESULT_MAX_BYTES).
pub(super) const FINISH_BATCH_BYTES: usize = 4 * 1024 * 1024;

fn result_bytes(o: &FinishOutcome) -> usize {
    match o {
        // A cheap upper-bound estimate is not available for Value; the
        // attempt measured it against TASK_RESULT_MAX_BYTES already, so
        // only large results matter here and they are counted exactly.
        FinishOutcome::Succeeded(v) => match v {
            serde_json::Value::Object(m) if m.is_empty() => 2,
            other => other.to_string().len(),
        },
        FinishOutcome::Retry { error, .. } | FinishOutcome::Failed(error) => error.len(),
        FinishOutcome::Cancelled | FinishOutcome::HandBack => 0,
    }
}

/// Splits `batch` into runs whose results stay under `max_bytes` (each run
/// holds at least one outcome).
fn split_by_size(batch: &[Done], max_bytes: usize) -> Vec<std::ops::Range<usize>> {
    let mut runs = Vec::new();
    let (mut start, mut bytes) = (0, 0usize);
    for (i, d) in batch.iter().enumerate() {
        let b = result_bytes(&d.outcome);
        if i > start && bytes + b > max_bytes {
            runs.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += b;
    }
    if start < batch.len() {
        runs.push(start..batch.len());
    }
    runs
}

fn outcome_label(o: &FinishOutcome) -> &'static str {
    match o {
        FinishOutcome::Succeeded(_) => "succeeded",
        FinishOutcome::Cancelled => "cancelled",
        FinishOutcome::Failed(_) => "failed",
        FinishOutcome::Retry { .. } => "retried",
        FinishOutcome::HandBack => "handed_back",
    }
}

impl Inner {
    pub(super) async fn completer(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<Done>,
        acks: mpsc::Sender<(Done, Delivery, bool)>,
        hard_stop: CancellationToken,
    ) {
        let mut batch = Vec::with_capacity(FINISH_BATCH);
        while rx.recv_many(&mut batch, FINISH_BATCH).await > 0 {
            let mut updated: HashSet<TaskId> = HashSet::with_capacity(batch.len());
            let mut abandoned = false;
            for run in split_by_size(&batch, FINISH_BATCH_BYTES) {
                let items: Vec<Finish> = batch[run]
                    .iter()
                    .map(|d| Finish {
                        id: d.id,
                        attempt: d.attempt,
                        outcome: d.outcome.clone(),
                    })
                    .collect();
                match self.finish_with_retry(&items, &hard_stop).await {
                    Some(ids) => updated.extend(ids),
                    None => {
                        abandoned = true;
                        break;
                    }
                }
            }
            if abandoned {
                // Abandoned at hard stop: the leases expire and the sweeper
                // recovers these tasks.
                batch.clear();
                continue;
            }
            for done in batch.drain(..) {
                let entry = self.map().remove(&done.id);
                let Some(entry) = entry else { continue };
                let recorded = updated.contains(&done.id);
                if recorded {
                    record_metrics(&done);
                } else {
                    tracing::warn!(task_id = %done.id, "outcome not recorded: the lease was lost (the task was recovered elsewhere)");
                    metrics::counter!("task_deliveries_dropped_total", "reason" => "lease_lost")
                        .increment(1);
                }
                tracing::debug!(task_id = %done.id, kind = done.kind, outcome = outcome_label(&done.outcome), recorded, "attempt ended");
                // The outcome is in the store: the acknowledgement may lag
                // without holding up the next batch's outcomes.
                if let Some(delivery) = entry.delivery
                    && acks.send((done, delivery, recorded)).await.is_err()
                {
                    break;
                }
            }
            // Slots (and owner caps) were freed: an idle intake looks again.
            if self.deps.intake.deliveries.is_none() {
                self.freed.notify_one();
            }
        }
    }

    async fn finish_with_retry(
        &self,
        items: &[Finish],
        hard_stop: &CancellationToken,
    ) -> Option<Vec<TaskId>> {
        let mut pause = Duration::from_millis(100);
        loop {
            match self.deps.store.finish(&self.worker_id, items).await {
                Ok(ids) => return Some(ids),
                Err(e) => {
                    let unavailable = matches!(e, StoreError::Unavailable(_));
                    tracing::warn!(error = %e, unavailable, n = items.len(), "recording outcomes failed; retrying");
                    tokio::select! {
                        () = hard_stop.cancelled() => return None,
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Acknowledges queue deliveries for recorded outcomes, concurrently,
    /// so a batch costs about one round trip, not one per task.
    pub(super) async fn acker(self: Arc<Self>, rx: mpsc::Receiver<(Done, Delivery, bool)>) {
        let Some(source) = self.deps.intake.deliveries.clone() else {
            // Nothing is ever sent without deliveries; drain until closed.
            let mut rx = rx;
            while rx.recv().await.is_some() {}
            return;
        };
        let source = &source;
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
            .for_each_concurrent(ACK_CONCURRENCY, |(done, delivery, recorded)| async move {
                let result = if recorded {
                    match &done.outcome {
                        FinishOutcome::Succeeded(_) | FinishOutcome::Cancelled => {
                            source.complete(&delivery).await
                        }
                        FinishOutcome::Failed(_) => source.dead_letter(&delivery).await,
                        FinishOutcome::Retry { delay, .. } => {
                            let mut next = delivery.clone();
                            next.message = Message {
                                task_id: done.id,
                                attempt: done.attempt,
                            };
                            source.release(&next, *delay).await
                        }
                        FinishOutcome::HandBack => source.release(&delivery, Duration::ZERO).await,
                    }
                } else {
                    source.complete(&delivery).await
                };
                if let Err(e) = result {
                    tracing::warn!(error = %e, task_id = %done.id, "acknowledging the backend failed");
                }
            })
            .await;
    }
}

fn record_metrics(done: &Done) {
    let outcome = outcome_label(&done.outcome);
    if outcome == "handed_back" {
        return;
    }
    metrics::counter!("tasks_completed_total", "kind" => done.kind, "outcome" => outcome)
        .increment(1);
    metrics::histogram!("task_run_duration_seconds", "kind" => done.kind)
        .record(done.ran.as_secs_f64());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(result_len: usize) -> Done {
        Done {
            id: TaskId::new(),
            attempt: 1,
            kind: "system.noop",
            outcome: FinishOutcome::Succeeded(serde_json::Value::String("x".repeat(result_len))),
            ran: Duration::ZERO,
        }
    }

    #[test]
    fn batches_are_split_by_result_size() {
        let batch: Vec<Done> = [10, 10, 90, 10, 200, 5].into_iter().map(done).collect();
        // "x"*n serialises as n + 2 bytes.
        let runs = split_by_size(&batch, 100);
        assert_eq!(runs, vec![0..2, 2..3, 3..4, 4..5, 5..6]);
        let all = split_by_size(&batch, 10_000);
        assert_eq!(all, vec![0..6]);
        assert!(split_by_size(&[], 10).is_empty());
    }
}
