//! The worker runtime: intake → run → finish, with leases, cancellation,
//! recovery and graceful drain. One file per loop:
//!
//! ```text
//!  intake.rs   store claims (claim_due: batch, SKIP LOCKED, owners
//!              interleaved) whenever slots are free, woken by the backend;
//!              queue deliveries (Azure) claimed by id
//!        │ claimed tasks
//!        ▼
//!  ready.rs    the claimed tasks waiting for a slot: none while tasks are
//!              long, ~20 ms of work while they are short (claims ahead)
//!        │
//!        ▼
//!  attempt.rs  handler under timeout + stop token, panics caught, backoff
//!        │ Done
//!        ▼
//!  completion.rs  one UPDATE per batch of outcomes (split by size), then
//!              metrics and the backend's acknowledgement
//!  leases.rs   heartbeat (store + delivery) and the cancellation watch
//!  sweeper.rs  expired leases → queued/failed; retention
//!  guard.rs    the in-process backend's single-replica lock
//! ```
//!
//! The store is written before the backend is acknowledged, so a crash in
//! between re-delivers a message whose task is already finished; the
//! conditional claim then drops it. Nothing is only in memory: a queued
//! task is always in the store, where a worker with free slots finds it.

mod attempt;
mod completion;
mod guard;
mod intake;
mod leases;
mod ready;
mod sweeper;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use resume_agent_core::TaskId;
use resume_agent_core::blob::BlobStore;
use resume_agent_core::config::WorkerConfig;
use resume_agent_core::lock::SingletonLock;
use resume_agent_core::store::{FinishOutcome, WorkerStore};
use resume_agent_queue::wake::Wakeups;
use resume_agent_queue::{Delivery, TaskBackend, TaskSource};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::handler::Registry;

pub use attempt::backoff;
pub use guard::REPLICA_CONFLICT;

/// How work reaches this worker.
#[derive(Clone)]
pub struct Intake {
    /// This worker's backend: its name labels metrics and is matched
    /// against `tasks.backend`; its `check` is the readiness probe.
    pub backend: Arc<dyn TaskBackend>,
    /// Wake-ups for claims from the store (the web's hand-off, NOTIFY).
    pub wakeups: Wakeups,
    /// Queue deliveries, for a backend that delivers (Azure). Without one,
    /// the worker takes every due task from the store; with one, it takes
    /// from the store only what the queue never got.
    pub deliveries: Option<Arc<dyn TaskSource>>,
}

/// What the runtime needs.
#[derive(Clone)]
pub struct Deps {
    /// The source of truth, as the worker sees it: claims, leases,
    /// finishes (handlers get what they read through the [`Registry`]).
    pub store: Arc<dyn WorkerStore>,
    /// How work arrives.
    pub intake: Intake,
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
    fn new() -> Arc<Self> {
        Arc::new(Self {
            token: CancellationToken::new(),
            reason: AtomicU8::new(REASON_NONE),
        })
    }

    fn stop(&self, reason: u8) {
        // The first reason wins.
        let _ =
            self.reason
                .compare_exchange(REASON_NONE, reason, Ordering::SeqCst, Ordering::SeqCst);
        self.token.cancel();
    }
}

/// A running attempt.
struct Entry {
    /// Whose task it is (the intake keeps a slot for the other owners).
    owner: String,
    /// The attempt ended (its slot is free; the outcome is being recorded).
    ended: bool,
    /// The queue delivery it came from (none when claimed from the store).
    delivery: Option<Delivery>,
    stop: Arc<Stop>,
    /// When its attempt started (none while it waits in the ready queue).
    started: Option<std::time::Instant>,
    /// When its lease was last set (the claim, then each heartbeat that
    /// extended it).
    leased: std::time::Instant,
}

/// The end of one attempt, on its way to the store.
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
    guard: Option<Arc<dyn SingletonLock>>,
    standby: AtomicBool,
    /// Set once the runtime takes work (after the lock).
    consuming: AtomicBool,
    in_flight: Mutex<HashMap<TaskId, Entry>>,
    draining: AtomicBool,
    /// Outcomes were recorded (slots and owner caps freed): wakes an idle
    /// intake only, never the kept-slot path (that one is for new work).
    freed: tokio::sync::Notify,
    /// Claimed tasks waiting for a slot (see ready.rs); each has its entry
    /// in `in_flight` already.
    ready: Mutex<VecDeque<ready::Ready>>,
    /// The ready tasks fell below half the prefetch target: claim ahead.
    ready_low: tokio::sync::Notify,
    /// The prefetch target (tasks), set by the intake from the rate.
    prefetch: std::sync::atomic::AtomicUsize,
    /// Attempts started and ended so far, and their summed run time in
    /// nanoseconds (the intake's pace estimate).
    started: AtomicU64,
    ended: AtomicU64,
    ran_ns: AtomicU64,
    /// Sweeper passes completed.
    sweeps: AtomicU64,
}

/// Why [`Runtime::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Shutdown was requested (signal).
    Shutdown,
    /// Another replica took the single-replica lock.
    LostLock,
}

impl Runtime {
    /// A runtime with a unique worker id.
    ///
    /// `guard` is the in-process backend's single-replica lock: the runtime
    /// consumes only while it holds it (standing by, not ready, otherwise);
    /// on taking it, it recovers every task left running by a dead
    /// predecessor.
    #[must_use]
    pub fn new(deps: Deps, cfg: WorkerConfig, guard: Option<Arc<dyn SingletonLock>>) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
        // `<backend>/<unique>`: the in-process lock holder recovers only
        // leases of its own kind (see LeaseScope::AllExcept).
        let worker_id = format!(
            "{}/{host}-{}-{}",
            deps.intake.backend.name(),
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            inner: Arc::new(Inner {
                deps,
                cfg,
                worker_id,
                guard,
                standby: AtomicBool::new(false),
                consuming: AtomicBool::new(false),
                in_flight: Mutex::new(HashMap::new()),
                draining: AtomicBool::new(false),
                freed: tokio::sync::Notify::new(),
                ready: Mutex::new(VecDeque::new()),
                ready_low: tokio::sync::Notify::new(),
                prefetch: std::sync::atomic::AtomicUsize::new(0),
                started: AtomicU64::new(0),
                ended: AtomicU64::new(0),
                ran_ns: AtomicU64::new(0),
                sweeps: AtomicU64::new(0),
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

    /// Sweeper passes (lease recovery, and retention every twelfth)
    /// completed so far.
    #[must_use]
    pub fn sweeps(&self) -> u64 {
        self.inner.sweeps.load(Ordering::SeqCst)
    }

    /// Attempts running now.
    #[must_use]
    pub fn running(&self) -> usize {
        self.inner.map().len()
    }

    /// Runs until `shutdown` fires, then drains: stops taking work, gives
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

impl Inner {
    async fn serve(self: Arc<Self>, shutdown: CancellationToken) {
        let inner = self;
        inner.consuming.store(true, Ordering::SeqCst);
        // Room for whole finish batches however few the slots: with tasks
        // claimed ahead, a worker of 8 slots ends thousands a second.
        let cap = (inner.cfg.concurrency * 2 + 16).max(4 * completion::FINISH_BATCH);
        let (done_tx, done_rx) = mpsc::channel::<Done>(cap);
        let background = CancellationToken::new();
        // The completer outlives the drain by a bound: after it, writes are
        // abandoned and the leases expire (the sweeper recovers the tasks).
        let hard_stop = CancellationToken::new();
        let (ack_tx, ack_rx) = mpsc::channel(cap);
        let acker = tokio::spawn(inner.clone().acker(ack_rx));
        let completer = tokio::spawn(inner.clone().completer(done_rx, ack_tx, hard_stop.clone()));
        let loops = TaskTracker::new();
        loops.spawn(inner.clone().heartbeat_loop(background.clone()));
        loops.spawn(inner.clone().cancel_watch_loop(background.clone()));
        loops.spawn(inner.clone().sweeper_loop(shutdown.clone()));
        loops.close();

        let attempts = TaskTracker::new();
        let slots = Arc::new(Semaphore::new(inner.cfg.concurrency));
        let handback_tx = done_tx.clone();
        let pull = inner
            .clone()
            .pull_loop(&shutdown, &slots, &attempts, done_tx.clone());
        match inner.deps.intake.deliveries.clone() {
            Some(source) => {
                let deliveries = inner
                    .clone()
                    .delivery_loop(source, &shutdown, &slots, &attempts, done_tx);
                tokio::join!(pull, deliveries);
            }
            None => {
                drop(done_tx);
                pull.await;
            }
        }

        // Drain.
        inner.draining.store(true, Ordering::SeqCst);
        // Claimed tasks that never got a slot go back unspent.
        inner.hand_back_ready(&handback_tx).await;
        drop(handback_tx);
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

    /// The owner holding every other slot, for the claim through the slot
    /// kept for the others: one with at least `concurrency - 1` of the
    /// tasks in flight (running, or claimed and waiting for a slot), the
    /// one with most when several do. Counting the waiting ones too, so a
    /// claim made before its runners start (or a newcomer's task waiting
    /// for its runner) still names the owner that holds the rest.
    fn owner_holding_the_rest(&self) -> Option<String> {
        let rest = self.cfg.concurrency.saturating_sub(1).max(1);
        let map = self.map();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for e in map.values().filter(|e| !e.ended) {
            *counts.entry(e.owner.as_str()).or_default() += 1;
        }
        counts
            .into_iter()
            .filter(|(_, n)| *n >= rest)
            .max_by_key(|(_, n)| *n)
            .map(|(o, _)| o.to_owned())
    }

    /// True when starting an attempt of `owner` would fill the last `keep`
    /// slots while `owner` runs every started attempt. Counts attempts that
    /// started (not free permits: the intake may hold the kept slot's
    /// permit for a claim at that moment), so the caller marks its attempt
    /// started under the same lock it decides under (the ready queue's).
    fn fills_kept_slot(&self, owner: &str, keep: usize) -> bool {
        if keep == 0 {
            return false;
        }
        let mut running = 0usize;
        for e in self
            .map()
            .values()
            .filter(|e| !e.ended && e.started.is_some())
        {
            if e.owner != owner {
                return false;
            }
            running += 1;
        }
        running > 0 && running >= self.cfg.concurrency.saturating_sub(keep)
    }

    /// True when an attempt has been running for `at_least` or longer.
    fn runs_longer_than(&self, at_least: Duration) -> bool {
        let now = std::time::Instant::now();
        self.map().values().any(|e| {
            !e.ended
                && e.started
                    .is_some_and(|s| now.saturating_duration_since(s) >= at_least)
        })
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<TaskId, Entry>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Backend acknowledgements and lease extensions in flight at once.
const ACK_CONCURRENCY: usize = 32;
