//! The `TaskHandler` seam: one handler per task kind, looked up in a
//! [`Registry`]. Handlers get a [`TaskContext`] and return a JSON result or
//! a [`HandlerError`] saying whether another attempt could help.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use resume_agent_core::Task;
use resume_agent_core::blob::BlobStore;
use resume_agent_core::payload::KindPayload;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// What a handler gets for one attempt.
#[derive(Clone)]
pub struct TaskContext {
    /// The claimed task (attempt already counted).
    pub task: Task,
    /// Cancelled when the caller cancels the task, the lease is lost or the
    /// worker's drain period ends. The runtime also stops waiting for the
    /// handler at that moment; long handlers should watch it to stop cleanly.
    pub cancel: CancellationToken,
    /// Blob storage for files.
    pub blobs: Arc<dyn BlobStore>,
}

impl TaskContext {
    /// The task's payload as kind `P`'s typed value (read back from the
    /// stored JSON with [`KindPayload::of`]). One that does not read (a task
    /// of another kind, a row written round the edge) is a permanent error.
    ///
    /// # Errors
    /// [`HandlerError::Permanent`] naming what does not read.
    pub fn payload<P: KindPayload>(&self) -> Result<P, HandlerError> {
        P::of(&self.task).map_err(|e| HandlerError::Permanent(e.to_string()))
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HandlerError {
    /// Another attempt may succeed (network, busy dependency): retried with
    /// backoff while attempts remain.
    #[error("{0}")]
    Retryable(String),
    /// No attempt will ever succeed (corrupt input): the task fails now.
    #[error("{0}")]
    Permanent(String),
}

/// Runs tasks of one kind.
#[async_trait]
pub trait TaskHandler: Send + Sync + 'static {
    /// The kind this handler runs (a fixed string such as `system.noop`).
    fn kind(&self) -> &'static str;

    /// Runs one attempt.
    async fn run(&self, ctx: TaskContext) -> Result<Value, HandlerError>;
}

/// Handlers by kind.
#[derive(Default, Clone)]
pub struct Registry {
    handlers: HashMap<&'static str, Arc<dyn TaskHandler>>,
}

impl Registry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in handlers: `system.*`, and `resume.*` reading file
    /// metadata from `files` and parsing as `resume` says (in a child).
    #[must_use]
    pub fn with_builtins(
        files: Arc<dyn resume_agent_core::store::FileStore>,
        resume: crate::resume::ResumeSettings,
    ) -> Self {
        let mut r = Self::new();
        r.register(Arc::new(crate::handlers::Noop));
        r.register(Arc::new(crate::handlers::Sleep));
        r.register(Arc::new(crate::handlers::Fail));
        r.register(Arc::new(crate::resume::Parse::new(
            files.clone(),
            resume.clone(),
        )));
        r.register(Arc::new(crate::resume::Match::new(files, resume)));
        r
    }

    /// Adds (or replaces) the handler for its kind.
    pub fn register(&mut self, handler: Arc<dyn TaskHandler>) {
        self.handlers.insert(handler.kind(), handler);
    }

    /// The handler for `kind`.
    #[must_use]
    pub fn get(&self, kind: &str) -> Option<Arc<dyn TaskHandler>> {
        self.handlers.get(kind).cloned()
    }

    /// Registered kinds, sorted.
    #[must_use]
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k: Vec<_> = self.handlers.keys().copied().collect();
        k.sort_unstable();
        k
    }
}

/// Test instrumentation (`RESUME_AGENT_TEST_PROBE`): wraps a handler and
/// appends `start|end <task id> <attempt> <pid> <unix µs>` lines to a file,
/// so fault-injection tests can prove that no task ran twice at once and
/// none ran after it was finished. Appends of one short line are atomic.
pub struct Probe {
    inner: Arc<dyn TaskHandler>,
    file: std::path::PathBuf,
}

impl Probe {
    /// Wraps `inner`.
    #[must_use]
    pub fn new(inner: Arc<dyn TaskHandler>, file: std::path::PathBuf) -> Self {
        Self { inner, file }
    }
}

fn probe_note(file: &std::path::Path, what: &str, task: &Task) {
    use std::io::Write;
    let now = chrono::Utc::now().timestamp_micros();
    let line = format!(
        "{what} {} {} {} {now}\n",
        task.id,
        task.attempts,
        std::process::id()
    );
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .and_then(|mut f| f.write_all(line.as_bytes()));
    if let Err(e) = written {
        tracing::error!(error = %e, "test probe write failed");
    }
}

/// Writes the `end` line when the attempt's future ends, however it ends
/// (returned, timed out, cancelled: the runtime drops it).
struct ProbeEnd<'a> {
    file: &'a std::path::Path,
    task: Task,
}

impl Drop for ProbeEnd<'_> {
    fn drop(&mut self) {
        probe_note(self.file, "end", &self.task);
    }
}

#[async_trait]
impl TaskHandler for Probe {
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn run(&self, ctx: TaskContext) -> Result<Value, HandlerError> {
        probe_note(&self.file, "start", &ctx.task);
        let _end = ProbeEnd {
            file: &self.file,
            task: ctx.task.clone(),
        };
        self.inner.run(ctx).await
    }
}

impl Registry {
    /// Wraps every handler in a [`Probe`] writing to `file`.
    #[must_use]
    pub fn probed(self, file: &std::path::Path) -> Self {
        let mut r = Self::new();
        for h in self.handlers.into_values() {
            r.register(Arc::new(Probe::new(h, file.to_path_buf())));
        }
        r
    }
}
