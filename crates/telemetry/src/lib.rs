//! # resume-agent-telemetry
//!
//! Observability shared by both services, so that their logs and metrics
//! look alike. This crate owns:
//!
//! - [`init_logging`]: `tracing` to stdout, text or JSON (`LOG_FORMAT`),
//!   filtered by `RUST_LOG`;
//! - [`metrics_handle`]: the process-wide Prometheus registry (installed
//!   once), with every metric of the contract described and the `_seconds`
//!   metrics rendered as histograms;
//! - [`http_metrics`]: the axum middleware recording
//!   `http_requests_total{method,route,status}` and
//!   `http_request_duration_seconds{method,route}` by route *template*;
//! - [`metrics_response`]: the `/metrics` body.
//!
//! It must not know about tasks, stores or queues beyond metric names.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use resume_agent_core::config::LogFormat;

/// Sets up `tracing` once. Later calls do nothing (tests start many apps).
pub fn init_logging(format: LogFormat) {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_target(true);
        let _ = match format {
            LogFormat::Json => builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .try_init(),
            LogFormat::Text => builder.try_init(),
        };
    });
}

/// Latency buckets (seconds) for every `_seconds` histogram: 1 ms … 10 min.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    120.0, 300.0, 600.0,
];

/// The process-wide Prometheus registry, installed on first use.
///
/// # Panics
/// Never in practice: the bucket list is a non-empty constant, and a
/// recorder installed by someone else is reported through `tracing`, with
/// this handle's registry then simply unused.
#[must_use]
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(e) = metrics::set_global_recorder(recorder) {
            tracing::error!(error = %e, "a metrics recorder was already installed");
        }
        describe();
        // Histograms and summaries need periodic upkeep when the exporter's
        // own listener is not used.
        let upkeep = handle.clone();
        std::thread::Builder::new()
            .name("metrics-upkeep".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(5));
                    upkeep.run_upkeep();
                }
            })
            .ok();
        handle
    })
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "tasks_submitted_total",
        "Tasks accepted by the web API, by kind."
    );
    describe_counter!(
        "files_expired_total",
        "Files deleted by the retention sweep (FILE_RETENTION_DAYS), bytes and derived blobs included."
    );
    describe_counter!(
        "tasks_completed_total",
        "Attempts that ended, by kind and outcome (succeeded, failed, cancelled, retried)."
    );
    describe_histogram!(
        "task_run_duration_seconds",
        Unit::Seconds,
        "Time one attempt ran in its handler."
    );
    describe_histogram!(
        "task_queue_wait_seconds",
        Unit::Seconds,
        "Time from a task being due (created, or its retry backoff over) to its attempt starting."
    );
    describe_gauge!(
        "tasks_in_flight",
        "Attempts running in this worker now, by kind."
    );
    describe_gauge!(
        "task_backend_queue_depth",
        "Messages waiting in the task backend (approximate)."
    );
    describe_counter!(
        "http_requests_total",
        "HTTP requests answered, by method, route template and status."
    );
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "HTTP request latency by method and route template."
    );
    describe_gauge!(
        "db_pool_connections",
        "Database pool connections by state (active, idle, max)."
    );
    describe_counter!(
        "task_dispatch_errors_total",
        "Hand-offs to the task backend that failed (the task is stored: workers find it in the store)."
    );
    describe_counter!(
        "task_deliveries_dropped_total",
        "Backend deliveries not run because the task was no longer queued, by reason."
    );
    describe_counter!(
        "tasks_recovered_total",
        "Running tasks whose lease expired and were recovered, by kind."
    );
    describe_counter!(
        "tasks_claimed_total",
        "Tasks claimed by this worker, by how they were found: via=store (a batch claim from the store) or via=delivery (a queue message)."
    );
    describe_counter!(
        "tasks_pruned_total",
        "Finished tasks deleted after TASK_RETENTION_DAYS."
    );
    describe_gauge!("worker_ready", "1 when this worker reports ready, else 0.");
    describe_gauge!(
        "task_backend_poison_depth",
        "Messages in the backend's dead-letter queue (Azure: <queue>-poison), approximate."
    );
    describe_counter!(
        "task_backend_dead_lettered_total",
        "Deliveries moved to the backend's dead-letter queue."
    );
    describe_counter!(
        "azure_storage_requests_total",
        "Azure Storage REST calls made (billable transactions), by operation and outcome."
    );
    describe_histogram!(
        "azure_storage_request_duration_seconds",
        Unit::Seconds,
        "Azure Storage call latency by operation."
    );
    describe_counter!(
        "azure_queue_invalid_messages_total",
        "Queue messages that were not task references, moved to the poison queue."
    );
    describe_gauge!(
        "worker_replica_conflict",
        "1 when this in-process worker is standing by because another replica holds the lock."
    );
}

/// The `/metrics` response: Prometheus text exposition 0.0.4.
#[must_use]
pub fn metrics_response() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        metrics_handle().render(),
    )
        .into_response()
}

fn method_label(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// Axum middleware recording request count and latency by route template
/// (`/api/tasks/{id}`), never by raw path; unmatched paths share one label.
pub async fn http_metrics(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    response
}

/// Sets `db_pool_connections{state}` from a pool snapshot.
pub fn record_pool(stats: resume_agent_core::store::PoolStats) {
    metrics::gauge!("db_pool_connections", "state" => "active").set(f64::from(stats.active));
    metrics::gauge!("db_pool_connections", "state" => "idle").set(f64::from(stats.idle));
    metrics::gauge!("db_pool_connections", "state" => "max").set(f64::from(stats.max));
}

/// A JSON body helper for readiness answers.
#[must_use]
pub fn ready_body(
    ready: bool,
    checks: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    serde_json::json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": checks,
    })
}
