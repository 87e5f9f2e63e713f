//! Bearer-token authentication against a real local JWKS endpoint with keys
//! this test generates (no mocking of the verification code), owner
//! isolation on every endpoint, the per-owner rate limit, and the OpenAPI
//! document.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use resume_agent_core::blob::LocalBlobStore;
use resume_agent_core::config::{Config, Role};
use resume_agent_core::testing;
use resume_agent_queue::wake::{WakeBackend, Wakeups};
use resume_agent_web::{Deps, WebApp, WebSettings};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const ISSUER: &str = "https://login.microsoftonline.com/test-tenant/v2.0";
const AUDIENCE: &str = "api://resume-agent";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An RSA key made by `openssl` for this test run.
struct Key {
    kid: String,
    pem: Vec<u8>,
    public_pem: Vec<u8>,
    jwk: Value,
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is required");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn new_key(kid: &str) -> Key {
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
    let public_pem = openssl(&["pkey", "-in", p, "-pubout"]);
    let modulus = String::from_utf8(openssl(&["rsa", "-in", p, "-noout", "-modulus"])).unwrap();
    let hex = modulus.trim().trim_start_matches("Modulus=");
    let n: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    std::fs::remove_dir_all(&dir).ok();
    Key {
        kid: kid.to_owned(),
        pem,
        public_pem,
        jwk: json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": b64(&n), "e": "AQAB"}),
    }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn claims(owner: &str) -> Value {
    json!({"iss": ISSUER, "aud": AUDIENCE, "oid": owner, "sub": format!("sub-{owner}"),
           "iat": now(), "nbf": now() - 10, "exp": now() + 600})
}

fn sign(key: &Key, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_rsa_pem(&key.pem).unwrap()).unwrap()
}

/// A JWKS endpoint on loopback whose key set the test can change.
async fn jwks_server(keys: Arc<Mutex<Vec<Value>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/keys",
        axum::routing::get(move || {
            let keys = keys.clone();
            async move { axum::Json(json!({"keys": *keys.lock().unwrap()})) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/keys")
}

struct App {
    base: String,
    http: reqwest::Client,
    _stop: tokio_util::sync::DropGuard,
}

async fn start_app(vars: &[(&str, &str)]) -> App {
    let mut env: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    env.insert("WEB_ADDR".into(), "127.0.0.1:0".into());
    let config = Config::from_source(Role::Web, &env).unwrap();
    let settings = WebSettings::from_source(&config, &env).unwrap();
    let store = testing::sqlite_store().await;
    let dir = std::env::temp_dir().join(format!("ra-web-{}", uuid::Uuid::new_v4().simple()));
    let deps = Deps {
        tasks: store.clone(),
        files: store.clone(),
        console: store.clone(),
        watch: store,
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
        _stop: stop.drop_guard(),
    }
}

async fn jwt_app(keys: Arc<Mutex<Vec<Value>>>, extra: &[(&str, &str)]) -> App {
    let url = jwks_server(keys).await;
    let mut vars = vec![
        ("AUTH_MODE", "jwt"),
        ("JWT_ISSUER", ISSUER),
        ("JWT_AUDIENCE", AUDIENCE),
        ("JWT_JWKS_URL", url.as_str()),
        ("JWT_JWKS_MIN_REFRESH_SECS", "0"),
        ("RATE_LIMIT_RPS", "0"),
    ];
    vars.extend_from_slice(extra);
    start_app(&vars).await
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_verified_and_every_bad_one_gets_401() {
    let key = new_key("key-1");
    let other = new_key("not-published");
    let keys = Arc::new(Mutex::new(vec![key.jwk.clone()]));
    let app = jwt_app(keys.clone(), &[]).await;
    let post = |token: Option<String>| {
        let app = &app;
        async move {
            app.call(
                reqwest::Method::POST,
                "/api/tasks",
                token.as_deref(),
                Some(json!({"kind": "system.noop"})),
            )
            .await
        }
    };

    // Valid: the owner is the oid claim.
    let (status, _, task) = post(Some(sign(&key, &claims("alice-oid")))).await;
    assert_eq!(status, 202, "{task}");
    assert_eq!(task["owner_id"], "alice-oid");
    // Without oid, sub is the owner.
    let mut c = claims("x");
    c.as_object_mut().unwrap().remove("oid");
    let (status, _, task) = post(Some(sign(&key, &c))).await;
    assert_eq!((status, task["owner_id"].as_str()), (202, Some("sub-x")));

    let mut cases: Vec<(&str, Option<String>)> = vec![("no token", None)];
    let mut expired = claims("alice-oid");
    expired["exp"] = json!(now() - 3600);
    cases.push(("expired", Some(sign(&key, &expired))));
    let mut not_yet = claims("alice-oid");
    not_yet["nbf"] = json!(now() + 3600);
    cases.push(("not yet valid", Some(sign(&key, &not_yet))));
    let mut aud = claims("alice-oid");
    aud["aud"] = json!("api://someone-else");
    cases.push(("wrong audience", Some(sign(&key, &aud))));
    let mut iss = claims("alice-oid");
    iss["iss"] = json!("https://evil.example/v2.0");
    cases.push(("wrong issuer", Some(sign(&key, &iss))));
    let header_none = b64(json!({"alg": "none", "typ": "JWT", "kid": "key-1"})
        .to_string()
        .as_bytes());
    let body = b64(claims("alice-oid").to_string().as_bytes());
    cases.push(("alg none", Some(format!("{header_none}.{body}."))));
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("key-1".into());
    let hs256 = jsonwebtoken::encode(
        &hs,
        &claims("alice-oid"),
        &EncodingKey::from_secret(&key.public_pem),
    )
    .unwrap();
    cases.push(("HS256 with the public key as secret", Some(hs256)));
    cases.push(("unknown kid", Some(sign(&other, &claims("alice-oid")))));
    let good = sign(&key, &claims("alice-oid"));
    let parts: Vec<&str> = good.split('.').collect();
    let forged = b64(claims("mallory").to_string().as_bytes());
    cases.push((
        "tampered payload",
        Some(format!("{}.{forged}.{}", parts[0], parts[2])),
    ));
    let mut sig = parts[2].to_owned();
    let flipped = if sig.ends_with('A') { 'B' } else { 'A' };
    sig.pop();
    sig.push(flipped);
    cases.push((
        "tampered signature",
        Some(format!("{}.{}.{sig}", parts[0], parts[1])),
    ));
    cases.push(("garbage", Some("not-a-jwt".into())));

    for (name, token) in cases {
        let (status, headers, body) = post(token).await;
        assert_eq!(status, 401, "{name}: {body}");
        let challenge = headers
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        assert!(
            challenge
                .as_deref()
                .is_some_and(|c| c.starts_with("Bearer realm=\"resume-agent\"")),
            "{name}: {challenge:?}"
        );
        assert_eq!(
            headers["content-type"], "application/problem+json",
            "{name}"
        );
        assert_eq!(body["status"], 401, "{name}");
    }
    // Public endpoints need no token.
    for path in ["/api/health", "/api/openapi.json", "/metrics"] {
        assert_eq!(
            app.call(reqwest::Method::GET, path, None, None).await.0,
            200,
            "{path}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_signing_key_is_picked_up_without_restart() {
    let old = new_key("2026-old");
    let keys = Arc::new(Mutex::new(vec![old.jwk.clone()]));
    let app = jwt_app(keys.clone(), &[]).await;
    let get = |t: String| {
        let app = &app;
        async move {
            app.call(reqwest::Method::GET, "/api/stats", Some(&t), None)
                .await
                .0
        }
    };
    assert_eq!(get(sign(&old, &claims("u"))).await, 200);
    // The issuer rotates: a new key is published, the old one withdrawn.
    let new = new_key("2026-new");
    *keys.lock().unwrap() = vec![new.jwk.clone()];
    assert_eq!(
        get(sign(&new, &claims("u"))).await,
        200,
        "the new key was not fetched"
    );
    // The refresh replaced the key set: the withdrawn key no longer verifies.
    assert_eq!(
        get(sign(&old, &claims("u"))).await,
        401,
        "a withdrawn key still verifies"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_owners_never_see_each_others_tasks_on_any_endpoint() {
    let key = new_key("k");
    let app = jwt_app(Arc::new(Mutex::new(vec![key.jwk.clone()])), &[]).await;
    let alice = sign(&key, &claims("alice"));
    let bob = sign(&key, &claims("bob"));
    use reqwest::Method;
    let (s, _, a_task) = app
        .call(
            Method::POST,
            "/api/tasks",
            Some(&alice),
            Some(json!({"kind": "system.sleep", "payload": {"ms": 600000}})),
        )
        .await;
    assert_eq!(s, 202);
    let id = a_task["id"].as_str().unwrap();
    let unknown = uuid::Uuid::now_v7().to_string();

    // Read: 404 for Bob, exactly as for an unknown id.
    let (s, _, foreign) = app
        .call(Method::GET, &format!("/api/tasks/{id}"), Some(&bob), None)
        .await;
    let (s2, _, missing) = app
        .call(
            Method::GET,
            &format!("/api/tasks/{unknown}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!((s, s2), (404, 404));
    assert_eq!(
        foreign, missing,
        "a foreign id must be indistinguishable from an unknown one"
    );
    // List and count.
    let (_, _, list) = app.call(Method::GET, "/api/tasks", Some(&bob), None).await;
    assert_eq!(list["items"], json!([]));
    let (_, _, stats) = app.call(Method::GET, "/api/stats", Some(&bob), None).await;
    assert_eq!(
        stats,
        json!({"queued": 0, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 0})
    );
    // Cancel.
    let (s, _, foreign) = app
        .call(
            Method::POST,
            &format!("/api/tasks/{id}/cancel"),
            Some(&bob),
            None,
        )
        .await;
    let (_, _, missing) = app
        .call(
            Method::POST,
            &format!("/api/tasks/{unknown}/cancel"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(s, 404);
    assert_eq!(foreign, missing);
    // Stream.
    let (s, _, _) = app
        .call(
            Method::GET,
            &format!("/api/tasks/{id}/events"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(s, 404);
    // Idempotency keys are per owner too.
    let keyed = |t: String| {
        let app = &app;
        async move {
            let r = app
                .http
                .post(format!("{}/api/tasks", app.base))
                .bearer_auth(t)
                .header("Idempotency-Key", "same-key")
                .json(&json!({"kind": "system.noop"}))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (sa, ta) = keyed(alice.clone()).await;
    let (sb, tb) = keyed(bob.clone()).await;
    assert_eq!((sa, sb), (202, 202));
    assert_ne!(ta["id"], tb["id"]);
    // Files: Bob can neither fetch Alice's file nor run a task on it, and
    // both answers equal those for an unknown id.
    let part =
        reqwest::multipart::Part::bytes(b"Alice Example\nalice@example.com\nSkills: Rust".to_vec())
            .file_name("cv.txt");
    let r = app
        .http
        .post(format!("{}/api/files", app.base))
        .bearer_auth(&alice)
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let file: Value = r.json().await.unwrap();
    let fid = file["id"].as_str().unwrap();
    let (s, _, foreign) = app
        .call(Method::GET, &format!("/api/files/{fid}"), Some(&bob), None)
        .await;
    let (_, _, missing) = app
        .call(
            Method::GET,
            &format!("/api/files/{unknown}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(s, 404);
    assert_eq!(foreign, missing);
    assert_eq!(
        app.call(
            Method::GET,
            &format!("/api/files/{fid}"),
            Some(&alice),
            None
        )
        .await
        .0,
        200
    );
    let parse = |f: &str| json!({"kind": "resume.parse", "payload": {"file_id": f}});
    let (s, _, foreign) = app
        .call(Method::POST, "/api/tasks", Some(&bob), Some(parse(fid)))
        .await;
    let (s2, _, missing) = app
        .call(
            Method::POST,
            "/api/tasks",
            Some(&bob),
            Some(parse(&unknown)),
        )
        .await;
    assert_eq!((s, s2), (400, 400));
    assert_eq!(
        foreign["detail"].as_str().unwrap().replace(fid, "X"),
        missing["detail"].as_str().unwrap().replace(&unknown, "X")
    );
    // Alice still sees and cancels her own.
    let (s, _, mine) = app
        .call(Method::GET, &format!("/api/tasks/{id}"), Some(&alice), None)
        .await;
    assert_eq!((s, mine["owner_id"].as_str()), (200, Some("alice")));
    let (_, _, stats) = app
        .call(Method::GET, "/api/stats", Some(&alice), None)
        .await;
    assert_eq!(stats["queued"], 2);
    let (s, _, _) = app
        .call(
            Method::POST,
            &format!("/api/tasks/{id}/cancel"),
            Some(&alice),
            None,
        )
        .await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_owner_rate_limit_answers_429_with_retry_after() {
    let app = start_app(&[("RATE_LIMIT_RPS", "1"), ("RATE_LIMIT_BURST", "3")]).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let (s, h, body) = app
            .call(reqwest::Method::GET, "/api/stats", None, None)
            .await;
        statuses.push(s);
        if s == 429 {
            retry_after = h.get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            assert_eq!(body["status"], 429);
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    assert!(retry_after.is_some_and(|r| r.parse::<u64>().unwrap() >= 1));
    // Health is never limited.
    assert_eq!(
        app.call(reqwest::Method::GET, "/api/health", None, None)
            .await
            .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_mode_with_missing_settings_fails_at_start() {
    let env: HashMap<String, String> = [("AUTH_MODE", "jwt"), ("JWT_ISSUER", ISSUER)]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let config = Config::from_source(Role::Web, &env).unwrap();
    let err = WebSettings::from_source(&config, &env).unwrap_err();
    assert!(err.to_string().starts_with("JWT_AUDIENCE"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_3_1_and_lists_every_endpoint_of_the_contract() {
    let app = start_app(&[]).await;
    let (s, _, doc) = app
        .call(reqwest::Method::GET, "/api/openapi.json", None, None)
        .await;
    assert_eq!(s, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/health", "get"),
        ("/api/ready", "get"),
        ("/api/tasks", "post"),
        ("/api/tasks", "get"),
        ("/api/tasks/{id}", "get"),
        ("/api/tasks/{id}/cancel", "post"),
        ("/api/tasks/{id}/events", "get"),
        ("/api/stats", "get"),
        ("/api/files", "post"),
        ("/api/files/{id}", "get"),
        ("/metrics", "get"),
    ] {
        let op = &paths.get(path).unwrap_or_else(|| panic!("{path} missing"))[method];
        assert!(op.is_object(), "{method} {path} missing");
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path} has no responses"
        );
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let (s, h, page) = app
        .call(reqwest::Method::GET, "/api/docs", None, None)
        .await;
    assert_eq!(s, 200);
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let page = page.as_str().unwrap();
    assert!(
        page.contains("/api/tasks/{id}/cancel") && !page.contains("<script"),
        "self-contained page"
    );
    let _ = Duration::ZERO;
}
