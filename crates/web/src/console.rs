//! The API behind the operator's console: retry (one task, or in bulk by
//! filter), attempt history, the finished-per-interval series, counts per
//! kind, queued/running per backend (the flip view) and who the caller is.
//!
//! Every route is owner-scoped like the rest of the API; a token carrying
//! `JWT_ADMIN_ROLE` sees every owner (see [`crate::extract::Viewer`]).

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use resume_agent_core::store::{RetryFilter, RetryOutcome};
use resume_agent_core::{Task, TaskId, TaskKind, TaskStatus};
use resume_agent_queue::Message;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{JsonBody, Viewer};
use crate::tasks::parse_id;

/// Most tasks one bulk retry re-queues.
pub const BULK_RETRY_MAX: u32 = 1000;
/// Default of a bulk retry's `limit`.
pub const BULK_RETRY_DEFAULT: u32 = 100;
/// Most buckets one series answers.
pub const SERIES_MAX_BUCKETS: i64 = 1440;

/// Hands re-queued tasks to the backend like new ones, and removes their
/// dead-letter messages. A failed hand-off is not an error: the tasks are
/// stored `queued` and workers find them in the store.
async fn hand_off(st: &AppState, ids: &[TaskId]) {
    if ids.is_empty() {
        return;
    }
    let msgs: Vec<Message> = ids
        .iter()
        .map(|id| Message {
            task_id: *id,
            attempt: 0,
        })
        .collect();
    if let Err(e) = st.deps.backend.enqueue(&msgs, Duration::ZERO).await {
        metrics::counter!("task_dispatch_errors_total").increment(1);
        tracing::warn!(error = %e, tasks = ids.len(), "hand-off of retried tasks failed; workers will find them in the store");
    }
    // Their dead-letter copies (Azure: <queue>-poison) go: the task lives
    // again. A failure leaves a stale copy, harmless (claims are
    // conditional) but misleading, so it is logged.
    match st.deps.backend.forget_dead_letters(ids).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(n, "removed the dead-letter messages of retried tasks"),
        Err(e) => {
            tracing::warn!(error = %e, tasks = ids.len(), "removing dead-letter messages of retried tasks failed");
        }
    }
}

/// `POST /api/tasks/{id}/retry`.
#[utoipa::path(post, path = "/api/tasks/{id}/retry", tag = "console",
    description = "A failed or cancelled task goes back to queued with a fresh attempt budget (attempts = 0), due now, \
                   and is handed to the backend like a new task. Its attempt history is kept (GET /api/tasks/{id}/attempts); \
                   its last error stays visible until the next attempt ends. Any other status answers 409.",
    params(("id" = String, Path, description = "Task id (UUID)", format = Uuid)),
    responses(
        (status = 200, description = "Queued again", body = Task),
        (status = 400, description = "Not a UUID", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 404, description = "Unknown, or another owner's", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 409, description = "Not failed or cancelled", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 401, description = "Missing or invalid bearer token (AUTH_MODE=jwt)", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("WWW-Authenticate" = String, description = "Bearer challenge"))),
        (status = 429, description = "Per-owner rate limit reached", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 503, description = "The database (or token keys) unavailable; retry", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    ),
    security((), ("bearer" = [])))]
pub async fn retry_one(
    State(st): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Json<Task>, ApiError> {
    let id = parse_id(&id)?;
    let backend = st.deps.backend.name();
    match st
        .deps
        .console
        .retry_task(&viewer.scope(), id, Some(backend))
        .await?
    {
        RetryOutcome::Retried(task) => {
            hand_off(&st, &[task.id]).await;
            Ok(Json(task))
        }
        RetryOutcome::NotRetryable(task) => Err(ApiError::Conflict(format!(
            "the task is {}; only failed or cancelled tasks can be retried",
            task.status
        ))),
        RetryOutcome::NotFound => Err(ApiError::NotFound("no such task")),
    }
}

/// `POST /api/tasks/retry` body (documentation).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": ["failed"], "kind": "system.fail", "finished_after": "2026-01-01T00:00:00Z", "limit": 100}))]
pub struct BulkRetry {
    /// `failed` and/or `cancelled` (default `["failed"]`).
    pub status: Option<Vec<RetryableStatus>>,
    /// Only this kind.
    #[schema(
        example = "system.fail",
        pattern = "^(system\\.(noop|sleep|fail)|resume\\.(parse|match))$"
    )]
    pub kind: Option<String>,
    /// Finished at or after (RFC 3339).
    pub finished_after: Option<DateTime<Utc>>,
    /// Finished before (RFC 3339).
    pub finished_before: Option<DateTime<Utc>>,
    /// At most this many (oldest finish first); call again for more.
    #[schema(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// A status a bulk retry can select.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RetryableStatus {
    /// Failed.
    Failed,
    /// Cancelled.
    Cancelled,
}

/// What a bulk retry did.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BulkRetried {
    /// How many tasks were re-queued.
    pub retried: usize,
    /// Their ids.
    pub ids: Vec<TaskId>,
}

fn time_field(obj: &Map<String, Value>, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_time(name, s).map(Some),
        Some(_) => Err(ApiError::BadRequest(format!(
            "{name} must be an RFC 3339 time"
        ))),
    }
}

fn parse_time(name: &str, s: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::BadRequest(format!("{name} must be an RFC 3339 time")))
}

fn parse_bulk(body: Value) -> Result<RetryFilter, ApiError> {
    const FIELDS: [&str; 5] = [
        "status",
        "kind",
        "finished_after",
        "finished_before",
        "limit",
    ];
    let Value::Object(obj) = body else {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    };
    if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "{unknown} is not a field of a bulk retry (expected {})",
            FIELDS.join(", ")
        )));
    }
    let status_err = || ApiError::BadRequest("status must be a list of failed, cancelled".into());
    let statuses = match obj.get("status") {
        None | Some(Value::Null) => vec![TaskStatus::Failed],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| match v.as_str() {
                Some("failed") => Ok(TaskStatus::Failed),
                Some("cancelled") => Ok(TaskStatus::Cancelled),
                _ => Err(status_err()),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(status_err()),
    };
    let kind = match obj.get("kind") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(
            s.parse::<TaskKind>()
                .map_err(|e| ApiError::BadRequest(format!("kind: {e}")))?,
        ),
        Some(_) => return Err(ApiError::BadRequest("kind must be a string".into())),
    };
    let limit = match obj.get("limit") {
        None | Some(Value::Null) => BULK_RETRY_DEFAULT,
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (1..=BULK_RETRY_MAX).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "limit must be an integer between 1 and {BULK_RETRY_MAX}"
                ))
            })?,
    };
    let finished_after = time_field(&obj, "finished_after")?;
    let finished_before = time_field(&obj, "finished_before")?;
    if let (Some(a), Some(b)) = (finished_after, finished_before)
        && a > b
    {
        return Err(ApiError::BadRequest(
            "finished_after must not be later than finished_before".into(),
        ));
    }
    Ok(RetryFilter {
        statuses,
        kind,
        finished_after,
        finished_before,
        limit,
    })
}

/// `POST /api/tasks/retry`: bulk retry by filter.
#[utoipa::path(post, path = "/api/tasks/retry", tag = "console",
    description = "Re-queues up to `limit` (≤ 1000) of the caller's failed and/or cancelled tasks matching the filter, \
                   oldest finish first, each exactly like POST /api/tasks/{id}/retry; answers how many. Call again while \
                   `retried` equals the limit.",
    request_body(content = BulkRetry, content_type = "application/json"),
    responses(
        (status = 200, description = "How many were re-queued", body = BulkRetried),
        (status = 400, description = "Malformed JSON or an invalid filter", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 413, description = "Body over the configured limit", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 415, description = "Content type is not JSON", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 401, description = "Missing or invalid bearer token (AUTH_MODE=jwt)", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("WWW-Authenticate" = String, description = "Bearer challenge"))),
        (status = 429, description = "Per-owner rate limit reached", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 503, description = "The database (or token keys) unavailable; retry", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    ),
    security((), ("bearer" = [])))]
pub async fn retry_bulk(
    State(st): State<AppState>,
    viewer: Viewer,
    JsonBody(body): JsonBody,
) -> Result<Json<BulkRetried>, ApiError> {
    let filter = parse_bulk(body)?;
    let backend = st.deps.backend.name();
    let ids = st
        .deps
        .console
        .retry_tasks(&viewer.scope(), &filter, Some(backend))
        .await?;
    hand_off(&st, &ids).await;
    Ok(Json(BulkRetried {
        retried: ids.len(),
        ids,
    }))
}

/// `GET /api/tasks/{id}/attempts` answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct AttemptList {
    /// Oldest first; the attempt in progress (outcome `running`) last.
    pub items: Vec<resume_agent_core::store::Attempt>,
}

/// `GET /api/tasks/{id}/attempts`.
#[utoipa::path(get, path = "/api/tasks/{id}/attempts", tag = "console",
    description = "Every attempt of the task, oldest first: number, worker, start, end, outcome, error. Finished attempts \
                   are recorded by the worker; the one in progress is shown from the task itself (outcome `running`). \
                   Numbers restart after a retry.",
    params(("id" = String, Path, description = "Task id (UUID)", format = Uuid)),
    responses(
        (status = 200, description = "The attempts", body = AttemptList),
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
pub async fn attempts(
    State(st): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Json<AttemptList>, ApiError> {
    let id = parse_id(&id)?;
    st.deps
        .console
        .attempts(&viewer.scope(), id)
        .await?
        .map(|items| Json(AttemptList { items }))
        .ok_or(ApiError::NotFound("no such task"))
}

/// Query of `GET /api/stats/timeseries`.
#[derive(Debug, Deserialize)]
pub struct SeriesParams {
    interval: Option<String>,
    since: Option<String>,
}

/// `GET /api/stats/timeseries` answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Series {
    /// Seconds per bucket.
    pub interval: i64,
    /// Start of the first bucket's range (as asked).
    pub since: DateTime<Utc>,
    /// One point per bucket, oldest first, zeros included.
    pub items: Vec<resume_agent_core::store::SeriesPoint>,
}

/// `GET /api/stats/timeseries`.
#[utoipa::path(get, path = "/api/stats/timeseries", tag = "console",
    description = "Tasks that finished since `since` (default: one hour ago), per `interval` seconds (aligned to the epoch) \
                   and outcome; at most 1440 buckets. Read from a range of the finished-tasks index, never the whole table.",
    params(
        ("interval" = Option<i64>, Query, description = "Seconds per bucket (default 60)", minimum = 10, maximum = 86400),
        ("since" = Option<String>, Query, description = "RFC 3339 start (default now − 1 h)", format = DateTime),
    ),
    responses(
        (status = 200, description = "The series", body = Series),
        (status = 400, description = "Bad interval or since, or too many buckets", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 401, description = "Missing or invalid bearer token (AUTH_MODE=jwt)", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("WWW-Authenticate" = String, description = "Bearer challenge"))),
        (status = 429, description = "Per-owner rate limit reached", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 503, description = "The database (or token keys) unavailable; retry", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    ),
    security((), ("bearer" = [])))]
pub async fn timeseries(
    State(st): State<AppState>,
    viewer: Viewer,
    query: Result<Query<SeriesParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Series>, ApiError> {
    let Query(p) =
        query.map_err(|e| ApiError::BadRequest(format!("invalid query: {}", e.body_text())))?;
    let interval = match p.interval.as_deref() {
        None => 60,
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| (10..=86_400).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest("interval must be an integer between 10 and 86400".into())
            })?,
    };
    let now = Utc::now();
    let since = match p.since.as_deref() {
        None => now - chrono::Duration::hours(1),
        Some(s) => parse_time("since", s)?,
    };
    let span = now.timestamp().saturating_sub(since.timestamp());
    if span / interval >= SERIES_MAX_BUCKETS {
        return Err(ApiError::BadRequest(format!(
            "at most {SERIES_MAX_BUCKETS} buckets: choose a later since or a longer interval"
        )));
    }
    let items = st
        .deps
        .console
        .finished_series(&viewer.scope(), since, interval)
        .await?;
    Ok(Json(Series {
        interval,
        since,
        items,
    }))
}

/// Query of `GET /api/stats/kinds`.
#[derive(Debug, Deserialize)]
pub struct KindParams {
    since: Option<String>,
}

/// `GET /api/stats/kinds` answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct KindCounts {
    /// Finished counts cover tasks finished since this time.
    pub finished_since: DateTime<Utc>,
    /// One row per kind that has tasks, by name.
    pub items: Vec<resume_agent_core::store::KindStats>,
}

/// `GET /api/stats/kinds`.
#[utoipa::path(get, path = "/api/stats/kinds", tag = "console",
    description = "Counts per kind: every queued and running task, and the tasks that finished since `since` \
                   (default: 24 hours ago; at most 31 days back). All-time totals per status are GET /api/stats.",
    params(("since" = Option<String>, Query, description = "RFC 3339 (default now − 24 h)", format = DateTime)),
    responses(
        (status = 200, description = "The counts", body = KindCounts),
        (status = 400, description = "Bad since", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 401, description = "Missing or invalid bearer token (AUTH_MODE=jwt)", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("WWW-Authenticate" = String, description = "Bearer challenge"))),
        (status = 429, description = "Per-owner rate limit reached", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 503, description = "The database (or token keys) unavailable; retry", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    ),
    security((), ("bearer" = [])))]
pub async fn kinds(
    State(st): State<AppState>,
    viewer: Viewer,
    query: Result<Query<KindParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<KindCounts>, ApiError> {
    let Query(p) =
        query.map_err(|e| ApiError::BadRequest(format!("invalid query: {}", e.body_text())))?;
    let now = Utc::now();
    let since = match p.since.as_deref() {
        None => now - chrono::Duration::hours(24),
        Some(s) => parse_time("since", s)?,
    };
    if since < now - chrono::Duration::days(31) {
        return Err(ApiError::BadRequest(
            "since must be within the last 31 days".into(),
        ));
    }
    let items = st
        .deps
        .console
        .stats_by_kind(&viewer.scope(), since)
        .await?;
    Ok(Json(KindCounts {
        finished_since: since,
        items,
    }))
}

/// `GET /api/queues` answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct QueueView {
    /// The backend this web hands new and retried tasks to.
    #[schema(example = "in-process")]
    pub current: String,
    /// `owner` (the caller's tasks) or `all` (admin role).
    #[schema(example = "owner")]
    pub scope: String,
    /// Queued and running tasks per backend they were last handed to.
    pub items: Vec<resume_agent_core::store::BackendQueue>,
    /// Messages in `<queue>-poison` on azure-queue; null when not known to the web.
    pub poison_depth: Option<u64>,
}

/// `GET /api/queues`: the flip view.
#[utoipa::path(get, path = "/api/queues", tag = "console",
    description = "Queued and running tasks per backend they were last handed to (in-process, postgres, azure-queue; \
                   null for tasks recorded before backends were), so an operator sees the old backend drain after a flip. \
                   The caller's tasks; every owner's with the admin role.",
    responses(
        (status = 200, description = "Per backend", body = QueueView),
        (status = 401, description = "Missing or invalid bearer token (AUTH_MODE=jwt)", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("WWW-Authenticate" = String, description = "Bearer challenge"))),
        (status = 429, description = "Per-owner rate limit reached", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 503, description = "The database (or token keys) unavailable; retry", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    ),
    security((), ("bearer" = [])))]
pub async fn queues(
    State(st): State<AppState>,
    viewer: Viewer,
) -> Result<Json<QueueView>, ApiError> {
    let items = st.deps.console.backend_queues(&viewer.scope()).await?;
    Ok(Json(QueueView {
        current: st.deps.backend.name().to_owned(),
        scope: if viewer.admin { "all" } else { "owner" }.to_owned(),
        items,
        poison_depth: st.deps.backend.dead_letter_depth().await,
    }))
}

/// `GET /api/session` answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Session {
    /// The caller's owner id.
    #[schema(example = "dev-user-1")]
    pub owner: String,
    /// Carries the admin role: sees every owner.
    pub admin: bool,
    /// `none` or `jwt`.
    #[schema(example = "none")]
    pub auth_mode: String,
}

/// `GET /api/session`: who the console is talking as.
#[utoipa::path(get, path = "/api/session", tag = "console",
    description = "The caller as the API sees it: owner id, whether its token carries JWT_ADMIN_ROLE, the auth mode.",
    responses(
        (status = 200, description = "The caller", body = Session),
        (status = 401, description = "Missing or invalid bearer token (AUTH_MODE=jwt)", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("WWW-Authenticate" = String, description = "Bearer challenge"))),
        (status = 429, description = "Per-owner rate limit reached", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 503, description = "Token keys unavailable; retry", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    ),
    security((), ("bearer" = [])))]
pub async fn session(State(st): State<AppState>, viewer: Viewer) -> Json<Session> {
    let mode = match st.auth {
        crate::auth::Auth::None(_) => "none",
        crate::auth::Auth::Jwt(_) => "jwt",
    };
    Json(Session {
        owner: viewer.owner.as_str().to_owned(),
        admin: viewer.admin,
        auth_mode: mode.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bulk_filters_parse_and_reject() {
        let f = parse_bulk(json!({})).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.statuses, vec![TaskStatus::Failed]);
        assert_eq!(f.limit, BULK_RETRY_DEFAULT);
        let f = parse_bulk(
            json!({"status": ["failed", "cancelled"], "kind": "system.fail", "limit": 1000,
            "finished_after": "2026-01-01T00:00:00Z"}),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(f.statuses.len(), 2);
        assert!(f.finished_after.is_some());
        for bad in [
            json!([]),
            json!({"status": ["queued"]}),
            json!({"status": []}),
            json!({"status": "failed"}),
            json!({"limit": 0}),
            json!({"limit": 1001}),
            json!({"kind": "nope"}),
            json!({"finished_after": "yesterday"}),
            json!({"finished_after": "2026-02-01T00:00:00Z", "finished_before": "2026-01-01T00:00:00Z"}),
            json!({"extra": 1}),
        ] {
            assert!(parse_bulk(bad.clone()).is_err(), "{bad}");
        }
    }
}
