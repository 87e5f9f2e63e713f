//! The OpenAPI 3.1 document, generated from the handlers' annotations and
//! the types they exchange (`GET /api/openapi.json`), and a self-contained
//! human-readable page rendered from it (`GET /api/docs`: no scripts, no
//! CDN — the cluster may have no internet).

use std::fmt::Write as _;

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use resume_agent_core::file::StoredFile;
use resume_agent_core::payload::{
    EmptyPayload, FailPayload, MatchPayload, ParsePayload, SleepPayload,
};
use resume_agent_core::store::TaskStats;
use resume_agent_core::{Task, TaskStatus};

/// An RFC 9457 problem: every error answer.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"type": "/problems/bad-request", "title": "Bad Request", "status": 400, "detail": "kind is required"}))]
pub struct Problem {
    /// A URI reference naming the problem type.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary (the HTTP reason phrase).
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, for a human.
    pub detail: String,
}

// The request envelopes below are the web's (kind, attempts, timeout);
// their payloads are core's typed payloads (`resume_agent_core::payload`),
// the very types the edge parses into and the handlers read.

/// `POST /api/tasks` body: `kind` decides the payload's shape.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"kind": "system.sleep", "payload": {"ms": 250}, "max_attempts": 3, "timeout_secs": 120}))]
#[serde(untagged)]
pub enum CreateTask {
    /// `system.noop`.
    Noop(NoopTask),
    /// `system.sleep`.
    Sleep(SleepTask),
    /// `system.fail`.
    Fail(FailTask),
    /// `resume.parse`.
    Parse(ParseTask),
    /// `resume.match`.
    Match(MatchTask),
}

/// `resume.parse`: structure an uploaded résumé.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ParseTask {
    /// Always `resume.parse`.
    #[schema(pattern = "^resume\\.parse$", example = "resume.parse")]
    pub kind: String,
    /// Which file.
    pub payload: ParsePayload,
    /// Attempts before the task fails (default 3; unparseable files fail at once).
    #[schema(minimum = 1, maximum = 25)]
    pub max_attempts: Option<i32>,
    /// Per-attempt timeout (default 120).
    #[schema(minimum = 1, maximum = 3600)]
    pub timeout_secs: Option<i32>,
}

/// `resume.match`: score a résumé against a job description.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchTask {
    /// Always `resume.match`.
    #[schema(pattern = "^resume\\.match$", example = "resume.match")]
    pub kind: String,
    /// Which file, and the job.
    pub payload: MatchPayload,
    /// Attempts before the task fails (default 3).
    #[schema(minimum = 1, maximum = 25)]
    pub max_attempts: Option<i32>,
    /// Per-attempt timeout (default 120).
    #[schema(minimum = 1, maximum = 3600)]
    pub timeout_secs: Option<i32>,
}

/// `POST /api/files` body.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct FileUpload {
    /// The résumé: PDF, DOCX, Markdown or plain text.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// `system.noop`: succeeds at once with `{}`.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoopTask {
    /// Always `system.noop`.
    #[schema(pattern = "^system\\.noop$", example = "system.noop")]
    pub kind: String,
    /// Empty object (or absent).
    pub payload: Option<EmptyPayload>,
    /// Attempts before the task fails (default 3).
    #[schema(minimum = 1, maximum = 25)]
    pub max_attempts: Option<i32>,
    /// Per-attempt timeout (default 120).
    #[schema(minimum = 1, maximum = 3600)]
    pub timeout_secs: Option<i32>,
}

/// `system.sleep`: sleeps `ms`, honouring cancellation and timeout.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SleepTask {
    /// Always `system.sleep`.
    #[schema(pattern = "^system\\.sleep$", example = "system.sleep")]
    pub kind: String,
    /// How long to sleep.
    pub payload: SleepPayload,
    /// Attempts before the task fails (default 3).
    #[schema(minimum = 1, maximum = 25)]
    pub max_attempts: Option<i32>,
    /// Per-attempt timeout (default 120).
    #[schema(minimum = 1, maximum = 3600)]
    pub timeout_secs: Option<i32>,
}

/// `system.fail`: always fails (retry and dead-letter drills).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailTask {
    /// Always `system.fail`.
    #[schema(pattern = "^system\\.fail$", example = "system.fail")]
    pub kind: String,
    /// The error message to fail with.
    pub payload: Option<FailPayload>,
    /// Attempts before the task fails (default 3).
    #[schema(minimum = 1, maximum = 25)]
    pub max_attempts: Option<i32>,
    /// Per-attempt timeout (default 120).
    #[schema(minimum = 1, maximum = 3600)]
    pub timeout_secs: Option<i32>,
}

/// `POST /api/tasks/batch` body. Each item is a `POST /api/tasks` body and
/// may also carry `"idempotency_key": "..."` (1..=255 visible ASCII
/// characters): a key the owner used before, or one repeated within the
/// batch, returns the task first created with it.
#[derive(Serialize, ToSchema)]
pub struct CreateBatch {
    /// 1..=1,000 task requests.
    #[schema(min_items = 1, max_items = 1000)]
    pub tasks: Vec<CreateTask>,
}

/// `POST /api/tasks/batch` answer: the tasks in request order.
#[derive(Serialize, ToSchema)]
pub struct BatchCreated {
    /// One per item: created, or the earlier task for a repeated key.
    pub tasks: Vec<Task>,
}

/// A page of tasks, newest first.
#[derive(Serialize, ToSchema)]
pub struct TaskList {
    /// The tasks.
    pub items: Vec<Task>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Liveness.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// Readiness, naming each dependency's state.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ready", "checks": {"database": "ok", "backend": "ok", "storage": "ok"}}))]
pub struct Ready {
    /// `ready` or `not_ready`.
    pub status: String,
    /// `database`, `backend`, `storage` (and `web` while draining): `ok` or the error.
    #[schema(value_type = Object)]
    pub checks: Value,
}

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".into());
        http.description = Some(
            "With AUTH_MODE=jwt: an Entra ID access token; the owner is its `oid` (or `sub`) claim. \
             With AUTH_MODE=none no token is needed."
                .into(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Resume Agent API",
        description = "Create tasks (parse a résumé, match it against a job description, …), watch them run, \
                       fetch their results. Every error is RFC 9457 problem+json. Callers only ever see their own tasks: \
                       another owner's ids answer 404 exactly like unknown ones.",
        version = env!("CARGO_PKG_VERSION")
    ),
    paths(
        crate::health,
        crate::ready,
        crate::tasks::create,
        crate::tasks::create_batch,
        crate::tasks::list,
        crate::tasks::get_one,
        crate::tasks::cancel,
        crate::events::events,
        crate::tasks::stats,
        crate::files::upload,
        crate::files::download,
        crate::files::delete,
        crate::metrics_endpoint,
        crate::console::retry_one,
        crate::console::retry_bulk,
        crate::console::attempts,
        crate::console::timeseries,
        crate::console::kinds,
        crate::console::queues,
        crate::console::session,
        crate::ui::index,
    ),
    components(schemas(Problem, CreateTask, CreateBatch, BatchCreated, NoopTask, SleepTask, FailTask, ParseTask, MatchTask, EmptyPayload, SleepPayload,
                       FailPayload, ParsePayload, MatchPayload, FileUpload, StoredFile, TaskList, Task, TaskStatus, TaskStats,
                       Health, Ready,
                       crate::console::BulkRetry, crate::console::RetryableStatus, crate::console::BulkRetried,
                       crate::console::AttemptList, resume_agent_core::store::Attempt, resume_agent_core::store::AttemptOutcome,
                       crate::console::Series, resume_agent_core::store::SeriesPoint,
                       crate::console::KindCounts, resume_agent_core::store::KindStats,
                       crate::console::QueueView, resume_agent_core::store::BackendQueue, crate::console::Session)),
    modifiers(&Security),
    tags(
        (name = "tasks", description = "Create, inspect, list, cancel and watch tasks"),
        (name = "files", description = "Upload résumés, fetch them back, delete them"),
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "console", description = "The operator's console and the API behind it: retry, attempt history, series, queues")
    )
)]
pub struct ApiDoc;

/// The document as JSON.
#[must_use]
pub fn document() -> Value {
    serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null)
}

/// `GET /api/openapi.json`.
pub async fn openapi_json() -> Response {
    static DOC: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| document().to_string());
    ([(header::CONTENT_TYPE, "application/json")], DOC.as_str()).into_response()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /api/docs`: the document as one self-contained HTML page.
pub async fn docs_page() -> Html<String> {
    static PAGE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| render(&document()));
    Html(PAGE.clone())
}

fn render(doc: &Value) -> String {
    let mut h = String::new();
    let title = doc["info"]["title"].as_str().unwrap_or("API");
    let _ = write!(
        h,
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>{t}</title>\
         <style>body{{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}}\
         code,pre{{background:#f4f4f4;border-radius:4px;padding:.1rem .3rem}}pre{{padding:.6rem;overflow:auto}}\
         .op{{border:1px solid #ddd;border-radius:6px;margin:1rem 0;padding:.4rem 1rem}}\
         .m{{font-weight:700;display:inline-block;min-width:4.5rem}}.GET{{color:#0a6}}.POST{{color:#06c}}\
         table{{border-collapse:collapse}}td,th{{border-bottom:1px solid #eee;padding:.2rem .6rem;text-align:left;vertical-align:top}}</style>\
         </head><body><h1>{t} <small>{v}</small></h1><p>{d}</p>\
         <p>Machine-readable: <a href=\"/api/openapi.json\"><code>/api/openapi.json</code></a> (OpenAPI 3.1).</p>",
        t = esc(title),
        v = esc(doc["info"]["version"].as_str().unwrap_or("")),
        d = esc(doc["info"]["description"].as_str().unwrap_or("")),
    );
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            let Some(ops) = item.as_object() else {
                continue;
            };
            for (method, op) in ops {
                let m = method.to_uppercase();
                let _ = write!(
                    h,
                    "<div class=op><h3><span class=\"m {m}\">{m}</span> <code>{p}</code></h3><p>{s}</p>",
                    p = esc(path),
                    s = esc(op["description"]
                        .as_str()
                        .or_else(|| op["summary"].as_str())
                        .unwrap_or("")),
                );
                if let Some(params) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
                    h.push_str("<table><tr><th>parameter</th><th>in</th><th>description</th></tr>");
                    for p in params {
                        let _ = write!(
                            h,
                            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                            esc(p["name"].as_str().unwrap_or("")),
                            esc(p["in"].as_str().unwrap_or("")),
                            esc(p["description"].as_str().unwrap_or(""))
                        );
                    }
                    h.push_str("</table>");
                }
                if let Some(responses) = op["responses"].as_object() {
                    h.push_str("<table><tr><th>status</th><th>meaning</th></tr>");
                    for (code, r) in responses {
                        let _ = write!(
                            h,
                            "<tr><td><code>{}</code></td><td>{}</td></tr>",
                            esc(code),
                            esc(r["description"].as_str().unwrap_or(""))
                        );
                    }
                    h.push_str("</table>");
                }
                h.push_str("</div>");
            }
        }
    }
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        h.push_str("<h2>Schemas</h2>");
        for (name, schema) in schemas {
            let pretty = serde_json::to_string_pretty(schema).unwrap_or_default();
            let _ = write!(
                h,
                "<h3 id=\"{n}\">{n}</h3><pre>{s}</pre>",
                n = esc(name),
                s = esc(&pretty)
            );
        }
    }
    h.push_str("</body></html>");
    h
}

#[cfg(test)]
mod tests {
    use resume_agent_core::payload::MAX_FAIL_MESSAGE_CHARS;
    use resume_agent_core::task::{MAX_JOB_DESCRIPTION_CHARS, MAX_SLEEP_MS};

    /// The payload schemas come from core's typed payloads; their limits
    /// are the ones the edge's parse enforces, and unknown fields are
    /// refused in both.
    #[test]
    fn payload_schemas_carry_the_parse_limits() {
        let doc = super::document();
        let s = &doc["components"]["schemas"];
        assert_eq!(
            s["SleepPayload"]["properties"]["ms"]["maximum"].as_u64(),
            Some(MAX_SLEEP_MS)
        );
        assert_eq!(
            s["FailPayload"]["properties"]["message"]["maxLength"].as_u64(),
            u64::try_from(MAX_FAIL_MESSAGE_CHARS).ok()
        );
        assert_eq!(
            s["MatchPayload"]["properties"]["job_description"]["maxLength"].as_u64(),
            u64::try_from(MAX_JOB_DESCRIPTION_CHARS).ok()
        );
        for name in [
            "EmptyPayload",
            "SleepPayload",
            "FailPayload",
            "ParsePayload",
            "MatchPayload",
        ] {
            assert_eq!(
                s[name]["additionalProperties"],
                serde_json::json!(false),
                "{name}"
            );
        }
        assert_eq!(s["ParsePayload"]["properties"]["file_id"]["format"], "uuid");
        assert_eq!(
            s["ParsePayload"]["required"],
            serde_json::json!(["file_id"])
        );
    }
}
