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
