//! Test support for end-to-end tests: the real `resume-agent` binary started
//! as separate processes on free ports, against a fresh PostgreSQL database.
#![allow(dead_code, clippy::unwrap_used, clippy::missing_panics_doc)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

pub use resume_agent_core::testing::{eventually, fresh_database};

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One running `resume-agent` process; killed when dropped. Its stdout and
/// stderr are collected for assertions on logs.
pub struct Proc {
    pub child: Child,
    pub logs: Arc<Mutex<Vec<String>>>,
    pub name: String,
}

impl Proc {
    pub fn start(name: &str, subcommand: &str, env: &HashMap<String, String>) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_resume-agent"));
        cmd.arg(subcommand)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let logs = logs.clone();
            let tag = name.to_owned();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if std::env::var_os("TEST_ECHO_LOGS").is_some() {
                        eprintln!("[{tag}] {line}");
                    }
                    logs.lock().unwrap().push(line);
                }
            });
        }
        Self {
            child,
            logs,
            name: name.to_owned(),
        }
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// SIGKILL, at once.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then the exit status.
    pub fn sigterm(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
    }

    /// Waits for the process to exit, up to `deadline`.
    pub async fn wait_exit(&mut self, deadline: Duration) -> std::process::ExitStatus {
        let end = std::time::Instant::now() + deadline;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                std::time::Instant::now() < end,
                "{} did not exit within {deadline:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Phase 5 topology: `resume-agent web` and `resume-agent worker` as
/// separate processes against one fresh PostgreSQL database.
pub struct Phase5 {
    pub web: Proc,
    pub worker: Proc,
    pub web_url: String,
    pub worker_url: String,
    pub env: HashMap<String, String>,
    pub http: reqwest::Client,
}

pub fn base_env(database_url: &str, web_port: u16, worker_port: u16) -> HashMap<String, String> {
    let mut env = HashMap::new();
    env.insert("DATABASE_URL".into(), database_url.into());
    env.insert("WEB_ADDR".into(), format!("127.0.0.1:{web_port}"));
    env.insert("WORKER_ADDR".into(), format!("127.0.0.1:{worker_port}"));
    env.insert(
        "WORKER_BASE_URL".into(),
        format!("http://127.0.0.1:{worker_port}"),
    );
    env.insert("WORKER_API_TOKEN".into(), "test-worker-token".into());
    let data = std::env::temp_dir().join(format!("ra-e2e-{}", uuid::Uuid::new_v4().simple()));
    env.insert("DATA_DIR".into(), data.display().to_string());
    env.insert("RETRY_BACKOFF_BASE_MS".into(), "50".into());
    env.insert("RETRY_BACKOFF_MAX_MS".into(), "200".into());
    env
}

impl Phase5 {
    /// Starts both processes with `extra` environment and waits until ready.
    pub async fn start(extra: &[(&str, &str)]) -> Self {
        let db = fresh_database().await;
        Self::start_on(&db, extra).await
    }

    pub async fn start_on(db: &str, extra: &[(&str, &str)]) -> Self {
        Self::start_with(Some(db), extra).await
    }

    /// Starts web and worker on `db` (None: the embedded store in a fresh
    /// DATA_DIR). Ports come from `free_port()`, which another test may grab
    /// before our process binds it: a process that exits at start is
    /// restarted on new ports (up to three times).
    pub async fn start_with(db: Option<&str>, extra: &[(&str, &str)]) -> Self {
        let mut last_logs = Vec::new();
        for _attempt in 0..3 {
            let (wp, kp) = (free_port(), free_port());
            let mut env = base_env(db.unwrap_or(""), wp, kp);
            if db.is_none() {
                env.remove("DATABASE_URL");
            }
            for (k, v) in extra {
                env.insert((*k).into(), (*v).into());
            }
            if db.is_some() {
                // Migrations run first, as the Kubernetes Job does.
                let status = Command::new(env!("CARGO_BIN_EXE_resume-agent"))
                    .arg("migrate")
                    .env_clear()
                    .envs(&env)
                    .stdout(Stdio::null())
                    .status()
                    .unwrap();
                assert!(status.success(), "migrate failed");
            }
            let worker = Proc::start("worker", "worker", &env);
            let web = Proc::start("web", "web", &env);
            let mut me = Self {
                web,
                worker,
                web_url: format!("http://127.0.0.1:{wp}"),
                worker_url: format!("http://127.0.0.1:{kp}"),
                env,
                http: reqwest::Client::new(),
            };
            if me.both_ready().await {
                return me;
            }
            last_logs = me.web.logs();
            last_logs.extend(me.worker.logs());
        }
        panic!(
            "web and worker did not become ready; their logs:\n{}",
            last_logs.join("\n")
        );
    }

    /// Waits until both answer ready; false if either process exits first.
    async fn both_ready(&mut self) -> bool {
        let end = std::time::Instant::now() + Duration::from_secs(30);
        let urls = [
            format!("{}/api/ready", self.web_url),
            format!("{}/ready", self.worker_url),
        ];
        loop {
            let mut ready = 0;
            for u in &urls {
                if let Ok(r) = self.http.get(u).send().await
                    && r.status().is_success()
                {
                    ready += 1;
                }
            }
            if ready == urls.len() {
                return true;
            }
            let exited = self.web.child.try_wait().ok().flatten().is_some()
                || self.worker.child.try_wait().ok().flatten().is_some();
            if exited || std::time::Instant::now() > end {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A client for this deployment's public API.
    pub fn api(&self) -> Api {
        Api {
            http: self.http.clone(),
            base: self.web_url.clone(),
        }
    }

    pub async fn wait_ready(&self, url: &str) {
        wait_http_ready(&self.http, url).await;
    }

    /// `POST /api/tasks`, returning (status, body).
    pub async fn submit(&self, body: Value) -> (u16, Value) {
        self.api().submit(&body).await
    }

    pub async fn submit_ok(&self, body: Value) -> String {
        self.api().submit_ok(&body).await
    }

    pub async fn task(&self, id: &str) -> Value {
        self.api().task(id).await
    }

    /// Waits until the task has `status`, returning it.
    pub async fn wait_status(&self, id: &str, status: &str, deadline: Duration) -> Value {
        self.api().wait_status(id, status, deadline).await
    }

    pub async fn stats(&self) -> Value {
        self.api().stats().await
    }

    /// Waits until `stats[key] >= at_least`, returning the stats.
    pub async fn wait_stat(&self, key: &str, at_least: i64, deadline: Duration) -> Value {
        self.api().wait_stat(key, at_least, deadline).await
    }

    pub async fn metrics(&self, base: &str) -> String {
        self.http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// The value of one sample line (`name{labels} value`) in an exposition.
pub fn sample(exposition: &str, name_and_labels: &str) -> Option<f64> {
    exposition
        .lines()
        .find(|l| l.starts_with(name_and_labels) && l[name_and_labels.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// A throwaway PostgreSQL cluster of this test's own, so that it can be
/// stopped and started without disturbing the other tests.
pub struct PgCluster {
    pub dir: std::path::PathBuf,
    pub port: u16,
    bin: std::path::PathBuf,
}

fn pg_bin() -> std::path::PathBuf {
    if let Ok(b) = std::env::var("TEST_PG_BIN") {
        return b.into();
    }
    let mut found: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.flatten()
                .map(|e| e.path().join("bin"))
                .filter(|p| p.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
        .pop()
        .expect("PostgreSQL server binaries not found: set TEST_PG_BIN")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false)
}

impl PgCluster {
    fn pg(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("ra-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            assert!(
                Command::new("chown")
                    .arg("postgres")
                    .arg(&dir)
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let me = Self {
            dir,
            port: free_port(),
            bin: pg_bin(),
        };
        let out = me
            .pg("initdb")
            .args(["-U", "postgres", "--auth=trust", "--no-sync", "-D"])
            .arg(me.dir.join("data"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        me.up();
        me
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (waits until it accepts connections).
    pub fn up(&self) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        let out = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("log"))
            .args(["-w", "-t", "60", "-o", &opts, "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server, dropping every connection.
    pub fn down(&self) {
        let out = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-w", "-m", "fast", "stop"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl stop: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .pg("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One line of the worker's test probe (`RESUME_AGENT_TEST_PROBE`).
pub struct ProbeLine {
    pub start: bool,
    pub task: String,
    pub pid: u32,
    pub at_us: i64,
}

pub fn read_probe(path: &std::path::Path) -> Vec<ProbeLine> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            ProbeLine {
                start: f[0] == "start",
                task: f[1].to_owned(),
                pid: f[3].parse().unwrap(),
                at_us: f[4].parse().unwrap(),
            }
        })
        .collect()
}

/// Asserts from the probe that no task of `ids` ran twice at the same time
/// (an attempt without an `end` line ended when its process was killed, at
/// the time in `kills`) and, for tasks in `finished`, that no attempt
/// started after the task was marked terminal. Returns how many attempts
/// were re-runs.
pub fn assert_attempts_never_overlap(
    lines: &[ProbeLine],
    ids: &[String],
    kills: &HashMap<u32, i64>,
    finished: &HashMap<String, i64>,
) -> usize {
    let mut by_task: HashMap<&str, Vec<&ProbeLine>> = HashMap::new();
    for l in lines {
        by_task.entry(l.task.as_str()).or_default().push(l);
    }
    let mut reruns = 0;
    for id in ids {
        let events = by_task
            .get(id.as_str())
            .unwrap_or_else(|| panic!("task {id} never ran"));
        let mut spans: Vec<(i64, i64)> = Vec::new();
        for s in events.iter().filter(|l| l.start) {
            let end = events
                .iter()
                .filter(|l| !l.start && l.pid == s.pid && l.at_us >= s.at_us)
                .map(|l| l.at_us)
                .min()
                .or_else(|| kills.get(&s.pid).copied())
                .unwrap_or_else(|| panic!("task {id}: an attempt in pid {} never ended", s.pid));
            spans.push((s.at_us, end));
            if let Some(done) = finished.get(id) {
                assert!(
                    s.at_us <= *done,
                    "task {id} started after it was marked terminal"
                );
            }
        }
        spans.sort_unstable();
        reruns += spans.len() - 1;
        for w in spans.windows(2) {
            assert!(
                w[1].0 >= w[0].1,
                "task {id} ran twice at the same time: {spans:?}"
            );
        }
    }
    reruns
}

/// `promtool check metrics` on an exposition (the test command installs it).
pub fn promtool_check(name: &str, body: &str) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is required (the test command installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed for {name}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits (30 s at most) until `url` answers 2xx.
pub async fn wait_http_ready(http: &reqwest::Client, url: &str) {
    eventually(Duration::from_secs(30), &format!("{url} ready"), || async {
        let r = http.get(url).send().await.ok()?;
        r.status().is_success().then_some(())
    })
    .await;
}

/// The public task API of one web process, as tests use it.
#[derive(Clone)]
pub struct Api {
    pub http: reqwest::Client,
    pub base: String,
}

impl Api {
    /// `POST /api/tasks`, returning (status, body).
    pub async fn submit(&self, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/api/tasks", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Submits and asserts 202; returns the task id.
    pub async fn submit_ok(&self, body: &Value) -> String {
        let (status, task) = self.submit(body).await;
        assert_eq!(status, 202, "{task}");
        task["id"].as_str().unwrap().to_owned()
    }

    pub async fn task(&self, id: &str) -> Value {
        self.http
            .get(format!("{}/api/tasks/{id}", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until the task has `status`, returning it.
    pub async fn wait_status(&self, id: &str, status: &str, deadline: Duration) -> Value {
        eventually(deadline, &format!("task {id} {status}"), || async {
            let t = self.task(id).await;
            (t["status"] == json!(status)).then_some(t)
        })
        .await
    }

    pub async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/api/stats", self.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until `stats[key] >= at_least`, returning the stats.
    pub async fn wait_stat(&self, key: &str, at_least: i64, deadline: Duration) -> Value {
        eventually(deadline, &format!("{key} >= {at_least}"), || async {
            let s = self.stats().await;
            (s[key].as_i64()? >= at_least).then_some(s)
        })
        .await
    }
}
