//! One attempt: the handler under the task's timeout and a stop token
//! (cancellation, lost lease, drain), panics caught, the result bounded,
//! and the retry decision with exponential backoff and equal jitter.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::FutureExt;
use rand::Rng;
use resume_agent_core::config::WorkerConfig;
use resume_agent_core::store::{FinishOutcome, static_kind};
use resume_agent_core::task::{Task, scrub_nul, scrub_nul_str};
use serde_json::Value;

use super::{Done, Inner, REASON_CANCEL, Stop};
use crate::handler::{HandlerError, TaskContext};

/// The pause before attempt `attempts + 1`:
/// `min(RETRY_BACKOFF_MAX_MS, RETRY_BACKOFF_BASE_MS·2^(attempts-1))`, half
/// of it fixed and half scaled by `unit` (a random number in `0..1`).
#[must_use]
pub fn backoff(cfg: &WorkerConfig, attempts: i32, unit: f64) -> Duration {
    let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let full = cfg
        .retry_base
        .saturating_mul(2u32.saturating_pow(exp))
        .min(cfg.retry_max);
    let half = full / 2;
    half + half.mul_f64(unit.clamp(0.0, 1.0))
}

/// Bytes of `v` as JSON, counted without building the text.
fn json_len(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, v);
    c.0
}

impl Inner {
    pub(super) async fn run_attempt(self: &Arc<Self>, task: Task, stop: Arc<Stop>) -> Done {
        let kind = static_kind(&task.kind);
        let id = task.id;
        let attempt = task.attempts;
        if let Some(started) = task.started_at {
            let waited = (started - task.run_after)
                .to_std()
                .unwrap_or(Duration::ZERO);
            metrics::histogram!("task_queue_wait_seconds", "kind" => kind)
                .record(waited.as_secs_f64());
        }
        let gauge = metrics::gauge!("tasks_in_flight", "kind" => kind);
        gauge.increment(1.0);
        let started = Instant::now();
        let outcome = self.execute(&task, &stop).await;
        gauge.decrement(1.0);
        Done {
            id,
            attempt,
            kind,
            outcome,
            ran: started.elapsed(),
        }
    }

    async fn execute(&self, task: &Task, stop: &Stop) -> FinishOutcome {
        let Some(handler) = self.deps.registry.get(&task.kind) else {
            return FinishOutcome::Failed(format!(
                "no handler is registered for kind {:?}",
                task.kind
            ));
        };
        let ctx = TaskContext {
            task: task.clone(),
            cancel: stop.token.clone(),
            blobs: self.deps.blobs.clone(),
        };
        let limit = Duration::from_secs(u64::try_from(task.timeout_secs).unwrap_or(1));
        let run = AssertUnwindSafe(handler.run(ctx)).catch_unwind();
        let result = tokio::select! {
            biased;
            () = stop.token.cancelled() => None,
            r = tokio::time::timeout(limit, run) => Some(r),
        };
        let error = match result {
            None => {
                return match stop.reason.load(Ordering::SeqCst) {
                    REASON_CANCEL => FinishOutcome::Cancelled,
                    _ => FinishOutcome::HandBack,
                };
            }
            Some(Ok(Ok(Ok(mut value)))) => {
                // PostgreSQL's jsonb cannot hold U+0000 (PDF text often has
                // it): replaced, so one result never fails a finish batch.
                scrub_nul(&mut value);
                let size = json_len(&value);
                if size > self.cfg.result_max_bytes {
                    return FinishOutcome::Failed(format!(
                        "the result is too large: {size} bytes (TASK_RESULT_MAX_BYTES is {})",
                        self.cfg.result_max_bytes
                    ));
                }
                return FinishOutcome::Succeeded(value);
            }
            Some(Ok(Ok(Err(HandlerError::Permanent(mut m))))) => {
                scrub_nul_str(&mut m);
                return FinishOutcome::Failed(m);
            }
            Some(Ok(Ok(Err(HandlerError::Retryable(mut m))))) => {
                scrub_nul_str(&mut m);
                m
            }
            Some(Ok(Err(_panic))) => {
                tracing::error!(task_id = %task.id, kind = %task.kind, "handler panicked");
                return FinishOutcome::Failed(format!("the {} handler panicked", task.kind));
            }
            Some(Err(_elapsed)) => format!("timed out after {}s", task.timeout_secs),
        };
        if task.attempts < task.max_attempts {
            FinishOutcome::Retry {
                error,
                delay: backoff(&self.cfg, task.attempts, rand::rng().random::<f64>()),
            }
        } else {
            FinishOutcome::Failed(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(base_ms: u64, max_ms: u64) -> WorkerConfig {
        let mut c = resume_agent_core::config::Config::from_source(
            resume_agent_core::config::Role::Serve,
            &std::collections::HashMap::<String, String>::new(),
        )
        .map(|c| c.worker)
        .unwrap_or_else(|e| panic!("{e}"));
        c.retry_base = Duration::from_millis(base_ms);
        c.retry_max = Duration::from_millis(max_ms);
        c
    }

    #[test]
    fn backoff_doubles_with_equal_jitter_up_to_the_ceiling() {
        let c = cfg(1000, 300_000);
        assert_eq!(backoff(&c, 1, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(&c, 1, 1.0), Duration::from_millis(1000));
        assert_eq!(backoff(&c, 2, 0.0), Duration::from_millis(1000));
        assert_eq!(backoff(&c, 3, 0.5), Duration::from_millis(3000));
        assert_eq!(backoff(&c, 25, 1.0), Duration::from_millis(300_000));
        assert_eq!(backoff(&c, 25, 0.0), Duration::from_millis(150_000));
        assert_eq!(backoff(&c, 0, 0.0), Duration::from_millis(500), "clamped");
    }

    #[test]
    fn json_is_measured_without_building_it() {
        let v = serde_json::json!({"a": [1, 2, "three"], "b": null});
        assert_eq!(json_len(&v), v.to_string().len());
    }
}
