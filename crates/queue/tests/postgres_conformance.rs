//! The `postgres` backend passes the wake-up suite against a real
//! PostgreSQL server: the web's coalesced NOTIFY wakes a worker's LISTEN,
//! and a listener whose connection is killed reconnects and wakes again.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use resume_agent_queue::conformance::wake_conformance;
use resume_agent_queue::postgres::{PgNotifyBackend, listen};
use resume_agent_queue::wake::Wakeups;
use resume_agent_queue::{Message, TaskBackend};
use tokio_util::sync::CancellationToken;

async fn pool_named(app: &str) -> sqlx::PgPool {
    let url = std::env::var("TEST_DATABASE_URL")
        .expect("TEST_DATABASE_URL is not set: run the tests with scripts/test.sh");
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect_with(options.application_name(app))
        .await
        .unwrap()
}

async fn pool() -> sqlx::PgPool {
    pool_named("ra-queue-test").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_and_listen_pass_the_suite() {
    let pool = pool().await;
    let w = Wakeups::new();
    let stop = CancellationToken::new();
    tokio::spawn(listen(pool.clone(), w.clone(), stop.clone()));
    wake_conformance(PgNotifyBackend::new(pool), w).await;
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listen_connection_is_made_again() {
    let app = format!("ra-listen-{}", uuid::Uuid::new_v4().simple());
    let pool = pool_named(&app).await;
    let w = Wakeups::new();
    let stop = CancellationToken::new();
    tokio::spawn(listen(pool.clone(), w.clone(), stop.clone()));
    assert!(w.wait(Duration::from_secs(10)).await, "no wake on connect");
    // Kill this test's LISTEN connection (only ours: by application name).
    sqlx::query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE application_name = $1 AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    )
    .bind(&app)
    .execute(&pool)
    .await
    .unwrap();
    assert!(
        w.wait(Duration::from_secs(10)).await,
        "no wake on reconnect"
    );
    let backend = PgNotifyBackend::new(pool);
    let m = [Message {
        task_id: resume_agent_core::TaskId::new(),
        attempt: 0,
    }];
    // After the reconnect, hand-offs wake it again.
    let woke = async {
        loop {
            backend.enqueue(&m, Duration::ZERO).await.unwrap();
            if w.wait(Duration::from_millis(500)).await {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(15), woke)
        .await
        .expect("hand-offs never woke the reconnected listener");
    stop.cancel();
}
