//! The in-process backend passes the backend conformance suite, both used
//! directly (as in `serve`) and through a real worker endpoint over HTTP on
//! loopback (as in the Phase 5 topology).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use resume_agent_core::secret::Secret;
use resume_agent_queue::conformance::{Pair, backend_conformance};
use resume_agent_queue::in_process::{HttpDispatcher, InProcessQueue, LocalBackend, router};
use resume_agent_queue::{BackendError, Message, TaskBackend};

#[tokio::test]
async fn local_queue_passes_the_suite() {
    let q = InProcessQueue::new(1000);
    backend_conformance(Pair {
        backend: Arc::new(LocalBackend(q.clone())),
        source: Arc::new(q),
        lease: Duration::from_secs(30),
    })
    .await;
}

async fn serve_worker_endpoint(q: Arc<InProcessQueue>, token: Option<Secret>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(q, token).route("/health", axum::routing::get(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn http_dispatch_to_a_real_worker_endpoint_passes_the_suite() {
    let q = InProcessQueue::new(1000);
    let token = Secret::new("worker-token");
    let base = serve_worker_endpoint(q.clone(), Some(token.clone())).await;
    let backend = HttpDispatcher::new(&base, Some(token), Duration::from_secs(5)).unwrap();
    backend_conformance(Pair {
        backend,
        source: Arc::new(q),
        lease: Duration::from_secs(30),
    })
    .await;
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_nothing_is_enqueued() {
    let q = InProcessQueue::new(10);
    let base = serve_worker_endpoint(q.clone(), Some(Secret::new("right"))).await;
    let m = [Message {
        task_id: resume_agent_core::TaskId::new(),
        attempt: 0,
    }];
    for token in [None, Some(Secret::new("wrong"))] {
        let backend = HttpDispatcher::new(&base, token, Duration::from_secs(5)).unwrap();
        let err = backend.enqueue(&m, Duration::ZERO).await.unwrap_err();
        assert!(matches!(err, BackendError::Unauthorized), "{err:?}");
    }
    assert!(q.is_empty());
}

#[tokio::test]
async fn an_unreachable_worker_is_reported_unavailable() {
    // A port nobody listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let backend = HttpDispatcher::new(&base, None, Duration::from_secs(2)).unwrap();
    let m = [Message {
        task_id: resume_agent_core::TaskId::new(),
        attempt: 0,
    }];
    assert!(matches!(
        backend.enqueue(&m, Duration::ZERO).await,
        Err(BackendError::Unavailable(_))
    ));
    assert!(backend.check().await.is_err());
}
