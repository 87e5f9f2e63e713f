//! The task routes: create (one, or a batch), get, list, cancel, stats.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use resume_agent_core::store::{CancelOutcome, Cursor, ListQuery, static_kind};
use resume_agent_core::task::{
    DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT_SECS, MAX_ATTEMPTS_RANGE, TIMEOUT_SECS_RANGE,
};
use resume_agent_core::{
    IdempotencyKey, NewTask, OwnerId, Task, TaskId, TaskKind, TaskPayload, TaskStatus,
};
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
    let payload =
        TaskPayload::parse(kind, payload).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(NewTask {
        id: TaskId::new(),
        owner,
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
        (status = 429, description = "Per-owner rate limit reached, or the owner has OWNER_MAX_QUEUED_TASKS queued already (type /problems/queued-tasks-quota-exceeded)", content_type = "application/problem+json", body = crate::openapi::Problem,
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
    crate::limits::check_queued_quota(&st, &new.owner, 1).await?;
    if let Some(file_id) = new.payload.file_id()
        && st.deps.files.get_file(&new.owner, file_id).await?.is_none()
    {
        return Err(ApiError::BadRequest(format!(
            "payload.file_id: no file {file_id} (upload it with POST /api/files first)"
        )));
    }
    let kind = new.kind().as_str();
    let created = st.deps.tasks.create_task(new).await?;
    let status = if created.created {
        metrics::counter!("tasks_submitted_total", "kind" => kind).increment(1);
        let msg = Message {
            task_id: created.task.id,
            attempt: 0,
        };
        if let Err(e) = st.deps.backend.enqueue(&[msg], Duration::ZERO).await {
            // The task is stored: workers find it in the store.
            metrics::counter!("task_dispatch_errors_total").increment(1);
            tracing::warn!(error = %e, task_id = %created.task.id, "hand-off failed; workers will find the task in the store");
        }
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    let loc = location(&created.task);
    Ok((status, [(header::LOCATION, loc)], Json(created.task)).into_response())
}

/// Most items one `POST /api/tasks/batch` may carry.
pub const MAX_BATCH: usize = 1000;

/// Parses one batch item: a `POST /api/tasks` body with an optional
/// `idempotency_key`.
fn parse_batch_item(item: Value, owner: &OwnerId) -> Result<NewTask, String> {
    let Value::Object(mut obj) = item else {
        return Err("must be a JSON object".into());
    };
    let key =
        match obj.remove("idempotency_key") {
            None | Some(Value::Null) => None,
            Some(Value::String(k)) => Some(IdempotencyKey::parse(&k).map_err(|_| {
                "idempotency_key must be 1..=255 visible ASCII characters".to_owned()
            })?),
            Some(_) => return Err("idempotency_key must be a string".into()),
        };
    parse_new_task(Value::Object(obj), owner.clone(), key).map_err(|e| e.to_string())
}

/// `POST /api/tasks/batch`: create up to 1,000 tasks in one request and one
/// insert. The whole batch is validated first: one bad item rejects it
/// (400 naming the index). Answers the tasks in request order: created, or
/// the earlier task for a repeated `idempotency_key`; 202 when any was
/// created, else 200.
#[utoipa::path(post, path = "/api/tasks/batch", tag = "tasks",
    description = "Create up to 1,000 tasks in one request (one insert). Each item is a POST /api/tasks body and may carry its own idempotency_key. The batch is validated as a whole: a bad item rejects it with 400 naming its index. The answer lists the tasks in request order (created, or the earlier task for a repeated key); 202 when any was created, else 200.",
    request_body(content = crate::openapi::CreateBatch, content_type = "application/json"),
    responses(
        (status = 202, description = "At least one task created", body = crate::openapi::BatchCreated),
        (status = 200, description = "Every item repeated an earlier idempotency key", body = crate::openapi::BatchCreated),
        (status = 400, description = "Malformed body, no items, more than 1,000, or an invalid item (named by index)", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 401, description = "Missing or invalid bearer token (AUTH_MODE=jwt)", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("WWW-Authenticate" = String, description = "Bearer challenge"))),
        (status = 413, description = "Body over the configured limit", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 415, description = "Content type is not JSON", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 429, description = "Per-owner rate limit reached, or the batch would take the owner past OWNER_MAX_QUEUED_TASKS queued (type /problems/queued-tasks-quota-exceeded)", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 503, description = "The database (or token keys) unavailable; retry", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    ),
    security((), ("bearer" = [])))]
pub async fn create_batch(
    State(st): State<AppState>,
    Caller(owner): Caller,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let Value::Object(mut obj) = body else {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object {\"tasks\": [...]}".into(),
        ));
    };
    if let Some(unknown) = obj.keys().find(|k| k.as_str() != "tasks") {
        return Err(ApiError::BadRequest(format!(
            "{unknown} is not a field of a batch request (expected tasks)"
        )));
    }
    let Some(Value::Array(items)) = obj.remove("tasks") else {
        return Err(ApiError::BadRequest(
            "tasks is required and must be an array of task requests".into(),
        ));
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(ApiError::BadRequest(format!(
            "tasks must hold 1..={MAX_BATCH} items (got {})",
            items.len()
        )));
    }
    let mut batch = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let new = parse_batch_item(item, &owner)
            .map_err(|e| ApiError::BadRequest(format!("tasks[{i}]: {e}")))?;
        batch.push(new);
    }
    // Files named by payloads must exist (each distinct file looked up once).
    let mut checked = std::collections::HashSet::new();
    for (i, new) in batch.iter().enumerate() {
        if let Some(file_id) = new.payload.file_id()
            && checked.insert(file_id)
            && st.deps.files.get_file(&owner, file_id).await?.is_none()
        {
            return Err(ApiError::BadRequest(format!(
                "tasks[{i}]: payload.file_id: no file {file_id} (upload it with POST /api/files first)"
            )));
        }
    }
    let n = u32::try_from(batch.len()).unwrap_or(u32::MAX);
    crate::limits::check_queued_quota(&st, &owner, n).await?;
    let created = st.deps.tasks.create_tasks(batch).await?;
    let mut fresh = Vec::new();
    for c in created.iter().filter(|c| c.created) {
        metrics::counter!("tasks_submitted_total", "kind" => static_kind(&c.task.kind))
            .increment(1);
        fresh.push(Message {
            task_id: c.task.id,
            attempt: 0,
        });
    }
    let status = if fresh.is_empty() {
        StatusCode::OK
    } else {
        if let Err(e) = st.deps.backend.enqueue(&fresh, Duration::ZERO).await {
            // The tasks are stored: workers find them in the store.
            metrics::counter!("task_dispatch_errors_total").increment(1);
            tracing::warn!(error = %e, n = fresh.len(), "hand-off failed; workers will find the tasks in the store");
        }
        StatusCode::ACCEPTED
    };
    let tasks: Vec<Task> = created.into_iter().map(|c| c.task).collect();
    Ok((status, Json(json!({ "tasks": tasks }))).into_response())
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
    match st.deps.console.get_task_in(&viewer.scope(), id).await? {
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
        .console
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
    let query = ListQuery {
        status,
        kind,
        limit,
        cursor,
    };
    let page = crate::paging::bounded_page(
        &*st.deps.console,
        &viewer.scope(),
        &query,
        st.list_max_bytes,
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
    match st.deps.tasks.cancel_task(&owner, id).await? {
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
    let s = st.deps.tasks.stats(&owner).await?;
    Ok(Json(json!(s)))
}
