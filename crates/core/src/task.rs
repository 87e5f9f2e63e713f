//! The task domain: ids, kinds, statuses and their legal transitions, and
//! the validated shape of a new task (its payload typed in
//! [`crate::payload`]). Nothing here knows about HTTP or SQL.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::payload::TaskPayload;

/// A task's identifier: a UUIDv7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String, format = Uuid))]
#[serde(transparent)]
pub struct TaskId(pub Uuid);

impl TaskId {
    /// A fresh, time-ordered id.
    #[must_use]
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }
}

impl Default for TaskId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for TaskId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// Where a task is in its life.
///
/// ```text
/// queued ──claim──> running ──> succeeded | failed | cancelled
///   │  ^               │
///   │  └──retry/lease──┘
///   └──cancel──> cancelled
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// Waiting to be claimed by a worker.
    Queued,
    /// Claimed by a worker that holds its lease.
    Running,
    /// Finished with a result.
    Succeeded,
    /// Finished with an error after its last attempt.
    Failed,
    /// Stopped at a caller's request.
    Cancelled,
}

impl TaskStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [TaskStatus; 5] = [
        TaskStatus::Queued,
        TaskStatus::Running,
        TaskStatus::Succeeded,
        TaskStatus::Failed,
        TaskStatus::Cancelled,
    ];

    /// The stored and serialised name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
            TaskStatus::Cancelled => "cancelled",
        }
    }

    /// True once nothing can change the task any more.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskStatus::Succeeded | TaskStatus::Failed | TaskStatus::Cancelled
        )
    }

    /// The legal transitions of the lifecycle (documentation and tests; the
    /// stores encode the same rules in their conditional UPDATEs).
    #[must_use]
    pub fn can_become(self, next: TaskStatus) -> bool {
        use TaskStatus::{Cancelled, Failed, Queued, Running, Succeeded};
        matches!(
            (self, next),
            (Queued, Running | Cancelled) | (Running, Queued | Succeeded | Failed | Cancelled)
        )
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown status name.
#[derive(Debug, thiserror::Error)]
#[error("unknown status {0:?}; expected one of queued, running, succeeded, failed, cancelled")]
pub struct UnknownStatus(pub String);

impl FromStr for TaskStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskStatus::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

/// A registered task kind. Kinds are fixed strings that outlive deploys:
/// never rename one, add a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TaskKind {
    /// `system.noop`: succeeds at once with `{}`.
    #[serde(rename = "system.noop")]
    SystemNoop,
    /// `system.sleep`: sleeps `ms` milliseconds, honouring cancellation.
    #[serde(rename = "system.sleep")]
    SystemSleep,
    /// `system.fail`: always fails with `message`.
    #[serde(rename = "system.fail")]
    SystemFail,
    /// `resume.parse`: structure an uploaded résumé (`file_id`).
    #[serde(rename = "resume.parse")]
    ResumeParse,
    /// `resume.match`: score a résumé (`file_id`) against a `job_description`.
    #[serde(rename = "resume.match")]
    ResumeMatch,
}

impl TaskKind {
    /// Every registered kind.
    pub const ALL: [TaskKind; 5] = [
        TaskKind::SystemNoop,
        TaskKind::SystemSleep,
        TaskKind::SystemFail,
        TaskKind::ResumeParse,
        TaskKind::ResumeMatch,
    ];

    /// The fixed name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TaskKind::SystemNoop => "system.noop",
            TaskKind::SystemSleep => "system.sleep",
            TaskKind::SystemFail => "system.fail",
            TaskKind::ResumeParse => "resume.parse",
            TaskKind::ResumeMatch => "resume.match",
        }
    }

    /// Checks `payload` against this kind and returns its normalised form:
    /// the JSON of [`TaskPayload::parse`]'s typed value, which is what the
    /// store keeps.
    ///
    /// # Errors
    /// A [`PayloadError`] naming the offending field.
    pub fn validate_payload(self, payload: Value) -> Result<Value, PayloadError> {
        TaskPayload::parse(self, payload).map(|p| p.to_value())
    }
}

const NUL_REASON: &str = "must not contain the NUL character (\\u0000)";

/// A key as it can be shown in an error: NUL written as `\u0000`.
fn printable_key(k: &str) -> String {
    k.replace('\0', "\\u0000")
}

/// Refuses a NUL character in any string or object key of `v`, naming the
/// first offending field as a dotted path (array items as `[i]`).
///
/// # Errors
/// A [`PayloadError`] naming the field.
pub fn reject_nul(v: &Value, path: &mut String) -> Result<(), PayloadError> {
    match v {
        Value::String(s) if s.contains('\0') => Err(PayloadError::new(path.clone(), NUL_REASON)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                reject_nul(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        Value::Object(map) => {
            for (k, item) in map {
                let len = path.len();
                path.push('.');
                path.push_str(&printable_key(k));
                if k.contains('\0') {
                    return Err(PayloadError::new(path.clone(), NUL_REASON));
                }
                reject_nul(item, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Replaces every NUL in `v`'s strings and keys with U+FFFD, in place;
/// returns whether anything changed. For values the service itself makes
/// from untrusted bytes (a parse result, an error quoting a file), which
/// PostgreSQL's jsonb and text columns would refuse; input from clients is
/// refused instead ([`reject_nul`]).
pub fn scrub_nul(v: &mut Value) -> bool {
    match v {
        Value::String(s) => scrub_nul_str(s),
        Value::Array(items) => items.iter_mut().fold(false, |acc, i| scrub_nul(i) | acc),
        Value::Object(map) => {
            let mut changed = false;
            if map.keys().any(|k| k.contains('\0')) {
                let old = std::mem::take(map);
                for (k, item) in old {
                    map.insert(k.replace('\0', "\u{FFFD}"), item);
                }
                changed = true;
            }
            map.values_mut().fold(changed, |acc, i| scrub_nul(i) | acc)
        }
        _ => false,
    }
}

/// [`scrub_nul`] for one string.
pub fn scrub_nul_str(s: &mut String) -> bool {
    if s.contains('\0') {
        *s = s.replace('\0', "\u{FFFD}");
        true
    } else {
        false
    }
}

/// The longest job description `resume.match` accepts, in characters.
pub const MAX_JOB_DESCRIPTION_CHARS: usize = 20_000;

/// The longest `system.sleep` accepted, in milliseconds.
pub const MAX_SLEEP_MS: u64 = 600_000;

impl fmt::Display for TaskKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A kind name that is not registered.
#[derive(Debug, thiserror::Error)]
#[error("unknown task kind {0:?}")]
pub struct UnknownKind(pub String);

impl FromStr for TaskKind {
    type Err = UnknownKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TaskKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownKind(s.to_owned()))
    }
}

/// A payload that does not fit its kind.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{field} {reason}")]
pub struct PayloadError {
    /// The offending field, as a dotted path (`payload.ms`).
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl PayloadError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Who owns a task: the caller's identity. 1..=256 bytes, no control chars.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OwnerId(String);

impl OwnerId {
    /// Parses an owner id.
    ///
    /// # Errors
    /// When empty, longer than 256 bytes or holding control characters.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if s.is_empty() || s.len() > 256 || s.chars().any(char::is_control) {
            return Err(InvalidValue(
                "owner id must be 1..=256 bytes without control characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OwnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A client-chosen idempotency key: 1..=255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Parses a key.
    ///
    /// # Errors
    /// When empty, longer than 255 characters, or not visible ASCII.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| b.is_ascii_graphic() || b == b' ') {
            return Err(InvalidValue(
                "Idempotency-Key must be 1..=255 visible ASCII characters",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The key as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A value rejected at the edge, with a message fit for the caller.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub &'static str);

/// Retry budget: 1..=25 attempts.
pub const MAX_ATTEMPTS_RANGE: std::ops::RangeInclusive<i32> = 1..=25;
/// Per-attempt timeout: 1..=3600 seconds.
pub const TIMEOUT_SECS_RANGE: std::ops::RangeInclusive<i32> = 1..=3600;
/// Default attempts.
pub const DEFAULT_MAX_ATTEMPTS: i32 = 3;
/// Default per-attempt timeout.
pub const DEFAULT_TIMEOUT_SECS: i32 = 120;

/// A validated request to create a task.
#[derive(Debug, Clone)]
pub struct NewTask {
    /// Fresh id (UUIDv7).
    pub id: TaskId,
    /// Owner.
    pub owner: OwnerId,
    /// Payload, typed by the kind it names (parsed at the edge with
    /// [`TaskPayload::parse`]); stored as [`TaskPayload::to_value`].
    pub payload: TaskPayload,
    /// 1..=25.
    pub max_attempts: i32,
    /// 1..=3600.
    pub timeout_secs: i32,
    /// Optional idempotency key.
    pub idempotency_key: Option<IdempotencyKey>,
}

impl NewTask {
    /// Its kind (the payload's).
    #[must_use]
    pub fn kind(&self) -> TaskKind {
        self.payload.kind()
    }
}

/// A task as stored and as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01937a52-7c1e-7d3a-9a5e-4f3c2b1a0d9e", "kind": "system.sleep", "status": "succeeded",
    "payload": {"ms": 250}, "result": {"slept_ms": 250}, "error": null, "attempts": 1,
    "max_attempts": 3, "timeout_secs": 120, "owner_id": "dev-user-1",
    "created_at": "2026-11-26T05:00:00.000000Z", "started_at": "2026-11-26T05:00:00.004000Z",
    "finished_at": "2026-11-26T05:00:00.255000Z", "run_after": "2026-11-26T05:00:00.000000Z",
    "cancel_requested": false
})))]
pub struct Task {
    /// Id.
    pub id: TaskId,
    /// Kind name (kept as text so rows of retired kinds still read).
    #[cfg_attr(feature = "openapi", schema(example = "system.noop"))]
    pub kind: String,
    /// Status.
    pub status: TaskStatus,
    /// Payload.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub payload: Value,
    /// Result, once `succeeded`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub result: Option<Value>,
    /// The latest attempt's error.
    pub error: Option<String>,
    /// Attempts started so far.
    pub attempts: i32,
    /// Attempt budget.
    pub max_attempts: i32,
    /// Per-attempt timeout.
    pub timeout_secs: i32,
    /// Owner.
    pub owner_id: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Start of the latest attempt.
    pub started_at: Option<DateTime<Utc>>,
    /// When a terminal status was reached.
    pub finished_at: Option<DateTime<Utc>>,
    /// Not claimable before this time (retry backoff).
    pub run_after: DateTime<Utc>,
    /// A cancellation was requested while running.
    pub cancel_requested: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn transitions_follow_the_lifecycle() {
        use TaskStatus::*;
        assert!(Queued.can_become(Running));
        assert!(Queued.can_become(Cancelled));
        assert!(Running.can_become(Queued));
        assert!(!Queued.can_become(Succeeded));
        for t in [Succeeded, Failed, Cancelled] {
            assert!(t.is_terminal());
            for n in TaskStatus::ALL {
                assert!(!t.can_become(n), "{t} -> {n}");
            }
        }
    }

    #[test]
    fn payloads_are_checked_per_kind() {
        let sleep = TaskKind::SystemSleep;
        assert!(sleep.validate_payload(json!({"ms": 10})).is_ok());
        let e = sleep.validate_payload(json!({"ms": -1})).unwrap_err();
        assert_eq!(e.field, "payload.ms");
        let e = sleep.validate_payload(json!({})).unwrap_err();
        assert_eq!(e.field, "payload.ms");
        let e = sleep.validate_payload(json!({"ms": 600_001})).unwrap_err();
        assert_eq!(e.field, "payload.ms");
        let e = TaskKind::SystemNoop
            .validate_payload(json!({"x": 1}))
            .unwrap_err();
        assert_eq!(e.field, "payload.x");
        assert!(TaskKind::SystemNoop.validate_payload(json!([])).is_err());
        assert!(
            TaskKind::SystemFail
                .validate_payload(json!({"message": 3}))
                .is_err()
        );
    }

    #[test]
    fn nul_is_refused_anywhere_and_named() {
        let fail = TaskKind::SystemFail;
        let e = fail
            .validate_payload(json!({"message": "a\u{0}b"}))
            .unwrap_err();
        assert_eq!(e.field, "payload.message");
        let e = fail.validate_payload(json!({"x\u{0}": 1})).unwrap_err();
        assert_eq!(e.field, "payload.x\\u0000");
        let mut path = "payload".to_owned();
        let e = reject_nul(&json!({"a": [1, {"b": "\u{0}"}]}), &mut path).unwrap_err();
        assert_eq!(e.field, "payload.a[1].b");
        let mut path = "payload".to_owned();
        let e = reject_nul(&json!({"a": {"k\u{0}": 1}}), &mut path).unwrap_err();
        assert_eq!(e.field, "payload.a.k\\u0000");
        let mut path = "payload".to_owned();
        assert!(reject_nul(&json!({"a": ["ok", {"b": "fine"}]}), &mut path).is_ok());
        assert!(IdempotencyKey::parse("a\u{0}b").is_err());
    }

    #[test]
    fn service_made_values_are_scrubbed_of_nul() {
        let mut v = json!({"text": "a\u{0}b", "k\u{0}": [1, "\u{0}"], "ok": "fine"});
        assert!(scrub_nul(&mut v));
        assert_eq!(
            v,
            json!({"text": "a\u{FFFD}b", "k\u{FFFD}": [1, "\u{FFFD}"], "ok": "fine"})
        );
        assert!(!scrub_nul(&mut v));
        let mut path = "result".to_owned();
        assert!(reject_nul(&v, &mut path).is_ok());
    }

    #[test]
    fn kinds_and_statuses_round_trip() {
        for k in TaskKind::ALL {
            assert_eq!(k.as_str().parse::<TaskKind>().unwrap(), k);
        }
        for s in TaskStatus::ALL {
            assert_eq!(s.as_str().parse::<TaskStatus>().unwrap(), s);
        }
        assert!("system.nope".parse::<TaskKind>().is_err());
    }

    #[test]
    fn edge_values_are_parsed() {
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(255)).is_ok());
        assert!(IdempotencyKey::parse("a\nb").is_err());
        assert!(OwnerId::parse("").is_err());
        assert!(OwnerId::parse("dev-user-1").is_ok());
    }
}
