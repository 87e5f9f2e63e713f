//! Where the worker side of the stores gets its time: claims (`run_after`
//! due, lease deadlines), finishes (retry backoff, `finished_at`), the
//! heartbeat, lease recovery and retention.
//!
//! In production a [`Clock`] is the real one: PostgreSQL statements use the
//! server's `now()` (so every replica agrees on one clock) and the embedded
//! store uses the system clock. A test stubs it ([`Clock::stubbed`]) and
//! moves it on by hand ([`Clock::advance`]), so a 30 s lease expires, a
//! backoff of minutes passes and a retention of days elapses in
//! milliseconds, with the production settings and the real stores. This is
//! River's `TimeGenerator` stub: the statement reads
//! `COALESCE($n::timestamptz, now())`, bound to `None` unless stubbed.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// The real clock, or a stubbed instant shared by every clone.
#[derive(Clone, Default)]
pub struct Clock {
    stub: Option<Arc<Mutex<DateTime<Utc>>>>,
}

impl Clock {
    /// The real clock (the database's `now()` for PostgreSQL).
    #[must_use]
    pub fn real() -> Self {
        Self::default()
    }

    /// A clock standing still at `at` until [`Clock::advance`]d (tests).
    /// PostgreSQL stamps new rows (`created_at`, `run_after`) with its own
    /// `now()` on insert, so a test starts the stub a little ahead of the
    /// real time ([`Clock::stubbed_ahead`]) for new tasks to be due on it.
    #[must_use]
    pub fn stubbed(at: DateTime<Utc>) -> Self {
        Self {
            stub: Some(Arc::new(Mutex::new(at))),
        }
    }

    /// A stubbed clock a minute ahead of the system clock: tasks inserted
    /// within the next minute of real time are due on it.
    #[must_use]
    pub fn stubbed_ahead() -> Self {
        Self::stubbed(Utc::now() + chrono::Duration::minutes(1))
    }

    /// The stubbed instant, or `None` for the real clock (bound into
    /// statements as `COALESCE($n::timestamptz, now())`).
    #[must_use]
    pub fn stub(&self) -> Option<DateTime<Utc>> {
        self.stub
            .as_ref()
            .map(|m| *m.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Now: the stubbed instant, else the system clock.
    #[must_use]
    pub fn now(&self) -> DateTime<Utc> {
        self.stub().unwrap_or_else(Utc::now)
    }

    /// Moves a stubbed clock on by `by`; the real clock cannot be moved, and
    /// this does nothing to it.
    pub fn advance(&self, by: Duration) {
        if let Some(m) = &self.stub {
            let mut at = m.lock().unwrap_or_else(PoisonError::into_inner);
            *at += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.stub() {
            None => f.write_str("Clock::real"),
            Some(at) => write!(f, "Clock::stubbed({at})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stubbed_clock_stands_still_until_advanced_and_clones_share_it() {
        let at = Utc::now() - chrono::Duration::days(3);
        let c = Clock::stubbed(at);
        let twin = c.clone();
        assert_eq!(c.now(), at);
        twin.advance(Duration::from_secs(90));
        assert_eq!(c.now(), at + chrono::Duration::seconds(90));
        assert_eq!(c.stub(), Some(c.now()));
    }

    #[test]
    fn the_real_clock_has_no_stub_and_ignores_advance() {
        let c = Clock::real();
        c.advance(Duration::from_secs(3600));
        assert_eq!(c.stub(), None);
        let drift = (c.now() - Utc::now()).num_seconds().abs();
        assert!(drift < 5, "the real clock follows the system clock");
    }
}
