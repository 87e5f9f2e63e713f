//! Types of the operator's console methods ([`super::ConsoleStore`]): who a
//! read covers ([`Scope`]), retry outcomes and filters, attempt history,
//! the finished-per-interval series and the per-backend queue counts.
//!
//! Every query behind these types is bounded and runs on an index:
//! attempts on `task_attempts_task_idx`, the series on
//! `tasks_owner_finished_idx` / `tasks_finished_idx` (a range of recent
//! finishes, never the whole table), the queue counts on the partial
//! queued/running indexes, bulk retry on the finished indexes with a LIMIT.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::task::{OwnerId, Task, TaskKind, TaskStatus};

/// Whose tasks a console read or action covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// One owner's tasks (every ordinary caller).
    Owner(OwnerId),
    /// Every owner's (a token carrying the configured admin role).
    All,
}

impl Scope {
    /// The owner filter, `None` for [`Scope::All`].
    #[must_use]
    pub fn owner(&self) -> Option<&str> {
        match self {
            Scope::Owner(o) => Some(o.as_str()),
            Scope::All => None,
        }
    }
}

/// Result of [`super::ConsoleStore::retry_task`].
#[derive(Debug, Clone)]
pub enum RetryOutcome {
    /// It was `failed` or `cancelled` and is `queued` again with a fresh budget.
    Retried(Task),
    /// It is in another status (409).
    NotRetryable(Task),
    /// Unknown, or outside the scope (404).
    NotFound,
}

/// Which finished tasks a bulk retry re-queues.
#[derive(Debug, Clone)]
pub struct RetryFilter {
    /// `failed` and/or `cancelled` (anything else is ignored).
    pub statuses: Vec<TaskStatus>,
    /// Only this kind.
    pub kind: Option<TaskKind>,
    /// Finished at or after.
    pub finished_after: Option<DateTime<Utc>>,
    /// Finished before.
    pub finished_before: Option<DateTime<Utc>>,
    /// At most this many per call (the web bounds it to 1..=1000).
    pub limit: u32,
}

/// How one attempt ended (`running` for the one in progress).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// In progress (synthesized from the task row).
    Running,
    /// Finished with a result.
    Succeeded,
    /// Failed, no attempts left (or a permanent error).
    Failed,
    /// Failed and was retried.
    Retried,
    /// Stopped at a caller's request.
    Cancelled,
    /// Handed back unfinished at shutdown (not counted as spent).
    HandedBack,
    /// Its worker stopped; the lease ran out.
    LeaseExpired,
}

impl AttemptOutcome {
    /// Parses the stored name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => Self::Running,
            "succeeded" => Self::Succeeded,
            "failed" => Self::Failed,
            "retried" => Self::Retried,
            "cancelled" => Self::Cancelled,
            "handed_back" => Self::HandedBack,
            "lease_expired" => Self::LeaseExpired,
            _ => return None,
        })
    }
}

/// One attempt of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Attempt {
    /// Attempt number within its budget (numbers restart after a retry).
    pub attempt: i32,
    /// The worker that ran it.
    pub worker: Option<String>,
    /// When it started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended (null while running).
    pub finished_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// Its error, if any.
    pub error: Option<String>,
}

/// Finished tasks of one interval, by outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SeriesPoint {
    /// Start of the interval.
    pub start: DateTime<Utc>,
    /// Succeeded in it.
    pub succeeded: i64,
    /// Failed in it.
    pub failed: i64,
    /// Cancelled in it.
    pub cancelled: i64,
}

/// Counts per status of one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KindStats {
    /// The kind.
    pub kind: String,
    /// Queued.
    pub queued: i64,
    /// Running.
    pub running: i64,
    /// Succeeded.
    pub succeeded: i64,
    /// Failed.
    pub failed: i64,
    /// Cancelled.
    pub cancelled: i64,
}

impl KindStats {
    pub(crate) fn new(kind: String) -> Self {
        Self {
            kind,
            queued: 0,
            running: 0,
            succeeded: 0,
            failed: 0,
            cancelled: 0,
        }
    }

    pub(crate) fn add(&mut self, status: &str, n: i64) {
        match status {
            "queued" => self.queued += n,
            "running" => self.running += n,
            "succeeded" => self.succeeded += n,
            "failed" => self.failed += n,
            "cancelled" => self.cancelled += n,
            _ => {}
        }
    }
}

/// Queued and running tasks last handed to one backend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackendQueue {
    /// `in-process`, `postgres`, `azure-queue`; null for tasks not recorded
    /// (rows older than migration 0005).
    pub backend: Option<String>,
    /// Queued.
    pub queued: i64,
    /// Running.
    pub running: i64,
}

/// Groups `(key, status, n)` rows into per-key counts, sorted by key.
pub(crate) fn group_kinds(rows: Vec<(String, String, i64)>) -> Vec<KindStats> {
    let mut map: std::collections::BTreeMap<String, KindStats> = std::collections::BTreeMap::new();
    for (kind, status, n) in rows {
        map.entry(kind.clone())
            .or_insert_with(|| KindStats::new(kind))
            .add(&status, n);
    }
    map.into_values().collect()
}

/// Groups `(backend, status, n)` rows into per-backend counts.
pub(crate) fn group_backends(rows: Vec<(Option<String>, String, i64)>) -> Vec<BackendQueue> {
    let mut out: Vec<BackendQueue> = Vec::new();
    for (backend, status, n) in rows {
        let i = if let Some(i) = out.iter().position(|b| b.backend == backend) {
            i
        } else {
            out.push(BackendQueue {
                backend,
                queued: 0,
                running: 0,
            });
            out.len() - 1
        };
        match status.as_str() {
            "queued" => out[i].queued += n,
            "running" => out[i].running += n,
            _ => {}
        }
    }
    out.sort_by(|a, b| a.backend.cmp(&b.backend));
    out
}

/// Fills the buckets of `[since, until)` (every interval present, zeros
/// included) from `(bucket number, status, n)` rows, where the bucket number
/// is `floor(epoch seconds / interval)`.
pub(crate) fn fill_series(
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    interval_secs: i64,
    rows: &[(i64, String, i64)],
) -> Vec<SeriesPoint> {
    let interval = interval_secs.max(1);
    let first = since.timestamp().div_euclid(interval);
    let last = until.timestamp().div_euclid(interval);
    let mut out: Vec<SeriesPoint> = (first..=last)
        .filter_map(|b| {
            DateTime::from_timestamp(b * interval, 0).map(|start| SeriesPoint {
                start,
                succeeded: 0,
                failed: 0,
                cancelled: 0,
            })
        })
        .collect();
    for (b, status, n) in rows {
        let Ok(i) = usize::try_from(b - first) else {
            continue;
        };
        if let Some(p) = out.get_mut(i) {
            match status.as_str() {
                "succeeded" => p.succeeded += n,
                "failed" => p.failed += n,
                "cancelled" => p.cancelled += n,
                _ => {}
            }
        }
    }
    out
}

/// The statuses of a retry filter as stored names (only the retryable ones).
pub(crate) fn retry_statuses(f: &RetryFilter) -> Vec<&'static str> {
    let mut v: Vec<&'static str> = f
        .statuses
        .iter()
        .filter(|s| matches!(s, TaskStatus::Failed | TaskStatus::Cancelled))
        .map(|s| s.as_str())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_has_every_bucket_and_sums_by_outcome() {
        let since = DateTime::from_timestamp(600, 0).unwrap_or_default();
        let until = DateTime::from_timestamp(839, 0).unwrap_or_default();
        let rows = vec![
            (10, "succeeded".to_owned(), 2),
            (10, "failed".to_owned(), 1),
            (13, "cancelled".to_owned(), 4),
            (99, "succeeded".to_owned(), 7),
        ];
        let s = fill_series(since, until, 60, &rows);
        assert_eq!(s.len(), 4);
        assert_eq!(s[0].start.timestamp(), 600);
        assert_eq!((s[0].succeeded, s[0].failed), (2, 1));
        assert_eq!(s[3].cancelled, 4);
        assert_eq!(s.iter().map(|p| p.succeeded).sum::<i64>(), 2);
    }
}
