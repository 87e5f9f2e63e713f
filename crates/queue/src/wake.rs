//! Wake-ups for workers that take their work from the store.
//!
//! A store-backed worker (in-process, postgres) claims due tasks straight
//! from the store whenever it has free slots. A backend's hand-off is then
//! only a *wake-up*: it shortens the wait of an idle worker, and losing one
//! costs at most the worker's poll interval.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::{BackendError, Message, TaskBackend};

/// A cloneable wake-up signal. A wake while nobody waits is kept (one), so
/// a worker that was busy claiming when work arrived looks again at once.
#[derive(Debug, Clone, Default)]
pub struct Wakeups {
    notify: Arc<Notify>,
    count: Arc<AtomicU64>,
}

impl Wakeups {
    /// A new signal.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Wakes the waiting worker (or the next one to wait).
    pub fn wake(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
        self.notify.notify_one();
    }

    /// Waits for a wake-up or `max`, whichever comes first; true on a wake-up.
    pub async fn wait(&self, max: Duration) -> bool {
        tokio::time::timeout(max, self.notify.notified())
            .await
            .is_ok()
    }

    /// Wake-ups so far (tests and metrics).
    #[must_use]
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// A backend whose hand-off is a local wake-up: `serve` (web and worker in
/// one process) and the worker's own view of a store-backed backend.
#[derive(Debug, Clone)]
pub struct WakeBackend {
    name: &'static str,
    wakeups: Wakeups,
}

impl WakeBackend {
    /// Hand-offs under `name` (the metrics label) wake `wakeups`.
    #[must_use]
    pub fn new(name: &'static str, wakeups: Wakeups) -> Self {
        Self { name, wakeups }
    }
}

#[async_trait]
impl TaskBackend for WakeBackend {
    fn name(&self) -> &'static str {
        self.name
    }

    async fn enqueue(&self, messages: &[Message], _delay: Duration) -> Result<(), BackendError> {
        if !messages.is_empty() {
            self.wakeups.wake();
        }
        Ok(())
    }

    async fn check(&self) -> Result<(), BackendError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wake_before_the_wait_is_kept() {
        let w = Wakeups::new();
        w.wake();
        assert!(w.wait(Duration::from_secs(5)).await);
        assert!(!w.wait(Duration::from_millis(20)).await, "kept only once");
        assert_eq!(w.count(), 1);
    }
}
