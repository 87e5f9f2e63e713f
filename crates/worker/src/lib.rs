//! # resume-agent-worker
//!
//! The worker: it takes tasks from the store (woken by its backend) or from
//! a queue's deliveries, and runs them. This crate owns:
//!
//! - [`handler`]: the `TaskHandler` trait, the per-attempt `TaskContext`
//!   and the registry of handlers by kind;
//! - [`handlers`]: the built-in `system.*` handlers; [`resume`]: the
//!   `resume.parse` and `resume.match` handlers, which parse files in a
//!   killable, resource-limited child process ([`parse_child`]);
//! - [`runtime`]: claim (from the store in batches, or queue deliveries by
//!   id) → run (timeout, cancellation, panics caught) → finish →
//!   acknowledge, retries with exponential backoff and jitter, per-owner
//!   fairness, heartbeats, the recovery sweeper, the single-replica guard
//!   and the graceful drain, one file per loop;
//! - [`Worker`]: the worker's HTTP face (`/health`, `/ready`, `/metrics`,
//!   plus whatever internal endpoint its backend needs) around the runtime.
//!
//! It must not define HTTP routes of the public API, SQL or queue clients:
//! it reaches the store, the backend and blob storage only through the
//! `WorkerStore` (the runtime) and `FileStore` (the résumé handlers),
//! `TaskSource`/`TaskBackend`/`Wakeups` and `BlobStore` seams.

pub mod handler;
pub mod handlers;
pub mod parse_child;
pub mod resume;
pub mod runtime;

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use handler::{HandlerError, Registry, TaskContext, TaskHandler};
pub use runtime::{Deps, Intake, Runtime};

/// A worker bound to its port, ready to run.
pub struct Worker {
    listener: TcpListener,
    app: Router,
    runtime: Runtime,
}

#[derive(Clone)]
struct HttpState {
    runtime: Runtime,
}

impl Worker {
    /// Binds `addr` (port 0 picks a free one) and wires the HTTP endpoints.
    /// `internal` is the backend's own endpoint, if it has one (the
    /// in-process backend's dispatch route).
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn build(
        addr: SocketAddr,
        runtime: Runtime,
        internal: Option<Router>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let mut app = Router::new()
            .route("/health", get(health))
            .route("/ready", get(ready))
            .route("/metrics", get(metrics_endpoint))
            .with_state(HttpState {
                runtime: runtime.clone(),
            });
        if let Some(internal) = internal {
            app = app.merge(internal);
        }
        let app = app
            .fallback(not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(axum::middleware::from_fn(
                resume_agent_telemetry::http_metrics,
            ));
        let _ = resume_agent_telemetry::metrics_handle();
        Ok(Self {
            listener,
            app,
            runtime,
        })
    }

    /// The bound port.
    ///
    /// # Panics
    /// Never: a bound listener always has a local address.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map_or(0, |a| a.port())
    }

    /// The runtime.
    #[must_use]
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Serves HTTP and runs tasks until `shutdown` fires; then drains the
    /// runtime (readiness answers 503 meanwhile) and stops serving.
    ///
    /// # Errors
    /// When serving HTTP fails.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let http_stop = CancellationToken::new();
        let stop = http_stop.clone();
        let server = tokio::spawn(async move {
            axum::serve(self.listener, self.app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        });
        tracing::info!(worker_id = self.runtime.worker_id(), "worker running");
        let end = self.runtime.run(shutdown).await;
        http_stop.cancel();
        match server.await {
            Ok(r) => r?,
            Err(e) => return Err(std::io::Error::other(e)),
        }
        match end {
            runtime::RunEnd::Shutdown => Ok(()),
            runtime::RunEnd::LostLock => Err(std::io::Error::other(
                "another replica took the in-process lock; exiting so that this one restarts as a standby",
            )),
        }
    }
}

/// `s` on one line: line breaks and control characters become spaces.
pub(crate) fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        out.push(if c.is_control() { ' ' } else { c });
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

async fn ready(State(st): State<HttpState>) -> Response {
    let deps = st.runtime.deps();
    let mut checks = serde_json::Map::new();
    let mut ok = true;
    let (db, backend, storage) = tokio::join!(
        deps.store.ping(),
        deps.intake.backend.check(),
        deps.blobs.check()
    );
    for (name, result) in [
        ("database", db.map_err(|e| e.to_string())),
        ("backend", backend.map_err(|e| e.to_string())),
        ("storage", storage.map_err(|e| e.to_string())),
    ] {
        match result {
            Ok(()) => {
                checks.insert(name.into(), json!("ok"));
            }
            Err(e) => {
                ok = false;
                checks.insert(name.into(), json!(format!("error: {e}")));
            }
        }
    }
    if st.runtime.is_standby() {
        ok = false;
        checks.insert(
            "backend".into(),
            json!(format!("standby: {}", runtime::REPLICA_CONFLICT)),
        );
    } else if !st.runtime.is_consuming() && !st.runtime.is_draining() {
        ok = false;
        checks.insert("worker".into(), json!("starting"));
    }
    if st.runtime.is_draining() {
        ok = false;
        checks.insert("worker".into(), json!("draining"));
    }
    metrics::gauge!("worker_ready").set(if ok { 1.0 } else { 0.0 });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(resume_agent_telemetry::ready_body(ok, &checks)),
    )
        .into_response()
}

async fn metrics_endpoint(State(st): State<HttpState>) -> Response {
    let deps = st.runtime.deps();
    resume_agent_telemetry::record_pool(deps.store.pool_stats());
    // A delivering backend tells its own depth; for the store-backed ones
    // the queue is the store's queued set.
    let depth = match &deps.intake.deliveries {
        Some(source) => source.depth().await,
        None => deps.store.queued_count().await.ok(),
    };
    if let Some(depth) = depth {
        #[allow(clippy::cast_precision_loss)]
        metrics::gauge!("task_backend_queue_depth", "backend" => deps.intake.backend.name())
            .set(depth as f64);
    }
    resume_agent_telemetry::metrics_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(axum::http::header::CONTENT_TYPE, "application/problem+json")],
        json!({"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no such endpoint"})
            .to_string(),
    )
        .into_response()
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(axum::http::header::CONTENT_TYPE, "application/problem+json")],
        json!({"type": "about:blank", "title": "Method Not Allowed", "status": 405, "detail": "method not allowed on this endpoint"})
            .to_string(),
    )
        .into_response()
}
