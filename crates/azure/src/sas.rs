//! Account SAS tokens signed locally with an account key (HMAC-SHA256).
//!
//! The official 1.x SDK has no shared-key support; with no credential a
//! client accepts a SAS in its URL over http or https. We sign an *account*
//! SAS (signed version `2021-06-08`) over
//! `account\npermissions\nservices\nresourcetypes\nstart\nexpiry\nip\nprotocol\nversion\nencryptionscope\n`
//! with the base64-decoded key, and put `sv, ss, srt, sp, se, st, spr, sig`
//! in the query, URL-encoded.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use resume_agent_core::secret::Secret;
use sha2::Sha256;
use url::form_urlencoded;

/// The signed version we use.
pub const SIGNED_VERSION: &str = "2021-06-08";
/// Blob and queue services.
pub const SERVICES: &str = "bq";
/// Service, container and object resource types.
pub const RESOURCE_TYPES: &str = "sco";
/// read, write, delete, list, add, create, update, process: what the queue
/// backend (send, receive, update, delete, create, properties) and the blob
/// store (put, get, delete, create container) need.
pub const PERMISSIONS: &str = "rwdlacup";

/// Why a SAS could not be signed.
#[derive(Debug, thiserror::Error)]
#[error("cannot sign an account SAS: the account key is not valid base64")]
pub struct SignError;

fn iso(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Signs an account SAS valid from `start` to `expiry` and returns its query
/// string (no leading `?`). `allow_http` adds `http` to the protocols (only
/// for emulator endpoints).
///
/// # Errors
/// [`SignError`] when the key is not base64.
pub fn account_sas(
    account: &str,
    key: &Secret,
    start: DateTime<Utc>,
    expiry: DateTime<Utc>,
    allow_http: bool,
) -> Result<Secret, SignError> {
    let key = base64::engine::general_purpose::STANDARD
        .decode(key.expose().trim())
        .map_err(|_| SignError)?;
    let (st, se) = (iso(start), iso(expiry));
    let protocol = if allow_http { "https,http" } else { "https" };
    let to_sign = format!(
        "{account}\n{PERMISSIONS}\n{SERVICES}\n{RESOURCE_TYPES}\n{st}\n{se}\n\n{protocol}\n{SIGNED_VERSION}\n\n"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|_| SignError)?;
    mac.update(to_sign.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("sv", SIGNED_VERSION)
        .append_pair("ss", SERVICES)
        .append_pair("srt", RESOURCE_TYPES)
        .append_pair("sp", PERMISSIONS)
        .append_pair("se", &se)
        .append_pair("st", &st)
        .append_pair("spr", protocol)
        .append_pair("sig", &sig)
        .finish();
    Ok(Secret::new(query))
}

/// Replaces the value of every `sig=` parameter in `text` (URLs in error
/// messages, logs) with `[redacted]`.
#[must_use]
pub fn redact_sas(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let lower = rest.to_ascii_lowercase();
        let Some(i) = lower.find("sig=") else {
            out.push_str(rest);
            return out;
        };
        // Only a query parameter: preceded by '?', '&' or the start.
        let boundary = i == 0 || matches!(rest.as_bytes()[i - 1], b'?' | b'&' | b';');
        out.push_str(&rest[..i + 4]);
        rest = &rest[i + 4..];
        if boundary {
            let end = rest
                .find(|c: char| {
                    c == '&' || c == '"' || c == '\'' || c == ')' || c == ';' || c.is_whitespace()
                })
                .unwrap_or(rest.len());
            out.push_str("[redacted]");
            rest = &rest[end..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn signature_matches_the_documented_string_to_sign() {
        // Independent computation of the same HMAC over the documented layout.
        let key = Secret::new(crate::connection::DEV_KEY);
        let start = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap();
        let expiry = Utc.with_ymd_and_hms(2025, 1, 3, 3, 4, 5).unwrap();
        let q = account_sas("devstoreaccount1", &key, start, expiry, true).unwrap();
        let pairs: std::collections::HashMap<String, String> =
            form_urlencoded::parse(q.expose().as_bytes())
                .into_owned()
                .collect();
        assert_eq!(pairs["sv"], "2021-06-08");
        assert_eq!(pairs["st"], "2025-01-02T03:04:05Z");
        assert_eq!(pairs["se"], "2025-01-03T03:04:05Z");
        assert_eq!(pairs["spr"], "https,http");
        let raw = base64::engine::general_purpose::STANDARD
            .decode(crate::connection::DEV_KEY)
            .unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(&raw).unwrap();
        mac.update(
            b"devstoreaccount1\nrwdlacup\nbq\nsco\n2025-01-02T03:04:05Z\n2025-01-03T03:04:05Z\n\nhttps,http\n2021-06-08\n\n",
        );
        let expected =
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(pairs["sig"], expected);
        // '+', '/' and '=' of the signature are percent-encoded in the query.
        assert!(!q.expose().split("sig=").nth(1).unwrap().contains('/'));
        assert_eq!(format!("{q:?}"), "[redacted]");
    }

    #[test]
    fn sas_signatures_are_redacted_in_text() {
        let url =
            "http://127.0.0.1:1/devstoreaccount1/q/messages?sv=2021-06-08&sig=AbC%2Bd%3D&st=x";
        let shown = redact_sas(&format!("error sending request for url ({url}): refused"));
        assert!(!shown.contains("AbC"), "{shown}");
        assert!(shown.contains("sig=[redacted]&st=x"), "{shown}");
        assert!(shown.ends_with("): refused"), "{shown}");
        assert_eq!(redact_sas("SIG=abc def"), "SIG=[redacted] def");
        assert_eq!(
            redact_sas("nothing here: design=1"),
            "nothing here: design=1"
        );
    }
}
