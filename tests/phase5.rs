//! End to end in the Phase 5 topology: `resume-agent web` and
//! `resume-agent worker` as separate processes against PostgreSQL, the web
//! calling the worker at `WORKER_BASE_URL`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Phase5, Proc, eventually, free_port, sample};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_noop_tasks_all_succeed() {
    let p = Phase5::start(&[]).await;
    let mut ids = Vec::new();
    let mut handles = Vec::new();
    for chunk in 0..16 {
        let http = p.http.clone();
        let url = format!("{}/api/tasks", p.web_url);
        handles.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..(1000 / 16 + usize::from(chunk < 1000 % 16)) {
                let r = http
                    .post(&url)
                    .json(&json!({"kind": "system.noop"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 202);
                let t: serde_json::Value = r.json().await.unwrap();
                ids.push(t["id"].as_str().unwrap().to_owned());
            }
            ids
        }));
    }
    for h in handles {
        ids.extend(h.await.unwrap());
    }
    assert_eq!(ids.len(), 1000);
    let stats = eventually(Duration::from_secs(60), "1000 succeeded", || async {
        let s = p.stats().await;
        (s["succeeded"] == json!(1000)).then_some(s)
    })
    .await;
    assert_eq!(
        stats,
        json!({"queued": 0, "running": 0, "succeeded": 1000, "failed": 0, "cancelled": 0})
    );
    // Spot-check a task's shape against the contract.
    let t = p.task(&ids[0]).await;
    assert_eq!(t["status"], "succeeded");
    assert_eq!(t["result"], json!({}));
    assert_eq!(t["attempts"], 1);
    assert_eq!(t["owner_id"], "dev-user-1");
    for field in ["created_at", "started_at", "finished_at"] {
        assert!(
            chrono::DateTime::parse_from_rfc3339(t[field].as_str().unwrap()).is_ok(),
            "{field}: {t}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_tasks_retry_exactly_max_attempts_then_fail_with_their_message() {
    let p = Phase5::start(&[]).await;
    let id = p
        .submit_ok(json!({"kind": "system.fail", "payload": {"message": "boom: disk on fire"}, "max_attempts": 3}))
        .await;
    let t = p.wait_status(&id, "failed", Duration::from_secs(30)).await;
    assert_eq!(t["attempts"], 3, "{t}");
    assert_eq!(t["error"], "boom: disk on fire");
    assert!(t["result"].is_null());
    let m = p.metrics(&p.worker_url).await;
    assert_eq!(
        sample(
            &m,
            r#"tasks_completed_total{kind="system.fail",outcome="retried"}"#
        ),
        Some(2.0),
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            r#"tasks_completed_total{kind="system.fail",outcome="failed"}"#
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_running_past_its_timeout_fails_with_a_timeout_error() {
    let p = Phase5::start(&[]).await;
    let id = p
        .submit_ok(json!({"kind": "system.sleep", "payload": {"ms": 30000}, "timeout_secs": 1, "max_attempts": 1}))
        .await;
    let t = p.wait_status(&id, "failed", Duration::from_secs(20)).await;
    assert!(
        t["error"].as_str().unwrap().contains("timed out after 1s"),
        "{t}"
    );
    assert_eq!(t["attempts"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_queued_and_a_running_task_both_end_cancelled() {
    // One slot: the first sleep runs, the second waits in the queue.
    let p = Phase5::start(&[("WORKER_CONCURRENCY", "1")]).await;
    let running = p
        .submit_ok(json!({"kind": "system.sleep", "payload": {"ms": 600000}}))
        .await;
    p.wait_status(&running, "running", Duration::from_secs(20))
        .await;
    let queued = p
        .submit_ok(json!({"kind": "system.sleep", "payload": {"ms": 600000}}))
        .await;

    let r = p
        .http
        .post(format!("{}/api/tasks/{queued}/cancel", p.web_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let t: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        t["status"], "cancelled",
        "a queued task is cancelled at once: {t}"
    );

    let r = p
        .http
        .post(format!("{}/api/tasks/{running}/cancel", p.web_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let started = std::time::Instant::now();
    let t = p
        .wait_status(&running, "cancelled", Duration::from_secs(10))
        .await;
    assert!(t["finished_at"].is_string());
    eprintln!(
        "running sleep stopped {:?} after the cancel request",
        started.elapsed()
    );

    // Cancelling a finished task is a conflict.
    let r = p
        .http
        .post(format!("{}/api/tasks/{running}/cancel", p.web_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // The worker slot is free again: new work runs.
    let next = p.submit_ok(json!({"kind": "system.noop"})).await;
    p.wait_status(&next, "succeeded", Duration::from_secs(20))
        .await;
    // The cancelled queued task never ran.
    assert_eq!(p.task(&queued).await["attempts"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_idempotency_key_twice_creates_one_task() {
    let p = Phase5::start(&[]).await;
    let send = || {
        p.http
            .post(format!("{}/api/tasks", p.web_url))
            .header("Idempotency-Key", "order-7")
            .json(&json!({"kind": "system.noop"}))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status().as_u16(), 202);
    let loc = first.headers()["location"].to_str().unwrap().to_owned();
    let first: serde_json::Value = first.json().await.unwrap();
    assert_eq!(loc, format!("/api/tasks/{}", first["id"].as_str().unwrap()));
    let second = send().await.unwrap();
    assert_eq!(second.status().as_u16(), 200);
    let second: serde_json::Value = second.json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    let s = eventually(Duration::from_secs(20), "one task", || async {
        let s = p.stats().await;
        (s["succeeded"] == json!(1)).then_some(s)
    })
    .await;
    assert_eq!(s["queued"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_endpoint_refuses_calls_without_the_token() {
    let p = Phase5::start(&[]).await;
    let task = json!({"messages": [{"task_id": uuid::Uuid::now_v7(), "attempt": 0}]});
    let url = format!("{}/internal/tasks", p.worker_url);
    let r = p.http.post(&url).json(&task).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = p
        .http
        .post(&url)
        .bearer_auth("wrong")
        .json(&task)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = p
        .http
        .post(&url)
        .bearer_auth("test-worker-token")
        .json(&task)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_passwords_never_reach_the_logs() {
    let secret = "Pw-DoNotLeak-8c1f";
    let db = common::fresh_database().await;
    let with_pw = db.replacen(
        "postgres://postgres@",
        &format!("postgres://postgres:{secret}@"),
        1,
    );
    assert!(
        with_pw.contains(secret),
        "test database URL has an unexpected shape: {db}"
    );
    let mut p = Phase5::start_on(&with_pw, &[("RUST_LOG", "debug")]).await;
    let id = p.submit_ok(json!({"kind": "system.noop"})).await;
    p.wait_status(&id, "succeeded", Duration::from_secs(20))
        .await;
    // A bad URL makes an error path log too.
    let bad = free_port();
    let mut env = p.env.clone();
    env.insert(
        "DATABASE_URL".into(),
        format!("postgres://postgres:{secret}@127.0.0.1:{bad}/nowhere"),
    );
    env.insert("WEB_ADDR".into(), format!("127.0.0.1:{}", free_port()));
    let mut broken = Proc::start("broken-web", "web", &env);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _ = reqwest::get(format!("http://{}/api/ready", env["WEB_ADDR"])).await;
    broken.sigterm();
    broken.wait_exit(Duration::from_secs(20)).await;
    p.web.sigterm();
    p.worker.sigterm();
    p.web.wait_exit(Duration::from_secs(30)).await;
    p.worker.wait_exit(Duration::from_secs(30)).await;
    let mut lines = p.web.logs();
    lines.extend(p.worker.logs());
    lines.extend(broken.logs());
    assert!(lines.len() > 5, "expected some logs, got {lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("[redacted]")),
        "the redacted URL should be logged at start"
    );
    for l in &lines {
        assert!(!l.contains(secret), "password leaked: {l}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_after_tasks_run_and_pass_promtool() {
    let p = Phase5::start(&[]).await;
    let before = p.metrics(&p.web_url).await;
    let n0 = sample(&before, r#"tasks_submitted_total{kind="system.noop"}"#).unwrap_or(0.0);
    let id = p.submit_ok(json!({"kind": "system.noop"})).await;
    p.wait_status(&id, "succeeded", Duration::from_secs(20))
        .await;
    let web = p.metrics(&p.web_url).await;
    let worker = p.metrics(&p.worker_url).await;
    assert_eq!(
        sample(&web, r#"tasks_submitted_total{kind="system.noop"}"#),
        Some(n0 + 1.0),
        "{web}"
    );
    assert!(
        sample(
            &web,
            r#"http_requests_total{method="POST",route="/api/tasks",status="202"}"#
        )
        .is_some(),
        "{web}"
    );
    assert!(
        web.contains(
            r#"http_request_duration_seconds_bucket{method="POST",route="/api/tasks",le="#
        ),
        "{web}"
    );
    assert!(web.contains(r#"db_pool_connections{state="active"}"#));
    assert_eq!(
        sample(
            &worker,
            r#"tasks_completed_total{kind="system.noop",outcome="succeeded"}"#
        ),
        Some(1.0),
        "{worker}"
    );
    assert!(
        worker.contains(r#"task_run_duration_seconds_bucket{kind="system.noop""#),
        "{worker}"
    );
    assert!(
        worker.contains(r#"task_queue_wait_seconds_bucket{kind="system.noop""#),
        "{worker}"
    );
    assert!(
        worker.contains(r#"tasks_in_flight{kind="system.noop"} 0"#),
        "{worker}"
    );
    assert!(
        worker.contains(r#"task_backend_queue_depth{backend="in-process"}"#),
        "{worker}"
    );
    assert!(
        worker.contains(r#"http_requests_total{method="GET",route="/metrics""#)
            || worker.contains("http_requests_total{"),
        "{worker}"
    );
    // Raw ids never become label values.
    assert!(!web.contains(&id), "a task id leaked into a metric label");
    for (name, body) in [("web", &web), ("worker", &worker)] {
        common::promtool_check(name, body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_on_embedded_defaults_with_nothing_configured() {
    // Only the ports are moved off 3000/8000 (the suite runs in parallel)
    // and the working directory is a fresh folder: no database, no DATA_DIR.
    let dir = std::env::temp_dir().join(format!("ra-serve-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let (wp, kp) = (free_port(), free_port());
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_resume-agent"));
    cmd.arg("serve")
        .current_dir(&dir)
        .env_clear()
        .env("WEB_ADDR", format!("127.0.0.1:{wp}"))
        .env("WORKER_ADDR", format!("127.0.0.1:{kp}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{wp}");
    eventually(Duration::from_secs(30), "serve ready", || async {
        let r = http.get(format!("{base}/api/ready")).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
    let r = http
        .post(format!("{base}/api/tasks"))
        .json(&json!({"kind": "system.noop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    eventually(Duration::from_secs(20), "succeeded", || async {
        let t: serde_json::Value = http
            .get(format!("{base}/api/tasks/{id}"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (t["status"] == "succeeded").then_some(())
    })
    .await;
    assert!(
        dir.join("data/resume-agent.db").exists(),
        "the embedded database lives in ./data"
    );
    let _ = child.kill();
    let _ = child.wait();
    std::fs::remove_dir_all(&dir).ok();
}
