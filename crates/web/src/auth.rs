//! Who is calling. `AUTH_MODE=none`: everyone is `DEFAULT_OWNER_USER_ID`.
//! `AUTH_MODE=jwt`: an `Authorization: Bearer` token verified against a
//! JWKS the way Microsoft Entra ID issues them (issuer, audience, expiry,
//! not-before, an algorithm allow-list), the owner taken from a configurable
//! claim.
//!
//! The key set is cached and refreshed:
//! - **periodically**: it expires after the JWKS response's
//!   `Cache-Control: max-age` bounded to `[JWT_JWKS_MIN_REFRESH_SECS,
//!   JWT_JWKS_MAX_REFRESH_SECS]` (`JWT_JWKS_REFRESH_SECS` without one); the
//!   first token after that refreshes it, so a key withdrawn from the JWKS
//!   stops verifying within that interval;
//! - **on an unknown `kid`** (rotation), but only when the set is older
//!   than `JWT_JWKS_MIN_REFRESH_SECS`: while it is fresh an unknown `kid` is
//!   401 at once, without a fetch;
//! - **single-flight**: concurrent callers that need a refresh wait for one
//!   fetch and use its result;
//! - **with backoff** after failures (1 s doubling to 60 s): meanwhile no
//!   fetch is made; known keys keep verifying (availability over a JWKS
//!   outage) and unknown ones are 401 (503 only while no set was ever
//!   fetched).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use resume_agent_core::OwnerId;
use resume_agent_core::config::Source;
use serde_json::Value;

/// Settings of `AUTH_MODE=jwt`.
#[derive(Debug, Clone)]
pub struct JwtConfig {
    /// `JWT_ISSUER`: the exact `iss` (Entra: `https://login.microsoftonline.com/{tenant}/v2.0`).
    pub issuer: String,
    /// `JWT_AUDIENCE`: accepted `aud` values, comma-separated.
    pub audience: Vec<String>,
    /// `JWT_JWKS_URL`: where the signing keys are published.
    pub jwks_url: String,
    /// `JWT_OWNER_CLAIM` (default `oid`, falling back to `sub`).
    pub owner_claim: String,
    /// `JWT_ALGORITHMS` (default `RS256`): the allow-list.
    pub algorithms: Vec<Algorithm>,
    /// `JWT_LEEWAY_SECS` (default 60): clock skew tolerated on exp/nbf.
    pub leeway: u64,
    /// `JWT_JWKS_MIN_REFRESH_SECS` (default 10): at most one refresh per
    /// this interval when tokens name unknown keys (a flood of bogus `kid`s
    /// must not become a flood of JWKS fetches).
    pub min_refresh: Duration,
    /// `JWT_JWKS_REFRESH_SECS` (default 300): how long a fetched set is
    /// used when the response has no `Cache-Control: max-age`.
    pub refresh: Duration,
    /// `JWT_JWKS_MAX_REFRESH_SECS` (default 3600): the longest a set is used
    /// whatever `max-age` says.
    pub max_refresh: Duration,
}

/// A configuration error naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct AuthConfigError {
    /// The variable.
    pub var: &'static str,
    /// What is wrong.
    pub reason: String,
}

fn req(src: &dyn Source, var: &'static str) -> Result<String, AuthConfigError> {
    src.get(var)
        .map(|v| v.trim().to_owned())
        .ok_or(AuthConfigError {
            var,
            reason: "is required when AUTH_MODE=jwt".into(),
        })
}

impl JwtConfig {
    /// Parses the `JWT_*` variables.
    ///
    /// # Errors
    /// A missing or invalid variable, named.
    pub fn from_source(src: &dyn Source) -> Result<Self, AuthConfigError> {
        let issuer = req(src, "JWT_ISSUER")?;
        let audience: Vec<String> = req(src, "JWT_AUDIENCE")?
            .split(',')
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        let jwks_url = req(src, "JWT_JWKS_URL")?;
        if !(jwks_url.starts_with("https://") || jwks_url.starts_with("http://")) {
            return Err(AuthConfigError {
                var: "JWT_JWKS_URL",
                reason: "must be an http(s) URL".into(),
            });
        }
        let algorithms = src
            .get("JWT_ALGORITHMS")
            .unwrap_or_else(|| "RS256".into())
            .split(',')
            .map(|a| match a.trim() {
                "RS256" => Ok(Algorithm::RS256),
                "RS384" => Ok(Algorithm::RS384),
                "RS512" => Ok(Algorithm::RS512),
                "PS256" => Ok(Algorithm::PS256),
                "ES256" => Ok(Algorithm::ES256),
                "ES384" => Ok(Algorithm::ES384),
                other => Err(AuthConfigError {
                    var: "JWT_ALGORITHMS",
                    reason: format!("{other:?} is not an accepted asymmetric algorithm (RS256, RS384, RS512, PS256, ES256, ES384)"),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let num = |var: &'static str, default: u64| -> Result<u64, AuthConfigError> {
            src.get(var).map_or(Ok(default), |v| {
                v.trim().parse().map_err(|_| AuthConfigError {
                    var,
                    reason: format!("{v:?} is not a whole number of seconds"),
                })
            })
        };
        Ok(Self {
            issuer,
            audience,
            jwks_url,
            owner_claim: src.get("JWT_OWNER_CLAIM").unwrap_or_else(|| "oid".into()),
            algorithms,
            leeway: num("JWT_LEEWAY_SECS", 60)?,
            min_refresh: Duration::from_secs(num("JWT_JWKS_MIN_REFRESH_SECS", 10)?),
            refresh: Duration::from_secs(num("JWT_JWKS_REFRESH_SECS", 300)?.max(1)),
            max_refresh: Duration::from_secs(num("JWT_JWKS_MAX_REFRESH_SECS", 3600)?.max(1)),
        })
    }
}

/// Why a request is not authenticated. The message goes to the caller (in
/// the problem detail and `WWW-Authenticate`); it never echoes the token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    /// No bearer token.
    #[error("a bearer token is required")]
    Missing,
    /// A token that does not verify.
    #[error("the bearer token is invalid: {0}")]
    Invalid(String),
    /// The signing keys cannot be fetched right now.
    #[error("the token signing keys are unavailable; retry later")]
    KeysUnavailable,
}

type KeyEntry = (DecodingKey, Option<Algorithm>);

/// One fetched key set. Replaced whole on each successful fetch.
#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, KeyEntry>,
    /// When it was fetched (None: never).
    fetched: Option<Instant>,
    /// When it must be fetched again.
    expires: Option<Instant>,
    /// Bumped on each successful fetch (single-flight: a waiter that sees a
    /// newer generation uses it instead of fetching again).
    generation: u64,
}

/// Failures since the last successful fetch.
#[derive(Default)]
struct Backoff {
    failures: u32,
    retry_at: Option<Instant>,
}

const BACKOFF_BASE: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Verifies bearer tokens against a JWKS.
pub struct JwtVerifier {
    cfg: JwtConfig,
    http: reqwest::Client,
    keys: std::sync::RwLock<Arc<KeySet>>,
    /// Held while fetching: the single flight, and the backoff state.
    fetch: tokio::sync::Mutex<Backoff>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("issuer", &self.cfg.issuer)
            .finish_non_exhaustive()
    }
}

/// `max-age` of a `Cache-Control` value (`no-cache`/`no-store` → 0).
fn max_age(cache_control: &str) -> Option<Duration> {
    let mut age = None;
    for d in cache_control.split(',').map(str::trim) {
        let lower = d.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(Duration::ZERO);
        }
        if let Some(v) = lower.strip_prefix("max-age=") {
            age = v
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    age
}

impl JwtVerifier {
    /// A verifier; keys are fetched on first use (and when a token names an
    /// unknown `kid`), so a JWKS outage at start does not stop the service.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(cfg: JwtConfig) -> Result<Self, AuthConfigError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| AuthConfigError {
                var: "JWT_JWKS_URL",
                reason: format!("cannot build an HTTP client: {e}"),
            })?;
        Ok(Self {
            cfg,
            http,
            keys: std::sync::RwLock::new(Arc::new(KeySet::default())),
            fetch: tokio::sync::Mutex::new(Backoff::default()),
        })
    }

    fn current(&self) -> Arc<KeySet> {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Fetches the JWKS now, whatever the cache and the backoff say
    /// (start-up warm-up and tests); concurrent callers share one fetch.
    ///
    /// # Errors
    /// When the JWKS cannot be fetched or read.
    pub async fn refresh(&self) -> Result<usize, AuthError> {
        let mut backoff = self.fetch.lock().await;
        let set = self.fetch_locked(&mut backoff).await?;
        Ok(set.by_kid.len())
    }

    /// A refresh unless one newer than `seen` happened meanwhile (then its
    /// set), or while backing off after failures (then an error, no fetch).
    async fn refresh_after(&self, seen: u64) -> Result<Arc<KeySet>, AuthError> {
        let mut backoff = self.fetch.lock().await;
        let cur = self.current();
        if cur.generation != seen {
            return Ok(cur);
        }
        if backoff.retry_at.is_some_and(|at| Instant::now() < at) {
            return Err(AuthError::KeysUnavailable);
        }
        self.fetch_locked(&mut backoff).await
    }

    async fn fetch_locked(&self, backoff: &mut Backoff) -> Result<Arc<KeySet>, AuthError> {
        match self.fetch_set().await {
            Ok((by_kid, ttl)) => {
                let now = Instant::now();
                let ttl = ttl.unwrap_or(self.cfg.refresh).clamp(
                    self.cfg.min_refresh,
                    self.cfg.max_refresh.max(self.cfg.min_refresh),
                );
                let mut keys = self
                    .keys
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let set = Arc::new(KeySet {
                    by_kid,
                    fetched: Some(now),
                    expires: Some(now + ttl),
                    generation: keys.generation + 1,
                });
                *keys = set.clone();
                *backoff = Backoff::default();
                tracing::info!(keys = set.by_kid.len(), ?ttl, "JWKS refreshed");
                Ok(set)
            }
            Err(e) => {
                backoff.failures = backoff.failures.saturating_add(1);
                let wait = BACKOFF_BASE
                    .saturating_mul(2u32.saturating_pow(backoff.failures.saturating_sub(1).min(16)))
                    .min(BACKOFF_MAX);
                backoff.retry_at = Some(Instant::now() + wait);
                tracing::warn!(
                    failures = backoff.failures,
                    ?wait,
                    "JWKS refresh failed; backing off"
                );
                Err(e)
            }
        }
    }

    async fn fetch_set(&self) -> Result<(HashMap<String, KeyEntry>, Option<Duration>), AuthError> {
        let resp = self
            .http
            .get(&self.cfg.jwks_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| {
                tracing::warn!(error = %e.without_url(), "fetching the JWKS failed");
                AuthError::KeysUnavailable
            })?;
        let ttl = resp
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age);
        let set: JwkSet = resp.json().await.map_err(|e| {
            tracing::warn!(error = %e.without_url(), "the JWKS is not valid JSON");
            AuthError::KeysUnavailable
        })?;
        let mut by_kid = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => {
                    let alg = jwk
                        .common
                        .key_algorithm
                        .and_then(|a| a.to_string().parse::<Algorithm>().ok());
                    by_kid.insert(kid, (key, alg));
                }
                Err(e) => tracing::warn!(kid, error = %e, "skipping an unusable JWKS key"),
            }
        }
        Ok((by_kid, ttl))
    }

    async fn key(&self, kid: &str) -> Result<KeyEntry, AuthError> {
        let unknown = || AuthError::Invalid("unknown signing key".into());
        let set = self.current();
        let now = Instant::now();
        let expired = set.expires.is_none_or(|e| now >= e);
        if let Some(k) = set.by_kid.get(kid) {
            if !expired {
                return Ok(k.clone());
            }
            // Time for the periodic refresh: the key must still be listed.
            return match self.refresh_after(set.generation).await {
                Ok(fresh) => fresh.by_kid.get(kid).cloned().ok_or_else(unknown),
                // The JWKS is unreachable: keep verifying with what we had.
                Err(_) => Ok(k.clone()),
            };
        }
        let fresh = set
            .fetched
            .is_some_and(|t| now.duration_since(t) < self.cfg.min_refresh);
        if fresh && !expired {
            return Err(unknown());
        }
        // Unknown key: the issuer may have rotated; refresh (once for all).
        match self.refresh_after(set.generation).await {
            Ok(fresh) => fresh.by_kid.get(kid).cloned().ok_or_else(unknown),
            Err(_) if set.fetched.is_some() => Err(unknown()),
            Err(e) => Err(e),
        }
    }

    /// Verifies a token and returns its owner.
    ///
    /// # Errors
    /// [`AuthError`] with a reason fit for the caller.
    pub async fn verify(&self, token: &str) -> Result<OwnerId, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::Invalid("malformed token or unsupported algorithm".into()))?;
        if !self.cfg.algorithms.contains(&header.alg) {
            return Err(AuthError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Invalid("the token names no key (kid)".into()))?;
        let (key, key_alg) = self.key(&kid).await?;
        if key_alg.is_some_and(|a| a != header.alg) {
            return Err(AuthError::Invalid(
                "the algorithm does not match the key".into(),
            ));
        }
        let mut v = Validation::new(header.alg);
        v.algorithms.clone_from(&self.cfg.algorithms);
        v.set_issuer(&[&self.cfg.issuer]);
        v.set_audience(&self.cfg.audience);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        v.validate_exp = true;
        v.validate_nbf = true;
        v.leeway = self.cfg.leeway;
        let data =
            jsonwebtoken::decode::<HashMap<String, Value>>(token, &key, &v).map_err(|e| {
                use jsonwebtoken::errors::ErrorKind as K;
                AuthError::Invalid(
                    match e.kind() {
                        K::ExpiredSignature => "the token has expired",
                        K::ImmatureSignature => "the token is not valid yet",
                        K::InvalidIssuer => "wrong issuer",
                        K::InvalidAudience => "wrong audience",
                        K::InvalidSignature => "bad signature",
                        K::MissingRequiredClaim(_) => "a required claim is missing",
                        _ => "the token does not verify",
                    }
                    .into(),
                )
            })?;
        let owner = data
            .claims
            .get(&self.cfg.owner_claim)
            .or_else(|| data.claims.get("sub"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                AuthError::Invalid(format!("no {} or sub claim", self.cfg.owner_claim))
            })?;
        OwnerId::parse(owner).map_err(|e| AuthError::Invalid(e.to_string()))
    }
}

/// How callers are identified.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Everyone is this owner.
    None(OwnerId),
    /// Bearer tokens.
    Jwt(std::sync::Arc<JwtVerifier>),
}

/// The bearer token of a request, if any.
#[must_use]
pub fn bearer(headers: &axum::http::HeaderMap) -> Option<&str> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::max_age;
    use std::time::Duration;

    #[test]
    fn cache_control_max_age() {
        assert_eq!(
            max_age("public, max-age=3600"),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(max_age("max-age=\"5\""), Some(Duration::from_secs(5)));
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(max_age("max-age=x"), None);
    }
}
