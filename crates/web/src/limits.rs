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
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.rate))
        }
    }
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
