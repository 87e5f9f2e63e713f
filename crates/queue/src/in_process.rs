//! Phase 5: the in-process backend.
//!
//! One worker replica (guarded by a single-replica lock) takes its work
//! straight from the store whenever it has free slots. The web's hand-off
//! is a wake-up: [`HttpDispatcher`] posts the new task ids to the worker's
//! internal endpoint ([`router`]: `POST /internal/tasks`, protected by
//! `WORKER_API_TOKEN` when set), which wakes the worker's intake. In `serve`
//! (web and worker in one process) the web wakes it directly
//! ([`crate::wake::WakeBackend`]). Nothing is held in memory: a refused,
//! lost or late hand-off delays a task by at most the worker's poll
//! interval (`INTAKE_POLL_MS`), and a restarted worker finds its backlog in
//! the store.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use resume_agent_core::secret::Secret;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::wake::Wakeups;
use crate::{BackendError, Message, TaskBackend, ct_eq};

/// The backend name used in metrics.
pub const NAME: &str = "in-process";

/// Most task ids one `POST /internal/tasks` may carry.
pub const MAX_MESSAGES: usize = 1000;

/// The longest `delay_ms` the internal endpoint accepts (one hour). The
/// store's `run_after` decides when a task is due; the delay only says when
/// a wake-up is useful, so a longer one is refused rather than held.
pub const MAX_DELAY_MS: u64 = 3_600_000;

/// Body of `POST /internal/tasks`.
#[derive(Debug, Serialize, Deserialize)]
pub struct DispatchRequest {
    /// The tasks.
    pub messages: Vec<Message>,
    /// Visible after this many milliseconds.
    #[serde(default)]
    pub delay_ms: u64,
}

#[derive(Clone)]
struct RouterState {
    wakeups: Wakeups,
    token: Option<Secret>,
}

/// The worker's internal hand-off endpoint, `POST /internal/tasks`. With a
/// token configured, a request without `Authorization: Bearer <token>` is
/// answered 401 (compared in constant time). A valid request wakes the
/// worker's intake; at most [`MAX_MESSAGES`] ids and a delay of at most
/// [`MAX_DELAY_MS`] are accepted, and nothing is kept in memory.
pub fn router(wakeups: Wakeups, token: Option<Secret>) -> Router {
    Router::new()
        .route("/internal/tasks", post(dispatch))
        .layer(DefaultBodyLimit::max(256 * 1024))
        .with_state(RouterState { wakeups, token })
}

fn problem(status: StatusCode, detail: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        serde_json::json!({
            "type": "about:blank",
            "title": status.canonical_reason().unwrap_or("error"),
            "status": status.as_u16(),
            "detail": detail,
        })
        .to_string(),
    )
        .into_response()
}

/// True when `headers` carry the expected bearer token (or none is required).
#[must_use]
pub fn authorized(headers: &HeaderMap, token: Option<&Secret>) -> bool {
    let Some(expected) = token else { return true };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    ct_eq(given.as_bytes(), expected.expose().as_bytes())
}

async fn dispatch(
    State(st): State<RouterState>,
    headers: HeaderMap,
    body: Result<Json<DispatchRequest>, axum::extract::rejection::JsonRejection>,
) -> Response {
    if !authorized(&headers, st.token.as_ref()) {
        return problem(StatusCode::UNAUTHORIZED, "a valid worker token is required");
    }
    let Json(req) = match body {
        Ok(b) => b,
        Err(e) => return problem(StatusCode::BAD_REQUEST, &e.body_text()),
    };
    if req.messages.len() > MAX_MESSAGES {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("at most {MAX_MESSAGES} task ids per request"),
        );
    }
    if req.delay_ms > MAX_DELAY_MS {
        return problem(
            StatusCode::BAD_REQUEST,
            &format!("delay_ms must be at most {MAX_DELAY_MS}"),
        );
    }
    if !req.messages.is_empty() {
        st.wakeups.wake();
    }
    StatusCode::ACCEPTED.into_response()
}

struct Job {
    messages: Vec<Message>,
    delay: Duration,
    done: oneshot::Sender<Result<(), BackendError>>,
}

/// The web's side of the in-process backend: posts task ids to the worker
/// at `WORKER_BASE_URL`. Concurrent calls are coalesced into one request
/// per batch, so under load the web makes far fewer calls than it gets.
pub struct HttpDispatcher {
    tx: mpsc::Sender<Job>,
    client: reqwest::Client,
    base_url: String,
}

impl std::fmt::Debug for HttpDispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpDispatcher")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// Most messages one dispatch request carries.
const MAX_BATCH: usize = 512;
const _: () = assert!(MAX_BATCH <= MAX_MESSAGES);

impl HttpDispatcher {
    /// A dispatcher for the worker at `base_url`. Spawns its batching loop
    /// on the current runtime; the loop ends when the dispatcher is dropped.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(
        base_url: &str,
        token: Option<Secret>,
        timeout: Duration,
    ) -> Result<Arc<Self>, BackendError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| BackendError::Unavailable(e.to_string()))?;
        let (tx, rx) = mpsc::channel::<Job>(4096);
        let url = format!("{}/internal/tasks", base_url.trim_end_matches('/'));
        tokio::spawn(batch_loop(rx, client.clone(), url, token));
        Ok(Arc::new(Self {
            tx,
            client,
            base_url: base_url.trim_end_matches('/').to_owned(),
        }))
    }
}

async fn post_batch(
    client: &reqwest::Client,
    url: &str,
    token: Option<&Secret>,
    messages: Vec<Message>,
    delay: Duration,
) -> Result<(), BackendError> {
    let body = DispatchRequest {
        messages,
        delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
    };
    let mut req = client.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t.expose());
    }
    let resp = req.send().await.map_err(|e| {
        BackendError::Unavailable(format!("worker unreachable: {}", e.without_url()))
    })?;
    match resp.status() {
        s if s.is_success() => Ok(()),
        reqwest::StatusCode::UNAUTHORIZED => Err(BackendError::Unauthorized),
        reqwest::StatusCode::SERVICE_UNAVAILABLE => Err(BackendError::Full),
        s => Err(BackendError::Unavailable(format!("worker answered {s}"))),
    }
}

async fn batch_loop(
    mut rx: mpsc::Receiver<Job>,
    client: reqwest::Client,
    url: String,
    token: Option<Secret>,
) {
    let mut jobs = Vec::with_capacity(64);
    while rx.recv_many(&mut jobs, 256).await > 0 {
        // Group by delay (new tasks share delay zero), in bounded batches.
        jobs.sort_by_key(|j| j.delay);
        let mut rest = std::mem::take(&mut jobs);
        while !rest.is_empty() {
            let delay = rest[0].delay;
            let mut batch = Vec::new();
            let mut waiters = Vec::new();
            while let Some(j) = rest.first() {
                if j.delay != delay
                    || (!batch.is_empty() && batch.len() + j.messages.len() > MAX_BATCH)
                {
                    break;
                }
                let j = rest.remove(0);
                batch.extend(j.messages);
                waiters.push(j.done);
            }
            let result = post_batch(&client, &url, token.as_ref(), batch, delay).await;
            for w in waiters {
                let _ = w.send(result.clone());
            }
        }
    }
}

#[async_trait]
impl TaskBackend for HttpDispatcher {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn enqueue(&self, messages: &[Message], delay: Duration) -> Result<(), BackendError> {
        if messages.is_empty() {
            return Ok(());
        }
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Job {
                messages: messages.to_vec(),
                delay,
                done,
            })
            .await
            .map_err(|_| BackendError::Unavailable("dispatcher stopped".into()))?;
        wait.await
            .map_err(|_| BackendError::Unavailable("dispatcher stopped".into()))?
    }

    async fn check(&self) -> Result<(), BackendError> {
        let resp = self
            .client
            .get(format!("{}/health", self.base_url))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map_err(|e| {
                BackendError::Unavailable(format!("worker unreachable: {}", e.without_url()))
            })?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(BackendError::Unavailable(format!(
                "worker health answered {}",
                resp.status()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_exactly() {
        let mut h = HeaderMap::new();
        let t = Secret::new("s3cret");
        assert!(!authorized(&h, Some(&t)));
        h.insert(header::AUTHORIZATION, "Bearer s3cre".parse().unwrap());
        assert!(!authorized(&h, Some(&t)));
        h.insert(header::AUTHORIZATION, "Bearer s3cret".parse().unwrap());
        assert!(authorized(&h, Some(&t)));
        assert!(authorized(&HeaderMap::new(), None));
    }
}
