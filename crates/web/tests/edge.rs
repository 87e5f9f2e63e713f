//! The hardened edge, against the real web on port 0 with a real store
//! (PostgreSQL on a fresh database, and the embedded SQLite): input the
//! store cannot hold, cursors, quotas, file deletion and retention, bounded
//! list pages, streamed downloads, problem+json for every error the server
//! makes, header/idle/write timeouts and the slow-body 408.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use resume_agent_core::blob::{BlobKey, BlobStore, LocalBlobStore};
use resume_agent_core::config::{Config, Role};
use resume_agent_core::store::TaskStore;
use resume_agent_core::testing;
use resume_agent_queue::wake::{WakeBackend, Wakeups};
use resume_agent_web::{Deps, WebApp, WebSettings};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug)]
enum Db {
    Postgres,
    Sqlite,
}

struct App {
    base: String,
    addr: String,
    http: reqwest::Client,
    store: Arc<dyn TaskStore>,
    blobs: Arc<LocalBlobStore>,
    _stop: tokio_util::sync::DropGuard,
}

async fn store(db: Db) -> Arc<dyn TaskStore> {
    match db {
        Db::Postgres => testing::pg_store().await.0,
        Db::Sqlite => testing::sqlite_store().await,
    }
}

async fn start_on(
    store: Arc<dyn TaskStore>,
    blobs: Arc<LocalBlobStore>,
    vars: &[(&str, &str)],
) -> App {
    let mut env: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    env.insert("WEB_ADDR".into(), "127.0.0.1:0".into());
    let config = Config::from_source(Role::Web, &env).unwrap();
    let settings = WebSettings::from_source(&config, &env).unwrap();
    let deps = Deps {
        tasks: store.clone(),
        files: store.clone(),
        console: store.clone(),
        watch: store.clone(),
        // Nobody consumes this queue: submitted tasks stay queued.
        backend: Arc::new(WakeBackend::new("in-process", Wakeups::new())),
        blobs: blobs.clone(),
    };
    let app = WebApp::build(&config, settings, None, deps).await.unwrap();
    let addr = format!("127.0.0.1:{}", app.port());
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move { app.run_until_stopped(s).await.unwrap() });
    App {
        base: format!("http://{addr}"),
        addr,
        http: reqwest::Client::new(),
        store,
        blobs,
        _stop: stop.drop_guard(),
    }
}

async fn blobs() -> Arc<LocalBlobStore> {
    let dir = std::env::temp_dir().join(format!("ra-edge-{}", uuid::Uuid::new_v4().simple()));
    Arc::new(LocalBlobStore::open(dir).await.unwrap())
}

async fn start(db: Db, vars: &[(&str, &str)]) -> App {
    start_on(store(db).await, blobs().await, vars).await
}

fn is_problem(h: &reqwest::header::HeaderMap) -> bool {
    h.get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/problem+json"))
}

impl App {
    async fn post_task(&self, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/api/tasks", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        if status >= 400 {
            assert!(is_problem(r.headers()), "{status} is not problem+json");
        }
        (status, r.json().await.unwrap())
    }

    async fn upload(&self, name: &str, bytes: Vec<u8>) -> (u16, Value) {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned());
        let form = reqwest::multipart::Form::new().part("file", part);
        let r = self
            .http
            .post(format!("{}/api/files", self.base))
            .multipart(form)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        if status >= 400 {
            assert!(is_problem(r.headers()), "{status} is not problem+json");
        }
        (status, r.json().await.unwrap())
    }

    async fn status_of(&self, method: reqwest::Method, path: &str) -> u16 {
        let r = self
            .http
            .request(method, format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        if s >= 400 {
            assert!(is_problem(r.headers()), "{path}: {s} is not problem+json");
        }
        s
    }

    /// Writes `raw` on a fresh connection and reads the answer until the
    /// server closes or `deadline` passes.
    async fn raw(&self, raw: &[u8], deadline: Duration) -> String {
        let mut s = TcpStream::connect(&self.addr).await.unwrap();
        s.write_all(raw).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(deadline, s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// The `\u0000` burst: 290 concurrent submissions, 10 of them carrying a NUL
/// somewhere a store could choke on it → exactly 280 × 202 and 10 × 400
/// naming the field; nothing else.
async fn nul_burst(db: Db) {
    let app = Arc::new(start(db, &[("OWNER_MAX_QUEUED_TASKS", "0")]).await);
    let hostile = [
        json!({"kind": "system.fail", "payload": {"message": "a\u{0}b"}}),
        json!({"kind": "resume.match", "payload": {"file_id": uuid::Uuid::now_v7().to_string(), "job_description": "Go\u{0}"}}),
        json!({"kind": "system.noop", "payload": {"k\u{0}": 1}}),
    ];
    let mut joins = Vec::new();
    for i in 0..290 {
        let app = app.clone();
        let body = if i % 29 == 0 {
            hostile[(i / 29) % hostile.len()].clone()
        } else {
            json!({"kind": "system.fail", "payload": {"message": format!("innocent {i}")}})
        };
        joins.push(tokio::spawn(async move { app.post_task(&body).await }));
    }
    let mut counts: HashMap<u16, usize> = HashMap::new();
    for j in joins {
        let (status, body) = j.await.unwrap();
        if status == 400 {
            let detail = body["detail"].as_str().unwrap();
            assert!(
                detail.contains("NUL") && detail.starts_with("payload."),
                "{detail}"
            );
        }
        *counts.entry(status).or_default() += 1;
    }
    assert_eq!(counts, HashMap::from([(202, 280), (400, 10)]), "{db:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_burst_on_postgres_fails_only_the_hostile_requests() {
    nul_burst(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_burst_on_sqlite_fails_only_the_hostile_requests() {
    nul_burst(Db::Sqlite).await;
}

async fn cursors(db: Db) {
    let app = start(db, &[]).await;
    let id = uuid::Uuid::now_v7();
    for us in [
        "-219946000000000000",
        "253402300800000000",
        "-9223372036854775808",
    ] {
        let c = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{us}.{id}"));
        let s = app
            .status_of(reqwest::Method::GET, &format!("/api/tasks?cursor={c}"))
            .await;
        assert_eq!(s, 400, "{db:?} cursor {us}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursors_outside_years_1_to_9999_are_400_on_both_stores() {
    cursors(Db::Postgres).await;
    cursors(Db::Sqlite).await;
}

/// Quotas, deletion and retention: the contract on one store.
async fn quotas_deletion_retention(db: Db) {
    let st = store(db).await;
    let b = blobs().await;
    let app = start_on(
        st.clone(),
        b.clone(),
        &[
            ("OWNER_MAX_STORED_BYTES", "1000"),
            ("OWNER_MAX_QUEUED_TASKS", "3"),
        ],
    )
    .await;
    let other = start_on(
        st.clone(),
        b.clone(),
        &[("DEFAULT_OWNER_USER_ID", "somebody-else")],
    )
    .await;

    // Stored bytes: 600 fit, 600 more do not (413), after a delete they do.
    let (s, first) = app.upload("a.txt", vec![b'a'; 600]).await;
    assert_eq!(s, 201, "{first}");
    let (s, refused) = app.upload("b.txt", vec![b'b'; 600]).await;
    assert_eq!(s, 413, "{refused}");
    assert_eq!(refused["type"], "/problems/storage-quota-exceeded");
    let id = first["id"].as_str().unwrap().to_owned();
    let simple = uuid::Uuid::parse_str(&id).unwrap().simple().to_string();
    // Derived blobs, as the résumé handlers write them.
    for name in ["text", "parsed.json"] {
        let k = BlobKey::parse(&format!("files/{simple}/{name}")).unwrap();
        b.put(&k, b"derived".to_vec(), "text/plain").await.unwrap();
    }
    // Deletion is owner-scoped: foreign → 404 and nothing goes.
    let path = format!("/api/files/{id}");
    assert_eq!(other.status_of(reqwest::Method::DELETE, &path).await, 404);
    assert_eq!(app.status_of(reqwest::Method::GET, &path).await, 200);
    assert_eq!(app.status_of(reqwest::Method::DELETE, &path).await, 204);
    assert_eq!(app.status_of(reqwest::Method::GET, &path).await, 404);
    assert_eq!(app.status_of(reqwest::Method::DELETE, &path).await, 404);
    for name in ["original", "text", "parsed.json"] {
        let k = BlobKey::parse(&format!("files/{simple}/{name}")).unwrap();
        assert!(
            b.get(&k).await.unwrap().is_none(),
            "{name} survived the delete"
        );
    }
    let unknown = format!("/api/files/{}", uuid::Uuid::now_v7());
    assert_eq!(app.status_of(reqwest::Method::DELETE, &unknown).await, 404);
    assert_eq!(
        app.status_of(reqwest::Method::DELETE, "/api/files/not-a-uuid")
            .await,
        400
    );
    let (s, _) = app.upload("b.txt", vec![b'b'; 600]).await;
    assert_eq!(s, 201, "room again after the delete");

    // Queued tasks: 3 fit, the 4th is 429 with Retry-After; another owner
    // is not affected; cancelling one makes room.
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (s, t) = app.post_task(&json!({"kind": "system.noop"})).await;
        assert_eq!(s, 202);
        ids.push(t["id"].as_str().unwrap().to_owned());
    }
    let r = app
        .http
        .post(format!("{}/api/tasks", app.base))
        .json(&json!({"kind": "system.noop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert!(r.headers().contains_key("retry-after"));
    assert!(is_problem(r.headers()));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "/problems/queued-tasks-quota-exceeded");
    assert_eq!(
        other.post_task(&json!({"kind": "system.noop"})).await.0,
        202
    );
    let cancel = format!("/api/tasks/{}/cancel", ids[0]);
    assert_eq!(app.status_of(reqwest::Method::POST, &cancel).await, 200);
    // The web re-reads the count at most once a second (QUEUED_TTL).
    testing::eventually(Duration::from_secs(5), "room after a cancel", || async {
        (app.post_task(&json!({"kind": "system.noop"})).await.0 == 202).then_some(())
    })
    .await;
    assert_eq!(app.post_task(&json!({"kind": "system.noop"})).await.0, 429);

    // Retention: an expired file goes with every blob; a young one stays.
    let (_, old) = app.upload("old.txt", b"old".to_vec()).await;
    let old_id = uuid::Uuid::parse_str(old["id"].as_str().unwrap()).unwrap();
    let derived = BlobKey::parse(&format!("files/{}/text", old_id.simple())).unwrap();
    b.put(&derived, b"x".to_vec(), "text/plain").await.unwrap();
    // Nothing is a year old.
    let n = resume_agent_web::retention::sweep_files(
        &*app.store,
        &*app.blobs,
        Duration::from_secs(365 * 86_400),
    )
    .await
    .unwrap();
    assert_eq!(n, 0);
    assert_eq!(
        app.status_of(reqwest::Method::GET, &format!("/api/files/{old_id}"))
            .await,
        200
    );
    // Everything uploaded so far is older than "now".
    let n = testing::eventually(Duration::from_secs(5), "files to expire", || async {
        let n = resume_agent_web::retention::sweep_files(&*app.store, &*app.blobs, Duration::ZERO)
            .await
            .unwrap();
        (n > 0).then_some(n)
    })
    .await;
    assert!(n >= 1);
    assert_eq!(
        app.status_of(reqwest::Method::GET, &format!("/api/files/{old_id}"))
            .await,
        404
    );
    assert!(b.get(&derived).await.unwrap().is_none());
    let original = BlobKey::parse(&format!("files/{}/original", old_id.simple())).unwrap();
    assert!(b.get(&original).await.unwrap().is_none());
    assert_eq!(
        app.store
            .owner_stored_bytes(&resume_agent_core::OwnerId::parse("dev-user-1").unwrap())
            .await
            .unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_deletion_and_retention_on_postgres() {
    quotas_deletion_retention(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_deletion_and_retention_on_sqlite() {
    quotas_deletion_retention(Db::Sqlite).await;
}

/// `limit=500` answers at most LIST_MAX_BYTES of tasks; following
/// next_cursor still visits every task exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_are_bounded_in_bytes_and_cursors_still_walk_everything() {
    let app = start(Db::Postgres, &[("LIST_MAX_BYTES", "8000")]).await;
    let mut want = std::collections::HashSet::new();
    for i in 0..40 {
        let (s, t) = app
            .post_task(&json!({"kind": "system.fail", "payload": {"message": format!("{i}:{}", "x".repeat(1000))}}))
            .await;
        assert_eq!(s, 202);
        want.insert(t["id"].as_str().unwrap().to_owned());
    }
    let mut seen = std::collections::HashSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = format!("{}/api/tasks?limit=500", app.base);
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let text = app
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.len() <= 8000 + 200, "a page of {} bytes", text.len());
        let page: Value = serde_json::from_str(&text).unwrap();
        let items = page["items"].as_array().unwrap();
        assert!(!items.is_empty());
        for t in items {
            assert!(
                seen.insert(t["id"].as_str().unwrap().to_owned()),
                "a task twice"
            );
        }
        pages += 1;
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, want);
    assert!(
        pages >= 5,
        "{pages} pages for 40 tasks of ~1.1 KB under 8 KB"
    );
}

/// Every error the server makes is problem+json, including axum's own
/// rejections, unknown methods and the URI/header limits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_error_is_problem_json() {
    let app = start(Db::Sqlite, &[]).await;
    // A path id that is not UTF-8 once percent-decoded (axum's text/plain before).
    assert_eq!(
        app.status_of(reqwest::Method::GET, "/api/tasks/%FF%FE")
            .await,
        400
    );
    assert_eq!(
        app.status_of(reqwest::Method::GET, "/api/files/%C3%28")
            .await,
        400
    );
    assert_eq!(
        app.status_of(reqwest::Method::POST, "/api/tasks/%FF/cancel")
            .await,
        400
    );
    // Unknown and wrong methods.
    let brew = reqwest::Method::from_bytes(b"BREW").unwrap();
    assert_eq!(app.status_of(brew, "/api/tasks").await, 405);
    assert_eq!(app.status_of(reqwest::Method::PUT, "/api/stats").await, 405);
    assert_eq!(app.status_of(reqwest::Method::GET, "/nope").await, 404);
    // Bad query (axum's Query rejection).
    assert_eq!(
        app.status_of(reqwest::Method::GET, "/api/tasks?limit=%FF")
            .await,
        400
    );
    // 414 and 431 from us, with a body.
    let long = format!("/api/tasks?kind={}", "k".repeat(9000));
    assert_eq!(app.status_of(reqwest::Method::GET, &long).await, 414);
    let mut r = app.http.get(format!("{}/api/health", app.base));
    for i in 0..150 {
        r = r.header(format!("x-h-{i}"), "v");
    }
    let resp = r.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 431);
    assert!(is_problem(resp.headers()));
    let r = app
        .http
        .get(format!("{}/api/health", app.base))
        .header("x-big", "v".repeat(40_000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 431);
    assert!(is_problem(r.headers()));
}

/// A body sent too slowly is 408 (a slow client), not 503 (a slow server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slowly_sent_body_is_408() {
    let app = start(Db::Sqlite, &[("REQUEST_TIMEOUT_SECS", "1")]).await;
    let head = format!(
        "POST /api/tasks HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"kind\":",
        app.addr
    );
    let started = Instant::now();
    let answer = app.raw(head.as_bytes(), Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Slowloris: 2,000 connections that never finish their headers do not
/// stop a normal request, and are closed HTTP_HEADER_TIMEOUT_SECS after
/// their first byte; connections that send nothing (new, or kept alive
/// after a response) are closed after HTTP_IDLE_TIMEOUT_SECS, not before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_and_idle_connections_are_closed_and_do_not_block_others() {
    let app = start(
        Db::Sqlite,
        &[
            ("HTTP_HEADER_TIMEOUT_SECS", "1"),
            ("HTTP_IDLE_TIMEOUT_SECS", "4"),
        ],
    )
    .await;
    let opened = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..2000 {
        let mut s = TcpStream::connect(&app.addr).await.unwrap();
        s.write_all(b"GET /api/health HTTP/1.1\r\nhost: x\r\nx-slow: ")
            .await
            .unwrap();
        slow.push(s);
    }
    eprintln!(
        "2000 slowloris connections opened in {:?}",
        opened.elapsed()
    );
    // Silent connections and a kept-alive one, opened at the same time.
    let silent_at = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(&app.addr).await.unwrap());
    }
    let mut kept = TcpStream::connect(&app.addr).await.unwrap();
    kept.write_all(b"GET /api/health HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    // A normal request meanwhile, on a fresh connection.
    let t = Instant::now();
    let r = reqwest::Client::new()
        .get(format!("{}/api/health", app.base))
        .send()
        .await
        .unwrap();
    let took = t.elapsed();
    assert_eq!(r.status().as_u16(), 200);
    eprintln!("a normal request beside 2000 slowloris connections: {took:?}");
    assert!(
        took < Duration::from_millis(100),
        "a normal request took {took:?}"
    );
    // Every slowloris connection is closed by the server.
    for mut s in slow {
        let mut buf = [0u8; 512];
        let end = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
        assert!(end.is_ok(), "a slowloris connection stayed open");
    }
    let closed_after = opened.elapsed();
    eprintln!("slowloris connections all closed {closed_after:?} after the first was opened");
    assert!(
        silent_at.elapsed() < Duration::from_secs(3),
        "slowloris connections were closed only after {closed_after:?}"
    );
    // The silent ones are still open (idle timeout 4 s), then closed.
    let mut ends = Vec::new();
    for mut s in silent.into_iter().chain(std::iter::once(kept)) {
        let mut all = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut all)).await;
        assert!(r.is_ok(), "an idle connection stayed open");
        ends.push((silent_at.elapsed(), all));
    }
    let (first_closed, _) = &ends[0];
    assert!(
        *first_closed >= Duration::from_secs(3),
        "an idle connection was closed after {first_closed:?}, before the idle timeout"
    );
    let (last_closed, kept_bytes) = ends.last().unwrap();
    assert!(String::from_utf8_lossy(kept_bytes).starts_with("HTTP/1.1 200"));
    assert!(
        *last_closed < Duration::from_secs(8),
        "closed after {last_closed:?}"
    );
}

/// Downloads stream from the blob store; a client that stops reading is
/// cut off after HTTP_WRITE_TIMEOUT_SECS instead of pinning the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_stream_and_a_reader_that_stops_is_cut_off() {
    let app = start(
        Db::Sqlite,
        &[
            ("HTTP_WRITE_TIMEOUT_SECS", "1"),
            ("HTTP_HEADER_TIMEOUT_SECS", "30"),
            ("FILE_MAX_BYTES", "33554432"),
        ],
    )
    .await;
    let bytes: Vec<u8> = (0..24 * 1024 * 1024)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    let (s, f) = app.upload("big.txt", bytes.clone()).await;
    assert_eq!(s, 201, "{f}");
    let id = f["id"].as_str().unwrap().to_owned();
    let r = app
        .http
        .get(format!("{}/api/files/{id}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.content_length(), Some(bytes.len() as u64));
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
    // Never read: the server gives up once its writes stall.
    let mut s = TcpStream::connect(&app.addr).await.unwrap();
    s.write_all(format!("GET /api/files/{id} HTTP/1.1\r\nhost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    // Give the socket buffers time to fill, plus the write timeout.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut got = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the server kept the stalled download open");
    assert!(
        got < bytes.len(),
        "the whole file arrived ({got} bytes): the server did not cut it off"
    );
}

/// Readiness keeps its documented JSON shape on 503 (the problem layer
/// only rewrites framework errors).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_keeps_its_shape_when_not_ready() {
    // The in-process backend is "degraded" but ready; a broken blob folder
    // makes readiness fail.
    let dir = std::env::temp_dir().join(format!("ra-edge-ro-{}", uuid::Uuid::new_v4().simple()));
    let b = Arc::new(LocalBlobStore::open(&dir).await.unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
    let app = start_on(store(Db::Sqlite).await, b, &[]).await;
    let r = app
        .http
        .get(format!("{}/api/ready", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "not_ready", "{body}");
    assert!(
        body["checks"]["storage"]
            .as_str()
            .unwrap()
            .starts_with("error"),
        "{body}"
    );
}

/// The batch route shares the NUL check (400 naming the item and field)
/// and the queued-task quota (the whole batch must fit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_checked_for_nul_and_against_the_queued_quota() {
    let app = start(Db::Postgres, &[("OWNER_MAX_QUEUED_TASKS", "5")]).await;
    let post = |body: Value| {
        let app = &app;
        async move {
            let r = app
                .http
                .post(format!("{}/api/tasks/batch", app.base))
                .json(&body)
                .send()
                .await
                .unwrap();
            let s = r.status().as_u16();
            if s >= 400 {
                assert!(is_problem(r.headers()));
            }
            (s, r.json::<Value>().await.unwrap())
        }
    };
    let (s, body) = post(json!({"tasks": [
        {"kind": "system.noop"},
        {"kind": "system.fail", "payload": {"message": "x\u{0}"}},
    ]}))
    .await;
    assert_eq!(s, 400, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.starts_with("tasks[1]: payload.message"), "{detail}");
    let four: Vec<Value> = (0..4).map(|_| json!({"kind": "system.noop"})).collect();
    assert_eq!(post(json!({"tasks": four})).await.0, 202);
    let two: Vec<Value> = (0..2).map(|_| json!({"kind": "system.noop"})).collect();
    let (s, body) = post(json!({"tasks": two})).await;
    assert_eq!(s, 429, "{body}");
    assert_eq!(body["type"], "/problems/queued-tasks-quota-exceeded");
    assert_eq!(
        post(json!({"tasks": [{"kind": "system.noop"}]})).await.0,
        202
    );
}

/// HTTP_MAX_CONNECTIONS: at the cap a new connection is not served until
/// one of the open ones goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_holds_new_connections_until_one_closes() {
    let app = start(Db::Sqlite, &[("HTTP_MAX_CONNECTIONS", "5")]).await;
    let mut open = Vec::new();
    for _ in 0..5 {
        let mut s = TcpStream::connect(&app.addr).await.unwrap();
        // A served request proves the connection holds a slot.
        s.write_all(b"GET /api/health HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        open.push(s);
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    let url = format!("{}/api/health", app.base);
    assert!(
        http.get(&url).send().await.is_err(),
        "a sixth connection was served beside five"
    );
    drop(open.pop());
    let r = testing::eventually(Duration::from_secs(5), "a slot to free up", || async {
        http.get(&url).send().await.ok()
    })
    .await;
    assert_eq!(r.status().as_u16(), 200);
}
