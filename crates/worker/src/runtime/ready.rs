//! The ready queue: claimed tasks waiting for a slot, and the slot runners
//! that take them.
//!
//! A claim is one statement and one commit whatever its size, so claiming
//! only as many tasks as there are free slots caps a worker of few slots
//! at `slots / claim latency` when tasks are short (8 slots, 3 ms: 2,700/s).
//! The intake therefore claims a little ahead: [`prefetch_target`] is the
//! work of [`PREFETCH_HORIZON`] at the rate attempts are starting, bounded
//! by what the slots can start within that horizon at the mean run time, so
//! it is nothing while tasks are long (1 s sleeps on 16 slots: 16 × 20 ms /
//! 1 s = 0) and up to a full claim while they are noops. A ready task is in the
//! worker's in-flight map from the claim on (its lease is heartbeated, a
//! cancellation stops it before it starts) and usually waits about that
//! horizon. When it has waited [`READY_MAX_WAIT`] (the slots were taken by
//! long tasks meanwhile) it is handed back unspent, for any worker with a
//! free slot; on drain every ready task is handed back the same way.
//!
//! A slot runner holds one slot and runs ready tasks one after another
//! until the queue is empty, so a slot freed by a short task is refilled
//! without a round trip through the intake.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use resume_agent_core::store::{FinishOutcome, static_kind};
use resume_agent_core::task::Task;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::task::TaskTracker;

use super::{Done, Inner, Stop};

/// How much work (in time at the current start rate) the worker claims
/// ahead of its free slots.
pub(super) const PREFETCH_HORIZON: Duration = Duration::from_millis(20);

/// A ready task that has waited this long goes back to the store.
pub(super) const READY_MAX_WAIT: Duration = Duration::from_millis(500);

/// A claimed task waiting for a slot.
pub(super) struct Ready {
    task: Task,
    stop: Arc<Stop>,
    since: Instant,
}

/// The rate estimate is refreshed at most this often.
const RATE_SAMPLE: Duration = Duration::from_millis(25);

/// Running totals of this worker's attempts (read by the intake).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Totals {
    /// Attempts started.
    pub(super) started: u64,
    /// Attempts ended.
    pub(super) ended: u64,
    /// Their run time, summed, in nanoseconds.
    pub(super) ran_ns: u64,
}

/// The recent pace of attempts: how many start per second and how long one
/// runs, each smoothed (an exponentially weighted mean over samples).
pub(super) struct Pace {
    at: Instant,
    last: Totals,
    /// None before the first sample.
    per_sec: Option<f64>,
    mean_secs: Option<f64>,
    ended_last: u64,
}

impl Pace {
    /// Attempts that ended within the last sample (at least 25 ms).
    pub(super) fn ended_last_sample(&self) -> u64 {
        self.ended_last
    }

    pub(super) fn new(at: Instant, totals: Totals) -> Self {
        Self {
            at,
            last: totals,
            per_sec: None,
            mean_secs: None,
            ended_last: 0,
        }
    }

    /// Folds in the totals seen at `now`; returns the start rate (per
    /// second) and the mean run time (seconds; none before any ended).
    pub(super) fn update(&mut self, now: Instant, totals: Totals) -> (f64, Option<f64>) {
        let dt = now.saturating_duration_since(self.at);
        if dt >= RATE_SAMPLE {
            let n = totals.started.saturating_sub(self.last.started) as f64;
            let inst = n / dt.as_secs_f64();
            // The first sample is taken whole (a restart with a backlog
            // claims ahead from its first 25 ms on, not half as much).
            self.per_sec = Some(self.per_sec.map_or(inst, |r| 0.5 * r + 0.5 * inst));
            let ended = totals.ended.saturating_sub(self.last.ended);
            self.ended_last = ended;
            if ended > 0 {
                let ran = totals.ran_ns.saturating_sub(self.last.ran_ns) as f64 / 1e9;
                let inst = ran / ended as f64;
                self.mean_secs = Some(self.mean_secs.map_or(inst, |m| 0.5 * m + 0.5 * inst));
            }
            self.at = now;
            self.last = totals;
        }
        (self.per_sec.unwrap_or(0.0), self.mean_secs)
    }
}

/// Tasks to keep claimed ahead: the work of [`PREFETCH_HORIZON`] at the
/// start rate, and no more than `slots` can start within the horizon at the
/// mean run time (so a burst of long tasks starting at once claims nothing
/// ahead), at most `max`.
pub(super) fn prefetch_target(
    per_sec: f64,
    mean_secs: Option<f64>,
    slots: usize,
    max: usize,
) -> usize {
    if per_sec.is_nan() {
        return 0;
    }
    let horizon = PREFETCH_HORIZON.as_secs_f64();
    let by_rate = per_sec * horizon;
    let by_length = match mean_secs {
        None => 0.0,
        Some(m) if m <= 0.0 => f64::INFINITY,
        Some(m) => slots as f64 * horizon / m,
    };
    let n = by_rate.min(by_length).floor();
    if n.is_finite() && n > 0.0 {
        (n as usize).min(max)
    } else if n.is_infinite() && n > 0.0 {
        max
    } else {
        0
    }
}

impl Inner {
    fn ready_queue(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<Ready>> {
        self.ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Tasks waiting for a slot.
    pub(super) fn ready_len(&self) -> usize {
        self.ready_queue().len()
    }

    /// Queues claimed tasks (at the front when they came through the slot
    /// kept for other owners) and starts runners on `permits` and, without
    /// waiting, on free slots beyond `keep`, up to `for_slots` in all.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn enqueue(
        self: &Arc<Self>,
        tasks: Vec<(Task, Arc<Stop>)>,
        front: bool,
        mut permits: Vec<OwnedSemaphorePermit>,
        for_slots: usize,
        keep: usize,
        slots: &Arc<Semaphore>,
        attempts: &TaskTracker,
        done_tx: &mpsc::Sender<Done>,
    ) {
        let since = Instant::now();
        let tasks = tasks
            .into_iter()
            .map(|(task, stop)| Ready { task, stop, since });
        let queued = {
            let mut q = self.ready_queue();
            if front {
                for t in tasks.rev() {
                    q.push_front(t);
                }
            } else {
                q.extend(tasks);
            }
            q.len()
        };
        let runners = queued.min(for_slots);
        while permits.len() < runners && slots.available_permits() > keep {
            match slots.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        permits.truncate(runners);
        for permit in permits {
            let me = self.clone();
            let tx = done_tx.clone();
            attempts.spawn(async move { me.run_ready(permit, keep, tx).await });
        }
    }

    /// One slot: runs ready tasks until there are none (or a drain began),
    /// then frees the slot.
    ///
    /// With `keep` slots kept for other owners, a runner does not start the
    /// next ready task when that would fill the kept slots while its owner
    /// runs every other attempt (the intake's rule for the kept slot,
    /// applied here too: tasks claimed ahead never fill it).
    async fn run_ready(
        self: Arc<Self>,
        permit: OwnedSemaphorePermit,
        keep: usize,
        tx: mpsc::Sender<Done>,
    ) {
        loop {
            let Ready { task, stop, .. } = {
                let mut q = self.ready_queue();
                // This slot would be the last of those kept for others, and
                // the next ready task's owner runs every other attempt:
                // leave it free. Decided and marked started under the
                // queue's lock, so two runners cannot both take it.
                let kept = q
                    .front()
                    .is_some_and(|r| self.fills_kept_slot(&r.task.owner_id, keep));
                let next = if kept || self.draining.load(Ordering::SeqCst) {
                    None
                } else {
                    q.pop_front()
                };
                let Some(next) = next else {
                    // Freed under the lock, so a task queued concurrently
                    // either is seen here or finds this slot free.
                    drop(permit);
                    return;
                };
                if let Some(e) = self.map().get_mut(&next.task.id) {
                    e.started = Some(Instant::now());
                }
                let target = self.prefetch.load(Ordering::Relaxed);
                if target > 0 && q.len() <= target / 2 {
                    self.ready_low.notify_one();
                }
                next
            };
            self.started.fetch_add(1, Ordering::Relaxed);
            let done = self.run_attempt(task, stop).await;
            self.ended.fetch_add(1, Ordering::Relaxed);
            self.ran_ns.fetch_add(
                u64::try_from(done.ran.as_nanos()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            if let Some(e) = self.map().get_mut(&done.id) {
                e.ended = true;
            }
            if tx.send(done).await.is_err() {
                drop(permit);
                return;
            }
        }
    }

    /// Drain: every ready task goes back to the store unspent.
    pub(super) async fn hand_back_ready(&self, tx: &mpsc::Sender<Done>) {
        let left: Vec<Ready> = self.ready_queue().drain(..).collect();
        if !left.is_empty() {
            tracing::info!(
                n = left.len(),
                "draining: handing back claimed tasks that never started"
            );
        }
        hand_back(left, tx).await;
    }

    /// Hands back the ready tasks that have waited `max_wait` or more.
    pub(super) async fn shed_stale_ready(&self, max_wait: Duration, tx: &mpsc::Sender<Done>) {
        let now = Instant::now();
        let stale: Vec<Ready> = {
            let mut q = self.ready_queue();
            if q.iter()
                .all(|r| now.saturating_duration_since(r.since) < max_wait)
            {
                return;
            }
            let all = std::mem::take(&mut *q);
            let (old, fresh): (Vec<Ready>, Vec<Ready>) = all
                .into_iter()
                .partition(|r| now.saturating_duration_since(r.since) >= max_wait);
            q.extend(fresh);
            old
        };
        tracing::debug!(
            n = stale.len(),
            "handing back claimed tasks that waited too long for a slot"
        );
        hand_back(stale, tx).await;
    }
}

async fn hand_back(tasks: Vec<Ready>, tx: &mpsc::Sender<Done>) {
    for r in tasks {
        let _ = tx
            .send(Done {
                id: r.task.id,
                attempt: r.task.attempts,
                kind: static_kind(&r.task.kind),
                outcome: FinishOutcome::HandBack,
                ran: Duration::ZERO,
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_is_the_work_of_the_horizon_and_nothing_for_long_tasks() {
        let noop = Some(20e-6);
        // 16/s is under one task per 20 ms.
        assert_eq!(prefetch_target(16.0, noop, 16, 1000), 0);
        assert_eq!(prefetch_target(5_000.0, noop, 8, 1000), 100);
        assert_eq!(prefetch_target(1e9, noop, 8, 1000), 1000);
        assert_eq!(prefetch_target(f64::NAN, noop, 8, 1000), 0);
        // Nothing ended yet: nothing ahead.
        assert_eq!(prefetch_target(5_000.0, None, 8, 1000), 0);
        // 15 one-second sleeps starting in one wave look fast (600/s), but
        // none of them ends within 20 ms.
        assert_eq!(prefetch_target(600.0, Some(1.0), 16, 1000), 0);
        // 10 ms tasks on 32 slots: 64 can start within 20 ms.
        assert!((63..=64).contains(&prefetch_target(1e6, Some(0.01), 32, 1000)));
    }

    #[test]
    fn the_pace_is_smoothed_over_samples() {
        let t0 = Instant::now();
        let mut r = Pace::new(t0, Totals::default());
        let at = |started, ended, ran_ms: u64| Totals {
            started,
            ended,
            ran_ns: ran_ms * 1_000_000,
        };
        // Too soon: no sample.
        assert_eq!(
            r.update(t0 + Duration::from_millis(1), at(100, 0, 0)),
            (0.0, None)
        );
        // The first sample is taken whole.
        let (a, m) = r.update(t0 + Duration::from_millis(100), at(1_000, 100, 1_000));
        assert!((a - 10_000.0).abs() < 1.0, "{a}");
        assert_eq!(m, Some(0.01));
        // Nothing more started or ended: the rate halves, the mean stays.
        let (b, m) = r.update(t0 + Duration::from_millis(200), at(1_000, 100, 1_000));
        assert!((b - 5_000.0).abs() < 1.0, "{b}");
        assert_eq!(m, Some(0.01));
    }
}
