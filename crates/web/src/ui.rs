//! The operator's console: one HTML page, a stylesheet and a script, all
//! embedded in the binary (no CDN, no build step; the cluster may have no
//! internet). The page is a shell; the script renders the views from the
//! public API (`/api/...`) with the caller's bearer token when
//! `AUTH_MODE=jwt`. Served with a strict Content-Security-Policy: no inline
//! script or style, no third-party origin.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../console/index.html");
const SCRIPT: &str = include_str!("../console/app.js");
const STYLE: &str = include_str!("../console/app.css");
const ICON: &str = include_str!("../console/icon.svg");

/// The policy every console response carries.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // Small files, revalidated: a new binary's console is seen at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// `GET /`: the console.
#[utoipa::path(get, path = "/", tag = "console",
    description = "The operator's console (HTML; its script and stylesheet are served from /console/).",
    responses((status = 200, description = "The console page", content_type = "text/html", body = String)))]
pub async fn index() -> Response {
    asset(INDEX, "text/html; charset=utf-8")
}

/// `GET /console/app.js`.
pub async fn script() -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8")
}

/// `GET /console/app.css`.
pub async fn style() -> Response {
    asset(STYLE, "text/css; charset=utf-8")
}

/// `GET /console/icon.svg`.
pub async fn icon() -> Response {
    asset(ICON, "image/svg+xml")
}
