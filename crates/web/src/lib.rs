//! # resume-agent-web
//!
//! The public HTTP API of `API.md`. This crate owns routing, the caller's
//! owner scope, request parsing at the edge (bodies, queries, headers become
//! domain types here), the problem+json mapping ([`error`]) and the web's
//! `/metrics`. It is thin: every decision about tasks lives in
//! `resume-agent-core`, every hand-off in `resume-agent-queue`.
//!
//! It must not run tasks or speak SQL or a queue protocol itself.
//!
//! Layout: [`error`] (one error enum → problem+json), [`extract`] (JSON
//! body, owner), [`auth`] (bearer tokens against a JWKS), [`limits`]
//! (per-owner rate limit, stream caps), [`tasks`] (the task routes),
//! [`events`] (SSE), [`console`] (the operator's API: retry, attempts,
//! series, queues), [`ui`] (the console page and its assets, embedded),
//! [`openapi`] (the generated document and its page), this file (settings,
//! the app: build, bind, serve, drain).

pub mod auth;
pub mod console;
pub mod error;
pub mod events;
pub mod extract;
pub mod files;
pub mod limits;
pub mod openapi;
pub mod tasks;
pub mod ui;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use resume_agent_core::blob::BlobStore;
use resume_agent_core::config::{AuthMode, Config, Source};
use resume_agent_core::store::TaskStore;
use resume_agent_queue::TaskBackend;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;

/// What the web needs.
#[derive(Clone)]
pub struct Deps {
    /// The source of truth.
    pub store: Arc<dyn TaskStore>,
    /// Where new tasks are handed.
    pub backend: Arc<dyn TaskBackend>,
    /// File storage.
    pub blobs: Arc<dyn BlobStore>,
}

/// Web settings beyond the shared configuration, parsed once at start.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// How callers are identified.
    pub auth: auth::Auth,
    /// `RATE_LIMIT_RPS` per owner (0 = off; default off with AUTH_MODE=none, 100 with jwt).
    pub rate_rps: f64,
    /// `RATE_LIMIT_BURST` (default 2 × rate).
    pub rate_burst: f64,
    /// `SSE_MAX_STREAMS_PER_OWNER` (default 16).
    pub streams_per_owner: usize,
    /// `SSE_MAX_STREAMS` (default 1000).
    pub streams_total: usize,
    /// Event stream tuning (`SSE_POLL_MS`, `SSE_KEEPALIVE_SECS`, `SSE_MAX_DURATION_SECS`).
    pub streams: events::StreamSettings,
    /// `FILE_MAX_BYTES` (default 10 MiB): upload limit (413 above).
    pub file_max_bytes: usize,
}

/// A web setting that does not parse, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: invalid value {value:?}: {reason}")]
pub struct SettingsError {
    var: &'static str,
    value: String,
    reason: String,
}

fn num<T: std::str::FromStr>(
    src: &dyn Source,
    var: &'static str,
    default: T,
) -> Result<T, SettingsError> {
    match src.get(var) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| SettingsError {
            var,
            value: v.clone(),
            reason: "not a number".into(),
        }),
    }
}

impl WebSettings {
    /// Reads the web's own variables (and `AUTH_MODE` from `config`).
    ///
    /// # Errors
    /// The first variable that does not parse; with `AUTH_MODE=jwt`, a
    /// missing `JWT_*` variable.
    pub fn from_source(config: &Config, src: &dyn Source) -> Result<Self, SettingsError> {
        let auth = match config.auth_mode {
            AuthMode::None => auth::Auth::None(config.default_owner.clone()),
            AuthMode::Jwt => {
                let cfg = auth::JwtConfig::from_source(src).map_err(|e| SettingsError {
                    var: e.var,
                    value: String::new(),
                    reason: e.reason,
                })?;
                let v = auth::JwtVerifier::new(cfg).map_err(|e| SettingsError {
                    var: e.var,
                    value: String::new(),
                    reason: e.reason,
                })?;
                auth::Auth::Jwt(Arc::new(v))
            }
        };
        let default_rate = if config.auth_mode == AuthMode::Jwt {
            100.0
        } else {
            0.0
        };
        let rate_rps: f64 = num(src, "RATE_LIMIT_RPS", default_rate)?;
        let defaults = events::StreamSettings::default();
        Ok(Self {
            auth,
            rate_rps,
            rate_burst: num(src, "RATE_LIMIT_BURST", (rate_rps * 2.0).max(1.0))?,
            streams_per_owner: num(src, "SSE_MAX_STREAMS_PER_OWNER", 16)?,
            streams_total: num(src, "SSE_MAX_STREAMS", 1000)?,
            streams: events::StreamSettings {
                poll: Duration::from_millis(num(src, "SSE_POLL_MS", 250)?),
                keep_alive: Duration::from_secs(num(src, "SSE_KEEPALIVE_SECS", 15)?.max(1)),
                max_duration: Duration::from_secs(num(src, "SSE_MAX_DURATION_SECS", 3600)?),
                ..defaults
            },
            file_max_bytes: num(src, "FILE_MAX_BYTES", 10 * 1024 * 1024)?,
        })
    }
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// Dependencies.
    pub deps: Deps,
    /// How callers are identified.
    pub auth: auth::Auth,
    /// Per-owner request rate limit.
    pub rate: Arc<limits::RateLimiter>,
    /// Event stream caps.
    pub streams: Arc<limits::StreamLimits>,
    /// Event stream tuning.
    pub streams_cfg: events::StreamSettings,
    /// JSON body limit.
    pub max_body_bytes: usize,
    /// Upload limit.
    pub file_max_bytes: usize,
    /// Cancelled when the web starts draining: open event streams end so
    /// that the drain is not held up by long-lived responses.
    pub stopping: CancellationToken,
    draining: Arc<AtomicBool>,
}

/// The web service, bound and ready to serve.
pub struct WebApp {
    listener: TcpListener,
    router: Router,
    draining: Arc<AtomicBool>,
    stopping: CancellationToken,
    grace: Duration,
}

impl WebApp {
    /// Binds `config.web_addr` (or `addr` when given; port 0 picks a free
    /// one) and builds the router with the web's own settings, parsed at
    /// start by [`WebSettings::from_source`].
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn build(
        config: &Config,
        settings: WebSettings,
        addr: Option<SocketAddr>,
        deps: Deps,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr.unwrap_or(config.web_addr)).await?;
        let local = listener.local_addr()?;
        if let auth::Auth::None(owner) = &settings.auth
            && !local.ip().is_loopback()
        {
            tracing::warn!(
                addr = %local,
                owner = %owner,
                "AUTH_MODE=none on a non-loopback address: every caller acts as DEFAULT_OWNER_USER_ID; \
                 set AUTH_MODE=jwt in production"
            );
        }
        if let auth::Auth::Jwt(v) = &settings.auth {
            // Warm the key cache; a failure is retried on the first request.
            let _ = v.refresh().await;
        }
        let draining = Arc::new(AtomicBool::new(false));
        let stopping = CancellationToken::new();
        let state = AppState {
            deps,
            auth: settings.auth,
            rate: Arc::new(limits::RateLimiter::new(
                settings.rate_rps,
                settings.rate_burst,
            )),
            streams: limits::StreamLimits::new(settings.streams_per_owner, settings.streams_total),
            streams_cfg: settings.streams,
            max_body_bytes: config.web.max_body_bytes,
            file_max_bytes: settings.file_max_bytes,
            stopping: stopping.clone(),
            draining: draining.clone(),
        };
        let _ = resume_agent_telemetry::metrics_handle();
        Ok(Self {
            listener,
            router: router(state, config.web.request_timeout),
            draining,
            stopping,
            grace: config.worker.shutdown_grace,
        })
    }

    /// The bound port.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map_or(0, |a| a.port())
    }

    /// Serves until `shutdown` fires; then reports not-ready, stops
    /// accepting and lets in-flight requests finish.
    ///
    /// # Errors
    /// When serving fails.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> std::io::Result<()> {
        let draining = self.draining.clone();
        let stopping = self.stopping.clone();
        let signal = shutdown.clone();
        let serve = axum::serve(self.listener, self.router).with_graceful_shutdown(async move {
            signal.cancelled().await;
            draining.store(true, Ordering::SeqCst);
            stopping.cancel();
            tracing::info!("web draining: finishing in-flight requests");
        });
        let grace = self.grace;
        // In-flight requests get the grace period; then the process goes.
        let deadline = async move {
            shutdown.cancelled().await;
            tokio::time::sleep(grace).await;
            tracing::warn!(
                ?grace,
                "web drain period over: closing remaining connections"
            );
        };
        tokio::select! {
            r = serve => r,
            () = deadline => Ok(()),
        }
    }
}

/// The public router.
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/ready", get(ready))
        .route("/api/tasks", post(tasks::create).get(tasks::list))
        .route("/api/tasks/{id}", get(tasks::get_one))
        .route("/api/tasks/{id}/cancel", post(tasks::cancel))
        .route("/api/tasks/{id}/events", get(events::events))
        .route("/api/stats", get(tasks::stats))
        // The operator's console and the API behind it (issue 13).
        .route("/", get(ui::index))
        .route("/console/app.js", get(ui::script))
        .route("/console/app.css", get(ui::style))
        .route("/console/icon.svg", get(ui::icon))
        .route("/api/tasks/retry", post(console::retry_bulk))
        .route("/api/tasks/{id}/retry", post(console::retry_one))
        .route("/api/tasks/{id}/attempts", get(console::attempts))
        .route("/api/stats/timeseries", get(console::timeseries))
        .route("/api/stats/kinds", get(console::kinds))
        .route("/api/queues", get(console::queues))
        .route("/api/session", get(console::session))
        .route(
            "/api/files",
            post(files::upload).layer(axum::extract::DefaultBodyLimit::max(
                state.file_max_bytes + files::MULTIPART_OVERHEAD,
            )),
        )
        .route("/api/files/{id}", get(files::download))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/api/docs", get(openapi::docs_page))
        .route("/metrics", get(metrics_endpoint))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            request_timeout,
            timeout,
        ))
        .layer(axum::middleware::from_fn(
            resume_agent_telemetry::http_metrics,
        ))
        .layer(axum::middleware::from_fn(catch_panic))
}

async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            ApiError::Unavailable(format!("the request took longer than {}s", limit.as_secs()))
                .into_response()
        }
    }
}

async fn catch_panic(req: Request, next: Next) -> Response {
    use futures_like::CatchUnwind;
    match CatchUnwind::new(next.run(req)).await {
        Ok(r) => r,
        Err(()) => ApiError::Internal("a handler panicked".into()).into_response(),
    }
}

mod futures_like {
    //! A minimal `catch_unwind` for futures, so a handler bug answers a
    //! problem+json 500 instead of a dropped connection.
    use std::future::Future;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::pin::Pin;
    use std::task::{Context, Poll};

    pub struct CatchUnwind<F>(Pin<Box<F>>);

    impl<F: Future> CatchUnwind<F> {
        pub fn new(f: F) -> Self {
            Self(Box::pin(f))
        }
    }

    impl<F: Future> Future for CatchUnwind<F> {
        type Output = Result<F::Output, ()>;
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let inner = self.0.as_mut();
            match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
                Ok(Poll::Pending) => Poll::Pending,
                Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
                Err(_) => Poll::Ready(Err(())),
            }
        }
    }
}

/// `GET /api/health`: liveness; touches no dependency.
#[utoipa::path(get, path = "/api/health", tag = "operations", description = "Liveness: touches no dependency.",
    responses((status = 200, description = "Alive", body = openapi::Health)))]
async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /api/ready`.
#[utoipa::path(get, path = "/api/ready", tag = "operations",
    description = "Readiness: 503 names the failing check (database, backend, storage).",
    responses(
        (status = 200, description = "Ready", body = openapi::Ready),
        (status = 503, description = "Not ready", body = openapi::Ready),
    ))]
async fn ready(State(st): State<AppState>) -> Response {
    let deps = &st.deps;
    let (db, backend, storage) =
        tokio::join!(deps.store.ping(), deps.backend.check(), deps.blobs.check());
    let mut checks = serde_json::Map::new();
    let mut ok = true;
    match db {
        Ok(()) => drop(checks.insert("database".into(), json!("ok"))),
        Err(e) => {
            ok = false;
            checks.insert("database".into(), json!(format!("error: {e}")));
        }
    }
    match backend {
        Ok(()) => drop(checks.insert("backend".into(), json!("ok"))),
        // In Phase 5 a worker restart must not take the API down: tasks are
        // accepted into the store and run when the worker is back.
        Err(e) if deps.backend.name() == resume_agent_queue::in_process::NAME => {
            checks.insert(
                "backend".into(),
                json!(format!(
                    "degraded: {e}; tasks are accepted and run when the worker returns"
                )),
            );
        }
        Err(e) => {
            ok = false;
            checks.insert("backend".into(), json!(format!("error: {e}")));
        }
    }
    match storage {
        Ok(()) => drop(checks.insert("storage".into(), json!("ok"))),
        Err(e) => {
            ok = false;
            checks.insert("storage".into(), json!(format!("error: {e}")));
        }
    }
    if st.draining.load(Ordering::SeqCst) {
        ok = false;
        checks.insert("web".into(), json!("draining"));
    }
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

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "operations", description = "Prometheus text exposition.",
    responses((status = 200, description = "Metrics", content_type = "text/plain", body = String)))]
async fn metrics_endpoint(State(st): State<AppState>) -> Response {
    resume_agent_telemetry::record_pool(st.deps.store.pool_stats());
    resume_agent_telemetry::metrics_response()
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
