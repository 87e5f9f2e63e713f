//! Test support shared by every crate's tests (feature `testing`): fresh
//! PostgreSQL databases per test, and the conformance suites that every
//! `TaskStore` and `BlobStore` implementation must pass.
#![allow(clippy::unwrap_used, clippy::missing_panics_doc, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::blob::{BlobKey, BlobStore};
use crate::clock::Clock;
use crate::config::PoolConfig;
use crate::payload::{SleepPayload, TaskPayload};
use crate::secret::DatabaseUrl;
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{
    CancelOutcome, ClaimRequest, ClaimScope, Finish, FinishOutcome, LeaseScope, ListQuery,
    TaskStore,
};
use crate::task::{IdempotencyKey, NewTask, OwnerId, TaskId, TaskKind, TaskStatus};

/// The server the tests use: `TEST_DATABASE_URL`, else `DATABASE_URL`.
/// The README's test command sets it (starting a throwaway cluster).
#[must_use]
pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .expect("TEST_DATABASE_URL is not set: run the tests with scripts/test.sh, which starts PostgreSQL")
}

/// Creates an empty database with a unique name and returns its URL.
pub async fn fresh_database() -> String {
    use sqlx::Connection;
    let admin = admin_url();
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect to TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    conn.close().await.ok();
    replace_db_name(&admin, &name)
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Pool settings for tests.
#[must_use]
pub fn test_pool() -> PoolConfig {
    PoolConfig {
        max_connections: 10,
        min_connections: 0,
        acquire_timeout: Duration::from_secs(10),
    }
}

/// A migrated PostgreSQL store on a fresh database.
pub async fn pg_store() -> (Arc<PgStore>, String) {
    pg_store_on(Clock::real()).await
}

/// [`pg_store`] whose worker side reads `clock` (a stubbed one moves
/// leases, backoff and retention on by hand).
pub async fn pg_store_on(clock: Clock) -> (Arc<PgStore>, String) {
    let url = fresh_database().await;
    let store = PgStore::connect(&DatabaseUrl::new(url.clone()), &test_pool())
        .await
        .unwrap()
        .with_clock(clock);
    store.migrate().await.unwrap();
    (Arc::new(store), url)
}

/// A migrated SQLite store in a fresh temporary folder (kept until the
/// process ends).
pub async fn sqlite_store() -> Arc<SqliteStore> {
    sqlite_store_on(Clock::real()).await
}

/// [`sqlite_store`] whose statements read `clock`.
pub async fn sqlite_store_on(clock: Clock) -> Arc<SqliteStore> {
    let dir = std::env::temp_dir().join(format!("ra-test-{}", uuid::Uuid::new_v4().simple()));
    let store = SqliteStore::open(&dir.join("test.db"), &test_pool())
        .await
        .unwrap()
        .with_clock(clock);
    store.migrate().await.unwrap();
    Arc::new(store)
}

/// Waits until `f` returns `Some`, polling every 20 ms, or panics after `deadline`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn owner(s: &str) -> OwnerId {
    OwnerId::parse(s).unwrap()
}

fn new_task(owner_id: &str, kind: TaskKind) -> NewTask {
    NewTask {
        id: TaskId::new(),
        owner: owner(owner_id),
        payload: TaskPayload::parse(
            kind,
            if kind == TaskKind::SystemSleep {
                json!({"ms": 1})
            } else {
                json!({})
            },
        )
        .unwrap(),
        max_attempts: 3,
        timeout_secs: 60,
        idempotency_key: None,
    }
}

const W1: &str = "in-process/worker-1";
const W2: &str = "in-process/worker-2";
const LEASE: Duration = Duration::from_secs(30);

/// The clock suite: `store` was opened on `clock`, a stubbed clock, and
/// its worker side follows that clock alone. A 30 s lease expires, a
/// one-minute backoff passes and a day of retention elapses when the clock
/// is moved on, and not before, in milliseconds of real time.
pub async fn clock_conformance(store: Arc<dyn TaskStore>, clock: Clock) {
    let started = std::time::Instant::now();
    let o = owner("clocked");
    let mut n = new_task("clocked", TaskKind::SystemNoop);
    n.max_attempts = 3;
    let t = store.create_task(n).await.unwrap().task;
    // Leases: held until the clock passes the lease, whatever real time does.
    let got = store.claim_due(&all(W1, 10)).await.unwrap();
    assert_eq!(got.iter().map(|t| t.id).collect::<Vec<_>>(), vec![t.id]);
    assert!(
        store
            .recover_leases(LeaseScope::Expired, 100)
            .await
            .unwrap()
            .is_empty(),
        "a lease expired before the clock reached it"
    );
    clock.advance(LEASE - Duration::from_secs(1));
    assert!(
        store
            .recover_leases(LeaseScope::Expired, 100)
            .await
            .unwrap()
            .is_empty(),
        "a lease expired a second early"
    );
    clock.advance(Duration::from_secs(2));
    let rec = store
        .recover_leases(LeaseScope::Expired, 100)
        .await
        .unwrap();
    assert_eq!(rec.iter().map(|r| r.id).collect::<Vec<_>>(), vec![t.id]);
    assert_eq!(rec[0].status, TaskStatus::Queued);
    // Backoff: a retry a minute out is not due until the clock gets there.
    let again = store.claim_due(&all(W1, 10)).await.unwrap();
    assert_eq!(again.len(), 1, "a recovered task is due at once");
    assert_eq!(again[0].attempts, 2);
    let retry = Finish {
        id: t.id,
        attempt: 2,
        outcome: FinishOutcome::Retry {
            error: "later".into(),
            delay: Duration::from_secs(60),
        },
    };
    assert_eq!(store.finish(W1, &[retry]).await.unwrap(), vec![t.id]);
    let q = store.get_task(&o, t.id).await.unwrap().unwrap();
    let wait = q.run_after - clock.now();
    assert!(
        wait >= chrono::Duration::seconds(59) && wait <= chrono::Duration::seconds(61),
        "run_after is the clock's now + the backoff, got {wait}"
    );
    assert!(
        store.claim_due(&all(W1, 10)).await.unwrap().is_empty(),
        "claimed before its backoff"
    );
    clock.advance(Duration::from_secs(59));
    assert!(
        store.claim_due(&all(W1, 10)).await.unwrap().is_empty(),
        "claimed a second early"
    );
    clock.advance(Duration::from_secs(2));
    let third = store.claim_due(&all(W1, 10)).await.unwrap();
    assert_eq!(third.len(), 1, "due once the backoff passed on the clock");
    let at = clock.now();
    let heartbeat_at = store.heartbeat(W1, &[t.id], LEASE).await.unwrap();
    assert_eq!(heartbeat_at, vec![t.id]);
    let done = Finish {
        id: t.id,
        attempt: 3,
        outcome: FinishOutcome::Succeeded(json!({})),
    };
    assert_eq!(store.finish(W1, &[done]).await.unwrap(), vec![t.id]);
    let finished = store.get_task(&o, t.id).await.unwrap().unwrap();
    assert_eq!(finished.status, TaskStatus::Succeeded);
    let off = (finished.finished_at.unwrap() - at)
        .num_milliseconds()
        .abs();
    assert!(off < 1000, "finished_at is the clock's now, {off} ms off");
    // Retention: a day old on the clock, not in real time.
    let day = Duration::from_secs(86_400);
    assert_eq!(store.prune_finished(day, 100).await.unwrap(), 0);
    clock.advance(day + Duration::from_secs(1));
    assert_eq!(store.prune_finished(day, 100).await.unwrap(), 1);
    assert!(store.get_task(&o, t.id).await.unwrap().is_none());
    assert!(
        started.elapsed() < LEASE,
        "the suite waited for real time: {:?}",
        started.elapsed()
    );
}

/// The `TaskStore` conformance suite. Every implementation runs all of it.
pub async fn store_conformance(store: Arc<dyn TaskStore>) {
    create_get_and_isolation(&*store).await;
    idempotency(&*store).await;
    listing_and_pagination(&*store).await;
    cancellation(&*store).await;
    claim_and_fenced_finish(&*store).await;
    retry_and_handback(&*store).await;
    leases(&*store).await;
    concurrent_claims(store.clone()).await;
    concurrent_idempotency(store.clone()).await;
    files(&*store).await;
    quotas_deletion_and_retention(&*store).await;
    pruning(&*store).await;
    store.ping().await.unwrap();
}

async fn create_get_and_isolation(store: &dyn TaskStore) {
    let mut t = new_task("alice", TaskKind::SystemSleep);
    t.payload = TaskPayload::SystemSleep(SleepPayload { ms: 5 });
    let c = store.create_task(t.clone()).await.unwrap();
    assert!(c.created);
    assert_eq!(c.task.id, t.id);
    assert_eq!(c.task.status, TaskStatus::Queued);
    assert_eq!(c.task.payload, json!({"ms": 5}));
    assert_eq!(c.task.attempts, 0);
    assert_eq!(c.task.owner_id, "alice");
    assert!(c.task.result.is_none() && c.task.started_at.is_none() && c.task.finished_at.is_none());
    let got = store
        .get_task(&owner("alice"), t.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, c.task);
    assert!(
        store.get_task(&owner("bob"), t.id).await.unwrap().is_none(),
        "foreign task visible"
    );
    assert!(
        store
            .get_task(&owner("alice"), TaskId::new())
            .await
            .unwrap()
            .is_none()
    );
}

async fn idempotency(store: &dyn TaskStore) {
    let key = IdempotencyKey::parse("order-42").unwrap();
    let mut a = new_task("idem", TaskKind::SystemNoop);
    a.idempotency_key = Some(key.clone());
    let first = store.create_task(a).await.unwrap();
    assert!(first.created);
    let mut b = new_task("idem", TaskKind::SystemNoop);
    b.idempotency_key = Some(key.clone());
    let second = store.create_task(b).await.unwrap();
    assert!(!second.created);
    assert_eq!(second.task.id, first.task.id);
    let mut c = new_task("idem-other", TaskKind::SystemNoop);
    c.idempotency_key = Some(key);
    let third = store.create_task(c).await.unwrap();
    assert!(third.created, "keys are per owner");
    assert_eq!(store.stats(&owner("idem")).await.unwrap().queued, 1);
}

async fn listing_and_pagination(store: &dyn TaskStore) {
    let o = owner("lister");
    let mut ids = Vec::new();
    for i in 0..7 {
        let kind = if i % 2 == 0 {
            TaskKind::SystemNoop
        } else {
            TaskKind::SystemFail
        };
        ids.push(
            store
                .create_task(new_task("lister", kind))
                .await
                .unwrap()
                .task
                .id,
        );
    }
    store
        .create_task(new_task("someone-else", TaskKind::SystemNoop))
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_tasks(
                &o,
                &ListQuery {
                    limit: 3,
                    cursor,
                    ..ListQuery::default()
                },
            )
            .await
            .unwrap();
        pages += 1;
        seen.extend(page.items.iter().map(|t| t.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(
        seen, newest_first,
        "pages must be newest first, without gaps or repeats"
    );

    let fails = store
        .list_tasks(
            &o,
            &ListQuery {
                limit: 50,
                kind: Some(TaskKind::SystemFail),
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(fails.items.len(), 3);
    assert!(fails.items.iter().all(|t| t.kind == "system.fail"));
    assert!(fails.next_cursor.is_none());

    store.cancel_task(&o, ids[0]).await.unwrap();
    let cancelled = store
        .list_tasks(
            &o,
            &ListQuery {
                limit: 50,
                status: Some(TaskStatus::Cancelled),
                ..ListQuery::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        cancelled.items.iter().map(|t| t.id).collect::<Vec<_>>(),
        vec![ids[0]]
    );
    let stats = store.stats(&o).await.unwrap();
    assert_eq!((stats.queued, stats.cancelled, stats.running), (6, 1, 0));
}

async fn cancellation(store: &dyn TaskStore) {
    let o = owner("canceller");
    let queued = store
        .create_task(new_task("canceller", TaskKind::SystemSleep))
        .await
        .unwrap()
        .task;
    assert!(matches!(
        store
            .cancel_task(&owner("intruder"), queued.id)
            .await
            .unwrap(),
        CancelOutcome::NotFound
    ));
    match store.cancel_task(&o, queued.id).await.unwrap() {
        CancelOutcome::Cancelled(t) => {
            assert_eq!(t.status, TaskStatus::Cancelled);
            assert!(t.finished_at.is_some());
        }
        other => panic!("queued task: {other:?}"),
    }
    assert!(matches!(
        store.cancel_task(&o, queued.id).await.unwrap(),
        CancelOutcome::AlreadyTerminal(_)
    ));
    assert!(
        store
            .claim(&[queued.id], W1, LEASE, None)
            .await
            .unwrap()
            .is_empty(),
        "cancelled task claimed"
    );

    let running = store
        .create_task(new_task("canceller", TaskKind::SystemSleep))
        .await
        .unwrap()
        .task;
    let claimed = store.claim(&[running.id], W1, LEASE, None).await.unwrap();
    assert_eq!(claimed.len(), 1);
    match store.cancel_task(&o, running.id).await.unwrap() {
        CancelOutcome::Requested(t) => {
            assert_eq!(t.status, TaskStatus::Running);
            assert!(t.cancel_requested);
        }
        other => panic!("running task: {other:?}"),
    }
    assert_eq!(
        store
            .cancel_requested(&[running.id, queued.id])
            .await
            .unwrap(),
        vec![running.id]
    );
    // A retry of a task whose cancellation was requested ends it cancelled.
    let done = store
        .finish(
            W1,
            &[Finish {
                id: running.id,
                attempt: 1,
                outcome: FinishOutcome::Retry {
                    error: "x".into(),
                    delay: Duration::ZERO,
                },
            }],
        )
        .await
        .unwrap();
    assert_eq!(done, vec![running.id]);
    let t = store.get_task(&o, running.id).await.unwrap().unwrap();
    assert_eq!(t.status, TaskStatus::Cancelled);
    assert!(t.finished_at.is_some());
}

async fn claim_and_fenced_finish(store: &dyn TaskStore) {
    let o = owner("claimer");
    let t = store
        .create_task(new_task("claimer", TaskKind::SystemNoop))
        .await
        .unwrap()
        .task;
    let claimed = store
        .claim(&[t.id, TaskId::new()], W1, LEASE, None)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "unknown ids are ignored");
    let c = &claimed[0];
    assert_eq!((c.status, c.attempts), (TaskStatus::Running, 1));
    assert!(c.started_at.is_some());
    assert!(
        store
            .claim(&[t.id], W2, LEASE, None)
            .await
            .unwrap()
            .is_empty(),
        "claimed twice"
    );

    let ok = |attempt| Finish {
        id: t.id,
        attempt,
        outcome: FinishOutcome::Succeeded(json!({"n": 1})),
    };
    assert!(
        store.finish(W2, &[ok(1)]).await.unwrap().is_empty(),
        "another worker finished my task"
    );
    assert!(
        store.finish(W1, &[ok(2)]).await.unwrap().is_empty(),
        "a stale attempt wrote"
    );
    assert_eq!(store.finish(W1, &[ok(1)]).await.unwrap(), vec![t.id]);
    assert!(
        store.finish(W1, &[ok(1)]).await.unwrap().is_empty(),
        "finished twice"
    );
    let done = store.get_task(&o, t.id).await.unwrap().unwrap();
    assert_eq!(done.status, TaskStatus::Succeeded);
    assert_eq!(done.result, Some(json!({"n": 1})));
    assert!(done.finished_at.is_some());
    let states = store.task_states(&[t.id]).await.unwrap();
    assert_eq!(states[0].status, TaskStatus::Succeeded);

    // A batch with mixed outcomes.
    let a = store
        .create_task(new_task("claimer", TaskKind::SystemFail))
        .await
        .unwrap()
        .task;
    let b = store
        .create_task(new_task("claimer", TaskKind::SystemSleep))
        .await
        .unwrap()
        .task;
    assert_eq!(
        store
            .claim(&[a.id, b.id], W1, LEASE, None)
            .await
            .unwrap()
            .len(),
        2
    );
    let done = store
        .finish(
            W1,
            &[
                Finish {
                    id: a.id,
                    attempt: 1,
                    outcome: FinishOutcome::Failed("boom".into()),
                },
                Finish {
                    id: b.id,
                    attempt: 1,
                    outcome: FinishOutcome::Cancelled,
                },
            ],
        )
        .await
        .unwrap();
    assert_eq!(done.len(), 2);
    let a = store.get_task(&o, a.id).await.unwrap().unwrap();
    assert_eq!(
        (a.status, a.error.as_deref()),
        (TaskStatus::Failed, Some("boom"))
    );
    assert!(a.result.is_none());
    let b = store.get_task(&o, b.id).await.unwrap().unwrap();
    assert_eq!(b.status, TaskStatus::Cancelled);
}

async fn retry_and_handback(store: &dyn TaskStore) {
    let o = owner("retrier");
    let t = store
        .create_task(new_task("retrier", TaskKind::SystemFail))
        .await
        .unwrap()
        .task;
    store.claim(&[t.id], W1, LEASE, None).await.unwrap();
    let later = FinishOutcome::Retry {
        error: "first".into(),
        delay: Duration::from_secs(3600),
    };
    store
        .finish(
            W1,
            &[Finish {
                id: t.id,
                attempt: 1,
                outcome: later,
            }],
        )
        .await
        .unwrap();
    let q = store.get_task(&o, t.id).await.unwrap().unwrap();
    assert_eq!(
        (q.status, q.attempts, q.error.as_deref()),
        (TaskStatus::Queued, 1, Some("first"))
    );
    assert!(q.run_after > chrono::Utc::now() + chrono::Duration::minutes(59));
    assert!(q.finished_at.is_none());
    assert!(
        store
            .claim(&[t.id], W1, LEASE, None)
            .await
            .unwrap()
            .is_empty(),
        "claimed before run_after"
    );

    let t2 = store
        .create_task(new_task("retrier", TaskKind::SystemFail))
        .await
        .unwrap()
        .task;
    store.claim(&[t2.id], W1, LEASE, None).await.unwrap();
    let now = FinishOutcome::Retry {
        error: "again".into(),
        delay: Duration::ZERO,
    };
    store
        .finish(
            W1,
            &[Finish {
                id: t2.id,
                attempt: 1,
                outcome: now,
            }],
        )
        .await
        .unwrap();
    let c = store.claim(&[t2.id], W2, LEASE, None).await.unwrap();
    assert_eq!(c[0].attempts, 2);
    // Graceful drain hands the task back without spending the attempt.
    store
        .finish(
            W2,
            &[Finish {
                id: t2.id,
                attempt: 2,
                outcome: FinishOutcome::HandBack,
            }],
        )
        .await
        .unwrap();
    let h = store.get_task(&o, t2.id).await.unwrap().unwrap();
    assert_eq!((h.status, h.attempts), (TaskStatus::Queued, 1));
    assert_eq!(
        store.claim(&[t2.id], W1, LEASE, None).await.unwrap()[0].attempts,
        2
    );
}

async fn leases(store: &dyn TaskStore) {
    let o = owner("leaser");
    let mut n = new_task("leaser", TaskKind::SystemSleep);
    n.max_attempts = 2;
    let t = store.create_task(n).await.unwrap().task;
    store
        .claim(&[t.id], W1, Duration::from_millis(200), None)
        .await
        .unwrap();
    assert!(
        store
            .heartbeat(W2, &[t.id], LEASE)
            .await
            .unwrap()
            .is_empty(),
        "heartbeat by a non-holder"
    );
    // Wait for expiry, then recover: back to queued (1 of 2 attempts spent).
    let rec = eventually(Duration::from_secs(10), "lease expiry", || async {
        let r = store
            .recover_leases(LeaseScope::Expired, 100)
            .await
            .unwrap();
        r.into_iter().find(|r| r.id == t.id)
    })
    .await;
    assert_eq!(rec.status, TaskStatus::Queued);
    let q = store.get_task(&o, t.id).await.unwrap().unwrap();
    assert!(
        q.error
            .as_deref()
            .unwrap_or_default()
            .contains("lease expired")
    );
    // The late worker's writes are rejected.
    let late = Finish {
        id: t.id,
        attempt: 1,
        outcome: FinishOutcome::Succeeded(json!({})),
    };
    assert!(
        store.finish(W1, &[late]).await.unwrap().is_empty(),
        "late worker overwrote"
    );
    assert!(
        store
            .heartbeat(W1, &[t.id], LEASE)
            .await
            .unwrap()
            .is_empty()
    );
    // Second attempt: the heartbeat keeps it alive; then it expires for good.
    store
        .claim(&[t.id], W2, Duration::from_millis(300), None)
        .await
        .unwrap();
    assert_eq!(
        store
            .heartbeat(W2, &[t.id], Duration::from_millis(300))
            .await
            .unwrap(),
        vec![t.id]
    );
    let rec = eventually(Duration::from_secs(10), "second lease expiry", || async {
        let r = store
            .recover_leases(LeaseScope::Expired, 100)
            .await
            .unwrap();
        r.into_iter().find(|r| r.id == t.id)
    })
    .await;
    assert_eq!(rec.status, TaskStatus::Failed, "attempts spent");
    let f = store.get_task(&o, t.id).await.unwrap().unwrap();
    assert_eq!(f.status, TaskStatus::Failed);
    assert!(f.finished_at.is_some());
    // An unexpired lease is left alone.
    let live = store
        .create_task(new_task("leaser", TaskKind::SystemSleep))
        .await
        .unwrap()
        .task;
    store.claim(&[live.id], W1, LEASE, None).await.unwrap();
    assert!(
        !store
            .recover_leases(LeaseScope::Expired, 100)
            .await
            .unwrap()
            .iter()
            .any(|r| r.id == live.id)
    );
    // The in-process lock holder recovers every lease of its kind but its
    // own at once; a worker of another backend (a flip) keeps its task.
    let other_kind = store
        .create_task(new_task("leaser", TaskKind::SystemSleep))
        .await
        .unwrap()
        .task;
    store
        .claim(&[other_kind.id], "postgres/worker-9", LEASE, None)
        .await
        .unwrap();
    let own = store
        .create_task(new_task("leaser", TaskKind::SystemSleep))
        .await
        .unwrap()
        .task;
    store.claim(&[own.id], W2, LEASE, None).await.unwrap();
    let rec = store
        .recover_leases(LeaseScope::AllExcept(W2), 100)
        .await
        .unwrap();
    assert!(
        rec.iter()
            .any(|r| r.id == live.id && r.status == TaskStatus::Queued),
        "{rec:?}"
    );
    assert!(
        !rec.iter().any(|r| r.id == other_kind.id),
        "recovered a live lease of another backend's worker"
    );
    assert!(
        !rec.iter().any(|r| r.id == own.id),
        "recovered its own lease"
    );
    let q = store.get_task(&o, live.id).await.unwrap().unwrap();
    assert_eq!((q.status, q.attempts), (TaskStatus::Queued, 1));
}

async fn concurrent_claims(store: Arc<dyn TaskStore>) {
    let mut ids = Vec::new();
    for _ in 0..50 {
        ids.push(
            store
                .create_task(new_task("racer", TaskKind::SystemNoop))
                .await
                .unwrap()
                .task
                .id,
        );
    }
    let ids = Arc::new(ids);
    let mut handles = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        let ids = ids.clone();
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut order: Vec<TaskId> = ids.to_vec();
            if w % 2 == 1 {
                order.reverse();
            }
            for chunk in order.chunks(7) {
                mine.extend(
                    store
                        .claim(chunk, &format!("racer-{w}"), LEASE, None)
                        .await
                        .unwrap()
                        .into_iter()
                        .map(|t| t.id),
                );
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    all.sort();
    let mut expected = ids.to_vec();
    expected.sort();
    assert_eq!(all, expected, "each task claimed exactly once");
}

async fn concurrent_idempotency(store: Arc<dyn TaskStore>) {
    // Twenty racing submissions with one key (they may share an insert batch).
    let key = IdempotencyKey::parse("racing-key").unwrap();
    let mut handles = Vec::new();
    for _ in 0..20 {
        let store = store.clone();
        let mut t = new_task("racer-idem", TaskKind::SystemNoop);
        t.idempotency_key = Some(key.clone());
        handles.push(tokio::spawn(
            async move { store.create_task(t).await.unwrap() },
        ));
    }
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for h in handles {
        let c = h.await.unwrap();
        created += usize::from(c.created);
        ids.insert(c.task.id);
    }
    assert_eq!((created, ids.len()), (1, 1), "one task for one key");
    assert_eq!(store.stats(&owner("racer-idem")).await.unwrap().queued, 1);
}

async fn pruning(store: &dyn TaskStore) {
    let o = owner("pruner");
    let old = store
        .create_task(new_task("pruner", TaskKind::SystemNoop))
        .await
        .unwrap()
        .task;
    store.claim(&[old.id], W1, LEASE, None).await.unwrap();
    let ok = FinishOutcome::Succeeded(json!({}));
    store
        .finish(
            W1,
            &[Finish {
                id: old.id,
                attempt: 1,
                outcome: ok,
            }],
        )
        .await
        .unwrap();
    let queued = store
        .create_task(new_task("pruner", TaskKind::SystemNoop))
        .await
        .unwrap()
        .task;
    // Nothing has been finished for an hour.
    let _ = store
        .prune_finished(Duration::from_secs(3600), 1000)
        .await
        .unwrap();
    assert!(
        store.get_task(&o, old.id).await.unwrap().is_some(),
        "pruned a recent task"
    );
    let pruned = eventually(Duration::from_secs(10), "pruning", || async {
        let n = store
            .prune_finished(Duration::from_millis(10), 1000)
            .await
            .unwrap();
        store
            .get_task(&o, old.id)
            .await
            .unwrap()
            .is_none()
            .then_some(n)
    })
    .await;
    assert!(pruned >= 1);
    assert!(
        store.get_task(&o, queued.id).await.unwrap().is_some(),
        "pruned an unfinished task"
    );
}

async fn files(store: &dyn TaskStore) {
    let f = crate::file::NewFile {
        id: uuid::Uuid::now_v7(),
        owner: owner("filer"),
        filename: "cv.pdf".into(),
        content_type: "application/pdf".into(),
        size: 1234,
        sha256: "ab".repeat(32),
    };
    let stored = store.create_file(&f).await.unwrap();
    assert_eq!(
        (stored.id, stored.size, stored.filename.as_str()),
        (f.id, 1234, "cv.pdf")
    );
    assert_eq!(
        store.get_file(&owner("filer"), f.id).await.unwrap(),
        Some(stored)
    );
    assert!(
        store
            .get_file(&owner("intruder"), f.id)
            .await
            .unwrap()
            .is_none(),
        "foreign file visible"
    );
    assert!(
        store
            .get_file(&owner("filer"), uuid::Uuid::now_v7())
            .await
            .unwrap()
            .is_none()
    );
}

async fn quotas_deletion_and_retention(store: &dyn TaskStore) {
    let me = owner("quota-owner");
    let other = owner("quota-other");
    assert_eq!(store.owner_stored_bytes(&me).await.unwrap(), 0);
    let mut ids = Vec::new();
    for (who, size) in [(&me, 100), (&me, 250), (&other, 999)] {
        let f = crate::file::NewFile {
            id: uuid::Uuid::now_v7(),
            owner: who.clone(),
            filename: "cv.txt".into(),
            content_type: "text/plain".into(),
            size,
            sha256: "cd".repeat(32),
        };
        store.create_file(&f).await.unwrap();
        ids.push(f.id);
    }
    assert_eq!(store.owner_stored_bytes(&me).await.unwrap(), 350);
    assert_eq!(store.owner_stored_bytes(&other).await.unwrap(), 999);
    // Deletion is owner-scoped: a foreign or unknown id deletes nothing.
    assert!(!store.delete_file(&other, ids[0]).await.unwrap());
    assert!(!store.delete_file(&me, uuid::Uuid::now_v7()).await.unwrap());
    assert!(store.delete_file(&me, ids[0]).await.unwrap());
    assert!(
        !store.delete_file(&me, ids[0]).await.unwrap(),
        "deleted twice"
    );
    assert!(store.get_file(&me, ids[0]).await.unwrap().is_none());
    assert_eq!(store.owner_stored_bytes(&me).await.unwrap(), 250);
    // Retention: files older than the age, oldest first, any owner.
    let expired = eventually(Duration::from_secs(5), "files to age", || async {
        let e = store.expired_files(Duration::ZERO, 1000).await.unwrap();
        e.iter().any(|f| f.id == ids[2]).then_some(e)
    })
    .await;
    let mine: Vec<uuid::Uuid> = expired
        .iter()
        .map(|f| f.id)
        .filter(|id| ids.contains(id))
        .collect();
    assert_eq!(
        mine,
        vec![ids[1], ids[2]],
        "oldest first, the deleted one gone"
    );
    assert!(
        store
            .expired_files(Duration::from_secs(3600), 1000)
            .await
            .unwrap()
            .iter()
            .all(|f| !ids.contains(&f.id))
    );
    assert!(store.expired_files(Duration::ZERO, 1).await.unwrap().len() <= 1);
    // Queued tasks are counted per owner, up to the cap.
    let q = owner("quota-queue");
    assert_eq!(store.owner_queued_tasks(&q, 10).await.unwrap(), 0);
    let mut tasks = Vec::new();
    for _ in 0..5 {
        tasks.push(
            store
                .create_task(new_task("quota-queue", TaskKind::SystemNoop))
                .await
                .unwrap()
                .task,
        );
    }
    store
        .create_task(new_task("quota-else", TaskKind::SystemNoop))
        .await
        .unwrap();
    assert_eq!(store.owner_queued_tasks(&q, 10).await.unwrap(), 5);
    assert_eq!(
        store.owner_queued_tasks(&q, 3).await.unwrap(),
        3,
        "counted up to the cap"
    );
    store.cancel_task(&q, tasks[0].id).await.unwrap();
    assert_eq!(
        store.owner_queued_tasks(&q, 10).await.unwrap(),
        4,
        "only queued count"
    );
}

/// The `BlobStore` conformance suite.
pub async fn blob_conformance(store: Arc<dyn BlobStore>) {
    store.check().await.unwrap();
    let key = BlobKey::parse(&format!(
        "conformance/{}/original.bin",
        uuid::Uuid::new_v4().simple()
    ))
    .unwrap();
    assert!(store.get(&key).await.unwrap().is_none());
    let bytes: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    store
        .put(&key, bytes.clone(), "application/octet-stream")
        .await
        .unwrap();
    assert_eq!(
        store.get(&key).await.unwrap().as_deref(),
        Some(bytes.as_slice())
    );
    store
        .put(&key, b"replaced".to_vec(), "text/plain")
        .await
        .unwrap();
    assert_eq!(
        store.get(&key).await.unwrap().as_deref(),
        Some(&b"replaced"[..])
    );
    let empty = BlobKey::parse(&format!(
        "conformance/{}/empty",
        uuid::Uuid::new_v4().simple()
    ))
    .unwrap();
    store.put(&empty, Vec::new(), "text/plain").await.unwrap();
    assert_eq!(store.get(&empty).await.unwrap().as_deref(), Some(&b""[..]));
    // Streamed reads give the same bytes, in order.
    let big = BlobKey::parse(&format!(
        "conformance/{}/big",
        uuid::Uuid::new_v4().simple()
    ))
    .unwrap();
    store
        .put(&big, bytes.clone(), "application/octet-stream")
        .await
        .unwrap();
    let s = store.get_stream(&big).await.unwrap().unwrap();
    assert!(s.size.is_none_or(|n| n == bytes.len() as u64));
    let chunks: Vec<bytes::Bytes> = futures::TryStreamExt::try_collect(s.chunks).await.unwrap();
    assert_eq!(chunks.concat(), bytes);
    let missing = BlobKey::parse(&format!(
        "conformance/{}/none",
        uuid::Uuid::new_v4().simple()
    ))
    .unwrap();
    assert!(store.get_stream(&missing).await.unwrap().is_none());
    store.delete(&key).await.unwrap();
    store.delete(&key).await.unwrap();
    assert!(store.get(&key).await.unwrap().is_none());
    // Prefix deletion takes everything under `prefix/`, nothing beside it.
    let folder = format!("conformance/{}", uuid::Uuid::new_v4().simple());
    let prefix = BlobKey::parse(&folder).unwrap();
    let sibling = BlobKey::parse(&format!("{folder}x/original")).unwrap();
    for name in ["original", "text", "parsed.json", "deep/er"] {
        let k = BlobKey::parse(&format!("{folder}/{name}")).unwrap();
        store.put(&k, b"x".to_vec(), "text/plain").await.unwrap();
    }
    store
        .put(&sibling, b"keep".to_vec(), "text/plain")
        .await
        .unwrap();
    assert_eq!(store.delete_prefix(&prefix).await.unwrap(), 4);
    for name in ["original", "text", "parsed.json", "deep/er"] {
        let k = BlobKey::parse(&format!("{folder}/{name}")).unwrap();
        assert!(store.get(&k).await.unwrap().is_none(), "{name} survived");
    }
    assert_eq!(
        store.get(&sibling).await.unwrap().as_deref(),
        Some(&b"keep"[..])
    );
    assert_eq!(store.delete_prefix(&prefix).await.unwrap(), 0);
    store.delete(&sibling).await.unwrap();
}

/// Two handles on one fresh PostgreSQL database: one that records no backend
/// on insert (as rows from before migration 0005), one that records
/// `azure-queue`.
pub async fn pg_pair() -> (Arc<dyn TaskStore>, Arc<dyn TaskStore>) {
    let (store, _url) = pg_store().await;
    let azure = PgStore::from_pool(store.pool().clone()).with_backend("azure-queue");
    (store, Arc::new(azure))
}

/// [`pg_pair`] for the embedded store: two handles on one fresh file.
pub async fn sqlite_pair() -> (Arc<dyn TaskStore>, Arc<dyn TaskStore>) {
    let dir = std::env::temp_dir().join(format!("ra-test-{}", uuid::Uuid::new_v4().simple()));
    let path = dir.join("test.db");
    let plain = SqliteStore::open(&path, &test_pool()).await.unwrap();
    plain.migrate().await.unwrap();
    let azure = SqliteStore::open(&path, &test_pool())
        .await
        .unwrap()
        .with_backend("azure-queue");
    (Arc::new(plain), Arc::new(azure))
}

fn all<'a>(worker: &'a str, limit: u32) -> ClaimRequest<'a> {
    ClaimRequest {
        worker,
        limit,
        lease: LEASE,
        scope: ClaimScope::All,
        owner_max_running: None,
        after_owner: "",
        exclude_owner: None,
    }
}

async fn many(store: &dyn TaskStore, owner_id: &str, n: usize) -> Vec<TaskId> {
    let batch = (0..n)
        .map(|_| new_task(owner_id, TaskKind::SystemNoop))
        .collect();
    store
        .create_tasks(batch)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.task.id)
        .collect()
}

/// The pull-intake suite (claims straight from the store, fairness, caps,
/// the flip scope, batch inserts). Every case gets a fresh, empty database
/// from `fresh`: a plain handle and one recording `azure-queue` on insert.
pub async fn claim_conformance<F, Fut>(fresh: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = (Arc<dyn TaskStore>, Arc<dyn TaskStore>)>,
{
    claim_due_takes_each_due_task_once(fresh().await.0).await;
    concurrent_claim_due_never_shares_a_task(fresh().await.0).await;
    claim_due_interleaves_owners(fresh().await.0).await;
    claims_honour_the_owner_cap(fresh().await.0).await;
    let (plain, azure) = fresh().await;
    claim_scope_not_delivered_by(&*plain, &*azure).await;
    batch_insert_keeps_order_and_keys(fresh().await.0).await;
}

async fn claim_due_takes_each_due_task_once(store: Arc<dyn TaskStore>) {
    let ids = many(&*store, "puller", 10).await;
    let first = store.claim_due(&all(W1, 4)).await.unwrap();
    assert_eq!(first.len(), 4);
    for t in &first {
        assert_eq!((t.status, t.attempts), (TaskStatus::Running, 1));
        assert!(ids.contains(&t.id));
    }
    let rest = store.claim_due(&all(W2, 100)).await.unwrap();
    assert_eq!(rest.len(), 6);
    assert!(store.claim_due(&all(W1, 100)).await.unwrap().is_empty());
    // A retry with a backoff is not due before its time.
    let t = &first[0];
    let done = store
        .finish(
            W1,
            &[Finish {
                id: t.id,
                attempt: 1,
                outcome: FinishOutcome::Retry {
                    error: "later".into(),
                    delay: Duration::from_secs(3600),
                },
            }],
        )
        .await
        .unwrap();
    assert_eq!(done, vec![t.id]);
    assert!(store.claim_due(&all(W1, 100)).await.unwrap().is_empty());
    // A hand-back is due at once and does not spend the attempt.
    let u = &first[1];
    store
        .finish(
            W1,
            &[Finish {
                id: u.id,
                attempt: 1,
                outcome: FinishOutcome::HandBack,
            }],
        )
        .await
        .unwrap();
    let again = store.claim_due(&all(W2, 100)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!((again[0].id, again[0].attempts), (u.id, 1));
}

async fn concurrent_claim_due_never_shares_a_task(store: Arc<dyn TaskStore>) {
    let mut ids = many(&*store, "racer-a", 150).await;
    ids.extend(many(&*store, "racer-b", 50).await);
    let mut claimers = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        claimers.push(tokio::spawn(async move {
            let me = format!("puller-{w}");
            let mut got = Vec::new();
            loop {
                let batch = store.claim_due(&all(&me, 16)).await.unwrap();
                if batch.is_empty() {
                    return got;
                }
                got.extend(batch.into_iter().map(|t| t.id));
            }
        }));
    }
    let mut seen = std::collections::HashSet::new();
    for c in claimers {
        for id in c.await.unwrap() {
            assert!(seen.insert(id), "claimed twice: {id}");
        }
    }
    assert_eq!(seen.len(), ids.len(), "every task claimed");
}

async fn claim_due_interleaves_owners(store: Arc<dyn TaskStore>) {
    // The busy owner queued long before the others.
    many(&*store, "fair-a", 100).await;
    let b = many(&*store, "fair-b", 5).await;
    let c = many(&*store, "fair-c", 5).await;
    let got = store.claim_due(&all(W1, 15)).await.unwrap();
    assert_eq!(got.len(), 15);
    for id in b.iter().chain(&c) {
        assert!(
            got.iter().any(|t| t.id == *id),
            "a later owner waited behind the busy one"
        );
    }
    // Round robin: one task per claim, starting after the last owner served.
    let store2 = store.clone();
    let mut order = Vec::new();
    let mut after = String::new();
    for _ in 0..3 {
        let one = store2
            .claim_due(&ClaimRequest {
                after_owner: &after,
                ..all(W1, 1)
            })
            .await
            .unwrap();
        assert_eq!(one.len(), 1);
        after.clone_from(&one[0].owner_id);
        order.push(after.clone());
    }
    assert_eq!(order, ["fair-a", "fair-a", "fair-a"], "only fair-a is left");
    many(&*store, "fair-b", 2).await;
    let mut seen = Vec::new();
    let mut after = String::from("fair-a");
    for _ in 0..2 {
        let one = store
            .claim_due(&ClaimRequest {
                after_owner: &after,
                ..all(W1, 1)
            })
            .await
            .unwrap();
        after.clone_from(&one[0].owner_id);
        seen.push(after.clone());
    }
    assert_eq!(seen[0], "fair-b", "after fair-a comes fair-b");
    // The slot kept for the others: the excluded owner gets nothing.
    let others = store
        .claim_due(&ClaimRequest {
            exclude_owner: Some("fair-a"),
            ..all(W1, 100)
        })
        .await
        .unwrap();
    assert!(others.iter().all(|t| t.owner_id != "fair-a"), "{others:?}");
}

async fn claims_honour_the_owner_cap(store: Arc<dyn TaskStore>) {
    let a = many(&*store, "capped", 10).await;
    let b = many(&*store, "uncapped", 2).await;
    let capped = |limit| ClaimRequest {
        owner_max_running: Some(3),
        ..all(W1, limit)
    };
    let got = store.claim_due(&capped(20)).await.unwrap();
    let of_a: Vec<_> = got.iter().filter(|t| t.owner_id == "capped").collect();
    assert_eq!(of_a.len(), 3, "{got:?}");
    assert_eq!(got.len(), 5, "the other owner is not held back");
    assert!(store.claim_due(&capped(20)).await.unwrap().is_empty());
    // The cap holds for claims by id (queue deliveries) too.
    let waiting: Vec<TaskId> = a
        .iter()
        .copied()
        .filter(|id| !got.iter().any(|t| t.id == *id))
        .collect();
    assert!(
        store
            .claim(&waiting, W2, LEASE, Some(3))
            .await
            .unwrap()
            .is_empty()
    );
    // One finishes: one more may start.
    let done = of_a[0];
    store
        .finish(
            W1,
            &[Finish {
                id: done.id,
                attempt: 1,
                outcome: FinishOutcome::Succeeded(json!({})),
            }],
        )
        .await
        .unwrap();
    assert_eq!(store.claim_due(&capped(20)).await.unwrap().len(), 1);
    assert!(b.iter().all(|id| got.iter().any(|t| t.id == *id)));
}

async fn claim_scope_not_delivered_by(plain: &dyn TaskStore, azure: &dyn TaskStore) {
    let foreign = many(plain, "flipper", 3).await;
    let own = many(azure, "flipper", 2).await;
    let scope = |stale| ClaimRequest {
        scope: ClaimScope::NotDeliveredBy {
            backend: "azure-queue",
            stale,
        },
        ..all(W1, 100)
    };
    let got = azure
        .claim_due(&scope(Duration::from_secs(3600)))
        .await
        .unwrap();
    let mut got_ids: Vec<TaskId> = got.iter().map(|t| t.id).collect();
    got_ids.sort();
    let mut want = foreign.clone();
    want.sort();
    assert_eq!(got_ids, want, "tasks of another backend are taken at once");
    // The queue's own tasks only once their hand-off is stale.
    let late = eventually(Duration::from_secs(10), "stale hand-offs", || async {
        let got = azure
            .claim_due(&scope(Duration::from_millis(100)))
            .await
            .unwrap();
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert!(late.iter().all(|t| own.contains(&t.id)));
}

async fn batch_insert_keeps_order_and_keys(store: Arc<dyn TaskStore>) {
    let key = |k: &str| Some(IdempotencyKey::parse(k).unwrap());
    let mut earlier = new_task("batcher", TaskKind::SystemNoop);
    earlier.idempotency_key = key("k-old");
    let earlier = store.create_task(earlier).await.unwrap().task;
    let mut items = Vec::new();
    for k in [Some("k1"), None, Some("k-old"), Some("k1"), None] {
        let mut t = new_task("batcher", TaskKind::SystemNoop);
        t.idempotency_key = k.and_then(key);
        items.push(t);
    }
    let wanted: Vec<TaskId> = items.iter().map(|t| t.id).collect();
    let out = store.create_tasks(items).await.unwrap();
    assert_eq!(out.len(), 5);
    let created: Vec<bool> = out.iter().map(|c| c.created).collect();
    assert_eq!(created, [true, true, false, false, true]);
    assert_eq!(out[0].task.id, wanted[0]);
    assert_eq!(out[1].task.id, wanted[1]);
    assert_eq!(
        out[2].task.id, earlier.id,
        "an earlier key returns its task"
    );
    assert_eq!(out[3].task.id, wanted[0], "a key repeated in the batch");
    assert_eq!(out[4].task.id, wanted[4]);
    assert!(out.iter().all(|c| c.task.status == TaskStatus::Queued));
    // Another owner's identical key is its own.
    let mut other = new_task("someone-else", TaskKind::SystemNoop);
    other.idempotency_key = key("k1");
    let out = store.create_tasks(vec![other]).await.unwrap();
    assert!(out[0].created);
}
