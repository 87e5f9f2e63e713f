//! `GET /api/tasks/{id}/events`: live progress as Server-Sent Events.
//!
//! The stream sends the current snapshot first (with a `retry:` hint), then
//! one `data:` Task snapshot per status change, keep-alive comments while
//! idle, and ends after a terminal status. Changes made by any process (the
//! worker) are seen: on PostgreSQL the store pushes a wake-up through
//! LISTEN/NOTIFY and the stream re-reads the task; on the embedded store (or
//! if a notification is lost) it polls. Each stream holds one slot of the
//! per-owner and global caps, a small state and no buffer beyond one event.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use resume_agent_core::store::TaskWatch;
use resume_agent_core::{OwnerId, Task, TaskId, TaskStatus};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Viewer;
use crate::limits::{StreamRefused, StreamSlot};

/// Stream tuning.
#[derive(Debug, Clone, Copy)]
pub struct StreamSettings {
    /// Re-read interval without push notifications (`SSE_POLL_MS`, 250).
    pub poll: Duration,
    /// Re-read interval with push notifications, in case one is lost (5 s).
    pub poll_with_push: Duration,
    /// Keep-alive comment interval (`SSE_KEEPALIVE_SECS`, 15).
    pub keep_alive: Duration,
    /// A stream ends after this long; the client reconnects (`SSE_MAX_DURATION_SECS`, 3600).
    pub max_duration: Duration,
    /// The `retry:` hint for clients, in milliseconds.
    pub retry: Duration,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(250),
            poll_with_push: Duration::from_secs(5),
            keep_alive: Duration::from_secs(15),
            max_duration: Duration::from_secs(3600),
            retry: Duration::from_secs(3),
        }
    }
}

struct Cursor {
    st: AppState,
    owner: OwnerId,
    id: TaskId,
    last: Option<TaskStatus>,
    first: Option<Task>,
    watch: Option<TaskWatch>,
    deadline: tokio::time::Instant,
    done: bool,
    _slot: StreamSlot,
}

fn event(task: &Task, retry: Option<Duration>) -> Event {
    let e = Event::default()
        .json_data(task)
        .unwrap_or_else(|_| Event::default().comment("unserialisable task"));
    match retry {
        Some(r) => e.retry(r),
        None => e,
    }
}

impl Cursor {
    async fn next_event(&mut self) -> Option<Event> {
        if self.done {
            return None;
        }
        if let Some(task) = self.first.take() {
            self.last = Some(task.status);
            self.done = task.status.is_terminal();
            return Some(event(&task, Some(self.st.streams_cfg.retry)));
        }
        let settings = self.st.streams_cfg;
        loop {
            let pace = if self.watch.is_some() {
                settings.poll_with_push
            } else {
                settings.poll
            };
            let wake = async {
                match self.watch.as_mut() {
                    Some(w) => w.changed().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = wake => {}
                () = tokio::time::sleep(pace) => {}
                () = tokio::time::sleep_until(self.deadline) => return None,
                // Draining: end the stream; the client reconnects elsewhere.
                () = self.st.stopping.cancelled() => return None,
            }
            match self.st.deps.tasks.get_task(&self.owner, self.id).await {
                Ok(Some(task)) if Some(task.status) != self.last => {
                    self.last = Some(task.status);
                    self.done = task.status.is_terminal();
                    return Some(event(&task, None));
                }
                Ok(Some(_)) => {}
                // Deleted, or the database is away: end; the client reconnects.
                Ok(None) => return None,
                Err(e) => {
                    tracing::debug!(error = %e, "event stream re-read failed; retrying");
                }
            }
        }
    }
}

/// `GET /api/tasks/{id}/events`.
#[utoipa::path(get, path = "/api/tasks/{id}/events", tag = "tasks",
    description = "Server-Sent Events: one `data:` Task snapshot per status change, the current one first (with a `retry:` hint); keep-alive comments while idle; the stream ends after a terminal status.",
    params(("id" = String, Path, description = "Task id (UUID)", format = Uuid)),
    responses(
        (status = 200, description = "The event stream", content_type = "text/event-stream", body = String),
        (status = 400, description = "Not a UUID", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 404, description = "Unknown, or another owner's", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 401, description = "Missing or invalid bearer token (AUTH_MODE=jwt)", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("WWW-Authenticate" = String, description = "Bearer challenge"))),
        (status = 429, description = "Per-owner rate limit reached", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 503, description = "The database (or token keys) unavailable; retry", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    ),
    security((), ("bearer" = [])))]
pub async fn events(
    State(st): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = crate::tasks::parse_id(&id)?;
    // The stream slot is the caller's; the task is read as its owner's
    // (another owner's only with the admin role).
    let slot = st
        .streams
        .acquire(viewer.owner.as_str())
        .map_err(|e| match e {
            StreamRefused::Owner => {
                ApiError::TooManyRequests(st.streams_cfg.retry.as_secs().max(1))
            }
            StreamRefused::Total => {
                ApiError::Unavailable("too many open event streams; retry later".into())
            }
        })?;
    let owner = crate::tasks::effective_owner(&st, &viewer, id).await?;
    let task = st
        .deps
        .tasks
        .get_task(&owner, id)
        .await?
        .ok_or(ApiError::NotFound("no such task"))?;
    let (task, watch) = if task.status.is_terminal() {
        (task, None)
    } else {
        // Subscribe, then take the snapshot, so that no change falls between.
        let watch = st.deps.watch.watch(id).await.unwrap_or_else(|e| {
            tracing::debug!(error = %e, "push notifications unavailable; polling");
            None
        });
        let task = st
            .deps
            .tasks
            .get_task(&owner, id)
            .await?
            .ok_or(ApiError::NotFound("no such task"))?;
        (task, watch)
    };
    let settings = st.streams_cfg;
    let cursor = Cursor {
        deadline: tokio::time::Instant::now() + settings.max_duration,
        st,
        owner,
        id,
        last: None,
        first: Some(task),
        watch,
        done: false,
        _slot: slot,
    };
    let stream = futures::stream::unfold(cursor, |mut c| async move {
        c.next_event()
            .await
            .map(|e| (Ok::<Event, Infallible>(e), c))
    });
    let keep_alive = KeepAlive::new()
        .interval(settings.keep_alive)
        .text("keep-alive");
    Ok(Sse::new(stream).keep_alive(keep_alive).into_response())
}
