//! File retention (`FILE_RETENTION_DAYS`): files uploaded longer ago than
//! that are deleted, their bytes and every derived blob (`files/{id}/*`)
//! first, then the metadata row, so a failure half-way leaves a row the
//! next sweep finds again rather than blobs nobody can find.
//!
//! The web runs [`run`] beside its server (every replica may: deleting is
//! idempotent, a row deleted by another replica is simply not found). A
//! worker can call [`sweep_files`] from its own loop instead.

use std::sync::Arc;
use std::time::Duration;

use resume_agent_core::OwnerId;
use resume_agent_core::blob::{BlobError, BlobStore};
use resume_agent_core::file::file_prefix;
use resume_agent_core::store::{FileStore, StoreError};
use tokio_util::sync::CancellationToken;

/// Files looked at per store round trip.
const BATCH: u32 = 100;
/// Files deleted per sweep at most (the rest wait for the next one).
const MAX_PER_SWEEP: u64 = 10_000;

/// When files expire and how often the web looks.
#[derive(Debug, Clone, Copy)]
pub struct RetentionSettings {
    /// `FILE_RETENTION_DAYS` (default 30; 0 keeps files forever).
    pub max_age: Duration,
    /// `FILE_RETENTION_SWEEP_SECS` (default 3600): the sweep's period.
    pub interval: Duration,
}

/// Why a sweep stopped early.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blob storage failed.
    #[error(transparent)]
    Blob(#[from] BlobError),
}

/// Deletes files older than `max_age` (bytes, derived blobs, metadata),
/// oldest first, up to 10,000; returns how many.
///
/// # Errors
/// The first store or blob failure (what was deleted before it stays
/// deleted; the rest is found again by the next sweep).
pub async fn sweep_files(
    store: &dyn FileStore,
    blobs: &dyn BlobStore,
    max_age: Duration,
) -> Result<u64, SweepError> {
    let mut deleted = 0u64;
    while deleted < MAX_PER_SWEEP {
        let batch = store.expired_files(max_age, BATCH).await?;
        if batch.is_empty() {
            break;
        }
        let mut progressed = false;
        for f in &batch {
            blobs.delete_prefix(&file_prefix(f.id)?).await?;
            let Ok(owner) = OwnerId::parse(&f.owner_id) else {
                tracing::warn!(file_id = %f.id, "a stored file has an unusable owner id; skipped");
                continue;
            };
            if store.delete_file(&owner, f.id).await? {
                deleted += 1;
            }
            progressed = true;
        }
        if !progressed || batch.len() < BATCH as usize {
            break;
        }
    }
    if deleted > 0 {
        metrics::counter!("files_expired_total").increment(deleted);
        tracing::info!(files = deleted, "file retention: deleted expired files");
    }
    Ok(deleted)
}

/// Runs [`sweep_files`] every `interval` until `stop` fires. Does nothing
/// when `max_age` is zero (keep forever).
pub async fn run(
    store: Arc<dyn FileStore>,
    blobs: Arc<dyn BlobStore>,
    settings: RetentionSettings,
    stop: CancellationToken,
) {
    if settings.max_age.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval(settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stop.cancelled() => return,
        }
        let sweep = sweep_files(&*store, &*blobs, settings.max_age);
        tokio::select! {
            r = sweep => if let Err(e) = r {
                tracing::warn!(error = %e, "file retention sweep failed; retrying next period");
            },
            () = stop.cancelled() => return,
        }
    }
}
