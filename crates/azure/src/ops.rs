//! Every storage call goes through [`call`]: it is time-boxed, counted in
//! `azure_storage_requests_total{operation,outcome}` (one per REST call we
//! make: the billable transactions, SDK-level retries aside) and timed in
//! `azure_storage_request_duration_seconds{operation}`, and its error is
//! classified and stripped of any SAS.

use std::future::Future;
use std::time::{Duration, Instant};

use azure_core::error::ErrorKind;

use crate::sas::redact_sas;

/// What went wrong with a storage call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageErrorKind {
    /// 404 (queue, message, container or blob missing).
    NotFound,
    /// 409 (already exists, being deleted).
    Conflict,
    /// Unreachable, timed out, throttled or a 5xx: try again later.
    Transient,
    /// Anything else (403 authorisation, 400 bad request, bad response).
    Failed,
}

/// A classified storage error. Its message never contains a SAS.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation}: {message}")]
pub struct StorageError {
    /// What kind of failure.
    pub kind: StorageErrorKind,
    /// The operation that failed.
    pub operation: &'static str,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
    /// Redacted description.
    pub message: String,
}

impl StorageError {
    /// True for [`StorageErrorKind::NotFound`].
    #[must_use]
    pub fn is_not_found(&self) -> bool {
        self.kind == StorageErrorKind::NotFound
    }
}

fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        let t = inner.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = inner.source();
    }
    s
}

/// Classifies an SDK error.
#[must_use]
pub fn classify(operation: &'static str, e: &azure_core::Error) -> StorageError {
    let message = redact_sas(&chain(e));
    let (kind, status) = match e.kind() {
        ErrorKind::HttpResponse {
            status, error_code, ..
        } => {
            let code = u16::from(*status);
            let kind = match code {
                404 => StorageErrorKind::NotFound,
                409 => StorageErrorKind::Conflict,
                408 | 429 | 500..=599 => StorageErrorKind::Transient,
                // A SAS/token Azure refuses may be a clock or renewal issue;
                // still not something retrying at once fixes.
                _ => StorageErrorKind::Failed,
            };
            let _ = error_code;
            (kind, Some(code))
        }
        ErrorKind::Io | ErrorKind::Connection | ErrorKind::Credential => {
            (StorageErrorKind::Transient, None)
        }
        _ => (StorageErrorKind::Failed, None),
    };
    StorageError {
        kind,
        operation,
        status,
        message,
    }
}

fn outcome_label(r: &Result<(), StorageErrorKind>) -> &'static str {
    match r {
        Ok(()) => "ok",
        Err(StorageErrorKind::NotFound) => "not_found",
        Err(StorageErrorKind::Conflict) => "conflict",
        Err(StorageErrorKind::Transient) => "unavailable",
        Err(StorageErrorKind::Failed) => "error",
    }
}

/// Runs one storage call under `timeout`, counting and timing it.
///
/// # Errors
/// The classified error; a timeout is [`StorageErrorKind::Transient`].
pub async fn call<T, F>(
    operation: &'static str,
    timeout: Duration,
    fut: F,
) -> Result<T, StorageError>
where
    F: Future<Output = azure_core::Result<T>>,
{
    let started = Instant::now();
    let result = match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(classify(operation, &e)),
        Err(_) => Err(StorageError {
            kind: StorageErrorKind::Transient,
            operation,
            status: None,
            message: format!("timed out after {timeout:?}"),
        }),
    };
    let label = outcome_label(&result.as_ref().map(|_| ()).map_err(|e| e.kind));
    metrics::counter!("azure_storage_requests_total", "operation" => operation, "outcome" => label)
        .increment(1);
    metrics::histogram!("azure_storage_request_duration_seconds", "operation" => operation)
        .record(started.elapsed().as_secs_f64());
    result
}
