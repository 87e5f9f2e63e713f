//! Pull-based intake against real processes and real PostgreSQL: a worker
//! restarted with a backlog becomes ready at once and drains it; the
//! `postgres` backend shares work among several workers, each task once,
//! and survives kill -9; one owner cannot park another behind its backlog;
//! batch submission keeps its contract.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::{Phase5, Proc, free_port};
use serde_json::{Value, json};

const FAST: &[(&str, &str)] = &[
    ("TASK_LEASE_SECS", "3"),
    ("TASK_HEARTBEAT_SECS", "1"),
    ("SWEEP_INTERVAL_SECS", "1"),
    ("LOCK_RETRY_MS", "300"),
    ("CANCEL_POLL_MS", "100"),
];

fn probe_path() -> (std::path::PathBuf, String) {
    let p = std::env::temp_dir().join(format!("ra-probe-{}", uuid::Uuid::new_v4().simple()));
    let s = p.display().to_string();
    (p, s)
}

/// Submits `n` tasks of `body` through `POST /api/tasks/batch` (100 a call).
async fn submit_batched(http: &reqwest::Client, web: &str, n: usize, body: &Value) -> Vec<String> {
    let mut ids = Vec::with_capacity(n);
    let mut left = n;
    while left > 0 {
        let k = left.min(100);
        let r = http
            .post(format!("{web}/api/tasks/batch"))
            .json(&json!({"tasks": vec![body.clone(); k]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202);
        let v: Value = r.json().await.unwrap();
        for t in v["tasks"].as_array().unwrap() {
            ids.push(t["id"].as_str().unwrap().to_owned());
        }
        left -= k;
    }
    ids
}

fn finished_at(v: &Value) -> i64 {
    chrono::DateTime::parse_from_rfc3339(v["finished_at"].as_str().unwrap())
        .unwrap()
        .timestamp_micros()
}

async fn backlog_drill(n: usize) {
    let (probe, probe_s) = probe_path();
    let mut env = FAST.to_vec();
    env.push(("RESUME_AGENT_TEST_PROBE", probe_s.as_str()));
    let mut p = Phase5::start(&env).await;
    // The worker goes away; the web keeps accepting.
    p.worker.sigterm();
    p.worker.wait_exit(Duration::from_secs(30)).await;
    let ids = submit_batched(&p.http, &p.web_url, n, &json!({"kind": "system.noop"})).await;
    assert_eq!(p.stats().await["queued"], n);
    // A new worker with the whole backlog in the store: ready at once.
    let started = Instant::now();
    p.worker = Proc::start("worker", "worker", &p.env);
    p.wait_ready(&format!("{}/ready", p.worker_url)).await;
    let ready = started.elapsed();
    let stats = p
        .wait_stat(
            "succeeded",
            i64::try_from(n).unwrap(),
            Duration::from_secs(300),
        )
        .await;
    let drained = started.elapsed();
    eprintln!("backlog {n}: worker ready after {ready:?}, all succeeded after {drained:?}");
    assert_eq!(
        stats,
        json!({"queued": 0, "running": 0, "succeeded": n, "failed": 0, "cancelled": 0})
    );
    // Each ran exactly once (no kill: every attempt ended, none repeated).
    let lines = common::read_probe(&probe);
    let starts: Vec<&common::ProbeLine> = lines.iter().filter(|l| l.start).collect();
    assert_eq!(starts.len(), n, "attempts started");
    let distinct: HashSet<&str> = starts.iter().map(|l| l.task.as_str()).collect();
    assert_eq!(distinct.len(), n, "a task ran twice");
    let sample: Vec<String> = ids.iter().step_by(n / 50).cloned().collect();
    let mut finished = HashMap::new();
    for id in &sample {
        finished.insert(id.clone(), finished_at(&p.task(id).await));
    }
    common::assert_attempts_never_overlap(&lines, &sample, &HashMap::new(), &finished);
    std::fs::remove_file(&probe).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_restarted_with_2000_queued_is_ready_and_runs_each_once() {
    backlog_drill(2_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_restarted_with_20000_queued_is_ready_and_runs_each_once() {
    backlog_drill(20_000).await;
}

/// `web` + `n` workers on `TASK_BACKEND=postgres`, one fresh database.
async fn postgres_backend(n: usize, extra: &[(&str, &str)]) -> (Phase5, Vec<(Proc, String)>) {
    let mut env = FAST.to_vec();
    env.push(("TASK_BACKEND", "postgres"));
    env.extend_from_slice(extra);
    let p = Phase5::start(&env).await;
    let mut more = Vec::new();
    for i in 1..n {
        let mut e = p.env.clone();
        let port = free_port();
        e.insert("WORKER_ADDR".into(), format!("127.0.0.1:{port}"));
        let proc = Proc::start(&format!("worker-{}", i + 1), "worker", &e);
        let url = format!("http://127.0.0.1:{port}");
        p.wait_ready(&format!("{url}/ready")).await;
        more.push((proc, url));
    }
    (p, more)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_postgres_workers_share_2000_tasks_each_exactly_once() {
    let (probe, probe_s) = probe_path();
    let (p, others) = postgres_backend(
        3,
        &[
            ("RESUME_AGENT_TEST_PROBE", probe_s.as_str()),
            ("WORKER_CONCURRENCY", "8"),
        ],
    )
    .await;
    let ids = submit_batched(
        &p.http,
        &p.web_url,
        2_000,
        &json!({"kind": "system.sleep", "payload": {"ms": 5}}),
    )
    .await;
    let stats = p
        .wait_stat("succeeded", 2_000, Duration::from_secs(180))
        .await;
    assert_eq!(
        stats,
        json!({"queued": 0, "running": 0, "succeeded": 2000, "failed": 0, "cancelled": 0})
    );
    let lines = common::read_probe(&probe);
    let starts: Vec<&common::ProbeLine> = lines.iter().filter(|l| l.start).collect();
    assert_eq!(starts.len(), 2_000, "each task started exactly once");
    let distinct: HashSet<&str> = starts.iter().map(|l| l.task.as_str()).collect();
    assert_eq!(distinct.len(), 2_000);
    let mut per_worker: HashMap<u32, usize> = HashMap::new();
    for s in &starts {
        *per_worker.entry(s.pid).or_default() += 1;
    }
    eprintln!("tasks per worker process: {per_worker:?}");
    assert_eq!(per_worker.len(), 3, "every worker took a share");
    assert!(ids.len() == 2_000);
    drop(others);
    std::fs::remove_file(&probe).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_of_three_postgres_workers_loses_nothing() {
    let (probe, probe_s) = probe_path();
    let (mut p, others) = postgres_backend(
        3,
        &[
            ("RESUME_AGENT_TEST_PROBE", probe_s.as_str()),
            ("WORKER_CONCURRENCY", "8"),
        ],
    )
    .await;
    let ids = submit_batched(
        &p.http,
        &p.web_url,
        300,
        &json!({"kind": "system.sleep", "payload": {"ms": 200}, "max_attempts": 10}),
    )
    .await;
    p.wait_stat("succeeded", 60, Duration::from_secs(60)).await;
    // Kill it while it runs something (else the kill proves nothing).
    let url = p.worker_url.clone();
    common::eventually(
        Duration::from_secs(30),
        "the first worker runs tasks",
        || async {
            let m = p.metrics(&url).await;
            (common::sample(&m, r#"tasks_in_flight{kind="system.sleep"}"#).unwrap_or(0.0) > 0.0)
                .then_some(())
        },
    )
    .await;
    let mut kills = HashMap::new();
    kills.insert(p.worker.child.id(), chrono::Utc::now().timestamp_micros());
    p.worker.kill9();
    let stats = p
        .wait_stat("succeeded", 300, Duration::from_secs(120))
        .await;
    assert_eq!(
        stats,
        json!({"queued": 0, "running": 0, "succeeded": 300, "failed": 0, "cancelled": 0})
    );
    let mut finished = HashMap::new();
    for id in &ids {
        finished.insert(id.clone(), finished_at(&p.task(id).await));
    }
    let reruns =
        common::assert_attempts_never_overlap(&common::read_probe(&probe), &ids, &kills, &finished);
    let lines = common::read_probe(&probe);
    let killed: Vec<&common::ProbeLine> = lines
        .iter()
        .filter(|l| kills.contains_key(&l.pid))
        .collect();
    eprintln!(
        "300 tasks, one of three workers killed: {reruns} attempts re-run; the killed worker logged {} probe lines",
        killed.len()
    );
    assert!(
        reruns > 0,
        "the kill interrupted nothing: the test proved nothing"
    );
    drop(others);
    std::fs::remove_file(&probe).ok();
}

/// A second web process on `p`'s database whose unauthenticated caller is
/// `owner` (AUTH_MODE=none: every request acts as DEFAULT_OWNER_USER_ID).
async fn web_as(p: &Phase5, owner: &str) -> (Proc, String) {
    let mut e = p.env.clone();
    let port = free_port();
    e.insert("WEB_ADDR".into(), format!("127.0.0.1:{port}"));
    e.insert("DEFAULT_OWNER_USER_ID".into(), owner.into());
    let proc = Proc::start(&format!("web-{owner}"), "web", &e);
    let url = format!("http://127.0.0.1:{port}");
    p.wait_ready(&format!("{url}/api/ready")).await;
    (proc, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_owners_backlog_does_not_park_another_owner() {
    let p = Phase5::start(&[("WORKER_CONCURRENCY", "16")]).await;
    let (_web_b, web_b) = web_as(&p, "owner-b").await;
    // Owner A (the default owner) queues 1,000 one-second sleeps.
    submit_batched(
        &p.http,
        &p.web_url,
        1_000,
        &json!({"kind": "system.sleep", "payload": {"ms": 1000}}),
    )
    .await;
    // A holds every slot but the one a worker of 4 or more slots keeps for
    // other owners (15 of 16): waiting for 16 would wait on a race.
    p.wait_stat("running", 15, Duration::from_secs(30)).await;
    // Owner B's noops, one after another, each waits for a free slot only.
    let b = common::Api {
        http: p.http.clone(),
        base: web_b.clone(),
    };
    let mut waits = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        let id = b.submit_ok(&json!({"kind": "system.noop"})).await;
        b.wait_status(&id, "succeeded", Duration::from_secs(10))
            .await;
        waits.push(started.elapsed());
    }
    waits.sort();
    eprintln!("owner B's noops behind owner A's 1,000 sleeps: {waits:?}");
    // Generous bound (the benchmark states the real figure): a slot frees
    // within a second, and B is next in line whenever one does.
    assert!(
        waits[waits.len() - 1] < Duration::from_secs(2),
        "owner B waited behind owner A: {waits:?}"
    );
    let a_queued = p.stats().await["queued"].as_i64().unwrap();
    assert!(
        a_queued > 0,
        "owner A's backlog had drained: the test proved nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_max_running_caps_one_owner_and_leaves_slots_to_others() {
    let (probe, probe_s) = probe_path();
    let p = Phase5::start(&[
        ("WORKER_CONCURRENCY", "8"),
        ("OWNER_MAX_RUNNING", "3"),
        ("RESUME_AGENT_TEST_PROBE", probe_s.as_str()),
    ])
    .await;
    let (_web_b, web_b) = web_as(&p, "owner-b").await;
    let a = submit_batched(
        &p.http,
        &p.web_url,
        30,
        &json!({"kind": "system.sleep", "payload": {"ms": 300}}),
    )
    .await;
    let b = submit_batched(
        &p.http,
        &web_b,
        6,
        &json!({"kind": "system.sleep", "payload": {"ms": 300}}),
    )
    .await;
    p.wait_stat("succeeded", 30, Duration::from_secs(60)).await;
    let bapi = common::Api {
        http: p.http.clone(),
        base: web_b,
    };
    bapi.wait_stat("succeeded", 6, Duration::from_secs(60))
        .await;
    // From the probe: never more than 3 of one owner's attempts at once.
    let lines = common::read_probe(&probe);
    for (owner, ids) in [("a", &a), ("b", &b)] {
        let set: HashSet<&str> = ids.iter().map(String::as_str).collect();
        let mut events: Vec<(i64, i32)> = lines
            .iter()
            .filter(|l| set.contains(l.task.as_str()))
            .map(|l| (l.at_us, if l.start { 1 } else { -1 }))
            .collect();
        events.sort_by_key(|(t, d)| (*t, *d));
        let (mut now, mut peak) = (0, 0);
        for (_, d) in events {
            now += d;
            peak = peak.max(now);
        }
        eprintln!("owner {owner}: at most {peak} running at once");
        assert!(
            peak <= 3,
            "owner {owner} ran {peak} at once with a cap of 3"
        );
        assert!(peak >= 1);
    }
    std::fs::remove_file(&probe).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_submission_keeps_its_contract() {
    let p = Phase5::start(&[("MAX_BODY_BYTES", "65536")]).await;
    let (_web_b, web_b) = web_as(&p, "owner-b").await;
    let post = |base: String, body: Value| {
        let http = p.http.clone();
        async move {
            let r = http
                .post(format!("{base}/api/tasks/batch"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
            (status, ct, r.json::<Value>().await.unwrap())
        }
    };
    let noop = json!({"kind": "system.noop"});
    // Limits.
    let (s, ct, v) = post(
        p.web_url.clone(),
        json!({"tasks": vec![noop.clone(); 1001]}),
    )
    .await;
    assert_eq!((s, ct.as_str()), (400, "application/problem+json"), "{v}");
    let (s, _, _) = post(p.web_url.clone(), json!({"tasks": []})).await;
    assert_eq!(s, 400);
    let big = json!({"kind": "system.fail", "payload": {"message": "x".repeat(70_000)}});
    let (s, ct, _) = post(p.web_url.clone(), json!({"tasks": [big]})).await;
    assert_eq!((s, ct.as_str()), (413, "application/problem+json"));
    // Atomic validation: one bad item rejects the batch, naming it.
    let (s, _, v) = post(
        p.web_url.clone(),
        json!({"tasks": [noop, {"kind": "system.sleep", "payload": {"ms": -1}}, noop]}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(v["detail"].as_str().unwrap().starts_with("tasks[1]"), "{v}");
    let stats = p.stats().await;
    assert_eq!(
        stats["queued"].as_i64().unwrap() + stats["succeeded"].as_i64().unwrap(),
        0,
        "nothing created: {stats}"
    );
    // Per-item idempotency, in request order.
    let items = json!({"tasks": [
        {"kind": "system.noop", "idempotency_key": "a"},
        {"kind": "system.noop"},
        {"kind": "system.noop", "idempotency_key": "a"},
    ]});
    let (s, _, first) = post(p.web_url.clone(), items.clone()).await;
    assert_eq!(s, 202);
    let t = first["tasks"].as_array().unwrap();
    assert_eq!(t.len(), 3);
    assert_eq!(t[0]["id"], t[2]["id"], "a key repeated inside the batch");
    assert_ne!(t[0]["id"], t[1]["id"]);
    let again = json!({"tasks": [{"kind": "system.noop", "idempotency_key": "a"}]});
    let (s, _, v) = post(p.web_url.clone(), again.clone()).await;
    assert_eq!(s, 200, "nothing new: 200");
    assert_eq!(v["tasks"][0]["id"], t[0]["id"]);
    // Owner scoping: the same key from another owner is another task.
    let (s, _, v) = post(web_b.clone(), again).await;
    assert_eq!(s, 202);
    assert_ne!(v["tasks"][0]["id"], t[0]["id"]);
    assert_eq!(v["tasks"][0]["owner_id"], "owner-b");
    let api = p.api();
    for task in t {
        api.wait_status(
            task["id"].as_str().unwrap(),
            "succeeded",
            Duration::from_secs(30),
        )
        .await;
    }
    // Another owner never sees them.
    let r = p
        .http
        .get(format!(
            "{web_b}/api/tasks/{}",
            t[1]["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}
