//! The Azure Queue backend against a real Azurite (started by
//! `scripts/test.sh`, which exports `TEST_AZURE_CONNECTION_STRING`): the
//! backend conformance suite, plus what only this backend does (new pop
//! receipts on extend, the poison queue, unreachable storage). Every test
//! uses a queue of its own, so they run in parallel on one Azurite.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use resume_agent_azure::StorageAccount;
use resume_agent_core::TaskId;
use resume_agent_core::config::AzureQueueConfig;
use resume_agent_core::secret::Secret;
use resume_agent_queue::azure_queue::AzureQueue;
use resume_agent_queue::conformance::{Pair, backend_conformance};
use resume_agent_queue::{BackendError, Message, Receipt, TaskBackend, TaskSource};
use tokio::time::Instant;

fn connection_string() -> Secret {
    Secret::new(std::env::var("TEST_AZURE_CONNECTION_STRING").expect(
        "TEST_AZURE_CONNECTION_STRING is not set: run the tests with scripts/test.sh, which starts Azurite",
    ))
}

fn fast() -> AzureQueueConfig {
    AzureQueueConfig {
        poll_min: Duration::from_millis(50),
        poll_max: Duration::from_millis(400),
        ..AzureQueueConfig::default()
    }
}

async fn queue(cfg: AzureQueueConfig) -> Arc<AzureQueue> {
    let account = StorageAccount::from_connection_string(&connection_string()).unwrap();
    let name = format!("t-{}", &uuid::Uuid::new_v4().simple().to_string()[..20]);
    // A generous call timeout: these tests are about semantics, and one
    // Azurite serves the whole parallel suite on a 2-core machine.
    AzureQueue::open(account, &name, cfg, Duration::from_secs(30))
        .await
        .unwrap()
}

async fn receive_one(
    q: &AzureQueue,
    lease: Duration,
    within: Duration,
) -> resume_agent_queue::Delivery {
    let end = Instant::now() + within;
    loop {
        let mut got = q
            .receive(1, Duration::from_millis(200), lease)
            .await
            .unwrap();
        if let Some(d) = got.pop() {
            return d;
        }
        assert!(Instant::now() < end, "nothing received within {within:?}");
    }
}

fn msg() -> Message {
    Message {
        task_id: TaskId::new(),
        attempt: 0,
    }
}

#[tokio::test]
async fn azure_queue_passes_the_backend_conformance_suite() {
    let q = queue(fast()).await;
    backend_conformance(Pair {
        backend: q.clone(),
        source: q,
        lease: Duration::from_secs(30),
    })
    .await;
}

#[tokio::test]
async fn extend_keeps_a_message_invisible_and_hands_out_a_new_pop_receipt() {
    let q = queue(fast()).await;
    q.enqueue(&[msg()], Duration::ZERO).await.unwrap();
    let mut d = receive_one(&q, Duration::from_secs(2), Duration::from_secs(10)).await;
    let old = d.receipt.clone();
    q.extend(&mut d, Duration::from_secs(30)).await.unwrap();
    assert_ne!(
        d.receipt, old,
        "update-message must return a new pop receipt"
    );
    assert!(matches!(d.receipt, Receipt::Queue { .. }));
    // Past the first lease (2 s) it is still invisible: extended to 30 s
    // (a wide margin, so a slow receive on a loaded machine cannot reach it).
    let again = q
        .receive(32, Duration::from_millis(3000), Duration::from_secs(30))
        .await
        .unwrap();
    assert!(
        again.is_empty(),
        "visible again before the extended lease ended"
    );
    // The old receipt is stale; the newest one deletes.
    let mut stale = d.clone();
    stale.receipt = old;
    assert!(
        q.release(&stale, Duration::ZERO).await.is_err(),
        "a stale pop receipt was accepted"
    );
    q.complete(&d).await.unwrap();
    assert_eq!(q.depth().await, Some(0));
}

#[tokio::test]
async fn dead_letter_moves_the_message_to_the_poison_queue() {
    let q = queue(fast()).await;
    let m = msg();
    q.enqueue(&[m], Duration::ZERO).await.unwrap();
    let d = receive_one(&q, Duration::from_secs(30), Duration::from_secs(10)).await;
    q.dead_letter(&d).await.unwrap();
    let poisoned = q.peek(true, 32).await.unwrap();
    assert_eq!(
        poisoned,
        vec![format!(r#"{{"task_id":"{}","attempt":0}}"#, m.task_id)]
    );
    assert_eq!(q.poison_depth().await, Some(1));
    assert!(q.peek(false, 32).await.unwrap().is_empty());
}

#[tokio::test]
async fn release_carries_the_new_attempt_and_counts_the_dequeue() {
    let q = queue(fast()).await;
    let m = msg();
    q.enqueue(&[m], Duration::ZERO).await.unwrap();
    let mut d = receive_one(&q, Duration::from_secs(30), Duration::from_secs(10)).await;
    d.message.attempt = 1;
    q.release(&d, Duration::ZERO).await.unwrap();
    let again = receive_one(&q, Duration::from_secs(30), Duration::from_secs(10)).await;
    assert_eq!(
        again.message,
        Message {
            task_id: m.task_id,
            attempt: 1
        }
    );
    assert_eq!(again.dequeue_count, 2);
    q.complete(&again).await.unwrap();
}

#[tokio::test]
async fn an_empty_receive_returns_within_its_wait_and_polling_backs_off() {
    let q = queue(AzureQueueConfig {
        poll_min: Duration::from_millis(100),
        poll_max: Duration::from_millis(4000),
        ..AzureQueueConfig::default()
    })
    .await;
    for _ in 0..8 {
        let start = Instant::now();
        let got = q
            .receive(32, Duration::from_millis(300), Duration::from_secs(30))
            .await
            .unwrap();
        assert!(got.is_empty());
        assert!(
            // Well under the 4 s ceiling: the wait bounds the call, not the
            // pause (with room for a slow storage call on a loaded machine).
            start.elapsed() < Duration::from_millis(300) + Duration::from_millis(2500),
            "an empty receive took {:?}",
            start.elapsed()
        );
    }
    // Snaps back: a message sent now is received promptly once the pause ends.
    q.enqueue(&[msg()], Duration::ZERO).await.unwrap();
    let start = Instant::now();
    receive_one(&q, Duration::from_secs(30), Duration::from_secs(5)).await;
    assert!(
        start.elapsed() <= Duration::from_millis(4000 + 2500),
        "took {:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn unreachable_storage_is_unavailable_and_never_shows_the_sas() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    let cs = Secret::new(format!(
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={};QueueEndpoint=http://127.0.0.1:{port}/devstoreaccount1;BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1",
        resume_agent_azure::connection::DEV_KEY
    ));
    let account = StorageAccount::from_connection_string(&cs).unwrap();
    let q = AzureQueue::new(account, "unreachable", fast(), Duration::from_secs(2)).unwrap();
    let start = Instant::now();
    for err in [
        q.check().await.unwrap_err(),
        q.enqueue(&[msg()], Duration::ZERO).await.unwrap_err(),
        q.receive(1, Duration::from_millis(100), Duration::from_secs(5))
            .await
            .unwrap_err(),
    ] {
        let BackendError::Unavailable(text) = &err else {
            panic!("expected Unavailable, got {err:?}");
        };
        assert!(
            !text.contains("sig=") || text.contains("sig=[redacted]"),
            "{text}"
        );
        assert!(
            !text.contains(resume_agent_azure::connection::DEV_KEY),
            "{text}"
        );
    }
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
    assert!(!format!("{q:?}").contains("sig="));
}
