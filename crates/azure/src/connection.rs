//! Azure Storage connection strings (`AZURE_STORAGE_CONNECTION_STRING`).
//!
//! Understood forms:
//!
//! - `UseDevelopmentStorage=true`: Azurite's well-known account
//!   (`devstoreaccount1`, blob `http://127.0.0.1:10000/devstoreaccount1`,
//!   queue `http://127.0.0.1:10001/devstoreaccount1`);
//! - account key: `AccountName=…;AccountKey=…` with either explicit
//!   `BlobEndpoint=`/`QueueEndpoint=` or `DefaultEndpointsProtocol=` (default
//!   `https`) and `EndpointSuffix=` (default `core.windows.net`);
//! - a ready-made SAS: `SharedAccessSignature=…` with explicit endpoints.
//!
//! Parsing never echoes the string: errors name the missing or bad field only.

use resume_agent_core::secret::Secret;
use url::Url;

/// Azurite's published development account name.
pub const DEV_ACCOUNT: &str = "devstoreaccount1";
/// Azurite's published development account key (public, in every SDK's docs).
pub const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// How requests are authorised when a connection string is used.
#[derive(Debug, Clone)]
pub enum KeyAuth {
    /// An account key: account SAS tokens are signed locally with it.
    AccountKey {
        /// The account name (part of the string to sign).
        account: String,
        /// The base64 account key.
        key: Secret,
    },
    /// A SAS given in the connection string, used as is.
    Sas(Secret),
}

/// A parsed connection string.
#[derive(Debug, Clone)]
pub struct ConnectionString {
    /// Blob service endpoint, e.g. `https://acct.blob.core.windows.net/`.
    pub blob_endpoint: Url,
    /// Queue service endpoint.
    pub queue_endpoint: Url,
    /// Key or SAS.
    pub auth: KeyAuth,
}

/// Why a connection string was refused (never contains its text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("AZURE_STORAGE_CONNECTION_STRING: {0}")]
pub struct ConnectionStringError(pub String);

fn err(s: impl Into<String>) -> ConnectionStringError {
    ConnectionStringError(s.into())
}

/// Ensures a trailing slash so that paths append below the account path
/// (Azurite's endpoints carry the account name as the first segment).
fn endpoint(field: &str, raw: &str) -> Result<Url, ConnectionStringError> {
    let mut s = raw.trim().to_owned();
    if !s.ends_with('/') {
        s.push('/');
    }
    let url = Url::parse(&s).map_err(|e| err(format!("{field} is not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
        return Err(err(format!("{field} must be an http(s) URL")));
    }
    if url.query().is_some() {
        return Err(err(format!(
            "{field} must not carry a query (put a SAS in SharedAccessSignature=)"
        )));
    }
    Ok(url)
}

impl ConnectionString {
    /// Parses `Key=Value;…` (keys case-insensitive, empty parts ignored).
    ///
    /// # Errors
    /// A missing account/key/endpoint, a key that is not base64, a bad URL.
    pub fn parse(raw: &str) -> Result<Self, ConnectionStringError> {
        let mut fields: Vec<(String, String)> = Vec::new();
        for part in raw.split(';') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((k, v)) = part.split_once('=') else {
                return Err(err("expected Key=Value pairs separated by ';'"));
            };
            fields.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
        let get = |k: &str| {
            fields
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        if get("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(Self {
                blob_endpoint: endpoint("BlobEndpoint", "http://127.0.0.1:10000/devstoreaccount1")?,
                queue_endpoint: endpoint(
                    "QueueEndpoint",
                    "http://127.0.0.1:10001/devstoreaccount1",
                )?,
                auth: KeyAuth::AccountKey {
                    account: DEV_ACCOUNT.into(),
                    key: Secret::new(DEV_KEY),
                },
            });
        }
        let account = get("accountname").filter(|a| !a.is_empty());
        let protocol = get("defaultendpointsprotocol").unwrap_or("https");
        if !matches!(protocol, "http" | "https") {
            return Err(err("DefaultEndpointsProtocol must be http or https"));
        }
        let suffix = get("endpointsuffix").unwrap_or("core.windows.net");
        let derived = |service: &str| -> Result<Url, ConnectionStringError> {
            let Some(account) = account else {
                return Err(err(format!(
                    "{service}Endpoint or AccountName (to derive it) is required"
                )));
            };
            endpoint(
                &format!("{service}Endpoint"),
                &format!(
                    "{protocol}://{account}.{}.{suffix}",
                    service.to_ascii_lowercase()
                ),
            )
        };
        let blob_endpoint = match get("blobendpoint") {
            Some(e) => endpoint("BlobEndpoint", e)?,
            None => derived("Blob")?,
        };
        let queue_endpoint = match get("queueendpoint") {
            Some(e) => endpoint("QueueEndpoint", e)?,
            None => derived("Queue")?,
        };
        let auth = if let Some(key) = get("accountkey") {
            let Some(account) = account else {
                return Err(err("AccountKey needs AccountName"));
            };
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(key)
                .map_err(|_| err("AccountKey is not base64"))?;
            KeyAuth::AccountKey {
                account: account.to_owned(),
                key: Secret::new(key),
            }
        } else if let Some(sas) = get("sharedaccesssignature") {
            // `split_once('=')` kept the SAS's own '=' characters.
            KeyAuth::Sas(Secret::new(sas.trim_start_matches('?')))
        } else {
            return Err(err(
                "AccountKey or SharedAccessSignature is required (Entra ID: unset it and set AZURE_STORAGE_ACCOUNT_NAME)",
            ));
        };
        Ok(Self {
            blob_endpoint,
            queue_endpoint,
            auth,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn development_storage_is_azurite() {
        let c = ConnectionString::parse("UseDevelopmentStorage=true").unwrap();
        assert_eq!(
            c.blob_endpoint.as_str(),
            "http://127.0.0.1:10000/devstoreaccount1/"
        );
        assert_eq!(
            c.queue_endpoint.as_str(),
            "http://127.0.0.1:10001/devstoreaccount1/"
        );
        assert!(
            matches!(c.auth, KeyAuth::AccountKey { ref account, .. } if account == DEV_ACCOUNT)
        );
    }

    #[test]
    fn account_key_derives_endpoints_from_protocol_and_suffix() {
        let c = ConnectionString::parse(
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=c2VjcmV0a2V5;EndpointSuffix=core.chinacloudapi.cn;",
        )
        .unwrap();
        assert_eq!(
            c.queue_endpoint.as_str(),
            "https://acme.queue.core.chinacloudapi.cn/"
        );
        assert_eq!(
            c.blob_endpoint.as_str(),
            "https://acme.blob.core.chinacloudapi.cn/"
        );
        let d = ConnectionString::parse("AccountName=acme;AccountKey=c2VjcmV0a2V5").unwrap();
        assert_eq!(
            d.queue_endpoint.as_str(),
            "https://acme.queue.core.windows.net/"
        );
    }

    #[test]
    fn explicit_endpoints_win() {
        let c = ConnectionString::parse(&format!(
            "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};\
             BlobEndpoint=http://127.0.0.1:4000/{DEV_ACCOUNT};QueueEndpoint=http://127.0.0.1:4001/{DEV_ACCOUNT};"
        ))
        .unwrap();
        assert_eq!(
            c.queue_endpoint.as_str(),
            "http://127.0.0.1:4001/devstoreaccount1/"
        );
        assert_eq!(
            c.blob_endpoint.as_str(),
            "http://127.0.0.1:4000/devstoreaccount1/"
        );
    }

    #[test]
    fn a_sas_connection_string_is_kept_as_is() {
        let c = ConnectionString::parse(
            "QueueEndpoint=https://a.queue.core.windows.net;BlobEndpoint=https://a.blob.core.windows.net;SharedAccessSignature=sv=2021-06-08&sig=abc%3D",
        )
        .unwrap();
        match c.auth {
            KeyAuth::Sas(s) => assert_eq!(s.expose(), "sv=2021-06-08&sig=abc%3D"),
            KeyAuth::AccountKey { .. } => panic!("expected a SAS"),
        }
    }

    #[test]
    fn errors_never_echo_the_key() {
        for bad in [
            "AccountName=acme;AccountKey=not*base64*supersecret",
            "AccountKey=c3VwZXJzZWNyZXQ=",
            "AccountName=acme",
            "garbage-supersecret",
            "AccountName=acme;AccountKey=c3VwZXJzZWNyZXQ=;QueueEndpoint=ftp://x",
        ] {
            let e = ConnectionString::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("AZURE_STORAGE_CONNECTION_STRING:"), "{e}");
            assert!(
                !e.contains("supersecret") && !e.contains("c3VwZXJzZWNyZXQ"),
                "{e}"
            );
        }
        let ok =
            ConnectionString::parse(&format!("AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY}"))
                .unwrap();
        assert!(!format!("{ok:?}").contains(DEV_KEY));
    }
}
