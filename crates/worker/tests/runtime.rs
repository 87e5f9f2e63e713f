//! The runtime driven in-process against the real stores (a fresh
//! PostgreSQL database and a fresh embedded file), without spawning
//! processes: backlogs are drained from the store without any wake-up,
//! retries end where they should, a drain hands unfinished attempts back
//! unspent, short tasks are claimed ahead of the free slots and handed back
//! unspent by a drain or when long tasks took the slots meanwhile, and an
//! owner arriving behind a long backlog gets the slot kept for others; and,
//! on a stubbed clock, an expired 30 s lease is recovered, a minute's
//! backoff waited out and a day's retention pruned in milliseconds.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use resume_agent_core::TaskPayload;
use resume_agent_core::blob::LocalBlobStore;
use resume_agent_core::clock::Clock;
use resume_agent_core::config::{Config, Role, WorkerConfig};
use resume_agent_core::store::{AttemptOutcome, ListQuery, Scope, TaskStore};
use resume_agent_core::task::{NewTask, OwnerId, Task, TaskId, TaskKind, TaskStatus};
use resume_agent_core::testing::{self, eventually};
use resume_agent_queue::wake::{WakeBackend, Wakeups};
use resume_agent_worker::{Deps, Intake, Registry, Runtime};
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn config(vars: &[(&str, &str)]) -> WorkerConfig {
    let mut map: HashMap<String, String> = HashMap::new();
    for (k, v) in [
        ("TASK_LEASE_SECS", "30"),
        ("TASK_HEARTBEAT_SECS", "1"),
        ("SWEEP_INTERVAL_SECS", "1"),
        ("CANCEL_POLL_MS", "50"),
        ("RETRY_BACKOFF_BASE_MS", "10"),
        ("RETRY_BACKOFF_MAX_MS", "20"),
        ("INTAKE_POLL_MS", "200"),
    ]
    .iter()
    .chain(vars)
    {
        map.insert((*k).into(), (*v).into());
    }
    Config::from_source(Role::Serve, &map).unwrap().worker
}

struct Running {
    runtime: Runtime,
    wakeups: Wakeups,
    stop: CancellationToken,
    done: tokio::task::JoinHandle<()>,
}

async fn start(store: Arc<dyn TaskStore>, cfg: WorkerConfig) -> Running {
    let dir = std::env::temp_dir().join(format!("ra-rt-{}", uuid::Uuid::new_v4().simple()));
    let blobs = Arc::new(LocalBlobStore::open(&dir).await.unwrap());
    let wakeups = Wakeups::new();
    let deps = Deps {
        store: store.clone(),
        intake: Intake {
            backend: Arc::new(WakeBackend::new("postgres", wakeups.clone())),
            wakeups: wakeups.clone(),
            deliveries: None,
        },
        blobs,
        // These tests run no résumé task: the parse child is never started.
        registry: Registry::with_builtins(
            store,
            resume_agent_worker::resume::ResumeSettings::new(
                resume_agent_worker::parse_child::ParseRunner::new(
                    "/nonexistent/parse-child",
                    vec![],
                    resume_agent_worker::parse_child::ParseLimits::default(),
                ),
                resume_agent_worker::resume::DEFAULT_RESULT_MAX_BYTES,
                1,
            ),
        ),
    };
    let runtime = Runtime::new(deps, cfg, None);
    let stop = CancellationToken::new();
    let (r, s) = (runtime.clone(), stop.clone());
    let done = tokio::spawn(async move {
        r.run(s).await;
    });
    Running {
        runtime,
        wakeups,
        stop,
        done,
    }
}

fn task(owner: &str, kind: TaskKind, payload: serde_json::Value, max_attempts: i32) -> NewTask {
    NewTask {
        id: TaskId::new(),
        owner: OwnerId::parse(owner).unwrap(),
        payload: TaskPayload::parse(kind, payload).unwrap(),
        max_attempts,
        timeout_secs: 30,
        idempotency_key: None,
    }
}

async fn stats(store: &dyn TaskStore, owner: &str) -> resume_agent_core::store::TaskStats {
    store.stats(&OwnerId::parse(owner).unwrap()).await.unwrap()
}

/// Waits until the task satisfies `f`, polling with a deadline; returns it.
async fn task_where(
    store: &dyn TaskStore,
    owner: &OwnerId,
    id: TaskId,
    deadline: Duration,
    what: &str,
    f: impl Fn(&Task) -> bool,
) -> Task {
    eventually(deadline, what, || async {
        let t = store.get_task(owner, id).await.unwrap()?;
        f(&t).then_some(t)
    })
    .await
}

async fn backlog_is_drained_from_the_store(store: Arc<dyn TaskStore>, n: usize) {
    for _ in 0..n / 500 {
        let batch = (0..500)
            .map(|_| task("backlog", TaskKind::SystemNoop, json!({}), 3))
            .collect();
        store.create_tasks(batch).await.unwrap();
    }
    // Nobody hands anything off: the backlog is found in the store.
    let started = Instant::now();
    let rt = start(store.clone(), config(&[("WORKER_CONCURRENCY", "32")])).await;
    let want = i64::try_from(n).unwrap();
    eventually(Duration::from_secs(120), "backlog drained", || async {
        (stats(&*store, "backlog").await.succeeded == want).then_some(())
    })
    .await;
    eprintln!(
        "{} store: {n} queued noops drained in {:?}",
        store.name(),
        started.elapsed()
    );
    rt.stop.cancel();
    rt.done.await.unwrap();
}

async fn retries_end_failed_after_max_attempts(store: Arc<dyn TaskStore>) {
    let rt = start(store.clone(), config(&[])).await;
    let t = store
        .create_task(task(
            "retrier",
            TaskKind::SystemFail,
            json!({"message": "boom"}),
            3,
        ))
        .await
        .unwrap()
        .task;
    rt.wakeups.wake();
    let owner = OwnerId::parse("retrier").unwrap();
    let done = task_where(
        &*store,
        &owner,
        t.id,
        Duration::from_secs(30),
        "failed",
        |t| t.status == TaskStatus::Failed,
    )
    .await;
    assert_eq!(done.attempts, 3);
    assert!(done.error.unwrap().contains("boom"));
    rt.stop.cancel();
    rt.done.await.unwrap();
}

async fn a_drain_hands_long_attempts_back_unspent(store: Arc<dyn TaskStore>) {
    let rt = start(
        store.clone(),
        config(&[("SHUTDOWN_GRACE_SECS", "0"), ("WORKER_CONCURRENCY", "4")]),
    )
    .await;
    let ids: Vec<TaskId> = store
        .create_tasks(
            (0..3)
                .map(|_| task("drainer", TaskKind::SystemSleep, json!({"ms": 60_000}), 3))
                .collect(),
        )
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.task.id)
        .collect();
    rt.wakeups.wake();
    eventually(Duration::from_secs(20), "all running", || async {
        (rt.runtime.running() == 3).then_some(())
    })
    .await;
    let stopped = Instant::now();
    rt.stop.cancel();
    rt.done.await.unwrap();
    assert!(stopped.elapsed() < Duration::from_secs(10), "drain hung");
    let owner = OwnerId::parse("drainer").unwrap();
    for id in ids {
        let t = store.get_task(&owner, id).await.unwrap().unwrap();
        assert_eq!(
            (t.status, t.attempts),
            (TaskStatus::Queued, 0),
            "handed back with its attempt unspent"
        );
    }
}

async fn short_tasks_are_claimed_ahead_and_a_drain_hands_those_back(store: Arc<dyn TaskStore>) {
    let n = 4_000;
    for _ in 0..n / 500 {
        let batch = (0..500)
            .map(|_| task("ahead", TaskKind::SystemNoop, json!({}), 3))
            .collect();
        store.create_tasks(batch).await.unwrap();
    }
    let rt = start(store.clone(), config(&[("WORKER_CONCURRENCY", "2")])).await;
    // Noops start thousands a second: the worker holds more claimed tasks
    // than it has slots (they wait in its ready queue).
    eventually(
        Duration::from_secs(30),
        "claimed ahead of 2 slots",
        || async { (rt.runtime.running() > 2).then_some(()) },
    )
    .await;
    rt.stop.cancel();
    rt.done.await.unwrap();
    let s = stats(&*store, "ahead").await;
    assert_eq!(s.running, 0, "nothing is left running after a drain");
    assert_eq!(s.succeeded + s.queued, i64::from(n), "{s:?}");
    // Whatever was claimed ahead and never started went back unspent.
    let owner = OwnerId::parse("ahead").unwrap();
    let mut cursor = None;
    loop {
        let page = store
            .list_tasks(
                &owner,
                &ListQuery {
                    status: Some(TaskStatus::Queued),
                    kind: None,
                    limit: 500,
                    cursor,
                },
            )
            .await
            .unwrap();
        for t in &page.items {
            assert_eq!(t.attempts, 0, "a handed-back task kept its attempt");
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
}

async fn claimed_tasks_stuck_behind_long_ones_go_back(store: Arc<dyn TaskStore>) {
    let noops = |n: usize| {
        (0..n)
            .map(|_| task("stuck", TaskKind::SystemNoop, json!({}), 3))
            .collect::<Vec<_>>()
    };
    store.create_tasks(noops(1_000)).await.unwrap();
    store
        .create_tasks(
            (0..2)
                .map(|_| task("stuck", TaskKind::SystemSleep, json!({"ms": 6_000}), 3))
                .collect(),
        )
        .await
        .unwrap();
    for _ in 0..4 {
        store.create_tasks(noops(500)).await.unwrap();
    }
    let rt = start(store.clone(), config(&[("WORKER_CONCURRENCY", "2")])).await;
    // The noops before the sleeps run fast, so the claims run ahead: the
    // sleeps come with noops behind them. Both slots then sleep for 6 s,
    // and the noops claimed behind them go back to the store.
    let long = eventually(Duration::from_secs(30), "both slots asleep", || async {
        let page = store
            .list_tasks(
                &OwnerId::parse("stuck").unwrap(),
                &ListQuery {
                    status: Some(TaskStatus::Running),
                    kind: Some(TaskKind::SystemSleep),
                    limit: 10,
                    cursor: None,
                },
            )
            .await
            .unwrap();
        (page.items.len() == 2).then_some(Instant::now())
    })
    .await;
    eventually(
        Duration::from_secs(3),
        "only the two sleeps hold claims",
        || async { (stats(&*store, "stuck").await.running == 2).then_some(()) },
    )
    .await;
    eprintln!(
        "claims behind the sleeps were handed back {:?} after both slots slept",
        long.elapsed()
    );
    assert!(
        long.elapsed() < Duration::from_secs(5),
        "the sleeps ended first: the test proved nothing"
    );
    rt.stop.cancel();
    rt.done.await.unwrap();
}

async fn a_newcomer_gets_the_slot_kept_for_others(store: Arc<dyn TaskStore>) {
    let rt = start(store.clone(), config(&[("WORKER_CONCURRENCY", "4")])).await;
    store
        .create_tasks(
            (0..50)
                .map(|_| task("hog", TaskKind::SystemSleep, json!({"ms": 30_000}), 3))
                .collect(),
        )
        .await
        .unwrap();
    rt.wakeups.wake();
    eventually(Duration::from_secs(20), "hog holds 3 slots", || async {
        (stats(&*store, "hog").await.running == 3).then_some(())
    })
    .await;
    let t = store
        .create_task(task("newcomer", TaskKind::SystemNoop, json!({}), 3))
        .await
        .unwrap()
        .task;
    rt.wakeups.wake();
    let owner = OwnerId::parse("newcomer").unwrap();
    let started = Instant::now();
    task_where(
        &*store,
        &owner,
        t.id,
        Duration::from_secs(10),
        "newcomer ran",
        |t| t.status == TaskStatus::Succeeded,
    )
    .await;
    eprintln!(
        "newcomer behind 30 s sleeps ran after {:?}",
        started.elapsed()
    );
    assert_eq!(
        stats(&*store, "hog").await.running,
        3,
        "the kept slot never goes to the hog"
    );
    rt.stop.cancel();
    rt.done.await.unwrap();
}

/// The sweeper recovers an expired lease, with the production lease of
/// 30 s, as soon as the clock passes it: the task's dead worker claimed it,
/// the clock moves on 31 s, and a starting worker's first sweep takes it
/// back and runs it, in milliseconds of real time.
async fn an_expired_lease_is_recovered_on_the_clock(store: Arc<dyn TaskStore>, clock: Clock) {
    let t = store
        .create_task(task("orphan", TaskKind::SystemNoop, json!({}), 3))
        .await
        .unwrap()
        .task;
    let dead = store
        .claim(
            &[t.id],
            "postgres/dead-worker",
            Duration::from_secs(30),
            None,
        )
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    let real = Instant::now();
    clock.advance(Duration::from_secs(31));
    let rt = start(store.clone(), config(&[])).await;
    let owner = OwnerId::parse("orphan").unwrap();
    let done = task_where(
        &*store,
        &owner,
        t.id,
        Duration::from_secs(10),
        "recovered and run",
        |t| t.status == TaskStatus::Succeeded,
    )
    .await;
    assert_eq!(done.attempts, 2, "the dead worker's attempt counts");
    let history = store
        .attempts(&Scope::Owner(owner), t.id)
        .await
        .unwrap()
        .unwrap();
    let outcomes: Vec<AttemptOutcome> = history.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [AttemptOutcome::LeaseExpired, AttemptOutcome::Succeeded]
    );
    assert!(
        real.elapsed() < Duration::from_secs(30),
        "waited for the lease in real time"
    );
    rt.stop.cancel();
    rt.done.await.unwrap();
}

/// A failed attempt waits out the production backoff (here 30–60 s) on the
/// clock: not due before the clock passes it, run at once after.
async fn a_retry_waits_out_its_backoff_on_the_clock(store: Arc<dyn TaskStore>, clock: Clock) {
    let minute = [
        ("RETRY_BACKOFF_BASE_MS", "60000"),
        ("RETRY_BACKOFF_MAX_MS", "60000"),
    ];
    let real = Instant::now();
    let rt = start(store.clone(), config(&minute)).await;
    let t = store
        .create_task(task(
            "backoff",
            TaskKind::SystemFail,
            json!({"message": "no"}),
            2,
        ))
        .await
        .unwrap()
        .task;
    rt.wakeups.wake();
    let owner = OwnerId::parse("backoff").unwrap();
    let waiting = task_where(
        &*store,
        &owner,
        t.id,
        Duration::from_secs(10),
        "first attempt failed",
        |t| t.status == TaskStatus::Queued && t.attempts == 1,
    )
    .await;
    rt.stop.cancel();
    rt.done.await.unwrap();
    let wait = waiting.run_after - clock.now();
    assert!(
        wait >= chrono::Duration::seconds(30) && wait <= chrono::Duration::seconds(60),
        "the backoff is 30-60 s on the clock, got {wait}"
    );
    let early = store
        .claim(&[t.id], "postgres/probe", Duration::from_secs(30), None)
        .await
        .unwrap();
    assert!(early.is_empty(), "claimable before its backoff passed");
    clock.advance(Duration::from_secs(61));
    let rt = start(store.clone(), config(&minute)).await;
    rt.wakeups.wake();
    let done = task_where(
        &*store,
        &owner,
        t.id,
        Duration::from_secs(10),
        "second attempt",
        |t| t.status == TaskStatus::Failed,
    )
    .await;
    assert_eq!(done.attempts, 2);
    assert!(
        real.elapsed() < Duration::from_secs(30),
        "waited for the backoff in real time"
    );
    rt.stop.cancel();
    rt.done.await.unwrap();
}

/// `TASK_RETENTION_DAYS=1`: a finished task outlives the first sweep, and a
/// day later on the clock the next worker's sweeper deletes it.
async fn retention_prunes_on_the_clock(store: Arc<dyn TaskStore>, clock: Clock) {
    let keep_a_day = [("TASK_RETENTION_DAYS", "1")];
    let rt = start(store.clone(), config(&keep_a_day)).await;
    let t = store
        .create_task(task("retained", TaskKind::SystemNoop, json!({}), 3))
        .await
        .unwrap()
        .task;
    rt.wakeups.wake();
    let owner = OwnerId::parse("retained").unwrap();
    task_where(
        &*store,
        &owner,
        t.id,
        Duration::from_secs(10),
        "succeeded",
        |t| t.status == TaskStatus::Succeeded,
    )
    .await;
    rt.stop.cancel();
    rt.done.await.unwrap();
    // A fresh worker's first sweep prunes; the task is not a day old yet.
    let rt = start(store.clone(), config(&keep_a_day)).await;
    eventually(Duration::from_secs(10), "a sweep ran", || async {
        (rt.runtime.sweeps() >= 1).then_some(())
    })
    .await;
    assert!(
        store.get_task(&owner, t.id).await.unwrap().is_some(),
        "pruned too early"
    );
    rt.stop.cancel();
    rt.done.await.unwrap();
    clock.advance(Duration::from_secs(86_400 + 60));
    let rt = start(store.clone(), config(&keep_a_day)).await;
    eventually(Duration::from_secs(10), "pruned", || async {
        store
            .get_task(&owner, t.id)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    rt.stop.cancel();
    rt.done.await.unwrap();
}

/// The clock scenarios, each on a fresh store opened on its own stubbed
/// clock by `fresh`.
async fn clock_scenarios<F, Fut>(fresh: F)
where
    F: Fn(Clock) -> Fut,
    Fut: std::future::Future<Output = Arc<dyn TaskStore>>,
{
    let clock = Clock::stubbed_ahead();
    an_expired_lease_is_recovered_on_the_clock(fresh(clock.clone()).await, clock).await;
    let clock = Clock::stubbed_ahead();
    a_retry_waits_out_its_backoff_on_the_clock(fresh(clock.clone()).await, clock).await;
    let clock = Clock::stubbed_ahead();
    retention_prunes_on_the_clock(fresh(clock.clone()).await, clock).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_on_postgres_follows_its_clock() {
    clock_scenarios(|c| async { testing::pg_store_on(c).await.0 as Arc<dyn TaskStore> }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_on_the_embedded_store_follows_its_clock() {
    clock_scenarios(|c| async { testing::sqlite_store_on(c).await as Arc<dyn TaskStore> }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_on_postgres() {
    let s = || async { testing::pg_store().await.0 as Arc<dyn TaskStore> };
    backlog_is_drained_from_the_store(s().await, 5_000).await;
    retries_end_failed_after_max_attempts(s().await).await;
    a_drain_hands_long_attempts_back_unspent(s().await).await;
    short_tasks_are_claimed_ahead_and_a_drain_hands_those_back(s().await).await;
    claimed_tasks_stuck_behind_long_ones_go_back(s().await).await;
    a_newcomer_gets_the_slot_kept_for_others(s().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_on_the_embedded_store() {
    let s = || async { testing::sqlite_store().await as Arc<dyn TaskStore> };
    backlog_is_drained_from_the_store(s().await, 2_000).await;
    retries_end_failed_after_max_attempts(s().await).await;
    a_drain_hands_long_attempts_back_unspent(s().await).await;
    short_tasks_are_claimed_ahead_and_a_drain_hands_those_back(s().await).await;
    claimed_tasks_stuck_behind_long_ones_go_back(s().await).await;
    a_newcomer_gets_the_slot_kept_for_others(s().await).await;
}
