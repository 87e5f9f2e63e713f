//! The task routes: create, get, list, cancel, stats.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use resume_agent_core::store::{CancelOutcome, Cursor, ListQuery};
use resume_agent_core::task::{
    DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT_SECS, MAX_ATTEMPTS_RANGE, TIMEOUT_SECS_RANGE,
};
use resume_agent_core::{IdempotencyKey, NewTask, OwnerId, Task, TaskId, TaskKind, TaskStatus};
use resume_agent_queue::Message;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Caller, JsonBody, Viewer};

const FIELDS: [&str; 4] = ["kind", "payload", "max_attempts", "timeout_secs"];

fn int_field(
    obj: &Map<String, Value>,
    name: &str,
    range: std::ops::RangeInclusive<i32>,
    default: i32,
) -> Result<i32, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(v) => v
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "{name} must be an integer between {} and {}",
                    range.start(),
                    range.end()
                ))
            }),
    }
}

/// Turns a request body into a validated [`NewTask`].
fn parse_new_task(
    body: Value,
    owner: OwnerId,
    key: Option<IdempotencyKey>,
) -> Result<NewTask, ApiError> {
    let Value::Object(mut obj) = body else {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    };
    if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::BadRequest(format!(
            "{unknown} is not a field of a task request (expected kind, payload, max_attempts, timeout_secs)"
        )));
    }
    let kind = match obj.get("kind") {
        Some(Value::String(s)) => s.parse::<TaskKind>().map_err(|e| {
            let known: Vec<&str> = TaskKind::ALL.iter().map(|k| k.as_str()).collect();
            ApiError::BadRequest(format!("kind: {e}; registered kinds: {}", known.join(", ")))
        })?,
        Some(_) => return Err(ApiError::BadRequest("kind must be a string".into())),
        None => return Err(ApiError::BadRequest("kind is required".into())),
    };
    let payload = match obj.remove("payload") {
        None | Some(Value::Null) => json!({}),
        Some(p) => p,
    };
    let payload = kind
        .validate_payload(payload)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(NewTask {
        id: TaskId::new(),
        owner,
        kind,
        payload,
        max_attempts: int_field(
            &obj,
            "max_attempts",
            MAX_ATTEMPTS_RANGE,
            DEFAULT_MAX_ATTEMPTS,
        )?,
        timeout_secs: int_field(
            &obj,
            "timeout_secs",
            TIMEOUT_SECS_RANGE,
            DEFAULT_TIMEOUT_SECS,
        )?,
        idempotency_key: key,
    })
}

fn location(task: &Task) -> HeaderValue {
    HeaderValue::from_str(&format!("/api/tasks/{}", task.id))
        .unwrap_or_else(|_| HeaderValue::from_static("/api/tasks"))
}

/// `POST /api/tasks`: create a task (202), or return the one first created
/// with the same `Idempotency-Key` (200).
#[utoipa::path(post, path = "/api/tasks", tag = "tasks",
    description = "Create a task. The same Idempotency-Key from the same owner returns the task first created with it (200) instead of creating another.",
    request_body(content = crate::openapi::CreateTask, content_type = "application/json"),
    params(("Idempotency-Key" = Option<String>, Header, description = "1..=255 visible ASCII characters", max_length = 255, min_length = 1, pattern = "^[ -~]{1,255}$")),
    responses(
        (status = 202, description = "Created and queued", body = Task,
            headers(("Location" = String, description = "/api/tasks/{id}"))),
        (status = 200, description = "An earlier task with this Idempotency-Key", body = Task,
            headers(("Location" = String, description = "/api/tasks/{id}"))),
        (status = 400, description = "Malformed JSON, wrong types, unknown kind, invalid payload or header", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 401, description = "Missing or invalid bearer token (AUTH_MODE=jwt)", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("WWW-Authenticate" = String, description = "Bearer challenge"))),
        (status = 429, description = "Per-owner rate limit reached", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 503, description = "The database (or token keys) unavailable; retry", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 413, description = "Body over the configured limit", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 415, description = "Content type is not JSON", content_type = "application/problem+json", body = crate::openapi::Problem),
    ),
    security((), ("bearer" = [])))]
pub async fn create(
    State(st): State<AppState>,
    Caller(owner): Caller,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| IdempotencyKey::parse(s).ok())
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "Idempotency-Key must be 1..=255 visible ASCII characters".into(),
                    )
                })?,
        ),
    };
    let new = parse_new_task(body, owner, key)?;
    if let Some(file_id) = new.kind.file_id(&new.payload)
        && st.deps.store.get_file(&new.owner, file_id).await?.is_none()
    {
        return Err(ApiError::BadRequest(format!(
            "payload.file_id: no file {file_id} (upload it with POST /api/files first)"
        )));
    }
    let kind = new.kind.as_str();
    let created = st.deps.store.create_task(new).await?;
    let status = if created.created {
        metrics::counter!("tasks_submitted_total", "kind" => kind).increment(1);
        let msg = Message {
            task_id: created.task.id,
            attempt: 0,
        };
        if let Err(e) = st.deps.backend.enqueue(&[msg], Duration::ZERO).await {
            // The task is stored: the worker's recovery sweeper dispatches it.
            metrics::counter!("task_dispatch_errors_total").increment(1);
            tracing::warn!(error = %e, task_id = %created.task.id, "dispatch failed; the sweeper will retry");
        }
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let loc = location(&created.task);
    Ok((status, [(header::LOCATION, loc)], Json(created.task)).into_response())
}

/// The owner a task is acted on as: the caller's own, or (admin role) the
/// task's owner, so that an admin's action is the owner's own action.
pub(crate) async fn effective_owner(
    st: &AppState,
    viewer: &Viewer,
    id: TaskId,
) -> Result<OwnerId, ApiError> {
    if !viewer.admin {
        return Ok(viewer.owner.clone());
    }
    match st.deps.store.get_task_in(&viewer.scope(), id).await? {
        Some(t) => OwnerId::parse(&t.owner_id).map_err(|e| ApiError::Internal(e.to_string())),
        None => Err(ApiError::NotFound("no such task")),
    }
}

pub(crate) fn parse_id(raw: &str) -> Result<TaskId, ApiError> {
    raw.parse::<TaskId>()
        .map_err(|_| ApiError::BadRequest(format!("{raw:?} is not a valid task id (a UUID)")))
}

/// `GET /api/tasks/{id}`.
#[utoipa::path(get, path = "/api/tasks/{id}", tag = "tasks", description = "One of the caller's tasks.",
    params(("id" = String, Path, description = "Task id (UUID)", format = Uuid)),
    responses(
        (status = 200, description = "The task", body = Task),
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
pub async fn get_one(
    State(st): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Json<Task>, ApiError> {
    let id = parse_id(&id)?;
    st.deps
        .store
        .get_task_in(&viewer.scope(), id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("no such task"))
}

/// Query of `GET /api/tasks`.
#[derive(Debug, Deserialize)]
pub struct ListParams {
    status: Option<String>,
    kind: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /api/tasks`.
#[utoipa::path(get, path = "/api/tasks", tag = "tasks", description = "The caller's tasks, newest first, keyset-paginated.",
    params(
        ("status" = Option<TaskStatus>, Query, description = "Only this status"),
        ("kind" = Option<String>, Query, description = "Only this kind", example = "system.noop"),
        ("limit" = Option<u32>, Query, description = "Page size (default 50)", minimum = 1, maximum = 500),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "A page", body = crate::openapi::TaskList),
        (status = 400, description = "Bad filter, limit or cursor", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 401, description = "Missing or invalid bearer token (AUTH_MODE=jwt)", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("WWW-Authenticate" = String, description = "Bearer challenge"))),
        (status = 429, description = "Per-owner rate limit reached", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 503, description = "The database (or token keys) unavailable; retry", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    ),
    security((), ("bearer" = [])))]
pub async fn list(
    State(st): State<AppState>,
    viewer: Viewer,
    query: Result<Query<ListParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(p) =
        query.map_err(|e| ApiError::BadRequest(format!("invalid query: {}", e.body_text())))?;
    let limit = match p.limit.as_deref() {
        None => 50,
        Some(s) => s
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest("limit must be an integer between 1 and 500".into())
            })?,
    };
    let status = match p.status.as_deref() {
        None => None,
        Some(s) => Some(
            s.parse::<TaskStatus>()
                .map_err(|e| ApiError::BadRequest(format!("status: {e}")))?,
        ),
    };
    let kind = match p.kind.as_deref() {
        None => None,
        Some(s) => Some(
            s.parse::<TaskKind>()
                .map_err(|e| ApiError::BadRequest(format!("kind: {e}")))?,
        ),
    };
    let cursor = match p.cursor.as_deref() {
        None => None,
        Some(s) => Some(
            Cursor::decode(s).map_err(|_| ApiError::BadRequest("cursor is not valid".into()))?,
        ),
    };
    let page = st
        .deps
        .store
        .list_tasks_in(
            &viewer.scope(),
            &ListQuery {
                status,
                kind,
                limit,
                cursor,
            },
        )
        .await?;
    Ok(Json(json!({
        "items": page.items,
        "next_cursor": page.next_cursor.map(|c| c.encode()),
    })))
}

/// `POST /api/tasks/{id}/cancel`.
#[utoipa::path(post, path = "/api/tasks/{id}/cancel", tag = "tasks",
    description = "A queued task is cancelled at once; a running one is asked to stop (its handler is stopped) and shows cancel_requested until it ends.",
    params(("id" = String, Path, description = "Task id (UUID)", format = Uuid)),
    responses(
        (status = 200, description = "Cancelled, or cancellation requested", body = Task),
        (status = 400, description = "Not a UUID", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 404, description = "Unknown, or another owner's", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 409, description = "Already finished", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 401, description = "Missing or invalid bearer token (AUTH_MODE=jwt)", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("WWW-Authenticate" = String, description = "Bearer challenge"))),
        (status = 429, description = "Per-owner rate limit reached", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 503, description = "The database (or token keys) unavailable; retry", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    ),
    security((), ("bearer" = [])))]
pub async fn cancel(
    State(st): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Json<Task>, ApiError> {
    let id = parse_id(&id)?;
    let owner = effective_owner(&st, &viewer, id).await?;
    match st.deps.store.cancel_task(&owner, id).await? {
        CancelOutcome::Cancelled(t) | CancelOutcome::Requested(t) => Ok(Json(t)),
        CancelOutcome::AlreadyTerminal(t) => Err(ApiError::Conflict(format!(
            "the task is already {} and cannot be cancelled",
            t.status
        ))),
        CancelOutcome::NotFound => Err(ApiError::NotFound("no such task")),
    }
}

/// `GET /api/stats`.
#[utoipa::path(get, path = "/api/stats", tag = "tasks", description = "Counts of the caller's tasks per status.",
    responses(
        (status = 200, description = "Counts", body = resume_agent_core::store::TaskStats),
        (status = 401, description = "Missing or invalid bearer token (AUTH_MODE=jwt)", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("WWW-Authenticate" = String, description = "Bearer challenge"))),
        (status = 429, description = "Per-owner rate limit reached", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 503, description = "The database (or token keys) unavailable; retry", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    ),
    security((), ("bearer" = [])))]
pub async fn stats(
    State(st): State<AppState>,
    Caller(owner): Caller,
) -> Result<Json<Value>, ApiError> {
    let s = st.deps.store.stats(&owner).await?;
    Ok(Json(json!(s)))
}
