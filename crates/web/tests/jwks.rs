//! The JWKS cache against a real JWKS server on loopback that counts its
//! fetches: single flight, no fetch for an unknown `kid` while the set is
//! fresh, Cache-Control expiry (a withdrawn key stops verifying within the
//! refresh interval), backoff after failures, and the per-client limit
//! applied before authentication.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

struct Key {
    kid: String,
    pem: Vec<u8>,
    jwk: Value,
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is required");
    assert!(out.status.success(), "openssl {args:?}");
    out.stdout
}

fn new_key(kid: &str) -> Key {
    let dir = std::env::temp_dir().join(format!("ra-jwks-{}", uuid::Uuid::new_v4().simple()));
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
    Key {
        kid: kid.to_owned(),
        pem,
        jwk: json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": b64(&n), "e": "AQAB"}),
    }
}

fn sign_as(key: &Key, kid: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "oid": "owner-1",
        "iat": now, "nbf": now - 10, "exp": now + 600});
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&h, &claims, &EncodingKey::from_rsa_pem(&key.pem).unwrap()).unwrap()
}

fn sign(key: &Key) -> String {
    sign_as(key, &key.kid)
}

/// A JWKS endpoint that counts fetches, can be told to fail, and sends
/// `Cache-Control: max-age` when one is set.
#[derive(Clone, Default)]
struct Jwks {
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
    max_age: Option<u64>,
}

impl Jwks {
    async fn serve(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let me = self.clone();
        let app = axum::Router::new().route(
            "/keys",
            axum::routing::get(move || {
                let me = me.clone();
                async move {
                    use axum::response::IntoResponse;
                    me.fetches.fetch_add(1, Ordering::SeqCst);
                    if me.failing.load(Ordering::SeqCst) {
                        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
                    }
                    let body = axum::Json(json!({"keys": *me.keys.lock().unwrap()}));
                    match me.max_age {
                        Some(n) => (
                            [(
                                axum::http::header::CACHE_CONTROL,
                                format!("public, max-age={n}"),
                            )],
                            body,
                        )
                            .into_response(),
                        None => body.into_response(),
                    }
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/keys")
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

struct App {
    base: String,
    http: reqwest::Client,
    _stop: tokio_util::sync::DropGuard,
}

async fn start(jwks_url: &str, vars: &[(&str, &str)]) -> App {
    let mut env: HashMap<String, String> = [
        ("AUTH_MODE", "jwt"),
        ("JWT_ISSUER", ISSUER),
        ("JWT_AUDIENCE", AUDIENCE),
        ("JWT_JWKS_URL", jwks_url),
        ("RATE_LIMIT_RPS", "0"),
        ("RATE_LIMIT_IP_RPS", "0"),
        ("WEB_ADDR", "127.0.0.1:0"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    for (k, v) in vars {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let config = Config::from_source(Role::Web, &env).unwrap();
    let settings = WebSettings::from_source(&config, &env).unwrap();
    let dir = std::env::temp_dir().join(format!("ra-jwks-web-{}", uuid::Uuid::new_v4().simple()));
    let store = testing::sqlite_store().await;
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

impl App {
    async fn stats(&self, token: &str) -> u16 {
        self.http
            .get(format!("{}/api/stats", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

async fn concurrently(app: &Arc<App>, tokens: Vec<String>) -> Vec<u16> {
    let mut joins = Vec::new();
    for t in tokens {
        let app = app.clone();
        joins.push(tokio::spawn(async move { app.stats(&t).await }));
    }
    let mut out = Vec::new();
    for j in joins {
        out.push(j.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_unknown_kids_cost_one_fetch() {
    let k1 = new_key("k1");
    let k2 = new_key("k2");
    // Signed up front: signing is slow in a debug build and the test times
    // the set's freshness.
    let fresh_bogus: Vec<String> = (0..50)
        .map(|i| sign_as(&k1, &format!("bogus-{i}")))
        .collect();
    let stale_bogus: Vec<String> = (0..50)
        .map(|i| sign_as(&k1, &format!("again-{i}")))
        .collect();
    let rotated: Vec<String> = (0..50).map(|_| sign(&k2)).collect();
    let ok = sign(&k1);
    let jwks = Jwks::default();
    jwks.keys.lock().unwrap().push(k1.jwk.clone());
    let url = jwks.serve().await;
    let app = Arc::new(start(&url, &[("JWT_JWKS_MIN_REFRESH_SECS", "3")]).await);
    let warmed = Instant::now();
    assert_eq!(jwks.fetches(), 1, "the start-up warm-up");
    assert_eq!(app.stats(&ok).await, 200);

    // While the set is fresh, unknown kids are 401 without any fetch.
    let statuses = concurrently(&app, fresh_bogus).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert!(
        warmed.elapsed() < Duration::from_secs(3),
        "the test itself was too slow to prove freshness"
    );
    assert_eq!(jwks.fetches(), 1, "an unknown kid on a fresh set fetched");

    // Once it is older than JWT_JWKS_MIN_REFRESH_SECS, 50 concurrent
    // unknown kids share exactly one fetch.
    tokio::time::sleep_until((warmed + Duration::from_millis(3100)).into()).await;
    let statuses = concurrently(&app, stale_bogus).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(jwks.fetches(), 2, "50 concurrent unknown kids, one fetch");

    // A rotation: 50 concurrent tokens of a newly published key all verify
    // after one shared fetch.
    jwks.keys.lock().unwrap().push(k2.jwk.clone());
    let fetched = Instant::now();
    tokio::time::sleep_until((fetched + Duration::from_millis(3100)).into()).await;
    let statuses = concurrently(&app, rotated).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(jwks.fetches(), 3, "one fetch for the rotation");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_key_stops_verifying_within_the_refresh_interval() {
    let k1 = new_key("k1");
    let k2 = new_key("k2");
    let jwks = Jwks {
        max_age: Some(2),
        ..Jwks::default()
    };
    jwks.keys
        .lock()
        .unwrap()
        .extend([k1.jwk.clone(), k2.jwk.clone()]);
    let url = jwks.serve().await;
    let app = start(
        &url,
        &[
            ("JWT_JWKS_MIN_REFRESH_SECS", "1"),
            ("JWT_JWKS_MAX_REFRESH_SECS", "60"),
        ],
    )
    .await;
    let token = sign(&k1);
    assert_eq!(app.stats(&token).await, 200);
    // Withdraw k1 (k2 stays).
    jwks.keys.lock().unwrap().retain(|k| k["kid"] != "k1");
    let withdrawn = Instant::now();
    let refused = testing::eventually(
        Duration::from_secs(10),
        "the withdrawn key to be refused",
        || async { (app.stats(&token).await == 401).then(|| withdrawn.elapsed()) },
    )
    .await;
    // max-age=2 (within [1, 60]): refused at most 2 s after the withdrawal, plus slack.
    assert!(
        refused <= Duration::from_millis(2600),
        "refused after {refused:?}"
    );
    assert_eq!(
        app.stats(&sign(&k2)).await,
        200,
        "the remaining key still verifies"
    );
    // The periodic refresh is one fetch per interval (2 s), not one per
    // request.
    let tokens: Vec<String> = (0..20).map(|_| sign(&k2)).collect();
    let before = jwks.fetches();
    let started = Instant::now();
    for t in &tokens {
        assert_eq!(app.stats(t).await, 200);
    }
    let intervals = usize::try_from(started.elapsed().as_secs() / 2).unwrap() + 1;
    assert!(
        jwks.fetches() <= before + intervals,
        "{} fetches for 20 requests in {:?}",
        jwks.fetches() - before,
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_jwks_is_backed_off_and_known_keys_keep_verifying() {
    let k1 = new_key("k1");
    let jwks = Jwks::default();
    jwks.keys.lock().unwrap().push(k1.jwk.clone());
    let url = jwks.serve().await;
    let app = start(&url, &[("JWT_JWKS_MIN_REFRESH_SECS", "0")]).await;
    assert_eq!(app.stats(&sign(&k1)).await, 200);
    jwks.failing.store(true, Ordering::SeqCst);
    let tokens: Vec<String> = (0..30).map(|i| sign_as(&k1, &format!("x{i}"))).collect();
    let before = jwks.fetches();
    // 30 bogus tokens in a row: the first fails the fetch, the rest meet
    // the backoff (1 s, 2 s, 4 s, …) and cost nothing. They are 401 (a set
    // is known), not 503.
    let started = Instant::now();
    for t in &tokens {
        assert_eq!(app.stats(t).await, 401);
    }
    // Fetches possible in the time taken: 1 + the doublings that fit.
    let secs = started.elapsed().as_secs_f64();
    let allowed = 1 + (secs + 1.0).log2().floor() as usize;
    let made = jwks.fetches() - before;
    assert!(
        made >= 1 && made <= allowed,
        "{made} fetches in {secs:.1} s (at most {allowed})"
    );
    // The known key keeps working through the outage.
    assert_eq!(app.stats(&sign(&k1)).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_per_client_limit_applies_before_authentication() {
    // Another app, same limits: authenticated requests never spend the
    // address's budget.
    {
        let k = new_key("k0");
        let jwks = Jwks::default();
        jwks.keys.lock().unwrap().push(k.jwk.clone());
        let url = jwks.serve().await;
        let app = start(
            &url,
            &[("RATE_LIMIT_IP_RPS", "0.001"), ("RATE_LIMIT_IP_BURST", "5")],
        )
        .await;
        let good = sign(&k);
        for _ in 0..30 {
            assert_eq!(app.stats(&good).await, 200);
        }
    }
    let k1 = new_key("k1");
    let jwks = Jwks::default();
    jwks.keys.lock().unwrap().push(k1.jwk.clone());
    let url = jwks.serve().await;
    let app = start(
        &url,
        &[
            ("RATE_LIMIT_IP_RPS", "0.001"),
            ("RATE_LIMIT_IP_BURST", "5"),
            ("JWT_JWKS_MIN_REFRESH_SECS", "0"),
        ],
    )
    .await;
    let tokens: Vec<String> = (0..20)
        .map(|i| sign_as(&k1, &format!("nope-{i}")))
        .collect();
    let before = jwks.fetches();
    let mut statuses = Vec::new();
    for t in &tokens {
        statuses.push(app.stats(t).await);
    }
    assert_eq!(&statuses[..5], &[401; 5], "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
    // The refused ones never reached the verifier (no key fetch for them).
    assert!(jwks.fetches() <= before + 5);
    // Valid tokens cost the address nothing: but its failure budget is
    // spent, so until it refills it is refused before authentication too.
    assert_eq!(app.stats(&tokens[0]).await, 429);
    // Probes are exempt.
    let r = app
        .http
        .get(format!("{}/api/health", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}
