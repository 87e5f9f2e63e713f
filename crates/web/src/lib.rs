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
//! [`openapi`] (the generated document and its page), [`server`] (the HTTP
//! edge: accept loop, time and connection limits), [`paging`] (list pages
//! bounded in bytes), [`retention`] (the file retention sweep), this file
//! (settings, the app: build, bind, serve, drain).

pub mod auth;
pub mod console;
pub mod error;
pub mod events;
pub mod extract;
pub mod files;
pub mod limits;
pub mod openapi;
pub mod paging;
pub mod retention;
pub mod server;
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
use resume_agent_core::store::{ConsoleStore, FileStore, TaskApi, WatchStore};
use resume_agent_queue::TaskBackend;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;

/// What the web needs. The store is seen through the parts the web uses
/// (one store behind them all: `store::open` hands out an
/// `Arc<dyn TaskStore>` that coerces to each); never the worker's claim and
/// lease side.
#[derive(Clone)]
pub struct Deps {
    /// The owner's tasks: create, read, list, count, cancel; the queued
    /// quota; readiness and pool gauges.
    pub tasks: Arc<dyn TaskApi>,
    /// File metadata (uploads, downloads, deletion, quota, retention).
    pub files: Arc<dyn FileStore>,
    /// Scoped reads and the operator's console (retry, attempts, series,
    /// queues).
    pub console: Arc<dyn ConsoleStore>,
    /// Push notifications of status changes for event streams (a store
    /// that has none answers `None` and streams poll).
    pub watch: Arc<dyn WatchStore>,
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
    /// Time and connection limits of the listener (`HTTP_*`).
    pub edge: server::EdgeSettings,
    /// `RATE_LIMIT_IP_RPS` (default 10; 0 = off): failed authentications
    /// (401) per second per client address, checked before authentication
    /// (see [`limits::per_client`]).
    pub ip_rate_rps: f64,
    /// `RATE_LIMIT_IP_BURST` (default 5 × rate).
    pub ip_rate_burst: f64,
    /// `TRUST_FORWARDED_FOR` (default false): take the client address from
    /// the last `X-Forwarded-For` entry (set it behind an ingress that
    /// appends it; never on a listener clients reach directly).
    pub trust_forwarded_for: bool,
    /// Per-owner quotas (`OWNER_MAX_STORED_BYTES`, `OWNER_MAX_QUEUED_TASKS`).
    pub quotas: Quotas,
    /// `LIST_MAX_BYTES` (default 4 MiB): a list page stops before passing
    /// this many bytes of tasks (at least one task), `next_cursor` set.
    pub list_max_bytes: usize,
    /// The file retention sweep (`FILE_RETENTION_DAYS`, `FILE_RETENTION_SWEEP_SECS`).
    pub retention: retention::RetentionSettings,
}

/// Per-owner caps; 0 turns one off.
#[derive(Debug, Clone, Copy)]
pub struct Quotas {
    /// `OWNER_MAX_STORED_BYTES` (default 1 GiB): an upload that would pass
    /// it is refused with 413.
    pub max_stored_bytes: u64,
    /// `OWNER_MAX_QUEUED_TASKS` (default 100000): a submission while the
    /// owner has this many queued is refused with 429.
    pub max_queued_tasks: u32,
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

/// Whole seconds, at least 1.
fn secs(src: &dyn Source, var: &'static str, default: Duration) -> Result<Duration, SettingsError> {
    let n: u64 = num(src, var, default.as_secs())?;
    if n == 0 {
        return Err(SettingsError {
            var,
            value: "0".into(),
            reason: "must be at least 1".into(),
        });
    }
    Ok(Duration::from_secs(n))
}

fn positive(src: &dyn Source, var: &'static str, default: usize) -> Result<usize, SettingsError> {
    let n: usize = num(src, var, default)?;
    if n == 0 {
        return Err(SettingsError {
            var,
            value: "0".into(),
            reason: "must be at least 1".into(),
        });
    }
    Ok(n)
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
        let ip_rate_rps: f64 = num(src, "RATE_LIMIT_IP_RPS", 10.0)?;
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
            edge: {
                let d = server::EdgeSettings::default();
                server::EdgeSettings {
                    header_timeout: secs(src, "HTTP_HEADER_TIMEOUT_SECS", d.header_timeout)?,
                    idle_timeout: secs(src, "HTTP_IDLE_TIMEOUT_SECS", d.idle_timeout)?,
                    write_timeout: secs(src, "HTTP_WRITE_TIMEOUT_SECS", d.write_timeout)?,
                    max_connections: positive(src, "HTTP_MAX_CONNECTIONS", d.max_connections)?,
                    max_uri_bytes: positive(src, "HTTP_MAX_URI_BYTES", d.max_uri_bytes)?,
                    max_header_bytes: positive(src, "HTTP_MAX_HEADER_BYTES", d.max_header_bytes)?,
                }
            },
            ip_rate_rps,
            ip_rate_burst: num(src, "RATE_LIMIT_IP_BURST", (ip_rate_rps * 5.0).max(1.0))?,
            trust_forwarded_for: match src.get("TRUST_FORWARDED_FOR").as_deref().map(str::trim) {
                None | Some("" | "false" | "0") => false,
                Some("true" | "1") => true,
                Some(v) => {
                    return Err(SettingsError {
                        var: "TRUST_FORWARDED_FOR",
                        value: v.to_owned(),
                        reason: "expected true or false".into(),
                    });
                }
            },
            quotas: Quotas {
                max_stored_bytes: num(src, "OWNER_MAX_STORED_BYTES", 1024 * 1024 * 1024)?,
                max_queued_tasks: num(src, "OWNER_MAX_QUEUED_TASKS", 100_000)?,
            },
            list_max_bytes: positive(src, "LIST_MAX_BYTES", 4 * 1024 * 1024)?,
            retention: retention::RetentionSettings {
                max_age: Duration::from_secs(
                    num::<u64>(src, "FILE_RETENTION_DAYS", 30)?.saturating_mul(86_400),
                ),
                interval: secs(src, "FILE_RETENTION_SWEEP_SECS", Duration::from_secs(3600))?,
            },
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
    /// Per-client-address request rate limit, before authentication.
    pub ip_rate: Arc<limits::RateLimiter>,
    /// Client address from `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
    /// Per-owner quotas.
    pub quotas: Quotas,
    /// Cached per-owner queued counts for the queued-task quota.
    pub queued: Arc<limits::QueuedCounts>,
    /// Byte budget of one list page.
    pub list_max_bytes: usize,
    /// URI and header limits (414, 431).
    pub edge: server::EdgeSettings,
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
    edge: server::EdgeSettings,
    retention: retention::RetentionSettings,
    deps: Deps,
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
            deps: deps.clone(),
            auth: settings.auth,
            rate: Arc::new(limits::RateLimiter::new(
                settings.rate_rps,
                settings.rate_burst,
            )),
            streams: limits::StreamLimits::new(settings.streams_per_owner, settings.streams_total),
            streams_cfg: settings.streams,
            max_body_bytes: config.web.max_body_bytes,
            file_max_bytes: settings.file_max_bytes,
            ip_rate: Arc::new(limits::RateLimiter::new(
                settings.ip_rate_rps,
                settings.ip_rate_burst,
            )),
            trust_forwarded_for: settings.trust_forwarded_for,
            quotas: settings.quotas,
            queued: Arc::default(),
            list_max_bytes: settings.list_max_bytes,
            edge: settings.edge,
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
            edge: settings.edge,
            retention: settings.retention,
            deps,
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
        let stop_accepting = CancellationToken::new();
        let stop = stop_accepting.clone();
        let sweep_stop = shutdown.child_token();
        // The file retention sweep runs beside the server, stopped with it.
        let sweep = tokio::spawn(retention::run(
            self.deps.files.clone(),
            self.deps.blobs.clone(),
            self.retention,
            sweep_stop.clone(),
        ));
        // On the signal: report not-ready, end event streams, stop
        // accepting; then wait (it never completes: serve or the deadline
        // ends the select below).
        let on_signal = async move {
            signal.cancelled().await;
            draining.store(true, Ordering::SeqCst);
            stopping.cancel();
            tracing::info!("web draining: finishing in-flight requests");
            stop.cancel();
            std::future::pending::<()>().await;
        };
        let serve = async move {
            let r = server::serve(self.listener, self.router, self.edge, stop_accepting).await;
            sweep_stop.cancel();
            let _ = sweep.await;
            r
        };
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
            () = on_signal => Ok(()),
        }
    }
}

/// The public router.
pub fn router(state: AppState, request_timeout: Duration) -> Router {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/ready", get(ready))
        .route("/api/tasks", post(tasks::create).get(tasks::list))
        .route("/api/tasks/batch", post(tasks::create_batch))
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
        .route(
            "/api/files/{id}",
            get(files::download).delete(files::delete),
        )
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/api/docs", get(openapi::docs_page))
        .route("/metrics", get(metrics_endpoint))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::per_client,
        ))
        .layer(axum::middleware::from_fn_with_state(
            request_timeout,
            timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.edge,
            edge_limits,
        ))
        .layer(axum::middleware::from_fn(
            resume_agent_telemetry::http_metrics,
        ))
        .layer(axum::middleware::from_fn(catch_panic))
        .layer(axum::middleware::from_fn(error::problem_layer))
}

/// 414 and 431 as problem+json, below hyper's own (bare) limits.
async fn edge_limits(
    State(edge): State<server::EdgeSettings>,
    req: Request,
    next: Next,
) -> Response {
    let uri = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri > edge.max_uri_bytes {
        return ApiError::UriTooLong(format!(
            "the request target is longer than {} bytes",
            edge.max_uri_bytes
        ))
        .into_response();
    }
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if headers.len() > server::MAX_HEADERS || bytes > edge.max_header_bytes {
        return ApiError::HeadersTooLarge(format!(
            "at most {} headers and {} bytes of headers are accepted",
            server::MAX_HEADERS,
            edge.max_header_bytes
        ))
        .into_response();
    }
    next.run(req).await
}

/// The per-request timeout. A request whose body has not fully arrived when
/// it fires is a slow client (408, the connection closed), not a slow
/// server (503).
async fn timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    use futures::StreamExt;
    let headers = req.headers();
    let has_body = headers.contains_key(axum::http::header::TRANSFER_ENCODING)
        || headers
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0");
    let (req, body_done) = if has_body {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let (parts, body) = req.into_parts();
        let end = futures::stream::poll_fn(move |_| {
            flag.store(true, Ordering::SeqCst);
            std::task::Poll::Ready(None::<Result<bytes::Bytes, axum::Error>>)
        });
        let body = axum::body::Body::from_stream(body.into_data_stream().chain(end));
        (Request::from_parts(parts, body), Some(done))
    } else {
        (req, None)
    };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(r) => r,
        Err(_) if body_done.is_some_and(|d| !d.load(Ordering::SeqCst)) => {
            ApiError::RequestTimeout(format!(
                "the request body did not arrive within {}s",
                limit.as_secs()
            ))
            .into_response()
        }
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
        tokio::join!(deps.tasks.ping(), deps.backend.check(), deps.blobs.check());
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
    resume_agent_telemetry::record_pool(st.deps.tasks.pool_stats());
    resume_agent_telemetry::metrics_response()
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
