//! `loadgen`: submits tasks to a running Resume Agent over HTTP and reports
//! throughput (first submit → last terminal), latency percentiles (from each
//! task's own `created_at` → `finished_at`) and the peak RSS of local
//! `resume-agent` processes.
//!
//! ```text
//! cargo run --release -p resume-agent-bench -- --base-url http://127.0.0.1:3000 \
//!     --kind system.noop --count 20000 --concurrency 32 [--rate 1500] [--batch 100]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::Parser;
use serde_json::{Value, json};

/// Load generator for a running Resume Agent.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The web API's base URL.
    #[arg(long, default_value = "http://127.0.0.1:3000")]
    base_url: String,
    /// Task kind to submit.
    #[arg(long, default_value = "system.noop")]
    kind: String,
    /// Payload JSON for each task.
    #[arg(long, default_value = "{}")]
    payload: String,
    /// Tasks to submit.
    #[arg(long, default_value_t = 10_000)]
    count: u64,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 32)]
    concurrency: u64,
    /// Fixed submission rate in tasks/s (default: as fast as possible).
    #[arg(long)]
    rate: Option<f64>,
    /// Submit through `POST /api/tasks/batch`, this many tasks per request
    /// (1..=1000; default: one task per `POST /api/tasks`).
    #[arg(long)]
    batch: Option<u64>,
    /// Give up waiting for completion after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
}

fn terminal(stats: &Value) -> u64 {
    ["succeeded", "failed", "cancelled"]
        .iter()
        .map(|k| stats[k].as_u64().unwrap_or(0))
        .sum()
}

async fn stats(http: &reqwest::Client, base: &str) -> anyhow::Result<Value> {
    Ok(http
        .get(format!("{base}/api/stats"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Peak and current RSS (KiB) of every local `resume-agent` process.
fn rss_report() -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let path = entry.path();
        let Ok(cmdline) = std::fs::read(path.join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let Some(exe) = args.first() else { continue };
        if !exe.ends_with("resume-agent") {
            continue;
        }
        let Ok(status) = std::fs::read_to_string(path.join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let pid = path
            .file_name()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push((
            format!("{} (pid {pid})", args.get(1).map_or("?", String::as_str)),
            field("VmHWM:"),
            field("VmRSS:"),
        ));
    }
    out
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let payload: Value = serde_json::from_str(&args.payload).context("--payload is not JSON")?;
    let base = args.base_url.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    let before = stats(&http, &base).await.context("GET /api/stats")?;
    let baseline = terminal(&before);
    println!("rss before: {:?}", rss_report());

    let one = json!({"kind": args.kind, "payload": payload});
    let per_request = args.batch.unwrap_or(1).clamp(1, 1000);
    let (path, body) = match args.batch {
        Some(_) => (
            "/api/tasks/batch",
            json!({"tasks": vec![one; usize::try_from(per_request)?]}).to_string(),
        ),
        None => ("/api/tasks", one.to_string()),
    };
    let body = Arc::new(body);
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let started_at = Utc::now();
    let mut clients = Vec::new();
    for _ in 0..args.concurrency {
        let (http, base, body, next, errors) = (
            http.clone(),
            base.clone(),
            body.clone(),
            next.clone(),
            errors.clone(),
        );
        let (count, rate) = (args.count, args.rate);
        clients.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(per_request, Ordering::Relaxed);
                if i >= count {
                    return;
                }
                if let Some(rate) = rate {
                    #[allow(clippy::cast_precision_loss)]
                    let due = start + Duration::from_secs_f64(i as f64 / rate);
                    tokio::time::sleep_until(due.into()).await;
                }
                let r = http
                    .post(format!("{base}{path}"))
                    .header("content-type", "application/json")
                    .body(body.as_str().to_owned())
                    .send()
                    .await;
                if !matches!(r, Ok(ref r) if r.status().as_u16() == 202) {
                    errors.fetch_add(per_request, Ordering::Relaxed);
                }
            }
        }));
    }
    for c in clients {
        c.await?;
    }
    let submitted_in = start.elapsed();
    let errors = errors.load(Ordering::Relaxed);
    // Whole requests: the last one may carry a full batch past --count.
    let sent = args.count.div_ceil(per_request) * per_request;
    let accepted = sent.saturating_sub(errors);
    println!("submitted {accepted} tasks in {submitted_in:.2?} ({errors} errors)");

    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let mut peak = rss_report();
    loop {
        let s = stats(&http, &base).await?;
        for (name, hwm, _) in rss_report() {
            if let Some(p) = peak.iter_mut().find(|p| p.0 == name) {
                p.1 = p.1.max(hwm);
            }
        }
        if terminal(&s) >= baseline + accepted {
            break;
        }
        if Instant::now() > deadline {
            bail!("timed out: {s}");
        }
        // Slow enough not to tax the server measured (GET /api/stats counts
        // every task of the owner); the figures come from the tasks' own
        // timestamps, not from this poll.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let wall = start.elapsed();

    // Latency from the tasks' own timestamps.
    let mut latencies = Vec::new();
    let mut first_created: Option<DateTime<Utc>> = None;
    let mut last_finished: Option<DateTime<Utc>> = None;
    let mut cursor: Option<String> = None;
    'pages: loop {
        let mut url = format!("{base}/api/tasks?limit=500&kind={}", args.kind);
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = http.get(url).send().await?.json().await?;
        for t in page["items"].as_array().map_or(&[][..], Vec::as_slice) {
            let parse = |k: &str| {
                t[k].as_str()
                    .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                    .map(|d| d.with_timezone(&Utc))
            };
            let (Some(c), Some(f)) = (parse("created_at"), parse("finished_at")) else {
                continue;
            };
            if c < started_at - chrono::Duration::seconds(1) {
                break 'pages;
            }
            latencies.push((f - c).num_microseconds().unwrap_or(0) as f64 / 1000.0);
            first_created = Some(first_created.map_or(c, |x| x.min(c)));
            last_finished = Some(last_finished.map_or(f, |x| x.max(f)));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    latencies.sort_by(f64::total_cmp);
    #[allow(clippy::cast_precision_loss)]
    let throughput = accepted as f64 / wall.as_secs_f64();
    let server_span = match (first_created, last_finished) {
        (Some(a), Some(b)) => (b - a).num_microseconds().unwrap_or(1) as f64 / 1e6,
        _ => f64::NAN,
    };
    println!(
        "kind={} count={accepted} concurrency={} rate={:?}",
        args.kind, args.concurrency, args.rate
    );
    println!(
        "throughput: {throughput:.0} tasks/s (client wall {wall:.2?}; server first-created → last-finished {server_span:.2}s = {:.0} tasks/s)",
        accepted as f64 / server_span
    );
    println!(
        "submit → finished latency ms: p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}  (n={})",
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(f64::NAN),
        latencies.len()
    );
    for (name, hwm, rss) in peak {
        println!(
            "rss {name}: peak {:.1} MiB, now {:.1} MiB",
            hwm as f64 / 1024.0,
            rss as f64 / 1024.0
        );
    }
    Ok(())
}
