//! The run loop: receive → claim → run → finish, with heartbeat, cancellation
//! watch, recovery sweeper and graceful drain.
//!
//! ```text
//!  TaskSource ──receive(free slots)──> claim (one UPDATE for the batch)
//!        ▲                                   │ claimed
//!        │ complete / release / dead-letter  ▼
//!  completer <──Done── attempt task: handler under timeout + stop token
//!   (one UPDATE per batch of outcomes, then acknowledges the backend)
//!  heartbeat: extends leases (store and backend); lost lease → stop
//!  cancel watch: cancellation requested in the store → stop
//!  sweeper: expired leases → queued/failed; stale queued → dispatched again
//! ```
//!
//! The store is written before the backend is acknowledged, so a crash in
//! between re-delivers a message whose task is already finished; the
//! conditional claim then drops it.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use rand::Rng;
use resume_agent_core::TaskId;
use resume_agent_core::blob::BlobStore;
use resume_agent_core::config::WorkerConfig;
use resume_agent_core::lock::SingletonLock;
use resume_agent_core::store::{
    Finish, FinishOutcome, LeaseScope, StoreError, TaskStore, static_kind,
};
use resume_agent_core::task::{Task, TaskStatus};
use resume_agent_queue::{Delivery, Message, TaskBackend, TaskSource};

use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::handler::{HandlerError, Registry, TaskContext};

/// What the runtime needs.
#[derive(Clone)]
pub struct Deps {
    /// The source of truth.
    pub store: Arc<dyn TaskStore>,
    /// Where deliveries come from.
    pub source: Arc<dyn TaskSource>,
    /// Where the sweeper hands tasks to again (the same backend's producer).
    pub redispatch: Arc<dyn TaskBackend>,
    /// File storage for handlers.
    pub blobs: Arc<dyn BlobStore>,
    /// Handlers by kind.
    pub registry: Registry,
}

const REASON_NONE: u8 = 0;
const REASON_CANCEL: u8 = 1;
const REASON_LEASE_LOST: u8 = 2;
const REASON_DRAIN: u8 = 3;

/// Why a running attempt is being stopped.
struct Stop {
    token: CancellationToken,
    reason: AtomicU8,
}

impl Stop {
    fn stop(&self, reason: u8) {
        // The first reason wins.
        let _ =
            self.reason
                .compare_exchange(REASON_NONE, reason, Ordering::SeqCst, Ordering::SeqCst);
        self.token.cancel();
    }
}

struct Entry {
    delivery: Delivery,
    stop: Arc<Stop>,
}

struct Done {
    id: TaskId,
    attempt: i32,
    kind: &'static str,
    outcome: FinishOutcome,
    ran: Duration,
}

/// The worker runtime. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    deps: Deps,
    cfg: WorkerConfig,
    worker_id: String,
    sweep_on_start: bool,
    guard: Option<Arc<dyn SingletonLock>>,
    standby: AtomicBool,
    /// Set once the runtime takes work (after the lock and start-up sweep).
    consuming: AtomicBool,
    in_flight: Mutex<HashMap<TaskId, Entry>>,
    draining: AtomicBool,
}

impl Runtime {
    /// A runtime with a unique worker id.
    ///
    /// `guard` is the in-process backend's single-replica lock: the runtime
    /// consumes only while it holds it (standing by, not ready, otherwise);
    /// on taking it, it recovers every task left running by a dead
    /// predecessor and hands every due queued task to its (empty) queue.
    #[must_use]
    pub fn new(deps: Deps, cfg: WorkerConfig, guard: Option<Arc<dyn SingletonLock>>) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
        let worker_id = format!(
            "{host}-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            inner: Arc::new(Inner {
                deps,
                cfg,
                worker_id,
                sweep_on_start: guard.is_some(),
                guard,
                standby: AtomicBool::new(false),
                consuming: AtomicBool::new(false),
                in_flight: Mutex::new(HashMap::new()),
                draining: AtomicBool::new(false),
            }),
        }
    }

    /// This worker's lease-holder id.
    #[must_use]
    pub fn worker_id(&self) -> &str {
        &self.inner.worker_id
    }

    /// True once a drain has begun.
    #[must_use]
    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// True once the runtime takes work.
    #[must_use]
    pub fn is_consuming(&self) -> bool {
        self.inner.consuming.load(Ordering::SeqCst)
    }

    /// True while an in-process worker waits for the single-replica lock.
    #[must_use]
    pub fn is_standby(&self) -> bool {
        self.inner.standby.load(Ordering::SeqCst)
    }

    /// The dependencies.
    #[must_use]
    pub fn deps(&self) -> &Deps {
        &self.inner.deps
    }

    /// Runs until `shutdown` fires, then drains: stops receiving, gives
    /// running attempts until the grace period to finish, stops and hands
    /// back the rest, records every outcome, and returns.
    ///
    /// With a single-replica guard it first waits for the lock; if it later
    /// loses the lock to another replica it drains the same way and returns
    /// [`RunEnd::LostLock`].
    pub async fn run(&self, shutdown: CancellationToken) -> RunEnd {
        let inner = self.inner.clone();
        let stop = shutdown.child_token();
        let lost = Arc::new(AtomicBool::new(false));
        if let Some(lock) = inner.guard.clone() {
            if !inner.wait_for_lock(&*lock, &shutdown).await {
                return RunEnd::Shutdown;
            }
            inner.recover_orphans().await;
            let (me, stop, lost) = (inner.clone(), stop.clone(), lost.clone());
            tokio::spawn(async move { me.watch_lock(lock, stop, lost).await });
        }
        inner.clone().serve(stop).await;
        if lost.load(Ordering::SeqCst) {
            RunEnd::LostLock
        } else {
            RunEnd::Shutdown
        }
    }
}

/// Why [`Runtime::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Shutdown was requested (signal).
    Shutdown,
    /// Another replica took the single-replica lock.
    LostLock,
}

/// Told to the operator when a second in-process worker stands by.
pub const REPLICA_CONFLICT: &str = "another worker replica holds the in-process lock: this replica stands by and runs nothing. \
With TASK_BACKEND=in-process run exactly one worker replica (Deployment replicas: 1, strategy Recreate), \
or switch to TASK_BACKEND=azure-queue to run several";

impl Inner {
    /// Waits for the lock, standing by (not ready) meanwhile. False when
    /// shutdown came first.
    async fn wait_for_lock(&self, lock: &dyn SingletonLock, shutdown: &CancellationToken) -> bool {
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
    async fn watch_lock(
        self: Arc<Self>,
        lock: Arc<dyn SingletonLock>,
        stop: CancellationToken,
        lost: Arc<AtomicBool>,
    ) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.cfg.lock_retry) => {}
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
                    tracing::warn!(error = %e, "cannot confirm the in-process lock (database unreachable?)")
                }
            }
        }
    }

    /// A new lock holder: no other in-process worker is alive, so every
    /// task still `running` belongs to a dead one.
    async fn recover_orphans(&self) {
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
                tracing::warn!(error = %e, "recovering orphaned tasks failed; their leases will expire")
            }
        }
    }

    /// The in-process queue starts empty: every queued task that is due
    /// belongs in it now (up to its capacity; the sweeper does the rest).
    async fn startup_sweep(&self) {
        loop {
            match self.sweep_stale(Duration::ZERO).await {
                Ok((n, true)) if n >= SWEEP_BATCH => {}
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "start-up sweep failed; the periodic sweep retries");
                    break;
                }
            }
        }
    }

    async fn serve(self: Arc<Self>, shutdown: CancellationToken) {
        let inner = self;
        if inner.sweep_on_start {
            inner.startup_sweep().await;
        }
        inner.consuming.store(true, Ordering::SeqCst);
        let (done_tx, done_rx) = mpsc::channel::<Done>(inner.cfg.concurrency * 2 + 16);
        let background = CancellationToken::new();
        // The completer outlives the drain by a bound: after it, writes are
        // abandoned and the leases expire (the sweeper recovers the tasks).
        let hard_stop = CancellationToken::new();
        let (ack_tx, ack_rx) = mpsc::channel(inner.cfg.concurrency * 2 + 16);
        let acker = tokio::spawn(inner.clone().acker(ack_rx));
        let completer = tokio::spawn(inner.clone().completer(done_rx, ack_tx, hard_stop.clone()));
        let loops = TaskTracker::new();
        loops.spawn(inner.clone().heartbeat_loop(background.clone()));
        loops.spawn(inner.clone().cancel_watch_loop(background.clone()));
        loops.spawn(inner.clone().sweeper_loop(shutdown.clone()));
        loops.close();

        let attempts = TaskTracker::new();
        inner
            .clone()
            .receive_loop(&shutdown, &attempts, done_tx)
            .await;

        // Drain.
        inner.draining.store(true, Ordering::SeqCst);
        attempts.close();
        let running = inner.map().len();
        if running > 0 {
            tracing::info!(running, grace = ?inner.cfg.shutdown_grace, "draining: waiting for running tasks");
        }
        if tokio::time::timeout(inner.cfg.shutdown_grace, attempts.wait())
            .await
            .is_err()
        {
            let stopped: Vec<Arc<Stop>> = inner.map().values().map(|e| e.stop.clone()).collect();
            tracing::warn!(
                n = stopped.len(),
                "drain period over: handing unfinished tasks back"
            );
            for s in stopped {
                s.stop(REASON_DRAIN);
            }
            attempts.wait().await;
        }
        // Every sender is gone now: the completer finishes its backlog and ends.
        let guard = hard_stop.clone();
        let abandon = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            guard.cancel();
        });
        if let Err(e) = completer.await {
            tracing::error!(error = %e, "completer ended abnormally");
        }
        // The completer dropped its sender: the acker finishes its backlog.
        if let Err(e) = acker.await {
            tracing::error!(error = %e, "acknowledger ended abnormally");
        }
        abandon.abort();
        background.cancel();
        loops.wait().await;
        tracing::info!("worker drained");
    }
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<TaskId, Entry>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn backoff(&self, attempts: i32) -> Duration {
        // Exponential with "equal jitter": half fixed, half random.
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
        let full = self
            .cfg
            .retry_base
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.cfg.retry_max);
        let half = full / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }

    async fn receive_loop(
        self: Arc<Self>,
        shutdown: &CancellationToken,
        attempts: &TaskTracker,
        done_tx: mpsc::Sender<Done>,
    ) {
        let slots = Arc::new(Semaphore::new(self.cfg.concurrency));
        let mut failures = 0u32;
        loop {
            let first = tokio::select! {
                () = shutdown.cancelled() => return,
                p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            };
            let free = 1 + slots.available_permits();
            let received = tokio::select! {
                () = shutdown.cancelled() => return,
                r = self.deps.source.receive(free, Duration::from_secs(1), self.cfg.lease) => r,
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
                    let pause = Duration::from_millis(200 * u64::from(failures.min(25)));
                    tokio::select! {
                        () = shutdown.cancelled() => return,
                        () = tokio::time::sleep(pause) => continue,
                    }
                }
            };
            if deliveries.is_empty() {
                continue;
            }
            let mut permits = vec![first];
            for _ in 1..deliveries.len() {
                match slots.clone().try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            let ids: Vec<TaskId> = deliveries.iter().map(|d| d.message.task_id).collect();
            let claimed = match self.claim_with_retry(&ids, shutdown).await {
                Some(c) => c,
                None => {
                    // Shutting down with the store unreachable: give the
                    // messages back for another worker (or our next start).
                    for d in &deliveries {
                        let _ = self.deps.source.release(d, Duration::ZERO).await;
                    }
                    return;
                }
            };
            let claimed_ids: HashSet<TaskId> = claimed.iter().map(|t| t.id).collect();
            let (mine, others): (Vec<Delivery>, Vec<Delivery>) = deliveries
                .into_iter()
                .partition(|d| claimed_ids.contains(&d.message.task_id));
            if !others.is_empty() {
                self.not_claimed(others).await;
            }
            let mut by_id: HashMap<TaskId, Delivery> =
                mine.into_iter().map(|d| (d.message.task_id, d)).collect();
            for task in claimed {
                let Some(delivery) = by_id.remove(&task.id) else {
                    continue;
                };
                let Some(permit) = permits.pop() else {
                    // More claimed than slots (duplicate ids in one batch): hand back.
                    self.map().insert(
                        task.id,
                        Entry {
                            delivery,
                            stop: new_stop(),
                        },
                    );
                    self.done_now(&done_tx, &task, FinishOutcome::HandBack)
                        .await;
                    continue;
                };
                let stop = new_stop();
                self.map().insert(
                    task.id,
                    Entry {
                        delivery,
                        stop: stop.clone(),
                    },
                );
                let me = self.clone();
                let tx = done_tx.clone();
                attempts.spawn(async move {
                    let done = me.run_attempt(task, stop).await;
                    drop(permit);
                    let _ = tx.send(done).await;
                });
            }
        }
    }

    async fn done_now(&self, tx: &mpsc::Sender<Done>, task: &Task, outcome: FinishOutcome) {
        let _ = tx
            .send(Done {
                id: task.id,
                attempt: task.attempts,
                kind: static_kind(&task.kind),
                outcome,
                ran: Duration::ZERO,
            })
            .await;
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
                .claim(ids, &self.worker_id, self.cfg.lease)
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
    /// finished tasks, put early ones back until they are due.
    async fn not_claimed(&self, deliveries: Vec<Delivery>) {
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
                        let _ = self.deps.source.release(d, Duration::from_secs(1)).await;
                    }
                    return;
                }
            };
        for d in deliveries {
            let result = match states.get(&d.message.task_id) {
                Some((TaskStatus::Queued, run_after)) => {
                    // Not due yet (or claimed by someone else this instant):
                    // look again when due.
                    let wait = (*run_after - chrono::Utc::now())
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .max(Duration::from_millis(500));
                    self.deps.source.release(&d, wait).await
                }
                Some((status, _)) => {
                    let reason = if *status == TaskStatus::Running {
                        "running"
                    } else {
                        "finished"
                    };
                    metrics::counter!("task_deliveries_dropped_total", "reason" => reason)
                        .increment(1);
                    self.deps.source.complete(&d).await
                }
                None => {
                    metrics::counter!("task_deliveries_dropped_total", "reason" => "unknown")
                        .increment(1);
                    self.deps.source.complete(&d).await
                }
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, task_id = %d.message.task_id, "acknowledging a delivery failed");
            }
        }
    }

    async fn run_attempt(&self, task: Task, stop: Arc<Stop>) -> Done {
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
            Some(Ok(Ok(Ok(value)))) => return FinishOutcome::Succeeded(value),
            Some(Ok(Ok(Err(HandlerError::Permanent(m))))) => return FinishOutcome::Failed(m),
            Some(Ok(Ok(Err(HandlerError::Retryable(m))))) => m,
            Some(Ok(Err(_panic))) => {
                tracing::error!(task_id = %task.id, kind = %task.kind, "handler panicked");
                return FinishOutcome::Failed(format!("the {} handler panicked", task.kind));
            }
            Some(Err(_elapsed)) => format!("timed out after {}s", task.timeout_secs),
        };
        if task.attempts < task.max_attempts {
            FinishOutcome::Retry {
                error,
                delay: self.backoff(task.attempts),
            }
        } else {
            FinishOutcome::Failed(error)
        }
    }

    async fn completer(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<Done>,
        acks: mpsc::Sender<(Done, Delivery, bool)>,
        hard_stop: CancellationToken,
    ) {
        let mut batch = Vec::with_capacity(256);
        while rx.recv_many(&mut batch, 256).await > 0 {
            let items: Vec<Finish> = batch
                .iter()
                .map(|d| Finish {
                    id: d.id,
                    attempt: d.attempt,
                    outcome: d.outcome.clone(),
                })
                .collect();
            let updated = self.finish_with_retry(&items, &hard_stop).await;
            let Some(updated) = updated else {
                // Abandoned at hard stop: the leases expire and the sweeper
                // recovers these tasks.
                batch.clear();
                continue;
            };
            let updated: HashSet<TaskId> = updated.into_iter().collect();
            for done in batch.drain(..) {
                let entry = self.map().remove(&done.id);
                let Some(entry) = entry else { continue };
                let recorded = updated.contains(&done.id);
                // The outcome is in the store: the acknowledgement may lag
                // without holding up the next batch's outcomes (whose leases
                // are running).
                if acks.send((done, entry.delivery, recorded)).await.is_err() {
                    break;
                }
            }
        }
    }

    /// Acknowledges the backend for recorded outcomes. Acknowledgements are
    /// independent backend calls (one REST call each on Azure): made
    /// concurrently, so a batch costs about one round trip, not one per task.
    async fn acker(self: Arc<Self>, rx: mpsc::Receiver<(Done, Delivery, bool)>) {
        let me: &Inner = &self;
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
            .for_each_concurrent(ACK_CONCURRENCY, |(done, delivery, recorded)| async move {
                if recorded {
                    me.acknowledge(&done, &delivery).await;
                } else {
                    tracing::warn!(task_id = %done.id, "outcome not recorded: the lease was lost (the task was recovered elsewhere)");
                    metrics::counter!("task_deliveries_dropped_total", "reason" => "lease_lost")
                        .increment(1);
                    let _ = me.deps.source.complete(&delivery).await;
                }
            })
            .await;
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
                    let level_unavailable = matches!(e, StoreError::Unavailable(_));
                    tracing::warn!(error = %e, unavailable = level_unavailable, n = items.len(), "recording outcomes failed; retrying");
                    tokio::select! {
                        () = hard_stop.cancelled() => return None,
                        () = tokio::time::sleep(pause) => {}
                    }
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    async fn acknowledge(&self, done: &Done, delivery: &Delivery) {
        let kind = done.kind;
        let source = &self.deps.source;
        let (outcome, result) = match &done.outcome {
            FinishOutcome::Succeeded(_) => ("succeeded", source.complete(delivery).await),
            FinishOutcome::Cancelled => ("cancelled", source.complete(delivery).await),
            FinishOutcome::Failed(_) => ("failed", source.dead_letter(delivery).await),
            FinishOutcome::Retry { delay, .. } => {
                let mut next = delivery.clone();
                next.message = Message {
                    task_id: done.id,
                    attempt: done.attempt,
                };
                ("retried", source.release(&next, *delay).await)
            }
            FinishOutcome::HandBack => (
                "handed_back",
                source.release(delivery, Duration::ZERO).await,
            ),
        };
        if outcome != "handed_back" {
            metrics::counter!("tasks_completed_total", "kind" => kind, "outcome" => outcome)
                .increment(1);
            metrics::histogram!("task_run_duration_seconds", "kind" => kind)
                .record(done.ran.as_secs_f64());
        }
        if let Err(e) = result {
            tracing::warn!(error = %e, task_id = %done.id, outcome, "acknowledging the backend failed");
        }
        tracing::debug!(task_id = %done.id, kind, outcome, "attempt ended");
    }

    async fn heartbeat_loop(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.cfg.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let snapshot: Vec<(TaskId, Delivery)> = self
                .map()
                .iter()
                .map(|(id, e)| (*id, e.delivery.clone()))
                .collect();
            if snapshot.is_empty() {
                continue;
            }
            let ids: Vec<TaskId> = snapshot.iter().map(|(id, _)| *id).collect();
            match self
                .deps
                .store
                .heartbeat(&self.worker_id, &ids, self.cfg.lease)
                .await
            {
                Ok(held) => {
                    let held: HashSet<TaskId> = held.into_iter().collect();
                    let map = self.map();
                    for id in ids.iter().filter(|id| !held.contains(id)) {
                        if let Some(e) = map.get(id) {
                            tracing::warn!(task_id = %id, "lease lost; stopping the attempt");
                            e.stop.stop(REASON_LEASE_LOST);
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
            }
            let me: &Inner = &self;
            futures::stream::iter(snapshot)
                .for_each_concurrent(ACK_CONCURRENCY, |(id, mut delivery)| async move {
                    if !me.map().contains_key(&id) {
                        return; // finished meanwhile
                    }
                    if let Err(e) = me.deps.source.extend(&mut delivery, me.cfg.lease).await {
                        tracing::warn!(error = %e, task_id = %id, "extending the delivery failed");
                        return;
                    }
                    if let Some(entry) = me.map().get_mut(&id) {
                        entry.delivery = delivery;
                    }
                })
                .await;
        }
    }

    async fn cancel_watch_loop(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.cfg.cancel_poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let ids: Vec<TaskId> = self.map().keys().copied().collect();
            if ids.is_empty() {
                continue;
            }
            match self.deps.store.cancel_requested(&ids).await {
                Ok(cancel) => {
                    let map = self.map();
                    for id in cancel {
                        if let Some(e) = map.get(&id) {
                            e.stop.stop(REASON_CANCEL);
                        }
                    }
                }
                Err(e) => tracing::debug!(error = %e, "cancellation watch failed"),
            }
        }
    }

    async fn sweeper_loop(self: Arc<Self>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.cfg.sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.sweep_once().await {
                tracing::warn!(error = %e, "recovery sweep failed");
            }
        }
    }

    async fn sweep_once(&self) -> Result<(), StoreError> {
        let recovered = self
            .deps
            .store
            .recover_leases(LeaseScope::Expired, SWEEP_BATCH)
            .await?;
        let mut again = Vec::new();
        for r in &recovered {
            metrics::counter!("tasks_recovered_total", "kind" => r.kind).increment(1);
            tracing::warn!(task_id = %r.id, kind = r.kind, status = %r.status, "recovered a task whose lease expired");
            if r.status == TaskStatus::Queued {
                again.push(Message {
                    task_id: r.id,
                    attempt: 0,
                });
            }
        }
        self.dispatch(&again).await;
        self.sweep_stale(self.cfg.redispatch_after).await?;
        if let Some(age) = self.cfg.retention {
            let n = self.deps.store.prune_finished(age, PRUNE_BATCH).await?;
            if n > 0 {
                metrics::counter!("tasks_pruned_total").increment(n);
                tracing::debug!(n, "pruned finished tasks past retention");
            }
        }
        Ok(())
    }

    /// Returns how many were taken and whether the backend accepted them.
    async fn sweep_stale(&self, stale: Duration) -> Result<(u32, bool), StoreError> {
        let stale_tasks = self
            .deps
            .store
            .take_stale_queued(stale, SWEEP_BATCH)
            .await?;
        let n = u32::try_from(stale_tasks.len()).unwrap_or(u32::MAX);
        if n > 0 {
            metrics::counter!("tasks_redispatched_total").increment(u64::from(n));
            tracing::info!(n, "dispatching queued tasks again");
            let msgs: Vec<Message> = stale_tasks
                .iter()
                .map(|r| Message {
                    task_id: r.id,
                    attempt: r.attempts,
                })
                .collect();
            return Ok((n, self.dispatch(&msgs).await));
        }
        Ok((n, true))
    }

    async fn dispatch(&self, msgs: &[Message]) -> bool {
        if msgs.is_empty() {
            return true;
        }
        match self.deps.redispatch.enqueue(msgs, Duration::ZERO).await {
            Ok(()) => true,
            Err(e) => {
                metrics::counter!("task_dispatch_errors_total").increment(1);
                tracing::warn!(error = %e, n = msgs.len(), "re-dispatch failed; the next sweep retries");
                false
            }
        }
    }
}

const SWEEP_BATCH: u32 = 500;

/// Finished tasks deleted per sweep at most (bounded work per tick).
const PRUNE_BATCH: u32 = 1000;

/// Backend acknowledgements and lease extensions in flight at once.
const ACK_CONCURRENCY: usize = 32;

fn new_stop() -> Arc<Stop> {
    Arc::new(Stop {
        token: CancellationToken::new(),
        reason: AtomicU8::new(REASON_NONE),
    })
}
