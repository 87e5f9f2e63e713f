//! Phase 5: the in-process backend.
//!
//! The worker holds an [`InProcessQueue`], a bounded in-memory queue of task
//! ids. The web reaches it over HTTP through [`HttpDispatcher`], which posts
//! batches to the worker's internal endpoint ([`router`]:
//! `POST /internal/tasks`, protected by `WORKER_API_TOKEN` when set). In
//! `serve` (web and worker in one process) the web enqueues directly.
//!
//! The queue dies with its process; that is fine because the store holds
//! every task and the worker's recovery sweeper hands queued tasks that
//! nobody picked up to the backend again.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use resume_agent_core::TaskId;
use resume_agent_core::secret::Secret;
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, oneshot};

use crate::{BackendError, Delivery, Message, Receipt, TaskBackend, TaskSource, ct_eq};

/// The backend name used in metrics.
pub const NAME: &str = "in-process";

#[derive(Default)]
struct State_ {
    queue: VecDeque<Message>,
    /// Ids waiting in `queue`, so a re-dispatch of a waiting task is a no-op.
    present: HashSet<TaskId>,
}

/// A bounded in-memory queue of task ids with delayed re-delivery.
pub struct InProcessQueue {
    state: Mutex<State_>,
    notify: Notify,
    capacity: usize,
}

impl std::fmt::Debug for InProcessQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessQueue")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

impl InProcessQueue {
    /// An empty queue holding at most `capacity` ids.
    #[must_use]
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State_::default()),
            notify: Notify::new(),
            capacity: capacity.max(1),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State_> {
        // The state stays consistent even if a holder panicked mid-way
        // (every mutation is a single push/pop pair), so a poisoned lock is
        // recovered rather than propagated.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Ids waiting.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// True when nothing waits.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends messages now. Ids already waiting are skipped. Fails with
    /// [`BackendError::Full`] when some did not fit (those that fit stay).
    ///
    /// # Errors
    /// [`BackendError::Full`].
    pub fn push(&self, messages: &[Message]) -> Result<(), BackendError> {
        let mut full = false;
        {
            let mut st = self.lock();
            for m in messages {
                if st.present.contains(&m.task_id) {
                    continue;
                }
                if st.queue.len() >= self.capacity {
                    full = true;
                    break;
                }
                st.present.insert(m.task_id);
                st.queue.push_back(*m);
            }
        }
        self.notify.notify_waiters();
        self.notify.notify_one();
        if full {
            Err(BackendError::Full)
        } else {
            Ok(())
        }
    }

    fn push_later(self: &Arc<Self>, messages: Vec<Message>, delay: Duration) {
        if delay.is_zero() {
            let _ = self.push(&messages);
            return;
        }
        // A lost timer (process exit) loses nothing: the store still has the
        // task queued and the sweeper re-dispatches it once due.
        let queue = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if let Some(q) = queue.upgrade()
                && q.push(&messages).is_err()
            {
                tracing::warn!(
                    n = messages.len(),
                    "in-process queue full; delayed tasks left to the sweeper"
                );
            }
        });
    }

    fn pop(&self, max: usize) -> Vec<Message> {
        let mut st = self.lock();
        let n = max.min(st.queue.len());
        let out: Vec<Message> = st.queue.drain(..n).collect();
        for m in &out {
            st.present.remove(&m.task_id);
        }
        out
    }
}

/// In-process enqueue (used by `serve`, where web and worker share a process).
pub struct LocalBackend(pub Arc<InProcessQueue>);

#[async_trait]
impl TaskBackend for LocalBackend {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn enqueue(&self, messages: &[Message], delay: Duration) -> Result<(), BackendError> {
        if delay.is_zero() {
            self.0.push(messages)
        } else {
            self.0.push_later(messages.to_vec(), delay);
            Ok(())
        }
    }

    async fn check(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

#[async_trait]
impl TaskSource for Arc<InProcessQueue> {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn receive(
        &self,
        max: usize,
        wait: Duration,
        _lease: Duration,
    ) -> Result<Vec<Delivery>, BackendError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.notify.notified();
            let got = self.pop(max);
            if !got.is_empty() {
                return Ok(got
                    .into_iter()
                    .map(|message| Delivery {
                        message,
                        receipt: Receipt::None,
                        dequeue_count: 1,
                    })
                    .collect());
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn extend(&self, _delivery: &mut Delivery, _lease: Duration) -> Result<(), BackendError> {
        // Nothing else can receive it: the lease lives in the store only.
        Ok(())
    }

    async fn complete(&self, _delivery: &Delivery) -> Result<(), BackendError> {
        Ok(())
    }

    async fn release(&self, delivery: &Delivery, delay: Duration) -> Result<(), BackendError> {
        self.push_later(vec![delivery.message], delay);
        Ok(())
    }

    async fn dead_letter(&self, _delivery: &Delivery) -> Result<(), BackendError> {
        // No dead-letter queue in process: the store's `failed` row is the record.
        Ok(())
    }

    async fn depth(&self) -> Option<u64> {
        u64::try_from(self.len()).ok()
    }
}

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
    queue: Arc<InProcessQueue>,
    token: Option<Secret>,
}

/// The worker's internal dispatch endpoint, `POST /internal/tasks`. With a
/// token configured, a request without `Authorization: Bearer <token>` is
/// answered 401 and nothing is enqueued (compared in constant time).
pub fn router(queue: Arc<InProcessQueue>, token: Option<Secret>) -> Router {
    Router::new()
        .route("/internal/tasks", post(dispatch))
        .layer(DefaultBodyLimit::max(4 * 1024 * 1024))
        .with_state(RouterState { queue, token })
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
    let delay = Duration::from_millis(req.delay_ms.min(7 * 24 * 3600 * 1000));
    let result = if delay.is_zero() {
        st.queue.push(&req.messages)
    } else {
        st.queue.push_later(req.messages, delay);
        Ok(())
    };
    match result {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(_) => problem(StatusCode::SERVICE_UNAVAILABLE, "the worker queue is full"),
    }
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

    fn msg() -> Message {
        Message {
            task_id: TaskId::new(),
            attempt: 0,
        }
    }

    #[test]
    fn push_is_bounded_and_deduplicated() {
        let q = InProcessQueue::new(2);
        let a = msg();
        q.push(&[a, a]).unwrap();
        assert_eq!(q.len(), 1);
        assert!(matches!(q.push(&[msg(), msg()]), Err(BackendError::Full)));
        assert_eq!(q.len(), 2);
        assert_eq!(q.pop(10).len(), 2);
        q.push(&[a]).unwrap();
        assert_eq!(q.len(), 1, "a popped id can be queued again");
    }

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
