//! Fault injection against real processes and real PostgreSQL: whatever
//! process dies, whenever, every accepted task reaches a terminal state and
//! none runs twice at the same time.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{PgCluster, Phase5, Proc, eventually, free_port, sample};
use serde_json::{Value, json};

/// Fast recovery settings for tests (the defaults are in the README).
const FAST: &[(&str, &str)] = &[
    ("TASK_LEASE_SECS", "3"),
    ("TASK_HEARTBEAT_SECS", "1"),
    ("SWEEP_INTERVAL_SECS", "1"),
    ("REDISPATCH_AFTER_SECS", "2"),
    ("LOCK_RETRY_MS", "300"),
    ("CANCEL_POLL_MS", "100"),
];

fn with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut v = FAST.to_vec();
    v.extend_from_slice(extra);
    v
}

async fn submit_many(p: &Phase5, n: usize, body: Value) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(p.submit_ok(body.clone()).await);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_the_worker_three_times_and_every_task_still_succeeds_once_at_a_time() {
    let probe = std::env::temp_dir().join(format!("ra-probe-{}", uuid::Uuid::new_v4().simple()));
    let probe_s = probe.display().to_string();
    let env = with(&[
        ("WORKER_CONCURRENCY", "16"),
        ("RESUME_AGENT_TEST_PROBE", probe_s.as_str()),
    ]);
    let mut p = Phase5::start(&env).await;
    let ids = submit_many(
        &p,
        300,
        json!({"kind": "system.sleep", "payload": {"ms": 200}, "max_attempts": 10}),
    )
    .await;

    let mut kills: HashMap<u32, i64> = HashMap::new();
    for round in 1..=3 {
        p.wait_stat("succeeded", 40 * round, Duration::from_secs(60))
            .await;
        let pid = p.worker.child.id();
        kills.insert(pid, chrono::Utc::now().timestamp_micros());
        p.worker.kill9();
        p.worker = Proc::start("worker", "worker", &p.env);
        p.wait_ready(&format!("{}/ready", p.worker_url)).await;
    }
    let stats = p
        .wait_stat("succeeded", 300, Duration::from_secs(120))
        .await;
    assert_eq!(
        stats,
        json!({"queued": 0, "running": 0, "succeeded": 300, "failed": 0, "cancelled": 0})
    );

    // The handler's side effects: per task, attempts never overlap, and none
    // starts after the task was marked terminal.
    let mut finished = HashMap::new();
    for id in &ids {
        let t = p.task(id).await;
        let at = chrono::DateTime::parse_from_rfc3339(t["finished_at"].as_str().unwrap()).unwrap();
        finished.insert(id.clone(), at.timestamp_micros());
    }
    let reruns =
        common::assert_attempts_never_overlap(&common::read_probe(&probe), &ids, &kills, &finished);
    eprintln!("300 tasks, 3 kills: {reruns} attempts re-run after a kill");
    assert!(
        reruns > 0,
        "the kills interrupted nothing: the test proved nothing"
    );
    std::fs::remove_file(&probe).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_hand_off_delays_a_task_by_at_most_the_poll_interval() {
    // The web's WORKER_BASE_URL points nowhere: every hand-off fails after
    // the row is written (the same state as a web killed between the two,
    // or a wake-up lost on the network). The idle worker finds the task in
    // the store at its next poll.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let p = Phase5::start(&with(&[
        ("WORKER_BASE_URL", dead.as_str()),
        ("INTAKE_POLL_MS", "500"),
    ]))
    .await;
    let before = sample(
        &p.metrics(&p.worker_url).await,
        r#"tasks_claimed_total{via="store"}"#,
    )
    .unwrap_or(0.0);
    let mut waits = Vec::new();
    for _ in 0..5 {
        let submitted = Instant::now();
        let id = p.submit_ok(json!({"kind": "system.noop"})).await;
        // Bound: the poll interval (0.5 s), plus slack for a loaded machine.
        p.wait_status(&id, "succeeded", Duration::from_secs(5))
            .await;
        waits.push(submitted.elapsed());
    }
    eprintln!("submit → succeeded with every hand-off failing: {waits:?}");
    let web = p.metrics(&p.web_url).await;
    assert!(
        sample(&web, "task_dispatch_errors_total").unwrap_or(0.0) >= 5.0,
        "{web}"
    );
    let worker = p.metrics(&p.worker_url).await;
    let after = sample(&worker, r#"tasks_claimed_total{via="store"}"#).unwrap_or(0.0);
    assert!(
        after >= before + 5.0,
        "claimed from the store: {before} → {after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_short_tasks_hands_back_long_ones_and_exits_within_the_grace_period() {
    let mut p = Phase5::start(&with(&[
        ("SHUTDOWN_GRACE_SECS", "2"),
        ("WORKER_CONCURRENCY", "8"),
    ]))
    .await;
    let short = submit_many(
        &p,
        4,
        json!({"kind": "system.sleep", "payload": {"ms": 400}}),
    )
    .await;
    let long = submit_many(
        &p,
        3,
        json!({"kind": "system.sleep", "payload": {"ms": 6000}}),
    )
    .await;
    p.wait_stat("running", 7, Duration::from_secs(20)).await;
    let term = Instant::now();
    p.worker.sigterm();
    // Readiness goes 503 at once while draining.
    eventually(Duration::from_secs(2), "worker not ready", || async {
        let r = p
            .http
            .get(format!("{}/ready", p.worker_url))
            .send()
            .await
            .ok()?;
        (r.status().as_u16() == 503).then_some(())
    })
    .await;
    let status = p.worker.wait_exit(Duration::from_secs(10)).await;
    let took = term.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(
        took < Duration::from_secs(5),
        "exit took {took:?} with a 2 s grace period"
    );
    for id in &short {
        assert_eq!(
            p.task(id).await["status"],
            "succeeded",
            "short task {id} did not finish in the grace period"
        );
    }
    for id in &long {
        let t = p.task(id).await;
        assert_eq!(t["status"], "queued", "long task {id} not handed back: {t}");
        assert_eq!(
            t["attempts"], 0,
            "a hand-back must not spend the attempt: {t}"
        );
    }
    assert_eq!(
        p.stats().await["running"],
        0,
        "a task was left running with a dead owner"
    );
    p.worker = Proc::start("worker", "worker", &p.env);
    for id in &long {
        p.wait_status(id, "succeeded", Duration::from_secs(30))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_in_process_worker_stands_by_and_takes_over_when_the_first_dies() {
    let mut p = Phase5::start(&with(&[("WORKER_CONCURRENCY", "4")])).await;
    let mut env2 = p.env.clone();
    let port2 = free_port();
    env2.insert("WORKER_ADDR".into(), format!("127.0.0.1:{port2}"));
    let second = Proc::start("worker-2", "worker", &env2);
    let url2 = format!("http://127.0.0.1:{port2}");
    let body: Value = eventually(Duration::from_secs(20), "standby reports 503", || async {
        let r = p.http.get(format!("{url2}/ready")).send().await.ok()?;
        if r.status().as_u16() != 503 {
            return None;
        }
        let body: Value = r.json().await.ok()?;
        // Before its first lock attempt it reports "starting".
        body["checks"]["backend"]
            .as_str()?
            .starts_with("standby")
            .then_some(body)
    })
    .await;
    let backend = body["checks"]["backend"].as_str().unwrap();
    assert!(
        backend.contains("TASK_BACKEND=postgres") && backend.contains("exactly one worker replica"),
        "{body}"
    );
    assert_eq!(body["status"], "not_ready");
    let m = p.metrics(&url2).await;
    assert_eq!(sample(&m, "worker_replica_conflict"), Some(1.0), "{m}");
    // Several lock retries later, the operator was told exactly once.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let told = second
        .logs()
        .iter()
        .filter(|l| l.contains("stands by and runs nothing"))
        .count();
    assert_eq!(told, 1, "{:?}", second.logs());

    let ids = submit_many(
        &p,
        40,
        json!({"kind": "system.sleep", "payload": {"ms": 300}}),
    )
    .await;
    p.wait_stat("succeeded", 4, Duration::from_secs(20)).await;
    p.worker.kill9();
    // The standby takes over and finishes the queue.
    for id in &ids {
        p.wait_status(id, "succeeded", Duration::from_secs(60))
            .await;
    }
    let r = p.http.get(format!("{url2}/ready")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        second
            .logs()
            .iter()
            .any(|l| l.contains("took over the in-process lock"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_mid_load_loses_nothing_and_never_answers_500() {
    let pg = PgCluster::start();
    let p = Phase5::start_on(&pg.url(), &with(&[("DB_ACQUIRE_TIMEOUT_MS", "1000")])).await;
    let url = format!("{}/api/tasks", p.web_url);
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (http, url) = (p.http.clone(), url.clone());
        clients.push(tokio::spawn(async move {
            let mut out = Vec::new();
            for _ in 0..63 {
                let r = http
                    .post(&url)
                    .json(
                        &json!({"kind": "system.sleep", "payload": {"ms": 20}, "max_attempts": 10}),
                    )
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                out.push((status, body));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            out
        }));
    }
    // Mid-load: stop PostgreSQL, keep it down a moment, start it again.
    eventually(Duration::from_secs(30), "some load", || async {
        let s = p.stats().await;
        (s["succeeded"].as_i64()? >= 50).then_some(())
    })
    .await;
    pg.down();
    tokio::time::sleep(Duration::from_secs(2)).await;
    pg.up();
    let mut accepted = Vec::new();
    let mut refused = 0;
    for c in clients {
        for (status, body) in c.await.unwrap() {
            match status {
                202 => accepted.push(body["id"].as_str().unwrap().to_owned()),
                503 => {
                    assert_eq!(body["status"], 503, "503 without a problem body: {body}");
                    refused += 1;
                }
                other => panic!("submission answered {other}: {body}"),
            }
        }
    }
    eprintln!(
        "{} accepted, {refused} refused with 503 during the restart",
        accepted.len()
    );
    assert_eq!(accepted.len() + refused, 504);
    for id in &accepted {
        p.wait_status(id, "succeeded", Duration::from_secs(60))
            .await;
    }
    let s = eventually(Duration::from_secs(30), "nothing stuck", || async {
        let s = p.stats().await;
        (s["queued"] == json!(0) && s["running"] == json!(0)).then_some(s)
    })
    .await;
    assert_eq!(s["failed"], 0, "{s}");
    assert!(s["succeeded"].as_u64().unwrap() >= accepted.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_start_not_ready_while_postgres_is_down_and_recover_by_themselves() {
    let pg = PgCluster::start();
    // Migrate while up (the Kubernetes Job), then take the database away.
    let (wp, kp) = (free_port(), free_port());
    let mut env = common::base_env(&pg.url(), wp, kp);
    for (k, v) in FAST {
        env.insert((*k).into(), (*v).into());
    }
    env.insert("DB_ACQUIRE_TIMEOUT_MS".into(), "500".into());
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_resume-agent"))
        .arg("migrate")
        .env_clear()
        .envs(&env)
        .status()
        .unwrap();
    assert!(st.success());
    pg.down();
    let _worker = Proc::start("worker", "worker", &env);
    let _web = Proc::start("web", "web", &env);
    let http = reqwest::Client::new();
    let web = format!("http://127.0.0.1:{wp}");
    let worker = format!("http://127.0.0.1:{kp}");
    for url in [format!("{web}/api/ready"), format!("{worker}/ready")] {
        let body: Value = eventually(
            Duration::from_secs(20),
            "503 naming the database",
            || async {
                let r = http.get(&url).send().await.ok()?;
                if r.status().as_u16() != 503 {
                    return None;
                }
                r.json().await.ok()
            },
        )
        .await;
        assert!(
            body["checks"]["database"]
                .as_str()
                .unwrap()
                .starts_with("error"),
            "{body}"
        );
    }
    let health = http.get(format!("{web}/api/health")).send().await.unwrap();
    assert_eq!(
        health.status().as_u16(),
        200,
        "liveness must not depend on the database"
    );
    let r = http
        .post(format!("{web}/api/tasks"))
        .json(&json!({"kind": "system.noop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert_eq!(r.headers()["content-type"], "application/problem+json");

    pg.up();
    for url in [format!("{web}/api/ready"), format!("{worker}/ready")] {
        eventually(Duration::from_secs(30), "ready again", || async {
            let r = http.get(&url).send().await.ok()?;
            r.status().is_success().then_some(())
        })
        .await;
    }
    let r = http
        .post(format!("{web}/api/tasks"))
        .json(&json!({"kind": "system.noop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually(Duration::from_secs(20), "succeeded", || async {
        let t: Value = http
            .get(format!("{web}/api/tasks/{id}"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (t["status"] == "succeeded").then_some(())
    })
    .await;
    // The 503'd submission left nothing half-written.
    let s: Value = http
        .get(format!("{web}/api/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["succeeded"], 1, "{s}");
}
