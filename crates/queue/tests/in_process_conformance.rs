//! The in-process backend passes the wake-up suite, both used directly (as
//! in `serve`) and through a real worker endpoint over HTTP on loopback (as
//! in the Phase 5 topology), and its endpoint refuses what it must.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use resume_agent_core::secret::Secret;
use resume_agent_queue::conformance::wake_conformance;
use resume_agent_queue::in_process::{HttpDispatcher, MAX_MESSAGES, router};
use resume_agent_queue::wake::{WakeBackend, Wakeups};
use resume_agent_queue::{BackendError, Message, TaskBackend};

fn msgs(n: usize) -> Vec<Message> {
    (0..n)
        .map(|_| Message {
            task_id: resume_agent_core::TaskId::new(),
            attempt: 0,
        })
        .collect()
}

#[tokio::test]
async fn local_wakeups_pass_the_suite() {
    let w = Wakeups::new();
    wake_conformance(
        std::sync::Arc::new(WakeBackend::new("in-process", w.clone())),
        w,
    )
    .await;
}

async fn serve_worker_endpoint(w: Wakeups, token: Option<Secret>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(w, token).route("/health", axum::routing::get(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn http_dispatch_to_a_real_worker_endpoint_passes_the_suite() {
    let w = Wakeups::new();
    let token = Secret::new("worker-token");
    let base = serve_worker_endpoint(w.clone(), Some(token.clone())).await;
    let backend = HttpDispatcher::new(&base, Some(token), Duration::from_secs(5)).unwrap();
    wake_conformance(backend, w).await;
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_wakes_nothing() {
    let w = Wakeups::new();
    let base = serve_worker_endpoint(w.clone(), Some(Secret::new("right"))).await;
    for token in [None, Some(Secret::new("wrong"))] {
        let backend = HttpDispatcher::new(&base, token, Duration::from_secs(5)).unwrap();
        let err = backend.enqueue(&msgs(1), Duration::ZERO).await.unwrap_err();
        assert!(matches!(err, BackendError::Unauthorized), "{err:?}");
    }
    assert_eq!(w.count(), 0);
}

#[tokio::test]
async fn oversized_batches_and_long_delays_are_refused() {
    let w = Wakeups::new();
    let base = serve_worker_endpoint(w.clone(), None).await;
    let client = reqwest::Client::new();
    let post = |body: serde_json::Value| {
        client
            .post(format!("{base}/internal/tasks"))
            .json(&body)
            .send()
    };
    let too_many = post(serde_json::json!({"messages": msgs(MAX_MESSAGES + 1)}))
        .await
        .unwrap();
    assert_eq!(too_many.status(), 413);
    assert_eq!(
        too_many.headers()["content-type"],
        "application/problem+json"
    );
    let week = post(serde_json::json!({"messages": msgs(1), "delay_ms": 7u64 * 24 * 3600 * 1000}))
        .await
        .unwrap();
    assert_eq!(week.status(), 400);
    let ok = post(serde_json::json!({"messages": msgs(MAX_MESSAGES)}))
        .await
        .unwrap();
    assert_eq!(ok.status(), 202);
    assert_eq!(w.count(), 1, "only the valid request woke the worker");
}

#[tokio::test]
async fn an_unreachable_worker_is_reported_unavailable() {
    // A port nobody listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let backend = HttpDispatcher::new(&base, None, Duration::from_secs(2)).unwrap();
    let err = backend.enqueue(&msgs(1), Duration::ZERO).await.unwrap_err();
    assert!(matches!(err, BackendError::Unavailable(_)), "{err:?}");
    assert!(backend.check().await.is_err());
}
