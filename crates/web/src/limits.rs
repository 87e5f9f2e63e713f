//! Per-owner limits a public API needs: a request rate limit (token bucket,
//! 429 with `Retry-After`) and a cap on concurrent event streams.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A token bucket per owner. `rate == 0` disables it.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// `rate` requests per second with bursts of `burst`.
    #[must_use]
    pub fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst: burst.max(1.0),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `owner`; `Err(wait)` when none is left.
    ///
    /// # Errors
    /// How long until a token is available.
    pub fn check(&self, owner: &str) -> Result<(), Duration> {
        self.bucket(owner, true)
    }

    /// Like [`RateLimiter::check`] without taking the token: is one there?
    ///
    /// # Errors
    /// How long until a token is available.
    pub fn peek(&self, key: &str) -> Result<(), Duration> {
        self.bucket(key, false)
    }

    fn bucket(&self, owner: &str, take: bool) -> Result<(), Duration> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        // Forget idle owners now and then so the map stays bounded.
        if map.len() > 100_000 {
            let idle = Duration::from_secs_f64(self.burst / self.rate);
            map.retain(|_, (_, t)| now.duration_since(*t) < idle);
        }
        let (tokens, last) = map.entry(owner.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            if take {
                *tokens -= 1.0;
            }
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
}

/// The client's address for the per-client limit: the TCP peer, or with
/// `TRUST_FORWARDED_FOR` the last `X-Forwarded-For` entry (the one the
/// nearest proxy appended; earlier ones are the client's to forge).
fn client_key(req: &axum::extract::Request, trust_forwarded_for: bool) -> Option<String> {
    if trust_forwarded_for
        && let Some(last) = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .and_then(|v| v.parse::<std::net::IpAddr>().ok())
    {
        return Some(last.to_string());
    }
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// Middleware: the per-client-address limit on failed authentication
/// (`RATE_LIMIT_IP_RPS`), checked **before** authentication: a client
/// address whose bucket is empty is answered 429 without its token being
/// looked at (no signature check, no key fetch); each 401 it earns takes a
/// token. Requests that authenticate take none, so legitimate traffic —
/// also many clients behind one proxy address — is limited per owner
/// (`RATE_LIMIT_RPS`) only, while a flood of missing or bogus tokens from
/// one address is cut to the rate. Health, readiness and metrics are exempt.
pub async fn per_client(
    axum::extract::State(st): axum::extract::State<crate::AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = req.uri().path();
    let exempt = matches!(path, "/api/health" | "/api/ready" | "/metrics");
    let key = if exempt {
        None
    } else {
        client_key(&req, st.trust_forwarded_for)
    };
    if let Some(key) = &key
        && let Err(wait) = st.ip_rate.peek(key)
    {
        return crate::error::ApiError::TooManyRequests(wait.as_secs().max(1)).into_response();
    }
    let resp = next.run(req).await;
    if let Some(key) = &key
        && resp.status() == axum::http::StatusCode::UNAUTHORIZED
    {
        let _ = st.ip_rate.check(key);
    }
    resp
}

/// Per-owner queued counts, re-read from the store at most once per
/// [`QUEUED_TTL`] per owner and web process, and counted up locally in
/// between: the quota costs the submission hot path a map lookup, not an
/// index scan of up to `OWNER_MAX_QUEUED_TASKS` entries per request.
#[derive(Debug, Default)]
pub struct QueuedCounts {
    map: Mutex<HashMap<String, (i64, Instant)>>,
}

/// How stale a cached queued count may be.
pub const QUEUED_TTL: Duration = Duration::from_secs(1);

impl QueuedCounts {
    fn cached(&self, owner: &str) -> Option<i64> {
        let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(owner)
            .filter(|(_, at)| at.elapsed() < QUEUED_TTL)
            .map(|(n, _)| *n)
    }

    fn set(&self, owner: &str, n: i64) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() > 100_000 {
            map.retain(|_, (_, at)| at.elapsed() < QUEUED_TTL);
        }
        map.insert(owner.to_owned(), (n, Instant::now()));
    }

    fn add(&self, owner: &str, n: i64) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((count, _)) = map.get_mut(owner) {
            *count += n;
        }
    }
}

/// 429 when the owner has `OWNER_MAX_QUEUED_TASKS` queued already (or
/// would pass it with `adding` more: a batch). The count comes from the
/// store at most once a second per owner (see [`QueuedCounts`]), so the cap
/// may be passed by what other web processes accept within that second, and
/// a refusal may last up to a second after tasks have drained.
///
/// # Errors
/// [`ApiError::QueuedQuota`](crate::error::ApiError::QueuedQuota), or the store's.
pub async fn check_queued_quota(
    st: &crate::AppState,
    owner: &resume_agent_core::OwnerId,
    adding: u32,
) -> Result<(), crate::error::ApiError> {
    let max = st.quotas.max_queued_tasks;
    if max == 0 {
        return Ok(());
    }
    let queued = match st.queued.cached(owner.as_str()) {
        Some(n) => n,
        None => {
            let n = st.deps.tasks.owner_queued_tasks(owner, max).await?;
            st.queued.set(owner.as_str(), n);
            n
        }
    };
    if queued.saturating_add(i64::from(adding)) > i64::from(max) {
        return Err(crate::error::ApiError::QueuedQuota(format!(
            "the owner has {queued} tasks queued and the quota is {max}; retry when some have run"
        )));
    }
    st.queued.add(owner.as_str(), i64::from(adding));
    Ok(())
}

/// Caps on open event streams: per owner and in all.
#[derive(Debug)]
pub struct StreamLimits {
    per_owner: usize,
    total: usize,
    open: Mutex<(usize, HashMap<String, usize>)>,
}

/// Why a stream was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum StreamRefused {
    /// This owner has too many open (429).
    Owner,
    /// The process has too many open (503).
    Total,
}

/// Holds one stream slot; released on drop.
#[derive(Debug)]
pub struct StreamSlot {
    limits: Arc<StreamLimits>,
    owner: String,
}

impl StreamLimits {
    /// At most `per_owner` streams per owner and `total` in all.
    #[must_use]
    pub fn new(per_owner: usize, total: usize) -> Arc<Self> {
        Arc::new(Self {
            per_owner,
            total,
            open: Mutex::new((0, HashMap::new())),
        })
    }

    /// Takes a slot for `owner`.
    ///
    /// # Errors
    /// Which cap is reached.
    pub fn acquire(self: &Arc<Self>, owner: &str) -> Result<StreamSlot, StreamRefused> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open.0 >= self.total {
            return Err(StreamRefused::Total);
        }
        let n = open.1.entry(owner.to_owned()).or_insert(0);
        if *n >= self.per_owner {
            return Err(StreamRefused::Owner);
        }
        *n += 1;
        open.0 += 1;
        Ok(StreamSlot {
            limits: self.clone(),
            owner: owner.to_owned(),
        })
    }

    /// Streams open now.
    #[must_use]
    pub fn open(&self) -> usize {
        self.open.lock().unwrap_or_else(PoisonError::into_inner).0
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self
            .limits
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.0 = open.0.saturating_sub(1);
        if let Some(n) = open.1.get_mut(&self.owner) {
            *n -= 1;
            if *n == 0 {
                open.1.remove(&self.owner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_refill_and_refuse() {
        let r = RateLimiter::new(10.0, 3.0);
        for _ in 0..3 {
            assert!(r.check("a").is_ok());
        }
        let wait = r.check("a").unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::ZERO);
        assert!(r.check("b").is_ok(), "owners are separate");
        assert!(RateLimiter::new(0.0, 1.0).check("a").is_ok());
        let p = RateLimiter::new(10.0, 1.0);
        assert!(
            p.peek("a").is_ok() && p.peek("a").is_ok(),
            "peek takes nothing"
        );
        assert!(p.check("a").is_ok());
        assert!(p.peek("a").is_err());
    }

    #[test]
    fn stream_slots_are_capped_and_released() {
        let l = StreamLimits::new(2, 3);
        let a1 = l.acquire("a").unwrap();
        let _a2 = l.acquire("a").unwrap();
        assert_eq!(l.acquire("a").unwrap_err(), StreamRefused::Owner);
        let _b = l.acquire("b").unwrap();
        assert_eq!(l.acquire("c").unwrap_err(), StreamRefused::Total);
        drop(a1);
        let _a3 = l.acquire("a").unwrap();
        assert_eq!(l.open(), 3);
    }
}
