//! Flipping TASK_BACKEND with tasks queued and running: in-process →
//! postgres → azure-queue → in-process on one database, each new deployment
//! started beside the old one, the old one then stopped (SIGTERM, which
//! hands unfinished attempts back). Every task succeeds, and at no moment
//! does a due task wait more than 10 s (sampled from the database
//! throughout).
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use common::{Proc, free_port};
use serde_json::{Value, json};

const FAST: &[(&str, &str)] = &[
    ("TASK_LEASE_SECS", "3"),
    ("TASK_HEARTBEAT_SECS", "1"),
    ("SWEEP_INTERVAL_SECS", "1"),
    ("CANCEL_POLL_MS", "100"),
    ("LOCK_RETRY_MS", "300"),
    ("SHUTDOWN_GRACE_SECS", "1"),
    ("WORKER_CONCURRENCY", "16"),
    ("AZURE_QUEUE_POLL_MIN_MS", "50"),
    ("AZURE_QUEUE_POLL_MAX_MS", "500"),
];

/// One deployment: a web and a worker of one backend.
struct Deployment {
    name: &'static str,
    web: Proc,
    worker: Proc,
    web_url: String,
}

async fn deploy(db: &str, backend: &'static str, queue: &str) -> Deployment {
    let (wp, kp) = (free_port(), free_port());
    let mut env: HashMap<String, String> = common::base_env(db, wp, kp);
    env.insert("TASK_BACKEND".into(), backend.into());
    if backend == "azure-queue" {
        let cs = std::env::var("TEST_AZURE_CONNECTION_STRING").expect(
            "TEST_AZURE_CONNECTION_STRING is not set: run the tests with scripts/test.sh, which starts Azurite",
        );
        env.insert("AZURE_STORAGE_CONNECTION_STRING".into(), cs);
        env.insert("AZURE_STORAGE_QUEUE_NAME".into(), queue.into());
        env.insert("BLOB_STORE".into(), "local".into());
    }
    for (k, v) in FAST {
        env.insert((*k).into(), (*v).into());
    }
    let worker = Proc::start(&format!("{backend}-worker"), "worker", &env);
    let web = Proc::start(&format!("{backend}-web"), "web", &env);
    let http = reqwest::Client::new();
    common::wait_http_ready(&http, &format!("http://127.0.0.1:{kp}/ready")).await;
    common::wait_http_ready(&http, &format!("http://127.0.0.1:{wp}/api/ready")).await;
    Deployment {
        name: backend,
        web,
        worker,
        web_url: format!("http://127.0.0.1:{wp}"),
    }
}

impl Deployment {
    async fn stop(mut self) {
        self.web.sigterm();
        self.worker.sigterm();
        let w = self.worker.wait_exit(Duration::from_secs(30)).await;
        self.web.wait_exit(Duration::from_secs(30)).await;
        assert!(w.success(), "{} worker exited with {w}", self.name);
    }
}

async fn submit(http: &reqwest::Client, web: &str, n: usize) -> Vec<String> {
    let body = json!({"kind": "system.sleep", "payload": {"ms": 300}, "max_attempts": 10});
    let r = http
        .post(format!("{web}/api/tasks/batch"))
        .json(&json!({"tasks": vec![body; n]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let v: Value = r.json().await.unwrap();
    v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

async fn counts(pool: &sqlx::PgPool) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'queued'),
                count(*) FILTER (WHERE status = 'running'),
                count(*) FILTER (WHERE status = 'succeeded') FROM tasks",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flips_between_all_three_backends_lose_nothing_and_keep_nothing_waiting() {
    let db = common::fresh_database().await;
    let pool = sqlx::PgPool::connect(&db).await.unwrap();
    sqlx::migrate!("migrations/postgres")
        .run(&pool)
        .await
        .unwrap();
    let queue = format!("flip-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let http = reqwest::Client::new();
    // The longest any due task has been waiting, sampled every 100 ms.
    let worst_ms = Arc::new(AtomicI64::new(0));
    let sampler = {
        let (pool, worst) = (pool.clone(), worst_ms.clone());
        tokio::spawn(async move {
            loop {
                let w: Option<f64> = sqlx::query_scalar(
                    "SELECT (extract(epoch FROM now() - min(run_after)) * 1000)::float8
                     FROM tasks WHERE status = 'queued' AND run_after <= now()",
                )
                .fetch_one(&pool)
                .await
                .unwrap();
                #[allow(clippy::cast_possible_truncation)]
                let w = w.unwrap_or(0.0) as i64;
                worst.fetch_max(w, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mut ids = Vec::new();
    let mut old = deploy(&db, "in-process", &queue).await;
    ids.extend(submit(&http, &old.web_url, 120).await);
    for next in ["postgres", "azure-queue", "in-process"] {
        // Mid-run: some done, some running, some queued.
        common::eventually(Duration::from_secs(60), "progress", || async {
            let (q, r, s) = counts(&pool).await;
            (q > 0 && r > 0 && s > 0).then_some(())
        })
        .await;
        let new = deploy(&db, next, &queue).await;
        let (q, r, s) = counts(&pool).await;
        eprintln!(
            "flip {} → {next}: {q} queued, {r} running, {s} succeeded",
            old.name
        );
        old.stop().await;
        ids.extend(submit(&http, &new.web_url, 60).await);
        old = new;
    }
    let api = common::Api {
        http: http.clone(),
        base: old.web_url.clone(),
    };
    for id in &ids {
        api.wait_status(id, "succeeded", Duration::from_secs(120))
            .await;
    }
    sampler.abort();
    let worst = worst_ms.load(Ordering::SeqCst);
    eprintln!(
        "{} tasks succeeded; the longest wait of a due task: {worst} ms",
        ids.len()
    );
    assert!(worst < 10_000, "a due task waited {worst} ms");
    old.stop().await;
}
