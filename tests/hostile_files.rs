//! Issue 11's acceptance, with real processes: web, a second web acting as
//! another owner, and a worker under a 1 GiB address-space limit (the pod's
//! memory limit), against PostgreSQL.
//!
//! - every hostile file (built by `resume_agent_resume::hostile`) uploaded
//!   and parsed: the task fails after one attempt with a one-line reason,
//!   the worker never restarts, its RSS stays within 64 MiB of idle, and the
//!   other owner's tasks submitted meanwhile all succeed;
//! - a parse that times out, or is cancelled, leaves no parse child alive
//!   1 s later.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Proc, eventually, wait_http_ready};
use serde_json::{Value, json};

/// The worker pod's limit.
const WORKER_ADDRESS_SPACE: u64 = 1 << 30;

struct Deployment {
    _web: Proc,
    _other_web: Proc,
    worker: Proc,
    web: String,
    other: String,
    http: reqwest::Client,
}

/// `resume-agent worker` with `ulimit -v` (the shell execs the binary, so
/// the pid is the worker's).
fn start_limited_worker(env: &HashMap<String, String>) -> Proc {
    let script = format!(
        "ulimit -v {} && exec \"$0\" worker",
        WORKER_ADDRESS_SPACE / 1024
    );
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_resume-agent"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RUST_LOG", "info")
        .envs(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let logs = Arc::new(Mutex::new(Vec::new()));
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let logs = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if std::env::var_os("TEST_ECHO_LOGS").is_some() {
                    eprintln!("[worker] {line}");
                }
                logs.lock().unwrap().push(line);
            }
        });
    }
    Proc {
        child,
        logs,
        name: "worker".into(),
    }
}

async fn start(extra: &[(&str, &str)]) -> Deployment {
    let db = common::fresh_database().await;
    let (wp, kp, op) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let mut env = common::base_env(&db, wp, kp);
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    let status = Command::new(env!("CARGO_BIN_EXE_resume-agent"))
        .arg("migrate")
        .env_clear()
        .envs(&env)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "migrate failed");
    let worker = start_limited_worker(&env);
    let web = Proc::start("web", "web", &env);
    let mut other_env = env.clone();
    other_env.insert("DEFAULT_OWNER_USER_ID".into(), "another-owner".into());
    other_env.insert("WEB_ADDR".into(), format!("127.0.0.1:{op}"));
    let other_web = Proc::start("other-web", "web", &other_env);
    let http = reqwest::Client::new();
    let d = Deployment {
        _web: web,
        _other_web: other_web,
        worker,
        web: format!("http://127.0.0.1:{wp}"),
        other: format!("http://127.0.0.1:{op}"),
        http,
    };
    wait_http_ready(&d.http, &format!("http://127.0.0.1:{kp}/ready")).await;
    wait_http_ready(&d.http, &format!("{}/api/ready", d.web)).await;
    wait_http_ready(&d.http, &format!("{}/api/ready", d.other)).await;
    d
}

impl Deployment {
    async fn upload(&self, base: &str, bytes: Vec<u8>, name: &str) -> String {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned());
        let form = reqwest::multipart::Form::new().part("file", part);
        let r = self
            .http
            .post(format!("{base}/api/files"))
            .multipart(form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "upload {name}");
        let v: Value = r.json().await.unwrap();
        v["id"].as_str().unwrap().to_owned()
    }

    async fn submit(&self, base: &str, body: Value) -> String {
        let r = self
            .http
            .post(format!("{base}/api/tasks"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202, "submit {body}");
        let v: Value = r.json().await.unwrap();
        v["id"].as_str().unwrap().to_owned()
    }

    async fn task(&self, base: &str, id: &str) -> Value {
        self.http
            .get(format!("{base}/api/tasks/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn terminal(&self, base: &str, id: &str, deadline: Duration) -> Value {
        eventually(deadline, &format!("task {id} terminal"), || async {
            let t = self.task(base, id).await;
            matches!(
                t["status"].as_str(),
                Some("succeeded" | "failed" | "cancelled")
            )
            .then_some(t)
        })
        .await
    }

    fn worker_pid(&self) -> u32 {
        self.worker.child.id()
    }
}

/// A field of /proc/<pid>/status in KiB.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// CPU seconds of `pid` itself and of its reaped children (utime+stime,
/// cutime+cstime), at 100 ticks per second.
fn cpu_secs(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    let tick = |i: usize| f.get(i).copied().unwrap_or(0.0) / 100.0;
    // After ")": state is field 0; utime 11, stime 12, cutime 13, cstime 14.
    (tick(11) + tick(12), tick(13) + tick(14))
}

/// Live (not zombie) processes whose parent is `ppid` and whose command
/// line mentions `parse-child`.
fn parse_children(ppid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        let parent: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        if parent != ppid || state == "Z" {
            continue;
        }
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmdline.windows(11).any(|w| w == b"parse-child") {
            out.push(pid);
        }
    }
    out
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("crates/resume/tests/fixtures/labelled")
            .join(name),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_files_fail_once_and_hurt_no_one_else() {
    let d = start(&[]).await;
    let pid = d.worker_pid();
    assert!(
        std::fs::read_to_string(format!("/proc/{pid}/limits"))
            .unwrap()
            .lines()
            .any(|l| l.starts_with("Max address space")
                && l.contains(&WORKER_ADDRESS_SPACE.to_string())),
        "the worker runs under the 1 GiB address-space limit"
    );
    // Warm up (one normal parse for each owner), then measure idle.
    let normal = d
        .upload(&d.other, fixture("01-jane-doe.pdf"), "jane.pdf")
        .await;
    let warm = d
        .submit(
            &d.other,
            json!({"kind": "resume.parse", "payload": {"file_id": normal}}),
        )
        .await;
    assert_eq!(
        d.terminal(&d.other, &warm, Duration::from_secs(60)).await["status"],
        "succeeded"
    );
    let idle = status_kib(pid, "VmRSS:").unwrap();
    let (cpu0, children0) = cpu_secs(pid);

    // Sample the worker's RSS every 10 ms for the whole run.
    let peak = Arc::new(AtomicU64::new(idle));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                if let Some(rss) = status_kib(pid, "VmRSS:") {
                    peak.fetch_max(rss, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };

    let started = Instant::now();
    let mut hostile = Vec::new();
    let mut innocent = Vec::new();
    for f in resume_agent_resume::hostile::all() {
        let file = d.upload(&d.web, f.bytes.clone(), f.name).await;
        let id = d
            .submit(
                &d.web,
                json!({"kind": "resume.parse", "payload": {"file_id": file}}),
            )
            .await;
        hostile.push((f, id));
        // The other owner's work, submitted meanwhile.
        innocent.push(
            d.submit(
                &d.other,
                json!({"kind": "resume.parse", "payload": {"file_id": normal}}),
            )
            .await,
        );
        innocent.push(d.submit(&d.other, json!({"kind": "system.noop"})).await);
        innocent.push(
            d.submit(
                &d.other,
                json!({"kind": "system.sleep", "payload": {"ms": 50}}),
            )
            .await,
        );
    }
    for (f, id) in &hostile {
        let t = d.terminal(&d.web, id, Duration::from_secs(120)).await;
        let error = t["error"].as_str().unwrap_or("");
        println!(
            "{:<28} {:<9} attempts={} {}",
            f.name, t["status"], t["attempts"], error
        );
        if f.name == "curly-quotes.txt" {
            // A real-world résumé: it must parse, not crash.
            assert_eq!(t["status"], "succeeded", "{t}");
            continue;
        }
        assert_eq!(t["status"], "failed", "{} ({}): {t}", f.name, f.attack);
        assert_eq!(t["attempts"], 1, "{}: failed after one attempt", f.name);
        assert!(
            !error.is_empty() && !error.contains('\n'),
            "{}: {error:?}",
            f.name
        );
    }
    for id in &innocent {
        let t = d.terminal(&d.other, id, Duration::from_secs(120)).await;
        assert_eq!(t["status"], "succeeded", "another owner's task: {t}");
    }
    let took = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    sampler.join().unwrap();
    let (cpu1, children1) = cpu_secs(pid);
    let peak = peak.load(Ordering::SeqCst);
    println!(
        "worker: virtual size {} MiB (peak {} MiB) of the {} MiB address-space limit",
        status_kib(pid, "VmSize:").unwrap_or(0) / 1024,
        status_kib(pid, "VmPeak:").unwrap_or(0) / 1024,
        WORKER_ADDRESS_SPACE >> 20
    );
    println!(
        "worker: idle RSS {} MiB, peak RSS {} MiB over the hostile set ({:.1} s); CPU {:.2} s in the worker, {:.2} s in parse children",
        idle / 1024,
        peak / 1024,
        took.as_secs_f64(),
        cpu1 - cpu0,
        children1 - children0,
    );
    assert!(
        peak.saturating_sub(idle) <= 64 * 1024,
        "worker RSS grew from {idle} KiB to {peak} KiB"
    );
    // Never restarted: the same process is still running.
    let mut worker = d.worker;
    assert!(
        worker.child.try_wait().unwrap().is_none(),
        "the worker exited"
    );
    assert!(parse_children(pid).is_empty());
}

/// A file that takes seconds to parse in a debug build (1 MB of text lines;
/// linear, but not free): long enough to time out or be cancelled while its
/// child is running.
fn slow_text() -> Vec<u8> {
    let words = [
        "Rust",
        "Go",
        "and",
        "Engineer",
        "2019",
        "–",
        "present",
        "Acme",
        "Inc.",
        "Python",
        "Kubernetes",
        "led",
        "team",
        "of",
        "built",
        "systems",
        "“quoted”",
        "Senior",
        "Jan",
    ];
    let mut text = String::from("Jane Doe\njane@example.com\nExperience\n");
    let mut i = 0usize;
    while text.len() < 1_000_000 {
        for k in 0..(3 + i % 9) {
            text.push_str(words[(i * 7 + k * 3) % words.len()]);
            text.push(' ');
        }
        text.push('\n');
        i += 1;
    }
    text.into_bytes()
}

async fn wait_for_child(pid: u32) -> u32 {
    eventually(Duration::from_secs(30), "a parse child running", || async {
        parse_children(pid).first().copied()
    })
    .await
}

async fn gone_within(child: u32, deadline: Duration) {
    let end = Instant::now() + deadline;
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next().map(str::to_owned));
        if !matches!(state.as_deref(), Some(s) if s != "Z") {
            return;
        }
        assert!(
            Instant::now() < end,
            "parse child {child} still running {deadline:?} after its attempt ended"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parse_that_times_out_or_is_cancelled_leaves_no_child() {
    let d = start(&[("RUST_LOG", "info,resume_agent_worker=debug")]).await;
    let pid = d.worker_pid();
    let file = d.upload(&d.web, slow_text(), "slow.txt").await;

    // Cancelled while its child runs.
    let id = d
        .submit(
            &d.web,
            json!({"kind": "resume.parse", "payload": {"file_id": file}, "timeout_secs": 600}),
        )
        .await;
    let child = wait_for_child(pid).await;
    let r = d
        .http
        .post(format!("{}/api/tasks/{id}/cancel", d.web))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "cancel: {}", r.status());
    let t = d.terminal(&d.web, &id, Duration::from_secs(30)).await;
    assert_eq!(t["status"], "cancelled", "{t}");
    gone_within(child, Duration::from_secs(1)).await;

    // Timed out (1 s) while its child runs: killed, and the task fails
    // permanently with the parser's reason (no retry of the same file).
    let id = d
        .submit(
            &d.web,
            json!({"kind": "resume.parse", "payload": {"file_id": file}, "timeout_secs": 1, "max_attempts": 3}),
        )
        .await;
    let child = wait_for_child(pid).await;
    let t = d.terminal(&d.web, &id, Duration::from_secs(30)).await;
    assert_eq!(t["status"], "failed", "{t}");
    assert_eq!(t["attempts"], 1, "{t}");
    assert!(
        t["error"].as_str().unwrap_or("").contains("killed after"),
        "{t}"
    );
    gone_within(child, Duration::from_secs(1)).await;
    assert!(parse_children(pid).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_parse_exits_within_the_grace_period_and_leaves_no_child() {
    let mut d = start(&[("SHUTDOWN_GRACE_SECS", "1")]).await;
    let pid = d.worker_pid();
    let file = d.upload(&d.web, slow_text(), "slow.txt").await;
    let id = d
        .submit(
            &d.web,
            json!({"kind": "resume.parse", "payload": {"file_id": file}, "timeout_secs": 600}),
        )
        .await;
    let child = wait_for_child(pid).await;
    let stopped = Instant::now();
    d.worker.sigterm();
    let status = d.worker.wait_exit(Duration::from_secs(15)).await;
    let took = stopped.elapsed();
    eprintln!("SIGTERM with a parse running: exited {status} after {took:?}");
    assert!(status.success(), "worker exit: {status}");
    // Grace 1 s, plus the hand-back and the process exit.
    assert!(took < Duration::from_secs(8), "drain took {took:?}");
    gone_within(child, Duration::from_secs(1)).await;
    // The attempt was handed back, not spent.
    let t = d.task(&d.web, &id).await;
    assert_eq!(t["status"], "queued", "{t}");
    assert_eq!(t["attempts"], 0, "{t}");
}
