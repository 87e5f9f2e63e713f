//! The storage account: endpoints and how requests are authorised.
//!
//! Order (the README's "Phase 6" section):
//!
//! 1. `AZURE_STORAGE_CONNECTION_STRING` when set: an account key signs an
//!    account SAS locally ([`crate::sas`]); a SAS in the string is used as is.
//!    A signed SAS is valid for [`SAS_VALIDITY`] from 5 minutes ago (clock
//!    skew) and re-signed once it is [`SAS_RENEW_AFTER`] old: clients built
//!    from it are rebuilt when [`StorageAccount::generation`] changes, so a
//!    long-running process never holds an expired token.
//! 2. Otherwise `AZURE_STORAGE_ACCOUNT_NAME` with Entra ID:
//!    `WorkloadIdentityCredential` when `AZURE_FEDERATED_TOKEN_FILE`,
//!    `AZURE_CLIENT_ID` and `AZURE_TENANT_ID` are all set (AKS workload
//!    identity), else `ManagedIdentityCredential` (user-assigned with
//!    `AZURE_CLIENT_ID` when set, system-assigned otherwise). Endpoints are
//!    `https://<account>.{blob,queue}.core.windows.net/`.

use std::sync::{Arc, Mutex, PoisonError};

use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, ExponentialRetryOptions, RetryOptions};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use resume_agent_core::config::AzureStorageConfig;
use resume_agent_core::secret::Secret;
use url::Url;

use crate::connection::{ConnectionString, KeyAuth};
use crate::sas;

/// How long a locally signed SAS is valid.
pub const SAS_VALIDITY: ChronoDuration = ChronoDuration::hours(24);
/// When a locally signed SAS is replaced by a fresh one.
pub const SAS_RENEW_AFTER: ChronoDuration = ChronoDuration::hours(1);

/// Setting up the account failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// Neither a connection string nor an account name.
    #[error(
        "Azure Storage is not configured: set AZURE_STORAGE_CONNECTION_STRING (emulator, account key) or AZURE_STORAGE_ACCOUNT_NAME (Entra ID)"
    )]
    NotConfigured,
    /// A bad connection string (the text is never included).
    #[error(transparent)]
    ConnectionString(#[from] crate::connection::ConnectionStringError),
    /// A bad account name.
    #[error("AZURE_STORAGE_ACCOUNT_NAME: {0}")]
    AccountName(String),
    /// The SAS could not be signed.
    #[error(transparent)]
    Sign(#[from] sas::SignError),
    /// The Entra ID credential could not be built.
    #[error("Azure credential: {0}")]
    Credential(String),
    /// A resource name that does not fit in a URL.
    #[error("invalid storage resource name {0:?}")]
    Name(String),
}

struct Signed {
    query: Secret,
    signed_at: DateTime<Utc>,
    generation: u64,
}

enum Auth {
    Key {
        account: String,
        key: Secret,
        allow_http: bool,
        current: Mutex<Option<Signed>>,
    },
    Sas(Secret),
    Token {
        credential: Arc<dyn TokenCredential>,
        kind: &'static str,
    },
}

/// One storage account: endpoints plus authorisation. Cheap to share (`Arc`).
pub struct StorageAccount {
    blob_endpoint: Url,
    queue_endpoint: Url,
    auth: Auth,
}

impl std::fmt::Debug for StorageAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

fn valid_account_name(a: &str) -> bool {
    (3..=24).contains(&a.len())
        && a.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl StorageAccount {
    /// Builds the account from the typed configuration, in the documented
    /// order (connection string first).
    ///
    /// # Errors
    /// [`AccountError`]: never includes a key or SAS.
    pub fn from_config(cfg: &AzureStorageConfig) -> Result<Arc<Self>, AccountError> {
        if let Some(cs) = &cfg.connection_string {
            return Self::from_connection_string(cs);
        }
        let Some(account) = cfg.account_name.as_deref() else {
            return Err(AccountError::NotConfigured);
        };
        if !valid_account_name(account) {
            return Err(AccountError::AccountName(
                "expected 3-24 lowercase letters and digits".into(),
            ));
        }
        let (credential, kind): (Arc<dyn TokenCredential>, &'static str) = if cfg.workload_identity
        {
            let c = azure_identity::WorkloadIdentityCredential::new(None)
                .map_err(|e| AccountError::Credential(sas::redact_sas(&e.to_string())))?;
            (c, "workload identity")
        } else {
            let options = azure_identity::ManagedIdentityCredentialOptions {
                user_assigned_id: cfg
                    .client_id
                    .clone()
                    .map(azure_identity::UserAssignedId::ClientId),
                ..Default::default()
            };
            let c = azure_identity::ManagedIdentityCredential::new(Some(options))
                .map_err(|e| AccountError::Credential(sas::redact_sas(&e.to_string())))?;
            (c, "managed identity")
        };
        let url = |svc: &str| {
            Url::parse(&format!("https://{account}.{svc}.core.windows.net/"))
                .map_err(|e| AccountError::AccountName(e.to_string()))
        };
        Ok(Arc::new(Self {
            blob_endpoint: url("blob")?,
            queue_endpoint: url("queue")?,
            auth: Auth::Token { credential, kind },
        }))
    }

    /// Builds the account from a connection string.
    ///
    /// # Errors
    /// A string that does not parse, a key that is not base64.
    pub fn from_connection_string(cs: &Secret) -> Result<Arc<Self>, AccountError> {
        let parsed = ConnectionString::parse(cs.expose())?;
        let allow_http =
            parsed.blob_endpoint.scheme() == "http" || parsed.queue_endpoint.scheme() == "http";
        let auth = match parsed.auth {
            KeyAuth::AccountKey { account, key } => Auth::Key {
                account,
                key,
                allow_http,
                current: Mutex::new(None),
            },
            KeyAuth::Sas(s) => Auth::Sas(s),
        };
        let me = Arc::new(Self {
            blob_endpoint: parsed.blob_endpoint,
            queue_endpoint: parsed.queue_endpoint,
            auth,
        });
        // Sign once now so that a bad key fails at start.
        me.sas()?;
        Ok(me)
    }

    /// What the logs may say about this account: endpoints and the kind of
    /// authorisation, never a key or token.
    #[must_use]
    pub fn describe(&self) -> String {
        let how = match &self.auth {
            Auth::Key { .. } => "account key (locally signed account SAS)",
            Auth::Sas(_) => "shared access signature from the connection string",
            Auth::Token { kind, .. } => kind,
        };
        format!(
            "StorageAccount {{ queue: {}, blob: {}, auth: {how} }}",
            self.queue_endpoint, self.blob_endpoint
        )
    }

    /// The current SAS query and its generation (None with Entra ID).
    fn sas(&self) -> Result<Option<(Secret, u64)>, AccountError> {
        match &self.auth {
            Auth::Token { .. } => Ok(None),
            Auth::Sas(s) => Ok(Some((s.clone(), 0))),
            Auth::Key {
                account,
                key,
                allow_http,
                current,
            } => {
                let now = Utc::now();
                let mut cur = current.lock().unwrap_or_else(PoisonError::into_inner);
                let fresh = cur
                    .as_ref()
                    .is_some_and(|s| now - s.signed_at < SAS_RENEW_AFTER && now >= s.signed_at);
                if !fresh {
                    let start = now - ChronoDuration::minutes(5);
                    let query =
                        sas::account_sas(account, key, start, now + SAS_VALIDITY, *allow_http)?;
                    let generation = cur.as_ref().map_or(1, |s| s.generation + 1);
                    *cur = Some(Signed {
                        query,
                        signed_at: now,
                        generation,
                    });
                }
                Ok(cur.as_ref().map(|s| (s.query.clone(), s.generation)))
            }
        }
    }

    /// Changes whenever clients must be rebuilt (a re-signed SAS).
    #[must_use]
    pub fn generation(&self) -> u64 {
        self.sas().ok().flatten().map_or(0, |(_, g)| g)
    }

    /// The Entra ID credential, if that is how requests are authorised.
    #[must_use]
    pub fn credential(&self) -> Option<Arc<dyn TokenCredential>> {
        match &self.auth {
            Auth::Token { credential, .. } => Some(credential.clone()),
            _ => None,
        }
    }

    fn resource_url(&self, base: &Url, name: &str) -> Result<(Url, u64), AccountError> {
        let ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(AccountError::Name(name.to_owned()));
        }
        let mut url = base
            .join(name)
            .map_err(|_| AccountError::Name(name.to_owned()))?;
        let generation = match self.sas()? {
            Some((q, g)) => {
                url.set_query(Some(q.expose()));
                g
            }
            None => 0,
        };
        Ok((url, generation))
    }

    /// The URL of queue `name` (with the SAS when there is one) and the
    /// generation it belongs to. Never print it: use [`sas::redact_sas`].
    ///
    /// # Errors
    /// An invalid name, a failed signature.
    pub fn queue_url(&self, name: &str) -> Result<(Url, u64), AccountError> {
        self.resource_url(&self.queue_endpoint, name)
    }

    /// The URL of blob container `name` (with the SAS when there is one).
    ///
    /// # Errors
    /// An invalid name, a failed signature.
    pub fn container_url(&self, name: &str) -> Result<(Url, u64), AccountError> {
        self.resource_url(&self.blob_endpoint, name)
    }
}

/// Client options shared by our queue and blob clients: few SDK-level
/// retries (our callers retry at their own level and time-box every call),
/// so that an outage turns into `Unavailable` within seconds.
#[must_use]
pub fn client_options() -> ClientOptions {
    ClientOptions {
        retry: RetryOptions::exponential(ExponentialRetryOptions {
            initial_delay: azure_core::time::Duration::milliseconds(100),
            max_retries: 2,
            max_total_elapsed: azure_core::time::Duration::seconds(5),
            max_delay: azure_core::time::Duration::seconds(1),
        }),
        ..ClientOptions::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::{DEV_ACCOUNT, DEV_KEY};

    fn cfg(cs: Option<&str>, account: Option<&str>) -> AzureStorageConfig {
        AzureStorageConfig {
            connection_string: cs.map(Secret::new),
            account_name: account.map(str::to_owned),
            ..AzureStorageConfig::default()
        }
    }

    #[test]
    fn a_connection_string_wins_and_urls_carry_a_sas_that_never_prints() {
        let cs = format!(
            "DefaultEndpointsProtocol=http;AccountName={DEV_ACCOUNT};AccountKey={DEV_KEY};QueueEndpoint=http://127.0.0.1:1/{DEV_ACCOUNT}"
        );
        let a = StorageAccount::from_config(&cfg(Some(&cs), Some("ignored"))).unwrap();
        let (url, generation) = a.queue_url("tasks").unwrap();
        assert_eq!(url.path(), "/devstoreaccount1/tasks");
        assert!(url.query().unwrap().contains("sig="));
        assert!(generation >= 1);
        let shown = format!("{a:?} {}", a.describe());
        assert!(
            !shown.contains("sig=") && !shown.contains(DEV_KEY),
            "{shown}"
        );
        assert!(shown.contains("locally signed"), "{shown}");
        assert!(a.credential().is_none());
        assert!(a.queue_url("Bad_Name").is_err());
        let (curl, _) = a.container_url("files").unwrap();
        assert_eq!(
            curl.as_str().split('?').next(),
            Some("http://devstoreaccount1.blob.core.windows.net/files")
        );
    }

    #[test]
    fn nothing_configured_is_an_error_naming_both_variables() {
        let e = StorageAccount::from_config(&cfg(None, None))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("AZURE_STORAGE_CONNECTION_STRING")
                && e.contains("AZURE_STORAGE_ACCOUNT_NAME"),
            "{e}"
        );
        let e = StorageAccount::from_config(&cfg(None, Some("Not A Name")))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("AZURE_STORAGE_ACCOUNT_NAME"), "{e}");
    }
}
