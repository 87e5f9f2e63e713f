//! Phase 6 end to end: the real binary as separate processes, real
//! PostgreSQL, real Azurite (`TEST_AZURE_CONNECTION_STRING` from
//! `scripts/test.sh`). Each test has its own database, queue and container,
//! so they run in parallel on one Azurite; the outage test runs an Azurite
//! of its own.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::{Phase5, ProbeLine, Proc, eventually, free_port, fresh_database, read_probe, sample};
use futures::StreamExt as _;
use resume_agent_azure::StorageAccount;
use resume_agent_core::config::AzureQueueConfig;
use resume_agent_core::secret::Secret;
use resume_agent_queue::azure_queue::AzureQueue;
use serde_json::{Value, json};

/// Fast recovery settings for tests (the defaults are in the README).
const FAST: &[(&str, &str)] = &[
    ("TASK_LEASE_SECS", "3"),
    ("TASK_HEARTBEAT_SECS", "1"),
    ("SWEEP_INTERVAL_SECS", "1"),
    ("CANCEL_POLL_MS", "100"),
    ("AZURE_QUEUE_POLL_MIN_MS", "50"),
    ("AZURE_QUEUE_POLL_MAX_MS", "500"),
    ("AZURE_STORAGE_TIMEOUT_MS", "3000"),
];

fn azurite() -> String {
    std::env::var("TEST_AZURE_CONNECTION_STRING").expect(
        "TEST_AZURE_CONNECTION_STRING is not set: run the tests with scripts/test.sh, which starts Azurite",
    )
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..16]
    )
}

fn probe_file() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("ra-probe-{}", uuid::Uuid::new_v4().simple()))
}

/// One web and N workers on one Azure queue.
struct Phase6 {
    web: Proc,
    workers: Vec<Proc>,
    worker_urls: Vec<String>,
    web_url: String,
    env: HashMap<String, String>,
    http: reqwest::Client,
    queue: String,
    connection_string: String,
}

impl Phase6 {
    async fn start(workers: usize, extra: &[(&str, &str)]) -> Self {
        let db = fresh_database().await;
        Self::start_on(&db, &azurite(), workers, extra).await
    }

    async fn start_on(db: &str, cs: &str, workers: usize, extra: &[(&str, &str)]) -> Self {
        let wp = free_port();
        let mut env = common::base_env(db, wp, free_port());
        let queue = unique("e2e");
        env.insert("TASK_BACKEND".into(), "azure-queue".into());
        env.insert("AZURE_STORAGE_CONNECTION_STRING".into(), cs.into());
        env.insert("AZURE_STORAGE_QUEUE_NAME".into(), queue.clone());
        env.insert("AZURE_STORAGE_CONTAINER_NAME".into(), unique("files"));
        env.remove("WORKER_BASE_URL");
        for (k, v) in FAST.iter().chain(extra) {
            env.insert((*k).into(), (*v).into());
        }
        migrate(&env);
        let mut me = Self {
            web: Proc::start("web", "web", &env),
            workers: Vec::new(),
            worker_urls: Vec::new(),
            web_url: format!("http://127.0.0.1:{wp}"),
            env,
            http: reqwest::Client::new(),
            queue,
            connection_string: cs.to_owned(),
        };
        for _ in 0..workers {
            me.add_worker().await;
        }
        me.wait_ready(&format!("{}/api/ready", me.web_url)).await;
        me
    }

    async fn add_worker(&mut self) {
        let port = free_port();
        let mut env = self.env.clone();
        env.insert("WORKER_ADDR".into(), format!("127.0.0.1:{port}"));
        let n = self.workers.len() + 1;
        self.workers
            .push(Proc::start(&format!("worker-{n}"), "worker", &env));
        let url = format!("http://127.0.0.1:{port}");
        self.wait_ready(&format!("{url}/ready")).await;
        self.worker_urls.push(url);
    }

    async fn wait_ready(&self, url: &str) {
        common::wait_http_ready(&self.http, url).await;
    }

    async fn submit(&self, body: &Value) -> (u16, Value) {
        self.api().submit(body).await
    }

    fn api(&self) -> common::Api {
        common::Api {
            http: self.http.clone(),
            base: self.web_url.clone(),
        }
    }

    /// Submits `n` copies of `body`, 16 at a time; every one must be accepted.
    async fn submit_many(&self, n: usize, body: Value) -> Vec<String> {
        futures::stream::iter(0..n)
            .map(|_| async {
                let (status, t) = self.submit(&body).await;
                assert_eq!(status, 202, "{t}");
                t["id"].as_str().unwrap().to_owned()
            })
            .buffer_unordered(16)
            .collect()
            .await
    }

    async fn task(&self, id: &str) -> Value {
        self.api().task(id).await
    }

    async fn wait_status(&self, id: &str, status: &str, deadline: Duration) -> Value {
        self.api().wait_status(id, status, deadline).await
    }

    async fn stats(&self) -> Value {
        self.api().stats().await
    }

    async fn wait_stat(&self, key: &str, at_least: i64, deadline: Duration) -> Value {
        self.api().wait_stat(key, at_least, deadline).await
    }

    /// The queue as a test-side client sees it.
    fn queue_client(&self) -> std::sync::Arc<AzureQueue> {
        let account =
            StorageAccount::from_connection_string(&Secret::new(self.connection_string.clone()))
                .unwrap();
        AzureQueue::new(
            account,
            &self.queue,
            AzureQueueConfig::default(),
            Duration::from_secs(5),
        )
        .unwrap()
    }
}

fn migrate(env: &HashMap<String, String>) {
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_resume-agent"))
        .arg("migrate")
        .env_clear()
        .envs(env)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "migrate failed");
}

/// Sum of `azure_storage_requests_total` over every operation and outcome.
fn storage_calls(exposition: &str) -> f64 {
    exposition
        .lines()
        .filter(|l| l.starts_with("azure_storage_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_share_2000_noop_tasks_and_run_each_exactly_once() {
    let probe = probe_file();
    let probe_s = probe.display().to_string();
    let p = Phase6::start(
        3,
        &[
            ("WORKER_CONCURRENCY", "8"),
            ("RESUME_AGENT_TEST_PROBE", probe_s.as_str()),
            // Exactly once needs no lease to expire on a loaded CI machine:
            // the default lease and heartbeat, not the fast test ones.
            ("TASK_LEASE_SECS", "30"),
            ("TASK_HEARTBEAT_SECS", "10"),
            ("AZURE_STORAGE_TIMEOUT_MS", "10000"),
        ],
    )
    .await;
    let started = Instant::now();
    let ids = p.submit_many(2000, json!({"kind": "system.noop"})).await;
    let stats = p
        .wait_stat("succeeded", 2000, Duration::from_secs(240))
        .await;
    eprintln!(
        "2000 noop tasks through Azurite with 3 workers in {:?}",
        started.elapsed()
    );
    assert_eq!(
        stats,
        json!({"queued": 0, "running": 0, "succeeded": 2000, "failed": 0, "cancelled": 0})
    );
    let lines = read_probe(&probe);
    let starts: Vec<&ProbeLine> = lines.iter().filter(|l| l.start).collect();
    let mut per_task: HashMap<&str, usize> = HashMap::new();
    let mut per_pid: HashMap<u32, usize> = HashMap::new();
    for l in &starts {
        *per_task.entry(l.task.as_str()).or_default() += 1;
        *per_pid.entry(l.pid).or_default() += 1;
    }
    for id in &ids {
        assert_eq!(
            per_task.get(id.as_str()),
            Some(&1),
            "task {id} ran {:?} times",
            per_task.get(id.as_str())
        );
    }
    assert_eq!(
        starts.len(),
        2000,
        "the handler ran more often than there are tasks"
    );
    let pids: HashSet<u32> = p.workers.iter().map(|w| w.child.id()).collect();
    eprintln!("runs per worker: {per_pid:?}");
    assert_eq!(
        per_pid.len(),
        3,
        "not every worker ran a share: {per_pid:?}"
    );
    assert!(
        per_pid.keys().all(|pid| pids.contains(pid)),
        "{per_pid:?} vs {pids:?}"
    );
    // The metrics the README promises.
    let m = reqwest::get(format!("{}/metrics", p.worker_urls[0]))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        sample(&m, r#"task_backend_queue_depth{backend="azure-queue"}"#).is_some(),
        "{m}"
    );
    assert!(
        sample(&m, r#"task_backend_poison_depth{backend="azure-queue"}"#).is_some(),
        "{m}"
    );
    assert!(
        sample(
            &m,
            r#"azure_storage_requests_total{operation="queue_receive",outcome="ok"}"#
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{m}"
    );
    let w = reqwest::get(format!("{}/metrics", p.web_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // One Put Message per task from the web (a send that timed out on a
    // loaded machine is counted as `unavailable` and re-sent by the sweeper).
    let sends: f64 = ["ok", "unavailable"]
        .iter()
        .filter_map(|o| {
            sample(
                &w,
                &format!(r#"azure_storage_requests_total{{operation="queue_send",outcome="{o}"}}"#),
            )
        })
        .sum();
    assert!(sends >= 2000.0, "{w}");
    let m = reqwest::get(format!("{}/metrics", p.worker_urls[1]))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Storage transactions per task at steady load, every process counted
    // (web sends, workers' receives, deletes, extensions, empty polls).
    let mut total = storage_calls(&w);
    for url in &p.worker_urls {
        let m = reqwest::get(format!("{url}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        total += storage_calls(&m);
    }
    eprintln!(
        "storage transactions per task: {:.2} ({total} calls for 2000 tasks)",
        total / 2000.0
    );
    assert!(total / 2000.0 < 4.0, "{total} storage calls for 2000 tasks");
    for (name, body) in [("web", &w), ("worker", &m)] {
        common::promtool_check(name, body);
    }
    std::fs::remove_file(&probe).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_one_of_three_workers_and_all_300_sleeps_succeed_never_twice_at_once() {
    let probe = probe_file();
    let probe_s = probe.display().to_string();
    let mut p = Phase6::start(
        3,
        &[
            ("WORKER_CONCURRENCY", "16"),
            ("RESUME_AGENT_TEST_PROBE", probe_s.as_str()),
            ("REDISPATCH_AFTER_SECS", "2"),
        ],
    )
    .await;
    let ids = p
        .submit_many(
            300,
            json!({"kind": "system.sleep", "payload": {"ms": 300}, "max_attempts": 10}),
        )
        .await;
    p.wait_stat("succeeded", 40, Duration::from_secs(60)).await;
    // Kill the worker that is running something right now.
    let running: HashSet<u32> = {
        let lines = read_probe(&probe);
        let mut open: HashMap<(&str, u32), i32> = HashMap::new();
        for l in &lines {
            *open.entry((l.task.as_str(), l.pid)).or_default() += if l.start { 1 } else { -1 };
        }
        open.iter()
            .filter(|(_, n)| **n > 0)
            .map(|((_, pid), _)| *pid)
            .collect()
    };
    let victim = p
        .workers
        .iter()
        .position(|w| running.contains(&w.child.id()))
        .unwrap_or(0);
    let killed_pid = p.workers[victim].child.id();
    let killed_at = chrono::Utc::now().timestamp_micros();
    p.workers[victim].kill9();
    let stats = p
        .wait_stat("succeeded", 300, Duration::from_secs(120))
        .await;
    assert_eq!(
        stats,
        json!({"queued": 0, "running": 0, "succeeded": 300, "failed": 0, "cancelled": 0})
    );
    let kills = HashMap::from([(killed_pid, killed_at)]);
    let reruns = common::assert_attempts_never_overlap(
        &common::read_probe(&probe),
        &ids,
        &kills,
        &HashMap::new(),
    );
    eprintln!("300 tasks, one worker killed: {reruns} attempts re-run");
    assert!(
        reruns > 0,
        "the kill interrupted nothing: the test proved nothing"
    );
    std::fs::remove_file(&probe).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_failing_its_last_attempt_is_failed_and_its_message_is_in_the_poison_queue() {
    let p = Phase6::start(1, &[]).await;
    let (status, t) = p
        .submit(&json!({"kind": "system.fail", "payload": {"message": "boom"}, "max_attempts": 2}))
        .await;
    assert_eq!(status, 202, "{t}");
    let id = t["id"].as_str().unwrap();
    let done = p.wait_status(id, "failed", Duration::from_secs(30)).await;
    assert_eq!(done["attempts"], 2, "{done}");
    let q = p.queue_client();
    let poisoned = eventually(Duration::from_secs(10), "the poison message", || async {
        let texts = q.peek(true, 32).await.ok()?;
        texts.into_iter().find(|t| t.contains(id))
    })
    .await;
    // The message as last sent: the task id and the attempts spent then.
    let v: Value = serde_json::from_str(&poisoned).unwrap();
    assert_eq!(v["task_id"], id, "{poisoned}");
    assert!(
        v["attempt"].as_i64().is_some_and(|a| (0..2).contains(&a)),
        "{poisoned}"
    );
    assert!(
        q.peek(false, 32).await.unwrap().is_empty(),
        "still in the task queue"
    );
    let m = reqwest::get(format!("{}/metrics", p.worker_urls[0]))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        sample(&m, r#"task_backend_poison_depth{backend="azure-queue"}"#),
        Some(1.0),
        "{:?}",
        q.peek(true, 32).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_a_dead_lettered_task_removes_its_poison_message() {
    let mut p = Phase6::start(1, &[]).await;
    let (status, t) = p
        .submit(&json!({"kind": "system.fail", "payload": {"message": "boom"}, "max_attempts": 1}))
        .await;
    assert_eq!(status, 202, "{t}");
    let id = t["id"].as_str().unwrap().to_owned();
    p.wait_status(&id, "failed", Duration::from_secs(30)).await;
    let q = p.queue_client();
    eventually(Duration::from_secs(10), "the poison message", || async {
        let texts = q.peek(true, 32).await.ok()?;
        texts.iter().any(|t| t.contains(&id)).then_some(())
    })
    .await;
    let queues: Value = p
        .http
        .get(format!("{}/api/queues", p.web_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(queues["poison_depth"], 1, "{queues}");
    // No worker: the retried task stays queued while we look at the poison queue.
    let mut w = p.workers.remove(0);
    w.sigterm();
    w.wait_exit(Duration::from_secs(30)).await;
    let r = p
        .http
        .post(format!("{}/api/tasks/{id}/retry", p.web_url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let retried: Value = r.json().await.unwrap();
    assert_eq!(retried["status"], "queued", "{retried}");
    // The retry removed the dead-letter copy (it reappears only if a
    // poison read hid it: wait past that and look again).
    eventually(
        Duration::from_secs(15),
        "the poison message gone",
        || async {
            let texts = q.peek(true, 32).await.ok()?;
            (!texts.iter().any(|t| t.contains(&id))).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert!(
        !q.peek(true, 32)
            .await
            .unwrap()
            .iter()
            .any(|t| t.contains(&id)),
        "the poison message came back"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_longer_than_the_visibility_timeout_is_not_picked_up_by_a_second_worker() {
    let probe = probe_file();
    let probe_s = probe.display().to_string();
    // Lease (= visibility timeout) 3 s, heartbeat 1 s; the task sleeps 8 s.
    let p = Phase6::start(2, &[("RESUME_AGENT_TEST_PROBE", probe_s.as_str())]).await;
    let (_, t) = p
        .submit(&json!({"kind": "system.sleep", "payload": {"ms": 8000}}))
        .await;
    let id = t["id"].as_str().unwrap();
    let done = p
        .wait_status(id, "succeeded", Duration::from_secs(40))
        .await;
    assert_eq!(done["attempts"], 1, "{done}");
    let starts: Vec<ProbeLine> = read_probe(&probe)
        .into_iter()
        .filter(|l| l.start && l.task == id)
        .collect();
    assert_eq!(starts.len(), 1, "started more than once");
    // Neither worker saw it as a duplicate: the message stayed invisible,
    // its visibility extended by the heartbeat (every 1 s for 8 s).
    let mut extends = 0.0;
    for url in &p.worker_urls {
        let m = reqwest::get(format!("{url}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            sample(&m, r#"task_deliveries_dropped_total{reason="running"}"#).is_none(),
            "the message became visible while the task ran: {m}"
        );
        extends += sample(
            &m,
            r#"azure_storage_requests_total{operation="queue_extend",outcome="ok"}"#,
        )
        .unwrap_or(0.0);
    }
    assert!(
        extends >= 5.0,
        "{extends} visibility extensions for an 8 s task"
    );
    std::fs::remove_file(&probe).ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flip_from_in_process_to_azure_queue_loses_nothing() {
    let db = fresh_database().await;
    let mut fast: Vec<(&str, &str)> = FAST.to_vec();
    fast.push(("WORKER_CONCURRENCY", "16"));
    fast.push(("REDISPATCH_AFTER_SECS", "2"));
    let mut p5 = Phase5::start_on(&db, &fast).await;
    let mut ids = Vec::new();
    for _ in 0..200 {
        ids.push(
            p5.submit_ok(
                json!({"kind": "system.sleep", "payload": {"ms": 300}, "max_attempts": 10}),
            )
            .await,
        );
    }
    eventually(Duration::from_secs(60), "some progress", || async {
        let s = p5.stats().await;
        (s["succeeded"].as_i64()? >= 20).then_some(())
    })
    .await;
    // Everything stops mid-run.
    p5.web.kill9();
    p5.worker.kill9();
    let (done, left): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status IN ('queued', 'running')) FROM tasks",
    )
    .fetch_one(&sqlx::PgPool::connect(&db).await.unwrap())
    .await
    .unwrap();
    eprintln!("at the flip: {done} succeeded, {left} queued or running");
    assert!(left > 0, "nothing left to flip: the test proved nothing");
    let p = Phase6::start_on(&db, &azurite(), 1, &fast).await;
    for id in &ids {
        p.wait_status(id, "succeeded", Duration::from_secs(120))
            .await;
    }
    assert_eq!(p.stats().await["succeeded"], 200);
}

/// An Azurite of this test's own (queue and blob), persisted in a folder so
/// that it can be stopped and started again with its queues and messages.
struct OwnAzurite {
    dir: std::path::PathBuf,
    blob: u16,
    queue: u16,
    child: Option<std::process::Child>,
}

impl OwnAzurite {
    fn start() -> Self {
        let dir =
            std::env::temp_dir().join(format!("ra-azurite-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut me = Self {
            dir,
            blob: free_port(),
            queue: free_port(),
            child: None,
        };
        me.up();
        me
    }

    fn up(&mut self) {
        let bin = std::env::var("TEST_AZURITE_BIN")
            .expect("TEST_AZURITE_BIN is not set: run the tests with scripts/test.sh");
        let child = std::process::Command::new(bin)
            .args([
                "--silent",
                "--loose",
                "--skipApiVersionCheck",
                "--disableTelemetry",
            ])
            .args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &self.blob.to_string(),
            ])
            .args([
                "--queueHost",
                "127.0.0.1",
                "--queuePort",
                &self.queue.to_string(),
            ])
            .args([
                "--tableHost",
                "127.0.0.1",
                "--tablePort",
                &free_port().to_string(),
            ])
            .arg("--location")
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.queue)).is_err()
            || std::net::TcpStream::connect(("127.0.0.1", self.blob)).is_err()
        {
            assert!(Instant::now() < end, "azurite did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it (SIGTERM: Azurite saves its state), waiting for the exit.
    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
            let end = Instant::now() + Duration::from_secs(10);
            while c.try_wait().unwrap().is_none() {
                if Instant::now() > end {
                    let _ = c.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    fn connection_string(&self) -> String {
        format!(
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={};BlobEndpoint=http://127.0.0.1:{}/devstoreaccount1;QueueEndpoint=http://127.0.0.1:{}/devstoreaccount1;",
            resume_agent_azure::connection::DEV_KEY,
            self.blob,
            self.queue
        )
    }
}

impl Drop for OwnAzurite {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azurite_down_for_10_s_during_submission_every_accepted_task_completes() {
    let mut az = OwnAzurite::start();
    let db = fresh_database().await;
    let p = Phase6::start_on(
        &db,
        &az.connection_string(),
        1,
        &[
            ("REDISPATCH_AFTER_SECS", "2"),
            ("AZURE_STORAGE_TIMEOUT_MS", "1000"),
        ],
    )
    .await;
    let url = format!("{}/api/tasks", p.web_url);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (http, url, stop) = (p.http.clone(), url.clone(), stop.clone());
        clients.push(tokio::spawn(async move {
            let mut out = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let r = http
                    .post(&url)
                    .json(&json!({"kind": "system.sleep", "payload": {"ms": 10}}))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                out.push((status, r.json::<Value>().await.unwrap_or(Value::Null)));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            out
        }));
    }
    p.wait_stat("succeeded", 20, Duration::from_secs(30)).await;
    az.down();
    let down_at = Instant::now();
    // Readiness names the backend and the storage while Azurite is away.
    let body: Value = eventually(Duration::from_secs(10), "web not ready", || async {
        let r = p
            .http
            .get(format!("{}/api/ready", p.web_url))
            .send()
            .await
            .ok()?;
        (r.status().as_u16() == 503).then_some(())?;
        r.json().await.ok()
    })
    .await;
    assert!(
        body["checks"]["backend"]
            .as_str()
            .unwrap()
            .starts_with("error"),
        "{body}"
    );
    assert!(
        body["checks"]["storage"]
            .as_str()
            .unwrap()
            .starts_with("error"),
        "{body}"
    );
    let wbody: Value = eventually(Duration::from_secs(10), "worker not ready", || async {
        let r = p
            .http
            .get(format!("{}/ready", p.worker_urls[0]))
            .send()
            .await
            .ok()?;
        (r.status().as_u16() == 503).then_some(())?;
        r.json().await.ok()
    })
    .await;
    assert!(
        wbody["checks"]["backend"]
            .as_str()
            .unwrap()
            .starts_with("error"),
        "{wbody}"
    );
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(down_at.elapsed())).await;
    az.up();
    p.wait_ready(&format!("{}/api/ready", p.web_url)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut accepted = Vec::new();
    let mut refused = 0;
    for c in clients {
        for (status, body) in c.await.unwrap() {
            match status {
                202 => accepted.push(body["id"].as_str().unwrap().to_owned()),
                503 => refused += 1,
                other => panic!("submission answered {other}: {body}"),
            }
        }
    }
    eprintln!(
        "{} accepted, {refused} refused during the outage",
        accepted.len()
    );
    for id in &accepted {
        p.wait_status(id, "succeeded", Duration::from_secs(60))
            .await;
    }
    let s = p.stats().await;
    assert_eq!(s["failed"], 0, "{s}");
    // The logs never show the account key or a signature.
    let key = resume_agent_azure::connection::DEV_KEY;
    for proc in std::iter::once(&p.web).chain(&p.workers) {
        for line in proc.logs() {
            assert!(!line.contains(key), "{line}");
            assert!(
                !line.contains("sig=")
                    || line.contains("sig=[redacted]")
                    || line.contains("sig=REDACTED"),
                "{line}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_submitted_through_the_api_can_be_read_by_azures_python_sdk() {
    let python = std::env::var("TEST_AZURE_PYTHON").expect(
        "TEST_AZURE_PYTHON is not set: scripts/test.sh makes a venv with azure-storage-queue",
    );
    // No worker: the message stays in the queue for the other client to peek.
    let p = Phase6::start(0, &[]).await;
    let (status, t) = p.submit(&json!({"kind": "system.noop"})).await;
    assert_eq!(status, 202, "{t}");
    let id = t["id"].as_str().unwrap();
    let script = r#"
import json, os, sys
from azure.storage.queue import QueueClient
q = QueueClient.from_connection_string(os.environ["CS"], os.environ["QUEUE"])
for m in q.peek_messages(max_messages=32):
    print(m.content)
"#;
    let out = tokio::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .env("CS", &p.connection_string)
        .env("QUEUE", &p.queue)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let texts: Vec<&str> = stdout.lines().collect();
    assert_eq!(texts.len(), 1, "{stdout}");
    let v: Value = serde_json::from_str(texts[0]).unwrap();
    assert_eq!(v, json!({"task_id": id, "attempt": 0}), "{stdout}");
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Measurement for the README (not a pass/fail test; `cargo test --test
/// phase6 -- --ignored --nocapture measure`): idle polling cost with the
/// default polling knobs, and submit→start latency with 1 and 3 workers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement, about 3 minutes"]
async fn measure_idle_polling_and_submit_to_start_latency() {
    const DEFAULTS: &[(&str, &str)] = &[
        ("AZURE_QUEUE_POLL_MIN_MS", "100"),
        ("AZURE_QUEUE_POLL_MAX_MS", "5000"),
        ("AZURE_STORAGE_TIMEOUT_MS", "10000"),
    ];
    // Idle: one worker, empty queue, one minute after the back-off settled.
    let p = Phase6::start(1, DEFAULTS).await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let calls = |m: &str| {
        sample(
            m,
            r#"azure_storage_requests_total{operation="queue_receive",outcome="ok"}"#,
        )
        .unwrap_or(0.0)
    };
    let url = format!("{}/metrics", p.worker_urls[0]);
    let before = calls(&reqwest::get(&url).await.unwrap().text().await.unwrap());
    tokio::time::sleep(Duration::from_secs(60)).await;
    let after = calls(&reqwest::get(&url).await.unwrap().text().await.unwrap());
    eprintln!(
        "idle: {} receive calls per minute per worker (AZURE_QUEUE_POLL_MAX_MS=5000)",
        after - before
    );
    drop(p);
    for workers in [1, 3] {
        let p = Phase6::start(workers, DEFAULTS).await;
        tokio::time::sleep(Duration::from_secs(8)).await; // idle: polling at its ceiling
        let mut ids = Vec::new();
        // 300 tasks at ~20/s: a steady trickle, not a burst.
        for _ in 0..300 {
            let (_, t) = p.submit(&json!({"kind": "system.noop"})).await;
            ids.push(t["id"].as_str().unwrap().to_owned());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        p.wait_stat("succeeded", 300, Duration::from_secs(120))
            .await;
        let mut waits = Vec::new();
        for id in &ids {
            let t = p.task(id).await;
            let c =
                chrono::DateTime::parse_from_rfc3339(t["created_at"].as_str().unwrap()).unwrap();
            let s =
                chrono::DateTime::parse_from_rfc3339(t["started_at"].as_str().unwrap()).unwrap();
            #[allow(clippy::cast_precision_loss)]
            waits.push((s - c).num_microseconds().unwrap() as f64 / 1000.0);
        }
        waits.sort_by(f64::total_cmp);
        eprintln!(
            "{workers} worker(s), 300 noop at 20/s: submit→start median {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            percentile(&waits, 50.0),
            percentile(&waits, 99.0),
            waits[waits.len() - 1]
        );
    }
}
