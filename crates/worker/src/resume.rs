//! The résumé handlers: `resume.parse` and `resume.match`. Parsing itself
//! lives in `resume-agent-resume` (pure functions); these handlers fetch
//! the file, run the parser in a resource-limited child process
//! ([`crate::parse_child`]), and store the extracted text and the structured
//! parse as blobs beside the file (`files/{id}/text`,
//! `files/{id}/parsed.json`), so a later match reuses the parse.
//!
//! A file that cannot be parsed (corrupt, encrypted, empty, scanned without
//! a text layer, unsupported — or one that crashes the parser or exhausts
//! its memory, CPU or time) is a permanent error: the task fails after one
//! attempt. Storage that cannot be reached is retryable.
//!
//! Results are bounded ([`ResumeSettings::result_max_bytes`],
//! `TASK_RESULT_MAX_BYTES`): the full text lives in its blob only (the
//! result carries a preview of it), and sections, entries and long fields
//! are capped; a shortened result says `"truncated": true`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use resume_agent_core::OwnerId;
use resume_agent_core::blob::BlobError;
use resume_agent_core::file::{derived_key, original_key};
use resume_agent_core::payload::{MatchPayload, ParsePayload};
use resume_agent_core::store::{FileStore, StoreError};
use resume_agent_resume::ParsedResume;
use serde_json::{Value, json};

use crate::handler::{HandlerError, TaskContext, TaskHandler};
use crate::parse_child::{ParseChildError, ParseRunner};

/// Default of `TASK_RESULT_MAX_BYTES`: 1 MiB.
pub const DEFAULT_RESULT_MAX_BYTES: usize = 1024 * 1024;
/// What the child's wall clock leaves of the attempt's timeout, so that the
/// parser's own "killed after N s" (permanent) comes before the runtime's
/// timeout (which would retry the same file).
const WALL_MARGIN: Duration = Duration::from_millis(500);

/// How the résumé handlers run the parser and bound their results.
#[derive(Debug, Clone)]
pub struct ResumeSettings {
    /// Starts the parse child.
    pub parser: Arc<ParseRunner>,
    /// Largest task result in bytes (`TASK_RESULT_MAX_BYTES`).
    pub result_max_bytes: usize,
    /// Parse children alive at once (`PARSE_MAX_CONCURRENCY`): their
    /// address-space limits add up inside the pod's memory limit.
    pub slots: Arc<tokio::sync::Semaphore>,
}

impl ResumeSettings {
    /// Settings with the given runner, result bound and number of parse
    /// children allowed at once (at least one).
    #[must_use]
    pub fn new(parser: ParseRunner, result_max_bytes: usize, max_children: usize) -> Self {
        Self {
            parser: Arc::new(parser),
            result_max_bytes,
            slots: Arc::new(tokio::sync::Semaphore::new(max_children.max(1))),
        }
    }
}

fn child_err(e: ParseChildError) -> HandlerError {
    if e.is_retryable() {
        HandlerError::Retryable(e.to_string())
    } else {
        HandlerError::Permanent(e.to_string())
    }
}

fn store_err(e: StoreError) -> HandlerError {
    match e {
        StoreError::Unavailable(m) => HandlerError::Retryable(format!("database unavailable: {m}")),
        other => HandlerError::Permanent(other.to_string()),
    }
}

fn blob_err(e: BlobError) -> HandlerError {
    match e {
        BlobError::Unavailable(m) => {
            HandlerError::Retryable(format!("blob storage unavailable: {m}"))
        }
        other => HandlerError::Permanent(other.to_string()),
    }
}

/// Parses the task's file `id`, reusing a stored parse when there is one.
async fn parsed_resume(
    files: &dyn FileStore,
    settings: &ResumeSettings,
    ctx: &TaskContext,
    id: uuid::Uuid,
) -> Result<(uuid::Uuid, ParsedResume), HandlerError> {
    let started = Instant::now();
    let timeout = Duration::from_secs(u64::try_from(ctx.task.timeout_secs).unwrap_or(1).max(1));
    let owner =
        OwnerId::parse(&ctx.task.owner_id).map_err(|e| HandlerError::Permanent(e.to_string()))?;
    let meta = files
        .get_file(&owner, id)
        .await
        .map_err(store_err)?
        .ok_or_else(|| HandlerError::Permanent(format!("file {id} not found")))?;
    let cache = derived_key(id, "parsed.json").map_err(blob_err)?;
    if let Some(bytes) = ctx.blobs.get(&cache).await.map_err(blob_err)?
        && let Ok(parsed) = serde_json::from_slice::<ParsedResume>(&bytes)
    {
        return Ok((id, parsed));
    }
    let bytes = ctx
        .blobs
        .get(&original_key(id).map_err(blob_err)?)
        .await
        .map_err(blob_err)?
        .ok_or_else(|| {
            HandlerError::Permanent(format!("the bytes of file {id} are missing from storage"))
        })?;
    // A free parse slot first (held until the child is gone); waiting for
    // one is not the file's fault, so running out of time here is retryable.
    let slot = tokio::select! {
        biased;
        () = ctx.cancel.cancelled() => {
            return Err(HandlerError::Permanent("cancelled".into()));
        }
        slot = settings.slots.clone().acquire_owned() => slot
            .map_err(|_| HandlerError::Retryable("the résumé parser is shutting down".into()))?,
    };
    let wall = timeout
        .saturating_sub(started.elapsed())
        .saturating_sub(WALL_MARGIN);
    if wall.is_zero() {
        return Err(HandlerError::Retryable(
            "no résumé parser was free before the attempt's time ran out".into(),
        ));
    }
    let parsed = settings
        .parser
        .parse(&bytes, &meta.filename, wall, &ctx.cancel)
        .await
        .map_err(child_err)?;
    drop(slot);
    drop(bytes);
    let text_key = derived_key(id, "text").map_err(blob_err)?;
    ctx.blobs
        .put(
            &text_key,
            parsed.text.clone().into_bytes(),
            "text/plain; charset=utf-8",
        )
        .await
        .map_err(blob_err)?;
    let json = serde_json::to_vec(&parsed).map_err(|e| HandlerError::Permanent(e.to_string()))?;
    ctx.blobs
        .put(&cache, json, "application/json")
        .await
        .map_err(blob_err)?;
    Ok((id, parsed))
}

/// `resume.parse` `{"file_id"}` → the structured résumé.
pub struct Parse {
    files: Arc<dyn FileStore>,
    settings: ResumeSettings,
}

impl Parse {
    /// A handler reading file metadata from `files`.
    #[must_use]
    pub fn new(files: Arc<dyn FileStore>, settings: ResumeSettings) -> Self {
        Self { files, settings }
    }
}

#[async_trait]
impl TaskHandler for Parse {
    fn kind(&self) -> &'static str {
        "resume.parse"
    }

    async fn run(&self, ctx: TaskContext) -> Result<Value, HandlerError> {
        let ParsePayload { file_id } = ctx.payload()?;
        let (id, parsed) = parsed_resume(&*self.files, &self.settings, &ctx, file_id.id()).await?;
        parse_result(&parsed, id, self.settings.result_max_bytes)
    }
}

/// `resume.match` `{"file_id", "job_description"}` → score and gaps.
pub struct Match {
    files: Arc<dyn FileStore>,
    settings: ResumeSettings,
}

impl Match {
    /// A handler reading file metadata from `files`.
    #[must_use]
    pub fn new(files: Arc<dyn FileStore>, settings: ResumeSettings) -> Self {
        Self { files, settings }
    }
}

#[async_trait]
impl TaskHandler for Match {
    fn kind(&self) -> &'static str {
        "resume.match"
    }

    async fn run(&self, ctx: TaskContext) -> Result<Value, HandlerError> {
        let MatchPayload {
            file_id,
            job_description: job,
        } = ctx.payload()?;
        let (id, parsed) = parsed_resume(&*self.files, &self.settings, &ctx, file_id.id()).await?;
        let m =
            tokio::task::spawn_blocking(move || resume_agent_resume::match_resume(&parsed, &job))
                .await
                .map_err(|_| HandlerError::Permanent("the matcher crashed".into()))?;
        let mut result =
            serde_json::to_value(&m).map_err(|e| HandlerError::Permanent(e.to_string()))?;
        if let Value::Object(map) = &mut result {
            map.insert("file_id".into(), json!(id));
        }
        bound_lists(result, self.settings.result_max_bytes)
    }
}

/// How much of a parse goes into a task result, from generous to terse.
struct Shape {
    sections: usize,
    section_text: usize,
    entries: usize,
    field: usize,
    long_field: usize,
    text: usize,
}

const SHAPES: [Shape; 3] = [
    Shape {
        sections: 64,
        section_text: 16 * 1024,
        entries: 100,
        field: 512,
        long_field: 8 * 1024,
        text: 16 * 1024,
    },
    Shape {
        sections: 32,
        section_text: 2 * 1024,
        entries: 50,
        field: 256,
        long_field: 1024,
        text: 4 * 1024,
    },
    Shape {
        sections: 16,
        section_text: 0,
        entries: 20,
        field: 128,
        long_field: 256,
        text: 0,
    },
];

/// `s` cut to at most `max` bytes on a character boundary.
fn cut(s: &str, max: usize, truncated: &mut bool) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    *truncated = true;
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn cut_opt(s: Option<&String>, max: usize, truncated: &mut bool) -> Option<String> {
    s.map(|s| cut(s, max, truncated))
}

fn take<T: Clone>(items: &[T], max: usize, truncated: &mut bool) -> Vec<T> {
    if items.len() > max {
        *truncated = true;
    }
    items.iter().take(max).cloned().collect()
}

/// The parse as a task result of at most `max_bytes`: the text itself only
/// as a preview (the whole text is the `text_blob`), lists and long fields
/// capped, shortened further until it fits.
///
/// # Errors
/// Permanent, when even the tersest shape does not fit.
pub fn parse_result(
    parsed: &ParsedResume,
    id: uuid::Uuid,
    max_bytes: usize,
) -> Result<Value, HandlerError> {
    for shape in &SHAPES {
        let mut t = false;
        let mut r = ParsedResume {
            name: cut_opt(parsed.name.as_ref(), shape.field, &mut t),
            email: cut_opt(parsed.email.as_ref(), shape.field, &mut t),
            phone: cut_opt(parsed.phone.as_ref(), shape.field, &mut t),
            links: parsed.links.clone(),
            location: cut_opt(parsed.location.as_ref(), shape.field, &mut t),
            summary: cut_opt(parsed.summary.as_ref(), shape.long_field, &mut t),
            experience: take(&parsed.experience, shape.entries, &mut t),
            education: take(&parsed.education, shape.entries, &mut t),
            skills: take(&parsed.skills, 1000, &mut t),
            projects: take(&parsed.projects, shape.entries, &mut t),
            certifications: take(&parsed.certifications, shape.entries, &mut t),
            sections: take(&parsed.sections, shape.sections, &mut t),
            text: String::new(),
            word_count: parsed.word_count,
        };
        r.links.linkedin = cut_opt(r.links.linkedin.as_ref(), shape.field, &mut t);
        r.links.github = cut_opt(r.links.github.as_ref(), shape.field, &mut t);
        let websites = take(&r.links.websites, 5, &mut t);
        r.links.websites = websites
            .iter()
            .map(|w| cut(w, shape.field, &mut t))
            .collect();
        for e in &mut r.experience {
            e.employer = cut_opt(e.employer.as_ref(), shape.field, &mut t);
            e.title = cut_opt(e.title.as_ref(), shape.field, &mut t);
            e.start = cut_opt(e.start.as_ref(), shape.field, &mut t);
            e.end = cut_opt(e.end.as_ref(), shape.field, &mut t);
            e.description = cut_opt(e.description.as_ref(), shape.long_field, &mut t);
        }
        for e in &mut r.education {
            e.institution = cut_opt(e.institution.as_ref(), shape.field, &mut t);
            e.degree = cut_opt(e.degree.as_ref(), shape.field, &mut t);
            e.start = cut_opt(e.start.as_ref(), shape.field, &mut t);
            e.end = cut_opt(e.end.as_ref(), shape.field, &mut t);
        }
        for p in &mut r.projects {
            p.name = cut(&p.name, shape.field, &mut t);
            p.description = cut_opt(p.description.as_ref(), shape.long_field, &mut t);
            p.url = cut_opt(p.url.as_ref(), shape.field, &mut t);
        }
        for c in &mut r.certifications {
            *c = cut(c, shape.field, &mut t);
        }
        for s in &mut r.sections {
            s.heading = cut(&s.heading, shape.field, &mut t);
            s.text = cut(&s.text, shape.section_text, &mut t);
        }
        let mut text_cut = false;
        r.text = cut(&parsed.text, shape.text, &mut text_cut);
        let mut value =
            serde_json::to_value(&r).map_err(|e| HandlerError::Permanent(e.to_string()))?;
        if let Value::Object(map) = &mut value {
            map.insert("file_id".into(), json!(id));
            map.insert(
                "text_blob".into(),
                json!(format!("files/{}/text", id.simple())),
            );
            map.insert("text_bytes".into(), json!(parsed.text.len()));
            map.insert("text_truncated".into(), json!(text_cut));
            map.insert("truncated".into(), json!(t));
        }
        if json_len(&value) <= max_bytes {
            return Ok(value);
        }
    }
    Err(too_large(max_bytes))
}

fn json_len(value: &Value) -> usize {
    serde_json::to_vec(value).map_or(usize::MAX, |v| v.len())
}

fn too_large(max_bytes: usize) -> HandlerError {
    HandlerError::Permanent(format!(
        "the result is larger than TASK_RESULT_MAX_BYTES ({max_bytes} bytes) even when shortened"
    ))
}

/// A result whose lists are cut (to 200, then 20 items) until it fits.
fn bound_lists(mut value: Value, max_bytes: usize) -> Result<Value, HandlerError> {
    if json_len(&value) <= max_bytes {
        return Ok(value);
    }
    for keep in [200usize, 20] {
        if let Value::Object(map) = &mut value {
            for v in map.values_mut() {
                if let Value::Array(items) = v {
                    items.truncate(keep);
                }
            }
            map.insert("truncated".into(), json!(true));
        }
        if json_len(&value) <= max_bytes {
            return Ok(value);
        }
    }
    Err(too_large(max_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use resume_agent_resume::{Section, SectionKind};

    fn huge() -> ParsedResume {
        let para = "Rust and PostgreSQL ".repeat(200_000);
        ParsedResume {
            name: Some("Jane Doe".into()),
            summary: Some(para.clone()),
            sections: (0..500)
                .map(|i| Section {
                    heading: format!("Section {i}"),
                    kind: SectionKind::Interests,
                    text: para[..para.len().min(50_000 + i)].to_owned(),
                })
                .collect(),
            text: para,
            word_count: 600_000,
            ..ParsedResume::default()
        }
    }

    #[test]
    fn a_huge_parse_becomes_a_bounded_result() {
        let id = uuid::Uuid::nil();
        for max in [DEFAULT_RESULT_MAX_BYTES, 64 * 1024] {
            let v = parse_result(&huge(), id, max).expect("fits");
            assert!(json_len(&v) <= max);
            assert_eq!(v["truncated"], json!(true));
            assert_eq!(v["text_truncated"], json!(true));
            assert_eq!(v["name"], json!("Jane Doe"));
            assert!(
                v["text_blob"]
                    .as_str()
                    .is_some_and(|s| s.ends_with("/text"))
            );
        }
        assert!(parse_result(&huge(), id, 100).is_err());
    }

    #[test]
    fn a_normal_parse_is_whole() {
        let small = ParsedResume {
            name: Some("Jane".into()),
            text: "Jane\nRust\n".into(),
            word_count: 2,
            ..ParsedResume::default()
        };
        let v = parse_result(&small, uuid::Uuid::nil(), DEFAULT_RESULT_MAX_BYTES).expect("fits");
        assert_eq!(v["truncated"], json!(false));
        assert_eq!(v["text"], json!("Jane\nRust\n"));
    }

    #[test]
    fn cut_respects_char_boundaries() {
        let mut t = false;
        assert_eq!(cut("aé", 2, &mut t), "a");
        assert!(t);
        let v = bound_lists(json!({"a": vec!["x"; 10_000]}), 2_000).expect("fits");
        assert_eq!(v["truncated"], json!(true));
    }
}
