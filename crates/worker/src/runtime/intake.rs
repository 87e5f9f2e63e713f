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
//! - [`Inner::delivery_loop`] (Azure): receive deliveries for the free
//!   slots, claim them by id; deliveries that cannot run now are released
//!   (not due yet, owner at its cap) or dropped (finished, running).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use resume_agent_core::TaskId;
use resume_agent_core::store::{
    CLAIM_OWNERS_PER_BATCH, ClaimRequest, ClaimScope, FinishOutcome, static_kind,
};
use resume_agent_core::task::{Task, TaskStatus};
use resume_agent_queue::{Delivery, TaskSource};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Done, Entry, Inner, Stop};

/// Most tasks one claim takes (a bound on one statement's size).
const MAX_CLAIM: usize = 1000;

/// Workers with at least this many slots keep the last one for owners other
/// than the one holding all the rest.
const RESERVE_FROM_CONCURRENCY: usize = 4;

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
        let mut after_owner = String::new();
        let mut idle = false;
        let mut failures = 0u32;
        loop {
            if idle {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = self.deps.intake.wakeups.wait(self.cfg.intake_poll) => {}
                }
            }
            let first = tokio::select! {
                () = shutdown.cancelled() => return,
                p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            };
            let free = 1 + slots.available_permits();
            // The last free slot is kept for the other owners: a claim never
            // fills it, and when it is the only one left while one owner
            // holds every other slot, it goes to anyone but that owner. So
            // a newcomer never waits for someone else's long tasks to end.
            let reserve = self.cfg.concurrency >= RESERVE_FROM_CONCURRENCY;
            let (limit, exclude) = match (reserve, free) {
                (true, 1) => (1, self.sole_owner()),
                (true, n) => (n - 1, None),
                (false, n) => (n, None),
            };
            let limit = limit.min(MAX_CLAIM);
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
            let claimed = tokio::select! {
                () = shutdown.cancelled() => return,
                r = self.deps.store.claim_due(&req) => r,
            };
            let tasks = match claimed {
                Ok(t) => {
                    failures = 0;
                    t
                }
                Err(e) => {
                    failures += 1;
                    tracing::warn!(error = %e, "claiming from the store failed");
                    drop(first);
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(failure_pause(failures)) => {}
                    }
                    continue;
                }
            };
            let short = tasks.len() < limit;
            let owners: HashSet<&str> = tasks.iter().map(|t| t.owner_id.as_str()).collect();
            let many_owners = owners.len() >= CLAIM_OWNERS_PER_BATCH as usize;
            if scope == ClaimScope::All {
                if let Some(last) = owners.iter().max() {
                    after_owner = (*last).to_owned();
                }
                if short && !from_start {
                    // Owners before the round-robin position may have work.
                    after_owner.clear();
                }
            }
            // Drained: nothing more is due until something wakes us.
            idle = short && (from_start || tasks.is_empty()) && !many_owners;
            if !tasks.is_empty() {
                metrics::counter!("tasks_claimed_total", "via" => "store")
                    .increment(tasks.len() as u64);
            }
            let mut permits = vec![first];
            self.start(tasks, None, &mut permits, slots, attempts, &done_tx)
                .await;
        }
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
            let mut permits = vec![first];
            self.start(
                claimed,
                Some(by_id),
                &mut permits,
                slots,
                attempts,
                &done_tx,
            )
            .await;
        }
    }

    /// Starts an attempt for each claimed task, one slot each. `first`
    /// holds the slot the claim was made for; more are taken without
    /// waiting. A task claimed beyond the free slots (two loops raced for
    /// them) is handed back at once, its attempt not spent.
    async fn start(
        self: &Arc<Self>,
        tasks: Vec<Task>,
        mut deliveries: Option<HashMap<TaskId, Delivery>>,
        permits: &mut Vec<OwnedSemaphorePermit>,
        slots: &Arc<Semaphore>,
        attempts: &TaskTracker,
        done_tx: &mpsc::Sender<Done>,
    ) {
        let n = tasks.len();
        while permits.len() < n {
            match slots.clone().try_acquire_owned() {
                Ok(p) => permits.push(p),
                Err(_) => break,
            }
        }
        for task in tasks {
            let delivery = deliveries.as_mut().and_then(|m| m.remove(&task.id));
            let stop = Stop::new();
            self.map().insert(
                task.id,
                Entry {
                    owner: task.owner_id.clone(),
                    ended: false,
                    delivery,
                    stop: stop.clone(),
                },
            );
            let Some(permit) = permits.pop() else {
                let _ = done_tx
                    .send(Done {
                        id: task.id,
                        attempt: task.attempts,
                        kind: static_kind(&task.kind),
                        outcome: FinishOutcome::HandBack,
                        ran: Duration::ZERO,
                    })
                    .await;
                continue;
            };
            let me = self.clone();
            let tx = done_tx.clone();
            attempts.spawn(async move {
                let done = me.run_attempt(task, stop).await;
                if let Some(e) = me.map().get_mut(&done.id) {
                    e.ended = true;
                }
                drop(permit);
                let _ = tx.send(done).await;
            });
        }
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
                    let wait = (*run_after - chrono::Utc::now())
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
