//! The bad-input matrix: every endpoint answers malformed, oversized,
//! hostile or foreign input with the right 4xx and a problem+json body;
//! nothing yields a 500.
#![allow(clippy::unwrap_used)]

mod common;

use common::Phase5;
use reqwest::Method;
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Option<Vec<u8>>,
    headers: Vec<(&'static str, String)>,
    want: u16,
}

fn case(name: &'static str, method: Method, path: impl Into<String>, want: u16) -> Case {
    Case {
        name,
        method,
        path: path.into(),
        content_type: None,
        body: None,
        headers: vec![],
        want,
    }
}

fn json_case(name: &'static str, path: &str, body: &str, want: u16) -> Case {
    Case {
        name,
        method: Method::POST,
        path: path.into(),
        content_type: Some("application/json"),
        body: Some(body.as_bytes().to_vec()),
        headers: vec![],
        want,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_bad_input_with_a_problem_and_never_a_500() {
    let p = Phase5::start(&[("MAX_BODY_BYTES", "4096")]).await;
    // A real task of this owner, and one of another owner (same database,
    // a second web process acting as someone else).
    let mine = p.submit_ok(json!({"kind": "system.noop"})).await;
    let mut other_env = p.env.clone();
    other_env.insert("DEFAULT_OWNER_USER_ID".into(), "somebody-else".into());
    let other_port = common::free_port();
    other_env.insert("WEB_ADDR".into(), format!("127.0.0.1:{other_port}"));
    let _other = common::Proc::start("other-web", "web", &other_env);
    let other_url = format!("http://127.0.0.1:{other_port}");
    p.wait_ready(&format!("{other_url}/api/ready")).await;
    let r = p
        .http
        .post(format!("{other_url}/api/tasks"))
        .json(&json!({"kind": "system.noop"}))
        .send()
        .await
        .unwrap();
    let foreign = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let big = format!(
        r#"{{"kind":"system.fail","payload":{{"message":"{}"}}}}"#,
        "x".repeat(10_000)
    );
    let mut cases = vec![
        json_case(
            "malformed JSON",
            "/api/tasks",
            r#"{"kind": "system.noop""#,
            400,
        ),
        json_case("not an object", "/api/tasks", r#"["system.noop"]"#, 400),
        json_case("empty body", "/api/tasks", "", 400),
        json_case("kind missing", "/api/tasks", r#"{"payload": {}}"#, 400),
        json_case("kind wrong type", "/api/tasks", r#"{"kind": 7}"#, 400),
        json_case(
            "unknown kind",
            "/api/tasks",
            r#"{"kind": "system.explode"}"#,
            400,
        ),
        json_case(
            "unknown field",
            "/api/tasks",
            r#"{"kind": "system.noop", "priority": 1}"#,
            400,
        ),
        json_case(
            "payload not object",
            "/api/tasks",
            r#"{"kind": "system.noop", "payload": 3}"#,
            400,
        ),
        json_case(
            "invalid payload",
            "/api/tasks",
            r#"{"kind": "system.sleep", "payload": {"ms": -5}}"#,
            400,
        ),
        json_case(
            "payload field missing",
            "/api/tasks",
            r#"{"kind": "system.sleep"}"#,
            400,
        ),
        json_case(
            "payload too long sleep",
            "/api/tasks",
            r#"{"kind": "system.sleep", "payload": {"ms": 600001}}"#,
            400,
        ),
        json_case(
            "max_attempts zero",
            "/api/tasks",
            r#"{"kind": "system.noop", "max_attempts": 0}"#,
            400,
        ),
        json_case(
            "max_attempts too big",
            "/api/tasks",
            r#"{"kind": "system.noop", "max_attempts": 26}"#,
            400,
        ),
        json_case(
            "max_attempts string",
            "/api/tasks",
            r#"{"kind": "system.noop", "max_attempts": "3"}"#,
            400,
        ),
        json_case(
            "timeout too big",
            "/api/tasks",
            r#"{"kind": "system.noop", "timeout_secs": 3601}"#,
            400,
        ),
        json_case(
            "timeout float",
            "/api/tasks",
            r#"{"kind": "system.noop", "timeout_secs": 1.5}"#,
            400,
        ),
        json_case("oversized body", "/api/tasks", &big, 413),
        json_case(
            "deeply nested",
            "/api/tasks",
            &format!("{}{}", "[".repeat(5000), "]".repeat(5000)),
            413,
        ),
        Case {
            content_type: Some("text/plain"),
            ..json_case(
                "wrong content type",
                "/api/tasks",
                r#"{"kind":"system.noop"}"#,
                415,
            )
        },
        Case {
            content_type: None,
            ..json_case(
                "no content type",
                "/api/tasks",
                r#"{"kind":"system.noop"}"#,
                415,
            )
        },
        Case {
            content_type: Some("application/x-www-form-urlencoded"),
            ..json_case("form body", "/api/tasks", "kind=system.noop", 415)
        },
        Case {
            headers: vec![("Idempotency-Key", "k".repeat(256))],
            ..json_case(
                "idempotency key too long",
                "/api/tasks",
                r#"{"kind":"system.noop"}"#,
                400,
            )
        },
        case("bad uuid", Method::GET, "/api/tasks/not-a-uuid", 400),
        case(
            "bad uuid with traversal",
            Method::GET,
            "/api/tasks/..%2F..%2Fetc%2Fpasswd",
            400,
        ),
        case(
            "unknown task",
            Method::GET,
            format!("/api/tasks/{}", uuid::Uuid::now_v7()),
            404,
        ),
        case(
            "foreign task",
            Method::GET,
            format!("/api/tasks/{foreign}"),
            404,
        ),
        case(
            "cancel bad uuid",
            Method::POST,
            "/api/tasks/123/cancel",
            400,
        ),
        case(
            "cancel unknown",
            Method::POST,
            format!("/api/tasks/{}/cancel", uuid::Uuid::now_v7()),
            404,
        ),
        case(
            "cancel foreign",
            Method::POST,
            format!("/api/tasks/{foreign}/cancel"),
            404,
        ),
        case("limit zero", Method::GET, "/api/tasks?limit=0", 400),
        case("limit too big", Method::GET, "/api/tasks?limit=501", 400),
        case(
            "limit not a number",
            Method::GET,
            "/api/tasks?limit=ten",
            400,
        ),
        case("limit negative", Method::GET, "/api/tasks?limit=-1", 400),
        case(
            "bad status filter",
            Method::GET,
            "/api/tasks?status=done",
            400,
        ),
        case("bad kind filter", Method::GET, "/api/tasks?kind=nope", 400),
        case("bad cursor", Method::GET, "/api/tasks?cursor=%%%", 400),
        case(
            "forged cursor",
            Method::GET,
            "/api/tasks?cursor=aGVsbG8",
            400,
        ),
        case("unknown route", Method::GET, "/api/nothing-here", 404),
        case(
            "wrong method",
            Method::DELETE,
            format!("/api/tasks/{mine}"),
            405,
        ),
        case("wrong method on list", Method::PUT, "/api/tasks", 405),
        case("wrong method on stats", Method::POST, "/api/stats", 405),
    ];
    // The foreign task must be invisible in list and stats, too (checked below).
    let mut failures = Vec::new();
    for c in cases.drain(..) {
        let mut req = p
            .http
            .request(c.method.clone(), format!("{}{}", p.web_url, c.path));
        if let Some(ct) = c.content_type {
            req = req.header("content-type", ct);
        }
        for (k, v) in &c.headers {
            req = req.header(*k, v);
        }
        if let Some(b) = c.body {
            req = req.body(b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("").to_owned());
        let body: Value = r.json().await.unwrap_or(Value::Null);
        let problem_ok = ct.as_deref() == Some("application/problem+json")
            && body["status"] == json!(status)
            && body["title"].is_string()
            && body["type"].is_string()
            && body["detail"].is_string();
        if status != c.want || !problem_ok {
            failures.push(format!(
                "{}: {} {} → {status} {ct:?} {body} (wanted {})",
                c.name, c.method, c.path, c.want
            ));
        }
        assert!(status < 500, "{}: got {status}", c.name);
    }
    assert!(
        failures.is_empty(),
        "bad-input matrix failures:\n{}",
        failures.join("\n")
    );

    // Owner isolation in list and stats.
    let list: Value = p
        .http
        .get(format!("{}/api/tasks?limit=500", p.web_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&mine.as_str()));
    assert!(!ids.contains(&foreign.as_str()), "foreign task listed");
    let stats = p.stats().await;
    let total: i64 = ["queued", "running", "succeeded", "failed", "cancelled"]
        .iter()
        .map(|k| stats[k].as_i64().unwrap())
        .sum();
    assert_eq!(total, 1, "stats count another owner's task: {stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_newest_first_with_filters() {
    let p = Phase5::start(&[]).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let kind = if i % 2 == 0 {
            "system.noop"
        } else {
            "system.fail"
        };
        ids.push(p.submit_ok(json!({"kind": kind, "max_attempts": 1})).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{}/api/tasks?limit=3", p.web_url);
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = p.http.get(url).send().await.unwrap().json().await.unwrap();
        seen.extend(
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
    ids.reverse();
    assert_eq!(seen, ids);
    let fails: Value = p
        .http
        .get(format!("{}/api/tasks?kind=system.fail", p.web_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fails["items"].as_array().unwrap().len(), 3);
    common::eventually(
        std::time::Duration::from_secs(20),
        "failed filter",
        || async {
            let r: Value = p
                .http
                .get(format!("{}/api/tasks?status=failed", p.web_url))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (r["items"].as_array()?.len() == 3).then_some(())
        },
    )
    .await;
}

/// The worker's errors are problem+json too: an unknown path (404) and a
/// known path with the wrong method (405, axum's empty body before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_404_and_405_are_problem_json() {
    let p = Phase5::start(&[]).await;
    for (method, path, want) in [
        (Method::POST, "/health", 405),
        (Method::DELETE, "/metrics", 405),
        (Method::GET, "/nope", 404),
    ] {
        let r = p
            .http
            .request(method.clone(), format!("{}{path}", p.worker_url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), want, "{method} {path}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(
            ct.starts_with("application/problem+json"),
            "{method} {path}: {ct}"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["status"], want);
    }
}
