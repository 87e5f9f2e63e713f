//! Intake: how claimed tasks reach the attempt runner.
//!
//! - [`Inner::pull_loop`] (every backend): whenever slots are free, claim
//!   up to that many due tasks from the store in one statement (owners
//!   interleaved round-robin, `OWNER_MAX_RUNNING` honoured). While claims
//!   come back full it claims again at once, so a backlog is consumed at
//!   the rate of fresh work; once the store is drained it waits for a
//!   wake-up (the web's hand-off, a NOTIFY, a finished attempt) or
//!   `INTAKE_POLL_MS`. With a delivering backend (Azure) it takes only what
//!   the queue never got (tasks handed to another backend, stale hand-offs).
//!   While tasks are short it also claims ahead of its free slots (see
//!   ready.rs), so a claim's latency does not cap a worker of few slots.
//! - [`Inner::delivery_loop`] (Azure): receive deliveries for the free
//!   slots, claim them by id; deliveries that cannot run now are released
//!   (not due yet, owner at its cap) or dropped (finished, running).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use resume_agent_core::TaskId;
use resume_agent_core::store::{CLAIM_OWNERS_PER_BATCH, ClaimRequest, ClaimScope};
use resume_agent_core::task::{Task, TaskStatus};
use resume_agent_queue::{Delivery, TaskSource};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ready::{Pace, READY_MAX_WAIT, Totals, prefetch_target};
use super::{Done, Entry, Inner, Stop};

/// Most tasks one claim takes (a bound on one statement's size).
const MAX_CLAIM: usize = 1000;

/// Workers with at least this many slots keep the last one for owners other
/// than the one holding all the rest.
const RESERVE_FROM_CONCURRENCY: usize = 4;

/// An attempt running this long turns claiming ahead off.
const LONG_ATTEMPT: Duration = Duration::from_millis(200);

/// How long a claim in flight at shutdown may still take.
const CLAIM_AT_SHUTDOWN: Duration = Duration::from_secs(2);

/// The pause after a kept-slot claim that found nothing.
const KEPT_SLOT_BACKOFF: Duration = Duration::from_millis(50);

/// How [`Inner::start`] places a claim's tasks.
struct Start {
    /// Tasks meant for slots now (the rest wait in the ready queue).
    for_slots: usize,
    /// Free slots left untouched (the one kept for other owners).
    keep: usize,
    /// Ahead of the ready queue (claimed through the kept slot).
    front: bool,
}

/// What the intake waited for.
enum Got {
    /// Two free slots.
    Two(OwnedSemaphorePermit),
    /// The ready queue ran low.
    Low,
}

/// Pause after a failed store call, growing with consecutive failures.
fn failure_pause(failures: u32) -> Duration {
    Duration::from_millis(200 * u64::from(failures.min(25)))
}

impl Inner {
    pub(super) async fn pull_loop(
        self: Arc<Self>,
        shutdown: &CancellationToken,
        slots: &Arc<Semaphore>,
        attempts: &TaskTracker,
        done_tx: mpsc::Sender<Done>,
    ) {
        let backend = self.deps.intake.backend.name();
        let scope = if self.deps.intake.deliveries.is_some() {
            ClaimScope::NotDeliveredBy {
                backend,
                stale: self.cfg.redispatch_after,
            }
        } else {
            ClaimScope::All
        };
        // The last free slot is kept for the other owners: a claim never
        // fills it while the worker has 4 or more slots; it is taken only
        // when work arrives (a wake-up) while it is the only one free, and
        // then by anyone but an owner holding every other slot. So a
        // newcomer never waits for someone else's long tasks to end, and a
        // stream of short tasks keeps claiming in full batches.
        let reserve = self.cfg.concurrency >= RESERVE_FROM_CONCURRENCY;
        let mut after_owner = String::new();
        let mut idle = false;
        let mut failures = 0u32;
        // After a kept-slot claim found nothing, the next one waits this
        // long (a saturated worker woken by every hand-off would otherwise
        // spend a query per hand-off).
        let mut kept_not_before = tokio::time::Instant::now();
        let keep = usize::from(reserve);
        let mut pace = Pace::new(std::time::Instant::now(), self.totals());
        // Work arrived (or the poll fired) while at most one slot was free:
        // the kept slot is to be tried once its backoff allows.
        let mut kept_pending = false;
        loop {
            let (per_sec, mean) = pace.update(std::time::Instant::now(), self.totals());
            // Nothing is claimed ahead while a slot holds a long attempt:
            // the short ones seen ending (another owner's) say nothing of
            // when the long ones free their slots.
            // Nor unless every slot's worth of attempts ended within the
            // last sample (a few short tasks among long ones are no sign).
            let turned_over =
                pace.ended_last_sample() >= u64::try_from(self.cfg.concurrency).unwrap_or(u64::MAX);
            let target = if !turned_over || self.runs_longer_than(LONG_ATTEMPT) {
                0
            } else {
                prefetch_target(per_sec, mean, self.cfg.concurrency, MAX_CLAIM)
            };
            self.prefetch
                .store(target, std::sync::atomic::Ordering::Relaxed);
            // Ready tasks stuck behind long ones go back for other workers.
            self.shed_stale_ready(READY_MAX_WAIT, &done_tx).await;
            let waiting = self.ready_len() > 0;
            if idle {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    w = self.deps.intake.wakeups.wait(self.cfg.intake_poll) => kept_pending |= w,
                    () = self.freed.notified() => {}
                    () = tokio::time::sleep(READY_MAX_WAIT / 2), if waiting => continue,
                }
                idle = false;
            }
            let (permits, limit, exclude) = if reserve {
                let now = tokio::time::Instant::now();
                if kept_pending && now >= kept_not_before && slots.available_permits() < 2 {
                    // New work while at most one slot is free.
                    kept_pending = false;
                    match self.kept_slot(slots) {
                        Some(x) => x,
                        None => continue,
                    }
                } else {
                    // A wake-up never holds the loop: while the kept slot's
                    // backoff runs, claims for free slots and claims ahead
                    // go on (a stream of hand-offs from one owner would
                    // otherwise park the intake in that backoff).
                    let got = tokio::select! {
                        () = shutdown.cancelled() => return,
                        p = slots.clone().acquire_many_owned(2) => match p { Ok(p) => Got::Two(p), Err(_) => return },
                        () = self.ready_low.notified(), if target > 0 => Got::Low,
                        () = tokio::time::sleep(READY_MAX_WAIT / 2), if waiting => continue,
                        () = tokio::time::sleep_until(kept_not_before), if kept_pending => continue,
                        w = self.deps.intake.wakeups.wait(self.cfg.intake_poll), if !kept_pending => {
                            // A wake-up, or the poll: work may have arrived
                            // while fewer than two slots were free.
                            let _ = w;
                            kept_pending = true;
                            continue;
                        }
                    };
                    match got {
                        Got::Two(mut two) => {
                            kept_pending = false;
                            let free = 2 + slots.available_permits();
                            let mut permits = Vec::with_capacity(free);
                            if let Some(one) = two.split(1) {
                                permits.push(one);
                            }
                            permits.push(two);
                            (permits, free - 1, None)
                        }
                        // Claim ahead only: the ready tasks run low.
                        Got::Low => (Vec::new(), 0, None),
                    }
                }
            } else {
                let first = tokio::select! {
                    () = shutdown.cancelled() => return,
                    p = slots.clone().acquire_owned() => match p { Ok(p) => Some(p), Err(_) => return },
                    () = self.ready_low.notified(), if target > 0 => None,
                    () = tokio::time::sleep(READY_MAX_WAIT / 2), if waiting => continue,
                };
                match first {
                    Some(first) => {
                        let free = 1 + slots.available_permits();
                        (vec![first], free, None)
                    }
                    None => (Vec::new(), 0, None),
                }
            };
            // Tasks for the slots, plus what keeps the ready queue at the
            // prefetch target (never through the kept slot).
            let for_slots = limit.min(MAX_CLAIM);
            let ahead = if exclude.is_none() {
                target.saturating_sub(self.ready_len())
            } else {
                0
            };
            let limit = (for_slots + ahead).min(MAX_CLAIM);
            if limit == 0 {
                continue;
            }
            let from_start = after_owner.is_empty();
            let req = ClaimRequest {
                worker: &self.worker_id,
                limit: u32::try_from(limit).unwrap_or(u32::MAX),
                lease: self.cfg.lease,
                scope,
                owner_max_running: self.cfg.owner_max_running,
                after_owner: &after_owner,
                exclude_owner: exclude.as_deref(),
            };
            // A claim is not abandoned at shutdown: its statement may have
            // committed, and tasks it took would sit `running` until their
            // lease expired. It gets a bound; what it returns is queued
            // like any claim and handed back by the drain.
            let claimed = {
                let claim = self.deps.store.claim_due(&req);
                tokio::pin!(claim);
                tokio::select! {
                r = &mut claim => r,
                () = shutdown.cancelled() => match tokio::time::timeout(CLAIM_AT_SHUTDOWN, &mut claim).await {
                    Ok(r) => r,
                    Err(_) => return,
                },
                }
            };
            let tasks = match claimed {
                Ok(t) => {
                    failures = 0;
                    t
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "claiming from the store failed");
                    drop(permits);
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(failure_pause(failures)) => {}
                    }
                    continue;
                }
            };
            tracing::trace!(
                limit,
                for_slots,
                kept = exclude.is_some(),
                got = tasks.len(),
                free = slots.available_permits(),
                ready = self.ready_len(),
                owners = ?tasks.iter().map(|t| t.owner_id.as_str()).collect::<Vec<_>>(),
                "claimed from the store"
            );
            if exclude.is_some() && tasks.is_empty() {
                kept_not_before = tokio::time::Instant::now() + KEPT_SLOT_BACKOFF;
            }
            let short = tasks.len() < limit;
            let owners: HashSet<&str> = tasks.iter().map(|t| t.owner_id.as_str()).collect();
            let many_owners = owners.len() >= CLAIM_OWNERS_PER_BATCH as usize;
            if scope == ClaimScope::All && exclude.is_none() {
                if let Some(last) = owners.iter().max() {
                    after_owner = (*last).to_owned();
                }
                if short && !from_start {
                    // Owners before the round-robin position may have work.
                    after_owner.clear();
                }
            }
            // Drained: nothing more is due until something wakes us.
            idle = short && (from_start || tasks.is_empty() || exclude.is_some()) && !many_owners;
            if !tasks.is_empty() {
                metrics::counter!("tasks_claimed_total", "via" => "store")
                    .increment(tasks.len() as u64);
            }
            self.start(
                tasks,
                None,
                permits,
                Start {
                    for_slots,
                    keep,
                    front: exclude.is_some(),
                },
                slots,
                attempts,
                &done_tx,
            );
            if shutdown.is_cancelled() {
                return;
            }
        }
    }

    fn totals(&self) -> Totals {
        use std::sync::atomic::Ordering::Relaxed;
        Totals {
            started: self.started.load(Relaxed),
            ended: self.ended.load(Relaxed),
            ran_ns: self.ran_ns.load(Relaxed),
        }
    }

    /// The slot kept for other owners, when it is free: its permit, a
    /// limit of one, and the owner to leave out (the one holding every
    /// other slot, if one does).
    #[allow(clippy::type_complexity)]
    fn kept_slot(
        &self,
        slots: &Arc<Semaphore>,
    ) -> Option<(Vec<OwnedSemaphorePermit>, usize, Option<String>)> {
        let permit = slots.clone().try_acquire_owned().ok()?;
        Some((vec![permit], 1, self.owner_holding_the_rest()))
    }

    pub(super) async fn delivery_loop(
        self: Arc<Self>,
        source: Arc<dyn TaskSource>,
        shutdown: &CancellationToken,
        slots: &Arc<Semaphore>,
        attempts: &TaskTracker,
        done_tx: mpsc::Sender<Done>,
    ) {
        let mut failures = 0u32;
        loop {
            let first = tokio::select! {
                () = shutdown.cancelled() => return,
                p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            };
            let free = 1 + slots.available_permits();
            let received = tokio::select! {
                () = shutdown.cancelled() => return,
                r = source.receive(free, Duration::from_secs(1), self.cfg.lease) => r,
            };
            let deliveries = match received {
                Ok(d) => {
                    failures = 0;
                    d
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "receiving from the task backend failed");
                    drop(first);
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(failure_pause(failures)) => {}
                    }
                    continue;
                }
            };
            if deliveries.is_empty() {
                continue;
            }
            let ids: Vec<TaskId> = deliveries.iter().map(|d| d.message.task_id).collect();
            let Some(claimed) = self.claim_with_retry(&ids, shutdown).await else {
                // Shutting down with the store unreachable: give the
                // messages back for another worker (or our next start).
                for d in &deliveries {
                    let _ = source.release(d, Duration::ZERO).await;
                }
                return;
            };
            let claimed_ids: HashSet<TaskId> = claimed.iter().map(|t| t.id).collect();
            let (mine, others): (Vec<Delivery>, Vec<Delivery>) = deliveries
                .into_iter()
                .partition(|d| claimed_ids.contains(&d.message.task_id));
            if !others.is_empty() {
                self.not_claimed(&*source, others).await;
            }
            if !claimed.is_empty() {
                metrics::counter!("tasks_claimed_total", "via" => "delivery")
                    .increment(claimed.len() as u64);
            }
            let by_id: HashMap<TaskId, Delivery> =
                mine.into_iter().map(|d| (d.message.task_id, d)).collect();
            self.start(
                claimed,
                Some(by_id),
                vec![first],
                Start {
                    for_slots: free,
                    keep: 0,
                    front: false,
                },
                slots,
                attempts,
                &done_tx,
            );
        }
    }

    /// Registers each claimed task as in flight and queues it for a slot:
    /// runners start on `permits` (the slots the claim was made for) and on
    /// further free slots, up to `how.for_slots`; the rest wait in the ready
    /// queue for a runner (see ready.rs).
    #[allow(clippy::too_many_arguments)]
    fn start(
        self: &Arc<Self>,
        tasks: Vec<Task>,
        mut deliveries: Option<HashMap<TaskId, Delivery>>,
        permits: Vec<OwnedSemaphorePermit>,
        how: Start,
        slots: &Arc<Semaphore>,
        attempts: &TaskTracker,
        done_tx: &mpsc::Sender<Done>,
    ) {
        let mut ready = Vec::with_capacity(tasks.len());
        let now = std::time::Instant::now();
        {
            let mut map = self.map();
            for task in tasks {
                let delivery = deliveries.as_mut().and_then(|m| m.remove(&task.id));
                let stop = Stop::new();
                map.insert(
                    task.id,
                    Entry {
                        owner: task.owner_id.clone(),
                        ended: false,
                        delivery,
                        stop: stop.clone(),
                        started: None,
                        leased: now,
                    },
                );
                ready.push((task, stop));
            }
        }
        self.enqueue(
            ready,
            how.front,
            permits,
            how.for_slots,
            how.keep,
            slots,
            attempts,
            done_tx,
        );
    }

    async fn claim_with_retry(
        &self,
        ids: &[TaskId],
        shutdown: &CancellationToken,
    ) -> Option<Vec<Task>> {
        let mut pause = Duration::from_millis(100);
        loop {
            match self
                .deps
                .store
                .claim(
                    ids,
                    &self.worker_id,
                    self.cfg.lease,
                    self.cfg.owner_max_running,
                )
                .await
            {
                Ok(c) => return Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "claiming tasks failed; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return None,
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Deliveries whose task could not be claimed: drop duplicates and
    /// finished tasks; put early ones (not due, or their owner at its
    /// running cap) back for a short while.
    async fn not_claimed(&self, source: &dyn TaskSource, deliveries: Vec<Delivery>) {
        let ids: Vec<TaskId> = deliveries.iter().map(|d| d.message.task_id).collect();
        let states: HashMap<TaskId, (TaskStatus, chrono::DateTime<chrono::Utc>)> =
            match self.deps.store.task_states(&ids).await {
                Ok(s) => s
                    .into_iter()
                    .map(|s| (s.id, (s.status, s.run_after)))
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "reading task states failed; releasing deliveries");
                    for d in &deliveries {
                        let _ = source.release(d, Duration::from_secs(1)).await;
                    }
                    return;
                }
            };
        for d in deliveries {
            let result = match states.get(&d.message.task_id) {
                Some((TaskStatus::Queued, run_after)) => {
                    // Not due yet, its owner at the cap, or claimed by
                    // someone else this instant: look again shortly.
                    let wait = (*run_after - self.deps.store.clock().now())
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .max(Duration::from_millis(500));
                    source.release(&d, wait).await
                }
                Some((status, _)) => {
                    let reason = if *status == TaskStatus::Running {
                        "running"
                    } else {
                        "finished"
                    };
                    metrics::counter!("task_deliveries_dropped_total", "reason" => reason)
                        .increment(1);
                    source.complete(&d).await
                }
                None => {
                    metrics::counter!("task_deliveries_dropped_total", "reason" => "unknown")
                        .increment(1);
                    source.complete(&d).await
                }
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, task_id = %d.message.task_id, "acknowledging a delivery failed");
            }
        }
    }
}
