//! Request parsing at the edge: JSON bodies with the contract's error codes,
//! and the caller's owner.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use resume_agent_core::OwnerId;
use resume_agent_core::store::Scope;
use serde_json::Value;

use crate::AppState;
use crate::auth::{Auth, AuthError, bearer};
use crate::error::ApiError;

/// A JSON body: 415 without a JSON content type, 413 over the limit, 400
/// when it does not parse.
pub struct JsonBody(pub Value);

fn is_json(content_type: &str) -> bool {
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json(content_type) {
            return Err(ApiError::UnsupportedMediaType(
                "the body must be JSON (Content-Type: application/json)".into(),
            ));
        }
        let limit = state.max_body_bytes;
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(too_large(limit));
        }
        let body: Body = req.into_body();
        let bytes = axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| too_large(limit))?;
        if bytes.is_empty() {
            return Err(ApiError::BadRequest(
                "the body is empty; expected a JSON object".into(),
            ));
        }
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
        Ok(Self(value))
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the body is larger than the limit of {limit} bytes"
    ))
}

/// The caller's owner id: `DEFAULT_OWNER_USER_ID` with authentication off,
/// else from the verified bearer token. Every owner-scoped route takes it,
/// so the per-owner rate limit is applied here too.
pub struct Caller(pub OwnerId);

/// The caller and what it may see: its own tasks, or every owner's when its
/// token carries `JWT_ADMIN_ROLE` (never with `AUTH_MODE=none`).
pub struct Viewer {
    /// The caller's own owner id (rate limit, stream caps, new tasks).
    pub owner: OwnerId,
    /// Carries the admin role.
    pub admin: bool,
}

impl Viewer {
    /// The store scope of this caller's reads and actions.
    #[must_use]
    pub fn scope(&self) -> Scope {
        if self.admin {
            Scope::All
        } else {
            Scope::Owner(self.owner.clone())
        }
    }
}

async fn identify(parts: &Parts, state: &AppState) -> Result<Viewer, ApiError> {
    let viewer = match &state.auth {
        Auth::None(owner) => Viewer {
            owner: owner.clone(),
            admin: false,
        },
        Auth::Jwt(verifier) => {
            let Some(token) = bearer(&parts.headers) else {
                return Err(ApiError::Unauthorized {
                    detail: AuthError::Missing.to_string(),
                    invalid_token: false,
                });
            };
            match verifier.verify_identity(token).await {
                Ok(id) => Viewer {
                    owner: id.owner,
                    admin: id.admin,
                },
                Err(AuthError::KeysUnavailable) => {
                    return Err(ApiError::Unavailable(
                        AuthError::KeysUnavailable.to_string(),
                    ));
                }
                Err(e) => {
                    return Err(ApiError::Unauthorized {
                        detail: e.to_string(),
                        invalid_token: true,
                    });
                }
            }
        }
    };
    if let Err(wait) = state.rate.check(viewer.owner.as_str()) {
        return Err(ApiError::TooManyRequests(wait.as_secs().max(1)));
    }
    Ok(viewer)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        identify(parts, state).await.map(|v| Self(v.owner))
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        identify(parts, state).await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_content_types() {
        assert!(super::is_json("application/json"));
        assert!(super::is_json("application/json; charset=utf-8"));
        assert!(super::is_json("application/merge-patch+json"));
        assert!(!super::is_json("text/plain"));
        assert!(!super::is_json(""));
    }
}
