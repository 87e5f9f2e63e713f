//! The one error type of the HTTP layer and its mapping to RFC 9457
//! problem+json. Internal causes are logged here and never shown.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use resume_agent_core::store::StoreError;
use serde_json::json;

/// Everything a handler can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or invalid; the detail says what.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid bearer token. The text goes into `WWW-Authenticate`.
    #[error("{detail}")]
    Unauthorized {
        /// For the caller.
        detail: String,
        /// `invalid_token` when a token was given but is bad.
        invalid_token: bool,
    },
    /// 429: slow down; retry after this many seconds.
    #[error("too many requests; retry after {0} s")]
    TooManyRequests(u64),
    /// 404: unknown, or another owner's.
    #[error("{0}")]
    NotFound(&'static str),
    /// 405.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 409: the request conflicts with the resource's state.
    #[error("{0}")]
    Conflict(String),
    /// 413.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 503: a dependency is down; retry later.
    #[error("{0}")]
    Unavailable(String),
    /// 408: the request body did not arrive in time.
    #[error("{0}")]
    RequestTimeout(String),
    /// 414.
    #[error("{0}")]
    UriTooLong(String),
    /// 431.
    #[error("{0}")]
    HeadersTooLarge(String),
    /// 413: the owner's stored bytes would pass `OWNER_MAX_STORED_BYTES`.
    #[error("{0}")]
    StorageQuota(String),
    /// 429: the owner has `OWNER_MAX_QUEUED_TASKS` queued already.
    #[error("{0}")]
    QueuedQuota(String),
    /// Any other 4xx/5xx the framework produced (a rejection of axum's, a
    /// status of a layer), turned into problem+json by [`problem_layer`].
    #[error("{detail}")]
    Other {
        /// The status it had.
        status: StatusCode,
        /// Its text.
        detail: String,
    },
    /// 500: a bug. The cause is logged, the caller sees a generic detail.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UriTooLong(_) => StatusCode::URI_TOO_LONG,
            ApiError::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::StorageQuota(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::QueuedQuota(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Other { status, .. } => *status,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn type_uri(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "/problems/bad-request",
            ApiError::Unauthorized { .. } => "/problems/unauthorized",
            ApiError::TooManyRequests(_) => "/problems/too-many-requests",
            ApiError::NotFound(_) => "/problems/not-found",
            ApiError::MethodNotAllowed => "/problems/method-not-allowed",
            ApiError::Conflict(_) => "/problems/conflict",
            ApiError::PayloadTooLarge(_) => "/problems/payload-too-large",
            ApiError::UnsupportedMediaType(_) => "/problems/unsupported-media-type",
            ApiError::Unavailable(_) => "/problems/unavailable",
            ApiError::RequestTimeout(_) => "/problems/request-timeout",
            ApiError::UriTooLong(_) => "/problems/uri-too-long",
            ApiError::HeadersTooLarge(_) => "/problems/headers-too-large",
            ApiError::StorageQuota(_) => "/problems/storage-quota-exceeded",
            ApiError::QueuedQuota(_) => "/problems/queued-tasks-quota-exceeded",
            ApiError::Other { status, .. } => match status.as_u16() {
                400 => "/problems/bad-request",
                404 => "/problems/not-found",
                405 => "/problems/method-not-allowed",
                408 => "/problems/request-timeout",
                413 => "/problems/payload-too-large",
                415 => "/problems/unsupported-media-type",
                422 => "/problems/bad-request",
                429 => "/problems/too-many-requests",
                503 => "/problems/unavailable",
                s if s >= 500 => "/problems/internal",
                _ => "about:blank",
            },
            ApiError::Internal(_) => "/problems/internal",
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "database unavailable");
                ApiError::Unavailable("the database is unavailable; retry later".into())
            }
            StoreError::InvalidCursor => ApiError::BadRequest("cursor is not valid".into()),
            StoreError::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                "an internal error occurred; it has been logged".to_owned()
            }
            other => other.to_string(),
        };
        let body = json!({
            "type": self.type_uri(),
            "title": status.canonical_reason().unwrap_or("Error"),
            "status": status.as_u16(),
            "detail": detail,
        });
        let mut resp = (status, body.to_string()).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            ApiError::RequestTimeout(_) => {
                // The rest of the body is not coming: this connection is done.
                resp.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            ApiError::QueuedQuota(_) => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            }
            ApiError::Unavailable(_) => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::TooManyRequests(secs) => {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*secs));
            }
            ApiError::Unauthorized {
                detail,
                invalid_token,
            } => {
                let challenge = if *invalid_token {
                    // The detail is ours (never the token); keep it header-safe.
                    let clean: String = detail
                        .chars()
                        .filter(|c| (c.is_ascii_graphic() || *c == ' ') && *c != '"')
                        .collect();
                    format!(
                        "Bearer realm=\"resume-agent\", error=\"invalid_token\", error_description=\"{clean}\""
                    )
                } else {
                    "Bearer realm=\"resume-agent\"".to_owned()
                };
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
            }
            _ => {}
        }
        resp
    }
}

/// The longest framework error text kept as a problem's detail.
const MAX_DETAIL_BYTES: usize = 1024;

/// Outermost layer: any error response without a body type or with a
/// text/plain one (an axum rejection — a path id that is not UTF-8, a
/// query that does not parse, a body limit —, a bare status of a layer)
/// becomes problem+json, with the same status and its text as the detail.
/// Handlers' own errors already are problem+json, and JSON answers with a
/// documented shape (readiness' 503) pass through untouched.
pub async fn problem_layer(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    // Framework errors are bare or text/plain; a JSON body is an answer of
    // ours with its own documented shape (readiness' 503) and stays.
    let framework = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if status.as_u16() < 400 || !framework {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    // Framework error bodies are short texts; anything longer is cut.
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let mut detail: String = text
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_owned();
    if detail.len() > MAX_DETAIL_BYTES {
        let mut end = MAX_DETAIL_BYTES;
        while !detail.is_char_boundary(end) {
            end -= 1;
        }
        detail.truncate(end);
    }
    if detail.is_empty() {
        detail = status.canonical_reason().unwrap_or("error").to_owned();
    }
    if status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE {
        // Never show an internal cause.
        tracing::error!(%status, cause = %detail, "internal error");
        detail = "an internal error occurred; it has been logged".to_owned();
    }
    let mut out = ApiError::Other { status, detail }.into_response();
    // Keep the framework's headers (Allow, Retry-After, …) beside ours.
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut()
                .entry(name)
                .or_insert_with(|| value.clone());
        }
    }
    *out.status_mut() = status;
    out
}
