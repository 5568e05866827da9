//! The one retry policy: exponential backoff with full jitter, up to a time
//! limit, a log line per attempt. Only transient errors are retried.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::Retry;

/// How long and how often to try again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Give up once this much time has passed since the first attempt.
    pub limit: Duration,
    /// The first wait; it doubles up to `max_wait`.
    pub first_wait: Duration,
    /// The longest wait between two attempts.
    pub max_wait: Duration,
}

impl Default for RetryPolicy {
    /// Two minutes: long enough to ride out a store or broker restart.
    fn default() -> Self {
        RetryPolicy {
            limit: Duration::from_secs(120),
            first_wait: Duration::from_millis(50),
            max_wait: Duration::from_secs(5),
        }
    }
}

/// An error that can say whether trying again may help.
pub trait Retryable: std::fmt::Display {
    /// Transient or fatal.
    fn retry(&self) -> Retry;
}

impl Retryable for crate::StoreError {
    fn retry(&self) -> Retry {
        self.retry
    }
}

impl Retryable for crate::BusError {
    fn retry(&self) -> Retry {
        self.retry
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1`: doubling from `first_wait`, capped,
    /// with jitter in its upper half so that many clients do not retry in step.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let cap = self.first_wait.saturating_mul(1u32 << attempt.min(16)).min(self.max_wait);
        let cap_ms = cap.as_millis().max(1) as u64;
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let mut x = (nanos as u64) ^ 0x9e37_79b9_7f4a_7c15 ^ (attempt as u64);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        Duration::from_millis(cap_ms / 2 + x % (cap_ms / 2 + 1))
    }

    /// Runs `op` until it succeeds, fails fatally, or the time limit runs out;
    /// `what` names the operation in the log line of each failed attempt.
    pub async fn run<T, E, F, Fut>(&self, what: &str, mut op: F) -> Result<T, E>
    where
        E: Retryable,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let started = Instant::now();
        let mut attempt = 0u32;
        loop {
            match op().await {
                Ok(v) => {
                    if attempt > 0 {
                        tracing::info!("{what}: succeeded after {} attempts", attempt + 1);
                    }
                    return Ok(v);
                }
                Err(e) => match self.wait_after(what, &e, attempt, started) {
                    Some(wait) => {
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                    }
                    None => return Err(e),
                },
            }
        }
    }

    /// After failed attempt `attempt` (from 0) of an operation begun at
    /// `started`: how long to wait before the next one, logged, or None when
    /// the error is fatal or the time limit is spent. For loops that cannot
    /// hand [`RetryPolicy::run`] a closure (an operation borrowing mutably).
    pub fn wait_after<E: Retryable>(&self, what: &str, e: &E, attempt: u32, started: Instant) -> Option<Duration> {
        if e.retry() != Retry::Transient || started.elapsed() >= self.limit {
            return None;
        }
        let wait = self.backoff(attempt);
        tracing::warn!("{what}: attempt {} failed, retrying in {wait:?}: {e}", attempt + 1);
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreError;

    #[test]
    fn backoff_grows_and_stays_capped() {
        let p = RetryPolicy::default();
        assert!(p.backoff(0) <= Duration::from_millis(50));
        assert!(p.backoff(3) >= Duration::from_millis(200) && p.backoff(3) <= Duration::from_millis(400));
        assert!(p.backoff(30) <= Duration::from_secs(5));
    }

    #[tokio::test]
    async fn transient_errors_are_retried_and_fatal_ones_are_not() {
        let p = RetryPolicy {
            limit: Duration::from_secs(5),
            first_wait: Duration::from_millis(1),
            max_wait: Duration::from_millis(2),
        };
        let mut calls = 0;
        let r: Result<u32, StoreError> = p
            .run("write", || {
                calls += 1;
                let n = calls;
                async move {
                    if n < 3 {
                        Err(StoreError::transient("locked"))
                    } else {
                        Ok(n)
                    }
                }
            })
            .await;
        assert_eq!(r.unwrap(), 3);
        let mut calls = 0;
        let r: Result<(), StoreError> = p
            .run("write", || {
                calls += 1;
                async { Err(StoreError::fatal("disk full")) }
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls, 1);
    }

    #[tokio::test]
    async fn gives_up_after_the_limit() {
        let p = RetryPolicy {
            limit: Duration::from_millis(30),
            first_wait: Duration::from_millis(5),
            max_wait: Duration::from_millis(10),
        };
        let started = Instant::now();
        let mut attempts = 0u32;
        let r: Result<(), StoreError> = p
            .run("write", || {
                attempts += 1;
                async { Err(StoreError::transient("down")) }
            })
            .await;
        let took = started.elapsed();
        assert!(r.unwrap_err().is_transient());
        // Waits of 2.5-5 ms, then 5-10 ms, ...: more than one attempt, and it
        // went on for the whole limit but not much past it.
        assert!(attempts >= 3, "only {attempts} attempts within the limit");
        assert!(took >= Duration::from_millis(30), "gave up after {took:?}, before the limit");
        assert!(took < Duration::from_millis(30 + 200), "went on for {took:?}, past the limit");
    }
}
