//! `POST /api/files` (multipart, field `file`), `GET /api/files/{id}`
//! (streamed from the blob store, never buffered whole) and
//! `DELETE /api/files/{id}` (the bytes and every derived blob, then the
//! metadata).
//!
//! Bytes go to the `BlobStore` under a generated name (`files/{id}/original`),
//! metadata to the store. The content type is sniffed from the bytes, never
//! taken from the client; the client's filename is kept only as a plain
//! display name. Bodies over the limit are refused from `Content-Length`
//! before anything is read, or as soon as the streamed part passes it.

use axum::Json;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use resume_agent_core::OwnerId;
use resume_agent_core::blob::BlobError;
use resume_agent_core::file::{NewFile, StoredFile, file_prefix, original_key, plain_filename};
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Caller;

fn blob_err(e: BlobError) -> ApiError {
    match e {
        BlobError::Unavailable(m) => {
            tracing::warn!(error = %m, "blob storage unavailable");
            ApiError::Unavailable("file storage is unavailable; retry later".into())
        }
        BlobError::InvalidKey(k) => {
            ApiError::Internal(format!("generated an invalid blob key {k}"))
        }
    }
}

/// 413 when `adding` more bytes would take the owner past
/// `OWNER_MAX_STORED_BYTES`. Checked against the stored total, so uploads
/// racing each other may pass it by at most what is in flight at once.
async fn check_storage_quota(st: &AppState, owner: &OwnerId, adding: u64) -> Result<(), ApiError> {
    let max = st.quotas.max_stored_bytes;
    if max == 0 {
        return Ok(());
    }
    let used = u64::try_from(st.deps.files.owner_stored_bytes(owner).await?).unwrap_or(0);
    if used.saturating_add(adding) > max || (adding == 0 && used >= max) {
        return Err(ApiError::StorageQuota(format!(
            "the owner's files would take more than the quota of {max} bytes ({used} stored); delete files first"
        )));
    }
    Ok(())
}

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the file is larger than the limit of {limit} bytes"
    ))
}

/// Multipart overhead allowed on top of the file limit (boundaries, headers).
pub const MULTIPART_OVERHEAD: usize = 64 * 1024;

/// `POST /api/files`.
#[utoipa::path(post, path = "/api/files", tag = "files",
    description = "Upload a résumé (PDF, DOCX, Markdown or plain text) as multipart/form-data, field `file`. The content type is sniffed from the bytes; the filename is kept as a plain display name.",
    request_body(content = crate::openapi::FileUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored", body = StoredFile,
            headers(("Location" = String, description = "/api/files/{id}"))),
        (status = 400, description = "No `file` field, or a malformed multipart body", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 401, description = "Missing or invalid bearer token (AUTH_MODE=jwt)", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("WWW-Authenticate" = String, description = "Bearer challenge"))),
        (status = 413, description = "Over the size limit (FILE_MAX_BYTES), or past the owner's OWNER_MAX_STORED_BYTES quota (type /problems/storage-quota-exceeded)", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 415, description = "Not multipart, or a file type that is not supported", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 429, description = "Per-owner rate limit reached", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 503, description = "Database or file storage unavailable", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    ),
    security((), ("bearer" = [])))]
pub async fn upload(
    State(st): State<AppState>,
    Caller(owner): Caller,
    req: Request,
) -> Result<Response, ApiError> {
    let limit = st.file_max_bytes;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if !content_type.starts_with("multipart/form-data") {
        return Err(ApiError::UnsupportedMediaType(
            "upload the file as multipart/form-data with a field named `file`".into(),
        ));
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > (limit + MULTIPART_OVERHEAD) as u64) {
        // Refused before reading a byte of it.
        return Err(too_large(limit));
    }
    // Refused before reading when the owner is at the quota already.
    check_storage_quota(
        &st,
        &owner,
        declared
            .unwrap_or(0)
            .saturating_sub(MULTIPART_OVERHEAD as u64)
            .min(limit as u64),
    )
    .await?;
    let mut multipart = Multipart::from_request(req, &st).await.map_err(|e| {
        ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    })?;
    let mut upload: Option<(String, Vec<u8>)> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large(limit)),
            Err(e) => {
                return Err(ApiError::BadRequest(format!(
                    "malformed multipart body: {}",
                    e.body_text()
                )));
            }
        };
        if field.name() != Some("file") || upload.is_some() {
            // Other fields are drained and ignored.
            continue;
        }
        let name = plain_filename(field.file_name().unwrap_or("upload"));
        let mut field = field;
        let mut bytes = Vec::new();
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > limit {
                        return Err(too_large(limit));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    return Err(too_large(limit));
                }
                Err(e) => {
                    return Err(ApiError::BadRequest(format!(
                        "malformed multipart body: {}",
                        e.body_text()
                    )));
                }
            }
        }
        upload = Some((name, bytes));
    }
    let (filename, bytes) = upload.ok_or_else(|| {
        ApiError::BadRequest("the multipart body has no field named `file`".into())
    })?;
    let content_type = match resume_agent_resume::sniff(&bytes, Some(&filename)) {
        Ok(ty) => ty.mime().to_owned(),
        // An empty file is stored (a parse of it fails with a clear reason).
        Err(resume_agent_resume::SniffError::Empty) => "application/octet-stream".to_owned(),
        Err(e) => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "{e}; upload a PDF, DOCX, Markdown or plain-text résumé"
            )));
        }
    };
    let sha256 = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    check_storage_quota(&st, &owner, bytes.len() as u64).await?;
    let id = uuid::Uuid::now_v7();
    let size = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
    let key = original_key(id).map_err(blob_err)?;
    st.deps
        .blobs
        .put(&key, bytes, &content_type)
        .await
        .map_err(blob_err)?;
    let stored = st
        .deps
        .files
        .create_file(&NewFile {
            id,
            owner,
            filename,
            content_type,
            size,
            sha256,
        })
        .await?;
    let location = HeaderValue::from_str(&format!("/api/files/{id}"))
        .unwrap_or_else(|_| HeaderValue::from_static("/api/files"));
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(stored),
    )
        .into_response())
}

/// `GET /api/files/{id}`.
#[utoipa::path(get, path = "/api/files/{id}", tag = "files", description = "The file's bytes, with its sniffed content type.",
    params(("id" = String, Path, description = "File id (UUID)", format = Uuid)),
    responses(
        (status = 200, description = "The bytes", content(
            (String = "application/pdf"),
            (String = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            (String = "text/markdown"),
            (String = "text/plain"),
            (String = "application/octet-stream"))),
        (status = 400, description = "Not a UUID", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 401, description = "Missing or invalid bearer token (AUTH_MODE=jwt)", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("WWW-Authenticate" = String, description = "Bearer challenge"))),
        (status = 404, description = "Unknown, or another owner's", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 429, description = "Per-owner rate limit reached", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 503, description = "Database or file storage unavailable", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    ),
    security((), ("bearer" = [])))]
pub async fn download(
    State(st): State<AppState>,
    Caller(owner): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = uuid::Uuid::parse_str(&id)
        .map_err(|_| ApiError::BadRequest(format!("{id:?} is not a valid file id (a UUID)")))?;
    let meta = st
        .deps
        .files
        .get_file(&owner, id)
        .await?
        .ok_or(ApiError::NotFound("no such file"))?;
    // Streamed: a slow reader holds one chunk, not the file (and the
    // server's write timeout closes a reader that stops).
    let blob = st
        .deps
        .blobs
        .get_stream(&original_key(id).map_err(blob_err)?)
        .await
        .map_err(blob_err)?
        // Deleted between the two reads.
        .ok_or(ApiError::NotFound("no such file"))?;
    let ascii: String = meta
        .filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!("attachment; filename=\"{ascii}\"");
    let size = blob.size;
    let chunks = futures::TryStreamExt::map_err(blob.chunks, |e| {
        tracing::warn!(error = %e, "a file download broke off");
        std::io::Error::other("file storage failed mid-download")
    });
    let mut resp = (StatusCode::OK, axum::body::Body::from_stream(chunks)).into_response();
    let h = resp.headers_mut();
    if let Some(n) = size {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&meta.content_type)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(resp)
}

/// `DELETE /api/files/{id}`.
#[utoipa::path(delete, path = "/api/files/{id}", tag = "files",
    description = "Delete one of the caller's files: its bytes and every blob derived from them (extracted text, parse) go too. Tasks that used it keep their results.",
    params(("id" = String, Path, description = "File id (UUID)", format = Uuid)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Not a UUID", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 401, description = "Missing or invalid bearer token (AUTH_MODE=jwt)", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("WWW-Authenticate" = String, description = "Bearer challenge"))),
        (status = 404, description = "Unknown, or another owner's", content_type = "application/problem+json", body = crate::openapi::Problem),
        (status = 429, description = "Rate limit reached", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 503, description = "Database or file storage unavailable", content_type = "application/problem+json", body = crate::openapi::Problem,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    ),
    security((), ("bearer" = [])))]
pub async fn delete(
    State(st): State<AppState>,
    Caller(owner): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = uuid::Uuid::parse_str(&id)
        .map_err(|_| ApiError::BadRequest(format!("{id:?} is not a valid file id (a UUID)")))?;
    if st.deps.files.get_file(&owner, id).await?.is_none() {
        return Err(ApiError::NotFound("no such file"));
    }
    // Blobs first: if this fails half-way the row is still there and a
    // retry (or the retention sweep) finds it; the other order could leave
    // bytes nobody can find.
    st.deps
        .blobs
        .delete_prefix(&file_prefix(id).map_err(blob_err)?)
        .await
        .map_err(blob_err)?;
    if st.deps.files.delete_file(&owner, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        // Another request deleted it meanwhile.
        Err(ApiError::NotFound("no such file"))
    }
}
