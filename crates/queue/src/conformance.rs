//! The backend conformance suite (feature `testing`): every pair of
//! [`TaskBackend`] and [`TaskSource`] runs all of it against a real backend
//! (an in-memory queue, a real worker endpoint over HTTP, Azurite).
#![allow(clippy::unwrap_used, clippy::missing_panics_doc, missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use resume_agent_core::TaskId;
use tokio::time::Instant;

use crate::{Delivery, Message, TaskBackend, TaskSource};

/// A producer and a consumer wired to the same queue, empty at the start.
pub struct Pair {
    pub backend: Arc<dyn TaskBackend>,
    pub source: Arc<dyn TaskSource>,
    /// How long a delivery stays invisible in this suite's receives.
    pub lease: Duration,
}

fn msgs(n: usize) -> Vec<Message> {
    (0..n)
        .map(|i| Message {
            task_id: TaskId::new(),
            attempt: i32::try_from(i % 3).unwrap(),
        })
        .collect()
}

/// Receives until `want` deliveries arrived or `deadline` passed.
async fn drain(p: &Pair, want: usize, deadline: Duration) -> Vec<Delivery> {
    let end = Instant::now() + deadline;
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < end {
        let batch = p
            .source
            .receive(32, Duration::from_millis(200), p.lease)
            .await
            .unwrap();
        got.extend(batch);
    }
    got
}

/// Runs every case in order.
pub async fn backend_conformance(p: Pair) {
    p.backend.check().await.unwrap();
    delivers_everything_once(&p).await;
    receive_respects_max(&p).await;
    delayed_enqueue_waits(&p).await;
    release_redelivers_after_delay(&p).await;
    dead_letter_removes(&p).await;
}

async fn delivers_everything_once(p: &Pair) {
    let sent = msgs(100);
    for chunk in sent.chunks(7) {
        p.backend.enqueue(chunk, Duration::ZERO).await.unwrap();
    }
    let got = drain(p, sent.len(), Duration::from_secs(30)).await;
    let mut by_id: HashMap<TaskId, Message> = HashMap::new();
    for d in &got {
        assert!(
            by_id.insert(d.message.task_id, d.message).is_none(),
            "delivered twice: {:?}",
            d.message
        );
        assert!(d.dequeue_count >= 1);
    }
    for m in &sent {
        assert_eq!(by_id.get(&m.task_id), Some(m), "lost or altered: {m:?}");
    }
    for d in &got {
        p.source.complete(d).await.unwrap();
    }
    let rest = p
        .source
        .receive(32, Duration::from_millis(300), p.lease)
        .await
        .unwrap();
    assert!(rest.is_empty(), "completed messages came back: {rest:?}");
}

async fn receive_respects_max(p: &Pair) {
    let sent = msgs(10);
    p.backend.enqueue(&sent, Duration::ZERO).await.unwrap();
    let mut first = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while first.is_empty() && Instant::now() < end {
        first = p
            .source
            .receive(3, Duration::from_millis(200), p.lease)
            .await
            .unwrap();
    }
    assert!(
        !first.is_empty() && first.len() <= 3,
        "receive(3) gave {}",
        first.len()
    );
    let mut all = first;
    all.extend(drain(p, sent.len() - all.len(), Duration::from_secs(20)).await);
    assert_eq!(all.len(), sent.len());
    for d in &all {
        p.source.complete(d).await.unwrap();
    }
}

async fn delayed_enqueue_waits(p: &Pair) {
    let m = msgs(1);
    let start = Instant::now();
    p.backend.enqueue(&m, Duration::from_secs(2)).await.unwrap();
    let early = p
        .source
        .receive(32, Duration::from_millis(800), p.lease)
        .await
        .unwrap();
    assert!(
        early.is_empty() || start.elapsed() >= Duration::from_secs(2),
        "delayed message visible early"
    );
    let got = drain(p, 1, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 1, "delayed message never arrived");
    assert!(
        start.elapsed() >= Duration::from_millis(1900),
        "arrived after {:?}",
        start.elapsed()
    );
    p.source.complete(&got[0]).await.unwrap();
}

async fn release_redelivers_after_delay(p: &Pair) {
    let m = msgs(1);
    p.backend.enqueue(&m, Duration::ZERO).await.unwrap();
    let got = drain(p, 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    let released = Instant::now();
    p.source
        .release(&got[0], Duration::from_secs(1))
        .await
        .unwrap();
    let again = drain(p, 1, Duration::from_secs(15)).await;
    assert_eq!(again.len(), 1, "released message never came back");
    assert_eq!(again[0].message.task_id, m[0].task_id);
    assert!(
        released.elapsed() >= Duration::from_millis(900),
        "came back after {:?}",
        released.elapsed()
    );
    p.source.complete(&again[0]).await.unwrap();
}

async fn dead_letter_removes(p: &Pair) {
    let m = msgs(1);
    p.backend.enqueue(&m, Duration::ZERO).await.unwrap();
    let got = drain(p, 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1);
    p.source.dead_letter(&got[0]).await.unwrap();
    let rest = p
        .source
        .receive(32, Duration::from_millis(300), p.lease)
        .await
        .unwrap();
    assert!(rest.is_empty(), "dead-lettered message still in the queue");
}

/// The suite of the store-backed backends (in-process, postgres), whose
/// hand-off is a wake-up: `backend` is the web's side, `wakeups` what the
/// worker waits on.
pub async fn wake_conformance(backend: Arc<dyn TaskBackend>, wakeups: crate::wake::Wakeups) {
    backend.check().await.unwrap();
    // Drain a wake-up left by connecting (the LISTEN side wakes on connect).
    let _ = wakeups.wait(Duration::from_millis(300)).await;
    let one = msgs(1);
    for round in 0..20 {
        backend.enqueue(&one, Duration::ZERO).await.unwrap();
        assert!(
            wakeups.wait(Duration::from_secs(10)).await,
            "hand-off {round} woke nobody"
        );
    }
    // Many hand-offs at once wake the worker (coalesced: once or more).
    let burst = msgs(500);
    let mut calls = Vec::new();
    for chunk in burst.chunks(5) {
        let b = backend.clone();
        let chunk = chunk.to_vec();
        calls.push(tokio::spawn(async move {
            b.enqueue(&chunk, Duration::ZERO).await
        }));
    }
    for c in calls {
        c.await.unwrap().unwrap();
    }
    assert!(
        wakeups.wait(Duration::from_secs(10)).await,
        "burst woke nobody"
    );
    // Nothing handed off: no wake-up.
    while wakeups.wait(Duration::from_millis(300)).await {}
    backend.enqueue(&[], Duration::ZERO).await.unwrap();
    assert!(
        !wakeups.wait(Duration::from_millis(300)).await,
        "an empty hand-off woke the worker"
    );
}
