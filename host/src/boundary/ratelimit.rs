//! Outbound rate limits and backoff, applied by the host to every request a connector sends.
//!
//! - A GCRA limiter (`governor`) per connection and host paces requests before they leave.
//! - A `429 Too Many Requests` or `503 Service Unavailable` is retried by the host with
//!   exponential backoff and jitter (`backon`), honouring `Retry-After` (seconds or an HTTP
//!   date) when it asks for longer, until a retry budget is spent. The connector sees only the
//!   final response.

use std::num::NonZeroU32;
use std::time::{Duration, SystemTime};

use backon::BackoffBuilder;
use governor::{DefaultKeyedRateLimiter, Quota};

/// Distinct hosts one limiter tracks before it forgets idle ones; a connector spraying
/// requests over many subdomains cannot grow the host's memory without bound.
const MAX_TRACKED_HOSTS: usize = 1024;

/// How requests to one host are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second, per host.
    pub per_second: NonZeroU32,
    /// Requests allowed back to back before pacing starts.
    pub burst: NonZeroU32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: NonZeroU32::new(10).expect("non-zero"),
            burst: NonZeroU32::new(10).expect("non-zero"),
        }
    }
}

/// A GCRA limiter keyed by host, shared by every sandbox of one connection side.
#[derive(Debug)]
pub struct HostLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
}

impl HostLimiter {
    /// A limiter with `limit` for every host.
    pub fn new(limit: RateLimit) -> Self {
        let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
        HostLimiter {
            limiter: DefaultKeyedRateLimiter::keyed(quota),
        }
    }

    /// Wait until a request to `host` may leave.
    pub async fn until_ready(&self, host: &str) {
        if self.limiter.len() > MAX_TRACKED_HOSTS {
            self.limiter.retain_recent();
        }
        self.limiter.until_key_ready(&host.to_string()).await;
    }

    /// Take a request slot for `host` if one is free right now.
    pub fn try_now(&self, host: &str) -> bool {
        self.limiter.check_key(&host.to_string()).is_ok()
    }
}

/// When and how often a rate-limited request is retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: usize,
    /// Total time the host may spend waiting between attempts of one request.
    pub budget: Duration,
    /// First backoff delay (it doubles, with jitter).
    pub min_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 5,
            budget: Duration::from_secs(30),
            min_delay: Duration::from_millis(200),
        }
    }
}

/// Whether a response status asks the client to slow down and retry.
pub fn is_retryable(status: u16) -> bool {
    status == 429 || status == 503
}

/// Parse `Retry-After`: delay seconds or an HTTP date (RFC 9110 §10.2.3). A date in the past
/// means now. `None` when absent or unparseable.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The retry plan of one request: asks, after each retryable response, how long to wait, or
/// whether to give up.
#[derive(Debug)]
pub struct Backoff {
    delays: backon::ExponentialBackoff,
    budget: Duration,
    waited: Duration,
    retries: usize,
}

impl Backoff {
    /// A fresh plan under `policy`.
    pub fn new(policy: RetryPolicy) -> Self {
        let delays = backon::ExponentialBuilder::new()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.budget.max(policy.min_delay))
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(policy.max_retries)
            .build();
        Backoff {
            delays,
            budget: policy.budget,
            waited: Duration::ZERO,
            retries: 0,
        }
    }

    /// How long to wait before the next attempt, given the server's `Retry-After`, or `None`
    /// when the retries or the time budget are spent.
    pub fn next_delay(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        let backoff = self.delays.next()?;
        let delay = retry_after.map_or(backoff, |ra| ra.max(backoff));
        if self.waited + delay > self.budget {
            return None;
        }
        self.waited += delay;
        self.retries += 1;
        Some(delay)
    }

    /// Retries granted so far.
    pub fn retries(&self) -> usize {
        self.retries
    }

    /// Time waited so far.
    pub fn waited(&self) -> Duration {
        self.waited
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(90))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn backoff_grows_honours_retry_after_and_stops_at_the_budget() {
        let policy = RetryPolicy {
            max_retries: 10,
            budget: Duration::from_secs(5),
            min_delay: Duration::from_millis(100),
        };
        let mut b = Backoff::new(policy);
        let first = b.next_delay(None).unwrap();
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200));
        // The server asks for longer than the backoff: its answer wins.
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(2))),
            Some(Duration::from_secs(2))
        );
        // More than the budget left: give up, and nothing more is counted.
        assert_eq!(b.next_delay(Some(Duration::from_secs(4))), None);
        assert_eq!(b.retries(), 2);
        assert!(b.waited() <= policy.budget);
    }

    #[test]
    fn backoff_stops_after_max_retries() {
        let mut b = Backoff::new(RetryPolicy {
            max_retries: 2,
            budget: Duration::from_secs(60),
            min_delay: Duration::from_millis(1),
        });
        assert!(b.next_delay(None).is_some());
        assert!(b.next_delay(None).is_some());
        assert_eq!(b.next_delay(None), None);
    }

    #[tokio::test]
    async fn the_limiter_paces_each_host_on_its_own() {
        let l = HostLimiter::new(RateLimit {
            per_second: NonZeroU32::new(4).unwrap(),
            burst: NonZeroU32::new(1).unwrap(),
        });
        let t = std::time::Instant::now();
        for _ in 0..2 {
            l.until_ready("a.example.com").await;
        }
        // One wait of 250 ms after the first request.
        assert!(
            t.elapsed() >= Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );
        assert!(!l.try_now("a.example.com"), "a's burst is spent");
        assert!(l.try_now("b.example.com"), "another host is not slowed");
    }
}
