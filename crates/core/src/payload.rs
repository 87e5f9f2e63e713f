//! Task payloads, parsed once into one typed value per kind.
//!
//! - At the edge, [`TaskPayload::parse`] turns a request's `(kind, JSON)`
//!   into a [`TaskPayload`], with every check of the kind (types, limits,
//!   unknown fields, NUL) and an error naming the field (`payload.ms`).
//! - The store keeps [`TaskPayload::to_value`]: exactly the JSON that was
//!   accepted (a file id keeps the text it was written as), so a stored
//!   payload reads back as it was submitted.
//! - The worker's handlers read a stored payload back into the same types
//!   ([`KindPayload::of`]); that is their serde form, the stored format,
//!   and it does not re-check the edge's limits.
//! - With the `openapi` feature the same structs are the payloads' OpenAPI
//!   schemas (the web's document).

use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::task::{
    MAX_JOB_DESCRIPTION_CHARS, MAX_SLEEP_MS, PayloadError, Task, TaskKind, reject_nul,
};

/// The longest `system.fail` message accepted, in characters.
pub const MAX_FAIL_MESSAGE_CHARS: usize = 4096;

/// A file id in a payload: the UUID, and the text it was written as (any
/// form [`Uuid::parse_str`] takes: hyphenated, simple, braced, URN, either
/// case), kept so that the stored payload is the one submitted. Serialised
/// as that text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRef {
    id: Uuid,
    text: String,
}

impl FileRef {
    /// Parses a file id.
    ///
    /// # Errors
    /// When `text` is not a UUID.
    pub fn parse(text: &str) -> Result<Self, uuid::Error> {
        Ok(Self {
            id: Uuid::parse_str(text)?,
            text: text.to_owned(),
        })
    }

    /// The file's id.
    #[must_use]
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// The text it was written as.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl From<Uuid> for FileRef {
    fn from(id: Uuid) -> Self {
        Self {
            id,
            text: id.to_string(),
        }
    }
}

impl fmt::Display for FileRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for FileRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for FileRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// No fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EmptyPayload {}

/// `system.sleep` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SleepPayload {
    /// Milliseconds.
    #[cfg_attr(feature = "openapi", schema(minimum = 0, maximum = 600_000))]
    pub ms: u64,
}

/// `system.fail` payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FailPayload {
    /// The error every attempt reports.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 4096))]
    pub message: Option<String>,
}

/// `resume.parse` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ParsePayload {
    /// An uploaded file of the caller's (`POST /api/files`).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub file_id: FileRef,
}

/// `resume.match` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct MatchPayload {
    /// An uploaded file of the caller's.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
    pub file_id: FileRef,
    /// The job description (plain text).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 20_000, pattern = "\\S")
    )]
    pub job_description: String,
}

/// A task's payload, typed by its kind: what a [`crate::NewTask`] carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskPayload {
    /// `system.noop`: `{}`.
    SystemNoop,
    /// `system.sleep`.
    SystemSleep(SleepPayload),
    /// `system.fail`.
    SystemFail(FailPayload),
    /// `resume.parse`.
    ResumeParse(ParsePayload),
    /// `resume.match`.
    ResumeMatch(MatchPayload),
}

/// Serialises a payload struct. Cannot fail: every field is a string, a
/// number or an option of one, and map keys are field names.
fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_else(|_| Value::Object(Map::new()))
}

impl TaskPayload {
    /// Checks `payload` against `kind` and returns it typed: the edge's
    /// parse of a request, every error naming its field.
    ///
    /// # Errors
    /// A [`PayloadError`] naming the offending field.
    pub fn parse(kind: TaskKind, payload: Value) -> Result<Self, PayloadError> {
        // Before anything else: a NUL in any key or string, however deep, is
        // something PostgreSQL's jsonb cannot hold (SQLite could), so both
        // stores refuse it the same way, here.
        reject_nul(&payload, &mut "payload".to_owned())?;
        let Value::Object(mut map) = payload else {
            return Err(PayloadError::new("payload", "must be a JSON object"));
        };
        let allowed: &[&str] = match kind {
            TaskKind::SystemNoop => &[],
            TaskKind::SystemSleep => &["ms"],
            TaskKind::SystemFail => &["message"],
            TaskKind::ResumeParse => &["file_id"],
            TaskKind::ResumeMatch => &["file_id", "job_description"],
        };
        if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(PayloadError::new(
                format!("payload.{unknown}"),
                "is not a field of this kind",
            ));
        }
        Ok(match kind {
            TaskKind::SystemNoop => TaskPayload::SystemNoop,
            TaskKind::SystemSleep => match map.get("ms") {
                Some(v) => match v.as_u64().filter(|ms| *ms <= MAX_SLEEP_MS) {
                    Some(ms) => TaskPayload::SystemSleep(SleepPayload { ms }),
                    None => {
                        return Err(PayloadError::new(
                            "payload.ms",
                            "must be an integer between 0 and 600000",
                        ));
                    }
                },
                None => return Err(PayloadError::new("payload.ms", "is required")),
            },
            TaskKind::SystemFail => match map.remove("message") {
                Some(Value::String(s)) if s.chars().count() <= MAX_FAIL_MESSAGE_CHARS => {
                    TaskPayload::SystemFail(FailPayload { message: Some(s) })
                }
                Some(_) => {
                    return Err(PayloadError::new(
                        "payload.message",
                        "must be a string of at most 4096 characters",
                    ));
                }
                None => TaskPayload::SystemFail(FailPayload { message: None }),
            },
            TaskKind::ResumeParse | TaskKind::ResumeMatch => {
                let file_id = match map.get("file_id") {
                    Some(Value::String(s)) => FileRef::parse(s).map_err(|_| {
                        PayloadError::new("payload.file_id", "must be a file id (UUID)")
                    })?,
                    Some(_) => {
                        return Err(PayloadError::new(
                            "payload.file_id",
                            "must be a file id (UUID)",
                        ));
                    }
                    None => return Err(PayloadError::new("payload.file_id", "is required")),
                };
                if kind == TaskKind::ResumeParse {
                    TaskPayload::ResumeParse(ParsePayload { file_id })
                } else {
                    match map.remove("job_description") {
                        Some(Value::String(s))
                            if !s.trim().is_empty()
                                && s.chars().count() <= MAX_JOB_DESCRIPTION_CHARS =>
                        {
                            TaskPayload::ResumeMatch(MatchPayload {
                                file_id,
                                job_description: s,
                            })
                        }
                        Some(_) => {
                            return Err(PayloadError::new(
                                "payload.job_description",
                                "must be a non-blank string of at most 20000 characters",
                            ));
                        }
                        None => {
                            return Err(PayloadError::new(
                                "payload.job_description",
                                "is required",
                            ));
                        }
                    }
                }
            }
        })
    }

    /// Its kind.
    #[must_use]
    pub fn kind(&self) -> TaskKind {
        match self {
            TaskPayload::SystemNoop => TaskKind::SystemNoop,
            TaskPayload::SystemSleep(_) => TaskKind::SystemSleep,
            TaskPayload::SystemFail(_) => TaskKind::SystemFail,
            TaskPayload::ResumeParse(_) => TaskKind::ResumeParse,
            TaskPayload::ResumeMatch(_) => TaskKind::ResumeMatch,
        }
    }

    /// The JSON the store keeps (and the API shows): the accepted input.
    #[must_use]
    pub fn to_value(&self) -> Value {
        match self {
            TaskPayload::SystemNoop => json(&EmptyPayload {}),
            TaskPayload::SystemSleep(p) => json(p),
            TaskPayload::SystemFail(p) => json(p),
            TaskPayload::ResumeParse(p) => json(p),
            TaskPayload::ResumeMatch(p) => json(p),
        }
    }

    /// The file the task reads, if its kind takes one.
    #[must_use]
    pub fn file_id(&self) -> Option<Uuid> {
        match self {
            TaskPayload::ResumeParse(p) => Some(p.file_id.id()),
            TaskPayload::ResumeMatch(p) => Some(p.file_id.id()),
            _ => None,
        }
    }

    /// A stored task's payload read back ([`KindPayload::of`] for its kind).
    ///
    /// # Errors
    /// When the kind is not registered or the payload does not read as it.
    pub fn of(task: &Task) -> Result<Self, PayloadError> {
        let kind: TaskKind = task
            .kind
            .parse()
            .map_err(|e: crate::task::UnknownKind| PayloadError::new("kind", e.to_string()))?;
        Ok(match kind {
            TaskKind::SystemNoop => EmptyPayload::of(task)?.into(),
            TaskKind::SystemSleep => SleepPayload::of(task)?.into(),
            TaskKind::SystemFail => FailPayload::of(task)?.into(),
            TaskKind::ResumeParse => ParsePayload::of(task)?.into(),
            TaskKind::ResumeMatch => MatchPayload::of(task)?.into(),
        })
    }
}

/// The payload type of one kind, as the worker's handlers read it.
pub trait KindPayload: DeserializeOwned + Into<TaskPayload> {
    /// The kind whose payload this is.
    const KIND: TaskKind;

    /// Reads a stored task's payload (its serde form: the stored format,
    /// without the edge's limits).
    ///
    /// # Errors
    /// When the task is of another kind or its payload does not read as
    /// this one's.
    fn of(task: &Task) -> Result<Self, PayloadError> {
        if task.kind != Self::KIND.as_str() {
            return Err(PayloadError::new(
                "kind",
                format!("is {:?}, not {}", task.kind, Self::KIND),
            ));
        }
        Self::deserialize(&task.payload).map_err(|e| PayloadError::new("payload", e.to_string()))
    }
}

impl KindPayload for EmptyPayload {
    const KIND: TaskKind = TaskKind::SystemNoop;
}
impl KindPayload for SleepPayload {
    const KIND: TaskKind = TaskKind::SystemSleep;
}
impl KindPayload for FailPayload {
    const KIND: TaskKind = TaskKind::SystemFail;
}
impl KindPayload for ParsePayload {
    const KIND: TaskKind = TaskKind::ResumeParse;
}
impl KindPayload for MatchPayload {
    const KIND: TaskKind = TaskKind::ResumeMatch;
}

impl From<EmptyPayload> for TaskPayload {
    fn from(_: EmptyPayload) -> Self {
        TaskPayload::SystemNoop
    }
}
impl From<SleepPayload> for TaskPayload {
    fn from(p: SleepPayload) -> Self {
        TaskPayload::SystemSleep(p)
    }
}
impl From<FailPayload> for TaskPayload {
    fn from(p: FailPayload) -> Self {
        TaskPayload::SystemFail(p)
    }
}
impl From<ParsePayload> for TaskPayload {
    fn from(p: ParsePayload) -> Self {
        TaskPayload::ResumeParse(p)
    }
}
impl From<MatchPayload> for TaskPayload {
    fn from(p: MatchPayload) -> Self {
        TaskPayload::ResumeMatch(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn task(kind: &str, payload: Value) -> Task {
        let now = chrono::Utc::now();
        Task {
            id: crate::TaskId::new(),
            kind: kind.into(),
            status: crate::TaskStatus::Queued,
            payload,
            result: None,
            error: None,
            attempts: 0,
            max_attempts: 3,
            timeout_secs: 60,
            owner_id: "o".into(),
            created_at: now,
            started_at: None,
            finished_at: None,
            run_after: now,
            cancel_requested: false,
        }
    }

    /// Every accepted payload is stored exactly as submitted and reads back
    /// as the same typed value.
    #[test]
    fn accepted_payloads_round_trip_unchanged() {
        let id = Uuid::now_v7();
        let cases = [
            (TaskKind::SystemNoop, json!({})),
            (TaskKind::SystemSleep, json!({"ms": 0})),
            (TaskKind::SystemSleep, json!({"ms": 600_000})),
            (TaskKind::SystemFail, json!({})),
            (TaskKind::SystemFail, json!({"message": "boom"})),
            (TaskKind::SystemFail, json!({"message": ""})),
            (TaskKind::ResumeParse, json!({"file_id": id.to_string()})),
            (
                TaskKind::ResumeParse,
                json!({"file_id": id.simple().to_string().to_uppercase()}),
            ),
            (
                TaskKind::ResumeParse,
                json!({"file_id": id.urn().to_string()}),
            ),
            (
                TaskKind::ResumeMatch,
                json!({"file_id": id.braced().to_string(), "job_description": " Rust "}),
            ),
        ];
        for (kind, v) in cases {
            let p = TaskPayload::parse(kind, v.clone()).unwrap();
            assert_eq!(p.kind(), kind);
            assert_eq!(p.to_value(), v, "{kind}");
            assert_eq!(kind.validate_payload(v.clone()).unwrap(), v);
            assert_eq!(TaskPayload::of(&task(kind.as_str(), v)).unwrap(), p);
            if matches!(kind, TaskKind::ResumeParse | TaskKind::ResumeMatch) {
                assert_eq!(p.file_id(), Some(id));
            } else {
                assert_eq!(p.file_id(), None);
            }
        }
    }

    #[test]
    fn handlers_read_their_kind_only() {
        let t = task("system.sleep", json!({"ms": 5}));
        assert_eq!(SleepPayload::of(&t).unwrap(), SleepPayload { ms: 5 });
        assert_eq!(FailPayload::of(&t).unwrap_err().field, "kind");
        let t = task("system.sleep", json!({"ms": "5"}));
        assert_eq!(SleepPayload::of(&t).unwrap_err().field, "payload");
        let t = task("resume.parse", json!({"file_id": "nope"}));
        assert!(ParsePayload::of(&t).is_err());
        assert_eq!(
            TaskPayload::of(&task("retired.kind", json!({})))
                .unwrap_err()
                .field,
            "kind"
        );
    }

    #[test]
    fn limits_and_messages() {
        let e = TaskPayload::parse(TaskKind::SystemFail, json!({"message": "é".repeat(4097)}))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "payload.message must be a string of at most 4096 characters"
        );
        assert!(
            TaskPayload::parse(TaskKind::SystemFail, json!({"message": "é".repeat(4096)})).is_ok()
        );
        let e = TaskPayload::parse(TaskKind::SystemFail, json!({"message": null})).unwrap_err();
        assert_eq!(e.field, "payload.message");
        let e = TaskPayload::parse(TaskKind::ResumeParse, json!({"file_id": 7})).unwrap_err();
        assert_eq!(e.to_string(), "payload.file_id must be a file id (UUID)");
        let e = TaskPayload::parse(TaskKind::ResumeParse, json!({"file_id": "x"})).unwrap_err();
        assert_eq!(e.to_string(), "payload.file_id must be a file id (UUID)");
        let e = TaskPayload::parse(TaskKind::ResumeParse, json!({})).unwrap_err();
        assert_eq!(e.to_string(), "payload.file_id is required");
        let id = Uuid::now_v7().to_string();
        let e = TaskPayload::parse(
            TaskKind::ResumeMatch,
            json!({"file_id": id, "job_description": "  "}),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "payload.job_description must be a non-blank string of at most 20000 characters"
        );
        let e = TaskPayload::parse(TaskKind::ResumeMatch, json!({"file_id": id})).unwrap_err();
        assert_eq!(e.to_string(), "payload.job_description is required");
        let e = TaskPayload::parse(TaskKind::ResumeParse, json!({"file_id": id, "extra": 1}))
            .unwrap_err();
        assert_eq!(e.to_string(), "payload.extra is not a field of this kind");
        let e = TaskPayload::parse(TaskKind::SystemSleep, json!(1.5)).unwrap_err();
        assert_eq!(e.to_string(), "payload must be a JSON object");
        let e = TaskPayload::parse(TaskKind::SystemSleep, json!({"ms": 1.0})).unwrap_err();
        assert_eq!(e.field, "payload.ms");
    }
}
