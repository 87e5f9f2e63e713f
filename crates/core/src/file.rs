//! Uploaded files: metadata kept by the store, bytes in a `BlobStore`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::blob::{BlobError, BlobKey};
use crate::task::OwnerId;

/// A stored file as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(example = json!({
    "id": "01937a52-7c1e-7d3a-9a5e-4f3c2b1a0d9e", "filename": "cv.pdf", "content_type": "application/pdf",
    "size": 48213, "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "created_at": "2026-11-26T05:00:00.000000Z"
})))]
pub struct StoredFile {
    /// Id.
    pub id: Uuid,
    /// The owner (not shown).
    #[serde(skip)]
    pub owner_id: String,
    /// A plain display name (never a path).
    pub filename: String,
    /// Sniffed from the bytes.
    pub content_type: String,
    /// Bytes.
    pub size: i64,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// Upload time.
    pub created_at: DateTime<Utc>,
}

/// A file to record.
#[derive(Debug, Clone)]
pub struct NewFile {
    /// Fresh id.
    pub id: Uuid,
    /// Owner.
    pub owner: OwnerId,
    /// Plain display name (see [`plain_filename`]).
    pub filename: String,
    /// Sniffed content type.
    pub content_type: String,
    /// Bytes.
    pub size: i64,
    /// Hex SHA-256.
    pub sha256: String,
}

/// Where a file's bytes live: a generated name, never user input.
///
/// # Errors
/// Never for a UUID (kept fallible because keys are validated).
pub fn original_key(id: Uuid) -> Result<BlobKey, BlobError> {
    BlobKey::parse(&format!("files/{}/original", id.simple()))
}

/// Where derived artefacts of a file live (`text`, `parsed.json`).
///
/// # Errors
/// When `name` is not a valid key segment.
pub fn derived_key(id: Uuid, name: &str) -> Result<BlobKey, BlobError> {
    BlobKey::parse(&format!("files/{}/{name}", id.simple()))
}

/// The folder of every blob of a file (`files/{id}`: the original and its
/// derived artefacts), for [`crate::blob::BlobStore::delete_prefix`].
///
/// # Errors
/// Never for a UUID (kept fallible because keys are validated).
pub fn file_prefix(id: Uuid) -> Result<BlobKey, BlobError> {
    BlobKey::parse(&format!("files/{}", id.simple()))
}

/// A client's filename reduced to a harmless display name: the last path
/// component (`../../etc/passwd` → `passwd`), no control characters, at
/// most 255 characters; `upload` when nothing is left.
#[must_use]
pub fn plain_filename(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = last
        .chars()
        .filter(|c| !c.is_control())
        .take(255)
        .collect::<String>()
        .trim()
        .to_owned();
    if clean.is_empty() || clean == "." || clean == ".." {
        "upload".to_owned()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_become_plain_names() {
        assert_eq!(plain_filename("../../etc/passwd"), "passwd");
        assert_eq!(plain_filename("C:\\Users\\x\\cv.docx"), "cv.docx");
        assert_eq!(plain_filename("a\u{0}b\nc.pdf"), "abc.pdf");
        assert_eq!(plain_filename(".."), "upload");
        assert_eq!(plain_filename(""), "upload");
        assert_eq!(plain_filename(&"x".repeat(300)).len(), 255);
    }
}
