//! The résumé handlers: `resume.parse` and `resume.match`. Parsing itself
//! lives in `resume-agent-resume` (pure functions); these handlers fetch
//! the file, run the CPU-bound work off the async threads, and store the
//! extracted text and the structured parse as blobs beside the file
//! (`files/{id}/text`, `files/{id}/parsed.json`), so a later match reuses
//! the parse.
//!
//! A file that cannot be parsed (corrupt, encrypted, empty, scanned without
//! a text layer, unsupported) is a permanent error: the task fails after one
//! attempt. Storage that cannot be reached is retryable.

use std::sync::Arc;

use async_trait::async_trait;
use resume_agent_core::blob::BlobError;
use resume_agent_core::file::{derived_key, original_key};
use resume_agent_core::store::{StoreError, TaskStore};
use resume_agent_core::{OwnerId, TaskKind};
use resume_agent_resume::ParsedResume;
use serde_json::{Value, json};

use crate::handler::{HandlerError, TaskContext, TaskHandler};

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

/// Parses the task's file, reusing a stored parse when there is one.
async fn parsed_resume(
    store: &dyn TaskStore,
    ctx: &TaskContext,
    kind: TaskKind,
) -> Result<(uuid::Uuid, ParsedResume), HandlerError> {
    let id = kind.file_id(&ctx.task.payload).ok_or_else(|| {
        HandlerError::Permanent("payload.file_id is missing or not a UUID".into())
    })?;
    let owner =
        OwnerId::parse(&ctx.task.owner_id).map_err(|e| HandlerError::Permanent(e.to_string()))?;
    let meta = store
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
    let filename = meta.filename.clone();
    let parsed = tokio::task::spawn_blocking(move || {
        resume_agent_resume::parse_file(&bytes, Some(&filename))
    })
    .await
    .map_err(|_| HandlerError::Permanent("the résumé parser crashed on this file".into()))?
    .map_err(|e| HandlerError::Permanent(e.to_string()))?;
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
    store: Arc<dyn TaskStore>,
}

impl Parse {
    /// A handler reading file metadata from `store`.
    #[must_use]
    pub fn new(store: Arc<dyn TaskStore>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl TaskHandler for Parse {
    fn kind(&self) -> &'static str {
        "resume.parse"
    }

    async fn run(&self, ctx: TaskContext) -> Result<Value, HandlerError> {
        let (id, parsed) = parsed_resume(&*self.store, &ctx, TaskKind::ResumeParse).await?;
        let mut result =
            serde_json::to_value(&parsed).map_err(|e| HandlerError::Permanent(e.to_string()))?;
        if let Value::Object(map) = &mut result {
            map.insert("file_id".into(), json!(id));
            map.insert(
                "text_blob".into(),
                json!(format!("files/{}/text", id.simple())),
            );
        }
        Ok(result)
    }
}

/// `resume.match` `{"file_id", "job_description"}` → score and gaps.
pub struct Match {
    store: Arc<dyn TaskStore>,
}

impl Match {
    /// A handler reading file metadata from `store`.
    #[must_use]
    pub fn new(store: Arc<dyn TaskStore>) -> Self {
        Self { store }
    }
}

#[async_trait]
impl TaskHandler for Match {
    fn kind(&self) -> &'static str {
        "resume.match"
    }

    async fn run(&self, ctx: TaskContext) -> Result<Value, HandlerError> {
        let job = ctx
            .task
            .payload
            .get("job_description")
            .and_then(Value::as_str)
            .ok_or_else(|| HandlerError::Permanent("payload.job_description is missing".into()))?
            .to_owned();
        let (id, parsed) = parsed_resume(&*self.store, &ctx, TaskKind::ResumeMatch).await?;
        let m =
            tokio::task::spawn_blocking(move || resume_agent_resume::match_resume(&parsed, &job))
                .await
                .map_err(|_| HandlerError::Permanent("the matcher crashed".into()))?;
        let mut result =
            serde_json::to_value(&m).map_err(|e| HandlerError::Permanent(e.to_string()))?;
        if let Value::Object(map) = &mut result {
            map.insert("file_id".into(), json!(id));
        }
        Ok(result)
    }
}
