//! Contract tests of the console's API on both stores (PostgreSQL on a
//! fresh database, the embedded SQLite): retry (200 / 409 / 404 / 400),
//! bulk retry by filter, attempt history, the finished series, per-kind
//! counts, per-backend queues, the console page, and the admin role
//! (`JWT_ADMIN_ROLE`) against a real local JWKS.
//!
//! Tasks reach `failed` through the store's real claim/finish path (no
//! worker runs here, so every transition is the test's). Finished attempts
//! are recorded by the worker's finish statement; `record_attempt_if_missing`
//! asserts that it wrote them.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use resume_agent_core::blob::LocalBlobStore;
use resume_agent_core::config::{Config, Role};
use resume_agent_core::payload::{FailPayload, TaskPayload};
use resume_agent_core::store::{Finish, FinishOutcome, TaskStore};
use resume_agent_core::testing;
use resume_agent_core::{NewTask, OwnerId, TaskId};
use resume_agent_queue::wake::{WakeBackend, Wakeups};
use resume_agent_web::{Deps, WebApp, WebSettings};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const WORKER: &str = "w-contract";

/// Direct access to the database, for what only the worker writes.
#[derive(Clone)]
enum Db {
    Pg(sqlx::PgPool),
    Sqlite(sqlx::SqlitePool),
}

impl Db {
    async fn attempt_rows(&self, id: TaskId) -> i64 {
        match self {
            Db::Pg(p) => {
                sqlx::query_scalar("SELECT count(*) FROM task_attempts WHERE task_id = $1")
                    .bind(id.0)
                    .fetch_one(p)
                    .await
                    .unwrap()
            }
            Db::Sqlite(p) => {
                sqlx::query_scalar("SELECT count(*) FROM task_attempts WHERE task_id = ?1")
                    .bind(id.to_string())
                    .fetch_one(p)
                    .await
                    .unwrap()
            }
        }
    }

    /// The worker's finish statement writes the attempt row; this checks it
    /// did (the contract below reads the rows through the API).
    async fn record_attempt_if_missing(
        &self,
        id: TaskId,
        before: i64,
        _attempt: i32,
        outcome: &str,
        _error: Option<&str>,
    ) {
        assert!(
            self.attempt_rows(id).await > before,
            "finish wrote no {outcome} attempt row for {id}"
        );
    }
}

struct App {
    base: String,
    http: reqwest::Client,
    store: Arc<dyn TaskStore>,
    db: Db,
    _stop: tokio_util::sync::DropGuard,
}

async fn start(store: Arc<dyn TaskStore>, db: Db, vars: &[(&str, &str)]) -> App {
    let mut env: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    env.insert("WEB_ADDR".into(), "127.0.0.1:0".into());
    let config = Config::from_source(Role::Web, &env).unwrap();
    let settings = WebSettings::from_source(&config, &env).unwrap();
    let dir = std::env::temp_dir().join(format!("ra-console-{}", uuid::Uuid::new_v4().simple()));
    let deps = Deps {
        tasks: store.clone(),
        files: store.clone(),
        console: store.clone(),
        watch: store.clone(),
        backend: Arc::new(WakeBackend::new("in-process", Wakeups::new())),
        blobs: Arc::new(LocalBlobStore::open(dir).await.unwrap()),
    };
    let app = WebApp::build(&config, settings, None, deps).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move { app.run_until_stopped(s).await.unwrap() });
    App {
        base,
        http: reqwest::Client::new(),
        store,
        db,
        _stop: stop.drop_guard(),
    }
}

impl App {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let (s, _, v) = self.call(reqwest::Method::GET, path, None, None).await;
        (s, v)
    }

    async fn post(
        &self,
        path: &str,
        body: Option<Value>,
    ) -> (u16, reqwest::header::HeaderMap, Value) {
        self.call(reqwest::Method::POST, path, None, body).await
    }

    /// Submits through the API and returns the id.
    async fn submit(&self, body: Value) -> TaskId {
        let (s, _, t) = self.post("/api/tasks", Some(body)).await;
        assert_eq!(s, 202, "{t}");
        t["id"].as_str().unwrap().parse().unwrap()
    }

    /// claim → finish through the store, as the worker does; records the
    /// attempt row if the store did not.
    async fn run_attempt(&self, id: TaskId, outcome: FinishOutcome) {
        let claimed = testing::eventually(Duration::from_secs(5), "claim", || async {
            let c = self
                .store
                .claim(&[id], WORKER, Duration::from_secs(30), None)
                .await
                .unwrap();
            c.into_iter().next()
        })
        .await;
        let before = self.db.attempt_rows(id).await;
        let (name, error) = match &outcome {
            FinishOutcome::Succeeded(_) => ("succeeded", None),
            FinishOutcome::Failed(e) => ("failed", Some(e.clone())),
            FinishOutcome::Cancelled => ("cancelled", None),
            FinishOutcome::Retry { error, .. } => ("retried", Some(error.clone())),
            FinishOutcome::HandBack => ("handed_back", None),
        };
        let done = self
            .store
            .finish(
                WORKER,
                &[Finish {
                    id,
                    attempt: claimed.attempts,
                    outcome,
                }],
            )
            .await
            .unwrap();
        assert_eq!(done, vec![id]);
        self.db
            .record_attempt_if_missing(id, before, claimed.attempts, name, error.as_deref())
            .await;
    }
}

fn fail_task() -> Value {
    json!({"kind": "system.fail", "payload": {"message": "boom"}, "max_attempts": 1})
}

fn is_problem(h: &reqwest::header::HeaderMap, body: &Value, status: u16) {
    assert_eq!(
        h["content-type"].to_str().unwrap(),
        "application/problem+json",
        "{body}"
    );
    assert_eq!(body["status"], status, "{body}");
    assert!(body["detail"].is_string(), "{body}");
}

/// The whole contract against one store.
async fn contract(store: Arc<dyn TaskStore>, db: Db) {
    let app = start(store.clone(), db, &[]).await;

    // --- retry: failed → queued with a fresh budget, history kept.
    let a = app.submit(fail_task()).await;
    app.run_attempt(a, FinishOutcome::Failed("boom".into()))
        .await;
    let (s, t) = app.get(&format!("/api/tasks/{a}")).await;
    assert_eq!((s, t["status"].as_str()), (200, Some("failed")), "{t}");
    let (s, at) = app.get(&format!("/api/tasks/{a}/attempts")).await;
    assert_eq!(s, 200, "{at}");
    let items = at["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{at}");
    assert_eq!(items[0]["attempt"], 1);
    assert_eq!(items[0]["outcome"], "failed");
    assert_eq!(items[0]["error"], "boom");
    assert_eq!(items[0]["worker"], WORKER);
    assert!(items[0]["finished_at"].is_string());

    let (s, _, t) = app.post(&format!("/api/tasks/{a}/retry"), None).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["status"], "queued");
    assert_eq!(t["attempts"], 0, "a fresh attempt budget");
    assert_eq!(
        t["error"], "boom",
        "the last error stays until the next attempt ends"
    );
    assert!(
        t["finished_at"].is_null() && t["started_at"].is_null(),
        "{t}"
    );
    // Not failed or cancelled any more: 409, problem+json.
    let (s, h, p) = app.post(&format!("/api/tasks/{a}/retry"), None).await;
    assert_eq!(s, 409, "{p}");
    is_problem(&h, &p, 409);
    // History kept; the running attempt is synthesized from the task row.
    let claimed = app
        .store
        .claim(&[a], WORKER, Duration::from_secs(30), None)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "a retried task is claimable at once");
    let (_, at) = app.get(&format!("/api/tasks/{a}/attempts")).await;
    let items = at["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{at}");
    assert_eq!(items[1]["outcome"], "running");
    assert_eq!(
        items[1]["attempt"], 1,
        "numbers restart with the fresh budget"
    );
    assert_eq!(items[1]["worker"], WORKER);
    assert!(items[1]["finished_at"].is_null());
    let (s, _, p) = app.post(&format!("/api/tasks/{a}/retry"), None).await;
    assert_eq!(s, 409, "running is not retryable: {p}");
    let before = app.db.attempt_rows(a).await;
    app.store
        .finish(
            WORKER,
            &[Finish {
                id: a,
                attempt: 1,
                outcome: FinishOutcome::Succeeded(json!({})),
            }],
        )
        .await
        .unwrap();
    app.db
        .record_attempt_if_missing(a, before, 1, "succeeded", None)
        .await;
    let (s, _, p) = app.post(&format!("/api/tasks/{a}/retry"), None).await;
    assert_eq!(s, 409, "succeeded is not retryable: {p}");
    let (_, at) = app.get(&format!("/api/tasks/{a}/attempts")).await;
    let outcomes: Vec<&str> = at["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["failed", "succeeded"]);

    // A cancelled (never run) task is retryable too.
    let c = app
        .submit(json!({"kind": "system.noop", "payload": {}}))
        .await;
    let (s, _, _) = app.post(&format!("/api/tasks/{c}/cancel"), None).await;
    assert_eq!(s, 200);
    let (s, _, t) = app.post(&format!("/api/tasks/{c}/retry"), None).await;
    assert_eq!((s, t["status"].as_str()), (200, Some("queued")), "{t}");
    app.run_attempt(c, FinishOutcome::Succeeded(json!({})))
        .await;

    // Unknown, foreign, malformed.
    let other = OwnerId::parse("someone-else").unwrap();
    let foreign = app
        .store
        .create_task(NewTask {
            id: TaskId::new(),
            owner: other.clone(),
            payload: TaskPayload::SystemFail(FailPayload::default()),
            max_attempts: 1,
            timeout_secs: 60,
            idempotency_key: None,
        })
        .await
        .unwrap()
        .task
        .id;
    app.run_attempt(foreign, FinishOutcome::Failed("theirs".into()))
        .await;
    for id in [TaskId::new(), foreign] {
        let (s, h, p) = app.post(&format!("/api/tasks/{id}/retry"), None).await;
        assert_eq!(s, 404, "{p}");
        is_problem(&h, &p, 404);
        let (s, p) = app.get(&format!("/api/tasks/{id}/attempts")).await;
        assert_eq!(s, 404, "{p}");
    }
    let (s, h, p) = app.post("/api/tasks/not-a-uuid/retry", None).await;
    assert_eq!(s, 400);
    is_problem(&h, &p, 400);
    let (s, _) = app.get("/api/tasks/not-a-uuid/attempts").await;
    assert_eq!(s, 400);

    // --- bulk retry: bounded, filtered, answers how many.
    let mut failed = Vec::new();
    for _ in 0..3 {
        let id = app.submit(fail_task()).await;
        app.run_attempt(id, FinishOutcome::Failed("bulk".into()))
            .await;
        failed.push(id);
    }
    let cancelled = app
        .submit(json!({"kind": "system.noop", "payload": {}}))
        .await;
    app.post(&format!("/api/tasks/{cancelled}/cancel"), None)
        .await;
    // Kind and time filters that match none of them.
    let (s, _, r) = app
        .post(
            "/api/tasks/retry",
            Some(json!({"status": ["failed"], "kind": "resume.parse"})),
        )
        .await;
    assert_eq!((s, r["retried"].as_u64()), (200, Some(0)), "{r}");
    let (s, _, r) = app
        .post(
            "/api/tasks/retry",
            Some(json!({"finished_before": "2000-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!((s, r["retried"].as_u64()), (200, Some(0)), "{r}");
    // Bounded per call: 2, then the last 1 (never the other owner's).
    let (s, _, r) = app
        .post(
            "/api/tasks/retry",
            Some(
                json!({"status": ["failed"], "kind": "system.fail", "limit": 2,
                        "finished_after": "2000-01-01T00:00:00Z"}),
            ),
        )
        .await;
    assert_eq!((s, r["retried"].as_u64()), (200, Some(2)), "{r}");
    let (s, _, r) = app
        .post("/api/tasks/retry", Some(json!({"status": ["failed"]})))
        .await;
    assert_eq!((s, r["retried"].as_u64()), (200, Some(1)), "{r}");
    let (_, _, r) = app.post("/api/tasks/retry", Some(json!({}))).await;
    assert_eq!(r["retried"], 0, "nothing failed is left: {r}");
    for id in &failed {
        let (_, t) = app.get(&format!("/api/tasks/{id}")).await;
        assert_eq!(
            (t["status"].as_str(), t["attempts"].as_i64()),
            (Some("queued"), Some(0))
        );
    }
    let (_, _, r) = app
        .post("/api/tasks/retry", Some(json!({"status": ["cancelled"]})))
        .await;
    assert_eq!(r["retried"], 1, "{r}");
    assert_eq!(r["ids"][0], cancelled.to_string());
    let theirs = app.store.get_task(&other, foreign).await.unwrap().unwrap();
    assert_eq!(
        theirs.status.as_str(),
        "failed",
        "another owner's task is untouched"
    );
    for bad in [
        json!({"status": ["queued"]}),
        json!({"limit": 1001}),
        json!({"limit": 0}),
        json!({"kind": "nope"}),
        json!({"finished_after": "not a time"}),
        json!({"surprise": true}),
        json!([1]),
    ] {
        let (s, h, p) = app.post("/api/tasks/retry", Some(bad.clone())).await;
        assert_eq!(s, 400, "{bad}: {p}");
        is_problem(&h, &p, 400);
    }
    let resp = app
        .http
        .post(format!("{}/api/tasks/retry", app.base))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);

    // --- queues per backend: retried tasks were handed to in-process.
    let (s, q) = app.get("/api/queues").await;
    assert_eq!(s, 200, "{q}");
    assert_eq!(q["current"], "in-process");
    assert_eq!(q["scope"], "owner");
    let queued: i64 = q["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["queued"].as_i64().unwrap())
        .sum();
    assert_eq!(queued, 4, "{q}");
    assert!(
        q["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["backend"] == "in-process" && b["queued"].as_i64() == Some(4)),
        "retried tasks record the backend they were handed to: {q}"
    );

    // Finish the re-queued ones with a mix of outcomes for the series.
    for id in &failed[..2] {
        app.run_attempt(*id, FinishOutcome::Failed("again".into()))
            .await;
    }
    app.run_attempt(failed[2], FinishOutcome::Succeeded(json!({})))
        .await;
    app.run_attempt(cancelled, FinishOutcome::Cancelled).await;

    // --- the series: every bucket, counts by outcome, only the caller's.
    let (s, series) = app.get("/api/stats/timeseries?interval=60").await;
    assert_eq!(s, 200, "{series}");
    let pts = series["items"].as_array().unwrap();
    assert!((60..=61).contains(&pts.len()), "{}", pts.len());
    let sum = |k: &str| pts.iter().map(|p| p[k].as_i64().unwrap()).sum::<i64>();
    // Ours: a (succeeded), c (succeeded), failed[2] (succeeded),
    // failed[0..2] (failed), cancelled (cancelled). Not the foreign one.
    assert_eq!(
        (sum("succeeded"), sum("failed"), sum("cancelled")),
        (3, 2, 1),
        "{series}"
    );
    let starts: Vec<i64> = pts
        .iter()
        .map(|p| {
            chrono::DateTime::parse_from_rfc3339(p["start"].as_str().unwrap())
                .unwrap()
                .timestamp()
        })
        .collect();
    assert!(
        starts.windows(2).all(|w| w[1] - w[0] == 60),
        "aligned buckets"
    );
    assert_eq!(starts[0] % 60, 0);
    let (s, wide) = app
        .get("/api/stats/timeseries?interval=3600&since=2026-01-01T00:00:00Z")
        .await;
    assert!(s == 200 || s == 400, "{wide}");
    for bad in [
        "/api/stats/timeseries?interval=5",
        "/api/stats/timeseries?interval=abc",
        "/api/stats/timeseries?since=yesterday",
        "/api/stats/timeseries?interval=10&since=2000-01-01T00:00:00Z",
    ] {
        let (s, p) = app.get(bad).await;
        assert_eq!(s, 400, "{bad}: {p}");
    }

    // --- counts per kind.
    let (s, k) = app.get("/api/stats/kinds").await;
    assert_eq!(s, 200, "{k}");
    let kinds = k["items"].as_array().unwrap();
    let fail = kinds.iter().find(|i| i["kind"] == "system.fail").unwrap();
    assert_eq!(
        (fail["failed"].as_i64(), fail["succeeded"].as_i64()),
        (Some(2), Some(2)),
        "{k}"
    );
    let noop = kinds.iter().find(|i| i["kind"] == "system.noop").unwrap();
    assert_eq!(
        (noop["succeeded"].as_i64(), noop["cancelled"].as_i64()),
        (Some(1), Some(1)),
        "{k}"
    );
    let (s, _) = app.get("/api/stats/kinds?since=2000-01-01T00:00:00Z").await;
    assert_eq!(s, 400);

    // --- the list the console pages through: filters and keyset cursor.
    let (_, all) = app.get("/api/tasks?limit=500").await;
    let all: Vec<String> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(all.len(), 6, "ours only");
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/tasks?limit=4&cursor={c}"),
            None => "/api/tasks?limit=4".to_owned(),
        };
        let (s, page) = app.get(&path).await;
        assert_eq!(s, 200, "{page}");
        paged.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, all, "keyset pages, newest first, nothing twice");
    let (_, f) = app
        .get("/api/tasks?status=failed&kind=system.fail&limit=1")
        .await;
    assert_eq!(f["items"].as_array().unwrap().len(), 1);
    assert_eq!(f["items"][0]["status"], "failed");
    let (_, f2) = app
        .get(&format!(
            "/api/tasks?status=failed&kind=system.fail&limit=1&cursor={}",
            f["next_cursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(f2["items"].as_array().unwrap().len(), 1);
    assert!(f2["next_cursor"].is_null(), "two failed in all: {f2}");
    let (_, c) = app.get("/api/tasks?status=cancelled").await;
    assert_eq!(c["items"].as_array().unwrap().len(), 1);

    // --- the console page and its assets.
    let (s, h, page) = app.call(reqwest::Method::GET, "/", None, None).await;
    assert_eq!(s, 200);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    let page = page.as_str().unwrap();
    assert!(page.contains("/console/app.js"));
    let inline_handler = page.split(|c: char| c.is_whitespace()).any(|w| {
        w.strip_prefix("on")
            .and_then(|rest| rest.split_once('='))
            .is_some_and(|(name, _)| {
                !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase())
            })
    });
    assert!(
        !inline_handler && !page.contains("<script>"),
        "no inline script or handlers"
    );
    for (path, ty) in [
        ("/console/app.js", "text/javascript"),
        ("/console/app.css", "text/css"),
    ] {
        let (s, h, _) = app.call(reqwest::Method::GET, path, None, None).await;
        assert_eq!(s, 200, "{path}");
        assert!(h["content-type"].to_str().unwrap().starts_with(ty));
    }
    let (s, p) = app.get("/console/nope.js").await;
    assert_eq!(s, 404, "{p}");

    // --- every console route is in the OpenAPI document.
    let (s, doc) = app.get("/api/openapi.json").await;
    assert_eq!(s, 200);
    for (path, method) in [
        ("/", "get"),
        ("/api/tasks/{id}/retry", "post"),
        ("/api/tasks/retry", "post"),
        ("/api/tasks/{id}/attempts", "get"),
        ("/api/stats/timeseries", "get"),
        ("/api/stats/kinds", "get"),
        ("/api/queues", "get"),
        ("/api/session", "get"),
    ] {
        assert!(
            doc["paths"][path][method]["responses"].is_object(),
            "{method} {path} missing from the OpenAPI document"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_api_contract_on_postgres() {
    let (store, _url) = testing::pg_store().await;
    let db = Db::Pg(store.pool().clone());
    contract(store, db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_api_contract_on_the_embedded_store() {
    let store = testing::sqlite_store().await;
    let db = Db::Sqlite(store.pool().clone());
    contract(store, db).await;
}

// --- The admin role: a real JWKS on loopback with a key made by openssl.

const ISSUER: &str = "https://login.microsoftonline.com/test-tenant/v2.0";
const AUDIENCE: &str = "api://resume-agent";
const ADMIN_ROLE: &str = "Console.Admin";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is required");
    assert!(out.status.success(), "openssl {args:?}");
    out.stdout
}

/// (private PEM, JWK)
fn rsa_key(kid: &str) -> (Vec<u8>, Value) {
    let dir = std::env::temp_dir().join(format!("ra-jwt-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("key.pem");
    let p = path.to_str().unwrap();
    openssl(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        p,
    ]);
    let pem = std::fs::read(&path).unwrap();
    let modulus = String::from_utf8(openssl(&["rsa", "-in", p, "-noout", "-modulus"])).unwrap();
    let hex = modulus.trim().trim_start_matches("Modulus=");
    let n: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    std::fs::remove_dir_all(&dir).ok();
    (
        pem,
        json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": b64(&n), "e": "AQAB"}),
    )
}

fn token(pem: &[u8], kid: &str, owner: &str, roles: &[&str]) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "oid": owner, "roles": roles,
                        "iat": now, "nbf": now - 10, "exp": now + 600});
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&h, &claims, &EncodingKey::from_rsa_pem(pem).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_role_sees_every_owner_and_others_only_their_own() {
    let (pem, jwk) = rsa_key("k1");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks = format!("http://{}/keys", listener.local_addr().unwrap());
    let keys = json!({"keys": [jwk]});
    tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/keys",
            axum::routing::get(move || {
                let k = keys.clone();
                async move { axum::Json(k) }
            }),
        );
        axum::serve(listener, app).await.unwrap();
    });
    let store = testing::sqlite_store().await;
    let db = Db::Sqlite(store.pool().clone());
    let app = start(
        store,
        db,
        &[
            ("AUTH_MODE", "jwt"),
            ("JWT_ISSUER", ISSUER),
            ("JWT_AUDIENCE", AUDIENCE),
            ("JWT_JWKS_URL", jwks.as_str()),
            ("JWT_ADMIN_ROLE", ADMIN_ROLE),
            ("RATE_LIMIT_RPS", "0"),
        ],
    )
    .await;
    let alice = token(&pem, "k1", "alice", &["Reader"]);
    let bob = token(&pem, "k1", "bob", &[]);
    let root = token(&pem, "k1", "root", &[ADMIN_ROLE]);
    let call = |method: reqwest::Method, path: String, tok: String, body: Option<Value>| {
        let app = &app;
        async move { app.call(method, &path, Some(&tok), body).await }
    };
    let mut ids = HashMap::new();
    for (who, tok) in [("alice", &alice), ("bob", &bob)] {
        let (s, _, t) = call(
            reqwest::Method::POST,
            "/api/tasks".into(),
            tok.clone(),
            Some(fail_task()),
        )
        .await;
        assert_eq!(s, 202, "{t}");
        let id: TaskId = t["id"].as_str().unwrap().parse().unwrap();
        app.run_attempt(id, FinishOutcome::Failed("x".into())).await;
        ids.insert(who, id);
    }
    let (s, _, me) = call(
        reqwest::Method::GET,
        "/api/session".into(),
        root.clone(),
        None,
    )
    .await;
    assert_eq!((s, me["admin"].as_bool()), (200, Some(true)), "{me}");
    let (_, _, me) = call(
        reqwest::Method::GET,
        "/api/session".into(),
        alice.clone(),
        None,
    )
    .await;
    assert_eq!(me["admin"], false, "a role that is not JWT_ADMIN_ROLE");
    // Lists: the admin sees both owners; alice only hers.
    let (_, _, page) = call(
        reqwest::Method::GET,
        "/api/tasks".into(),
        root.clone(),
        None,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    let (_, _, page) = call(
        reqwest::Method::GET,
        "/api/tasks".into(),
        alice.clone(),
        None,
    )
    .await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["owner_id"], "alice");
    // Alice cannot see or retry bob's task; the admin can.
    let bobs = ids["bob"];
    for path in [
        format!("/api/tasks/{bobs}"),
        format!("/api/tasks/{bobs}/attempts"),
    ] {
        let (s, _, _) = call(reqwest::Method::GET, path.clone(), alice.clone(), None).await;
        assert_eq!(s, 404, "{path}");
        let (s, _, _) = call(reqwest::Method::GET, path.clone(), root.clone(), None).await;
        assert_eq!(s, 200, "{path}");
    }
    let (s, _, _) = call(
        reqwest::Method::POST,
        format!("/api/tasks/{bobs}/retry"),
        alice.clone(),
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (_, _, r) = call(
        reqwest::Method::POST,
        "/api/tasks/retry".into(),
        alice.clone(),
        Some(json!({})),
    )
    .await;
    assert_eq!(r["retried"], 1, "alice's own only: {r}");
    let (s, _, t) = call(
        reqwest::Method::POST,
        format!("/api/tasks/{bobs}/retry"),
        root.clone(),
        None,
    )
    .await;
    assert_eq!((s, t["owner_id"].as_str()), (200, Some("bob")), "{t}");
    // Queue views: every owner for the admin, one's own otherwise.
    let (_, _, q) = call(
        reqwest::Method::GET,
        "/api/queues".into(),
        root.clone(),
        None,
    )
    .await;
    assert_eq!(q["scope"], "all");
    assert_eq!(q["items"][0]["queued"], 2, "{q}");
    let (_, _, q) = call(
        reqwest::Method::GET,
        "/api/queues".into(),
        bob.clone(),
        None,
    )
    .await;
    assert_eq!(
        (q["scope"].as_str(), q["items"][0]["queued"].as_i64()),
        (Some("owner"), Some(1)),
        "{q}"
    );
    // The admin's stream of another owner's task works; alice's does not.
    let (s, _, _) = call(
        reqwest::Method::GET,
        format!("/api/tasks/{bobs}/events"),
        alice.clone(),
        None,
    )
    .await;
    assert_eq!(s, 404);
    // Without a token: 401 problem+json on the console API too.
    let (s, h, p) = app
        .call(reqwest::Method::GET, "/api/queues", None, None)
        .await;
    assert_eq!(s, 401);
    is_problem(&h, &p, 401);
    // The page itself needs no token (it asks for one).
    let (s, _, _) = app.call(reqwest::Method::GET, "/", None, None).await;
    assert_eq!(s, 200);
}
