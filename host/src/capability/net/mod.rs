//! Outbound-only network: `wasi:http/outgoing-handler`, filtered by the host's send hook.
//!
//! For every request a connector sends, the host, in order:
//! 1. takes the destination from the request's absolute URL only (no URL authority, or a `Host`
//!    header that disagrees with it: refused);
//! 2. matches scheme, host and port against the grant's allowlist (nothing listed: no network);
//! 3. substitutes bound secrets for `{{secret:NAME}}` placeholders, only for destinations each
//!    secret is bound to and only in the headers and query parameters its grant names (never
//!    in a `TRACE` or `CONNECT`);
//! 4. resolves the host once and refuses loopback, private, link-local, metadata and other
//!    non-public addresses unless the operator granted that exact host by name;
//! 5. paces the request (per-host GCRA), connects to the address it checked, speaks TLS with
//!    rustls where the scheme says so, and bounds sizes and times;
//! 6. retries 429/503 with backoff inside a budget, and hands back the final response
//!    (redirects included: the connector's next request is checked again from step 1);
//! 7. refuses a response whose headers or body carry a bound secret's value;
//! 8. records every request and every refusal (method, destination, status, sizes; never
//!    headers, query strings or bodies).
//!
//! `wasi:sockets` is not in the linker at all: nothing can listen or open raw connections.

mod addr;
mod body;
mod post;
pub mod resolve;
mod send;
pub mod tls;

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

pub use super::allow::{AllowRule, HostPattern, Scheme};
pub use addr::{Special, classify, only_by_address};
pub use post::PostError;
pub use resolve::{Resolve, SystemResolver};
pub use send::HttpHooks;

use super::secrets::Secret;
use crate::boundary::events::EventLog;
use crate::boundary::ratelimit::{HostLimiter, RateLimit, RetryPolicy};
use crate::boundary::scrub::Scrubber;

/// The network part of a grant, as the connection file writes it (`[source.grant.network]`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetGrant {
    /// Where the connector may send requests: `scheme://host[:port]` entries.
    #[serde(default)]
    pub allow: Vec<AllowRule>,
    /// A PEM file of extra CA certificates to trust, besides the platform's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Sustained requests per second per host (default 10).
    #[serde(default)]
    pub requests_per_second: Option<u32>,
    /// Requests allowed back to back per host (default: the per-second rate).
    #[serde(default)]
    pub burst: Option<u32>,
    /// Retries of a 429/503 response (default 5).
    #[serde(default)]
    pub max_retries: Option<usize>,
    /// Seconds the host may spend waiting to retry one request (default 30); must be shorter
    /// than `limits.call_timeout_secs`.
    #[serde(default)]
    pub retry_budget_secs: Option<f64>,
    /// Connect, first-byte and between-bytes timeout in seconds (default 30).
    #[serde(default)]
    pub timeout_secs: Option<f64>,
    /// Largest request body in MiB (default 16).
    #[serde(default)]
    pub max_request_mib: Option<u64>,
    /// Largest response body in MiB (default 256).
    #[serde(default)]
    pub max_response_mib: Option<u64>,
}

/// Sizes and times of outbound requests.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetLimits {
    /// Connect, first-byte and between-bytes timeout.
    pub timeout: Duration,
    /// Largest request body.
    pub max_request_bytes: u64,
    /// Largest response body.
    pub max_response_bytes: u64,
}

impl Default for NetLimits {
    fn default() -> Self {
        NetLimits {
            timeout: Duration::from_secs(30),
            max_request_bytes: 16 << 20,
            max_response_bytes: 256 << 20,
        }
    }
}

/// Everything that decides what one connector may send, before it becomes a [`NetPolicy`].
#[derive(Debug, Clone, Default)]
pub struct NetConfig {
    /// The allowlist (already checked against the manifest).
    pub allow: Vec<AllowRule>,
    /// Secrets bound to outbound destinations.
    pub secrets: Vec<Secret>,
    /// Sizes and times.
    pub limits: NetLimits,
    /// Pacing per host.
    pub rate: RateLimit,
    /// Retries of 429/503.
    pub retry: RetryPolicy,
    /// Extra CA file.
    pub ca_file: Option<PathBuf>,
}

/// The largest request or response body a grant may allow, in MiB.
pub const BODY_MIB: u64 = 4096;

/// Why a grant's network settings are refused, naming the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetGrantError {
    /// A number of seconds out of range.
    #[error(
        "`network.{field}` must be a positive number of seconds, at most {}",
        crate::boundary::limits::SETTING_SECONDS
    )]
    Seconds {
        /// The setting.
        field: &'static str,
    },
    /// A count that must be at least one.
    #[error("`network.{field}` must be at least 1")]
    AtLeastOne {
        /// The setting.
        field: &'static str,
    },
    /// A body size out of range.
    #[error("`network.{field}` must be between 1 and {BODY_MIB} (MiB)")]
    Mib {
        /// The setting.
        field: &'static str,
    },
    /// A retry budget the connector could not wait out inside one call.
    #[error(
        "`network.retry_budget_secs` ({budget:?}) must be shorter than `limits.call_timeout_secs` \
         ({call_timeout:?}): the connector waits inside one call while the host retries"
    )]
    RetryBudget {
        /// The budget.
        budget: Duration,
        /// The call timeout.
        call_timeout: Duration,
    },
}

impl NetGrant {
    /// Defaults filled in and values checked; `call_timeout` bounds the retry budget (a
    /// connector waits inside one call while the host retries).
    pub fn config(&self, call_timeout: Duration) -> Result<NetConfig, NetGrantError> {
        let positive = |field: &'static str, v: Option<f64>, default: Duration| match v {
            None => Ok(default),
            Some(v) => crate::boundary::limits::seconds(v).ok_or(NetGrantError::Seconds { field }),
        };
        let defaults = NetConfig::default();
        let nonzero = |field: &'static str, v: u32| {
            NonZeroU32::new(v).ok_or(NetGrantError::AtLeastOne { field })
        };
        let mib = |field: &'static str, v: Option<u64>, default: u64| match v {
            None => Ok(default),
            Some(m) if (1..=BODY_MIB).contains(&m) => Ok(m << 20),
            Some(_) => Err(NetGrantError::Mib { field }),
        };
        let per_second = nonzero(
            "requests_per_second",
            self.requests_per_second
                .unwrap_or(defaults.rate.per_second.get()),
        )?;
        let burst = nonzero("burst", self.burst.unwrap_or(per_second.get()))?;
        let retry = RetryPolicy {
            max_retries: self.max_retries.unwrap_or(defaults.retry.max_retries),
            budget: positive(
                "retry_budget_secs",
                self.retry_budget_secs,
                defaults.retry.budget.min(call_timeout / 2),
            )?,
            ..defaults.retry
        };
        if retry.budget >= call_timeout {
            return Err(NetGrantError::RetryBudget {
                budget: retry.budget,
                call_timeout,
            });
        }
        let limits = NetLimits {
            timeout: positive("timeout_secs", self.timeout_secs, defaults.limits.timeout)?,
            max_request_bytes: mib(
                "max_request_mib",
                self.max_request_mib,
                defaults.limits.max_request_bytes,
            )?,
            max_response_bytes: mib(
                "max_response_mib",
                self.max_response_mib,
                defaults.limits.max_response_bytes,
            )?,
        };
        Ok(NetConfig {
            allow: self.allow.clone(),
            secrets: Vec::new(),
            limits,
            rate: RateLimit { per_second, burst },
            retry,
            ca_file: self.ca_file.clone(),
        })
    }
}

/// What one connector may send, shared by all its sandboxes in a run.
#[derive(Debug)]
pub struct NetPolicy {
    connector: String,
    allow: Vec<AllowRule>,
    secrets: Vec<Secret>,
    limits: NetLimits,
    retry: RetryPolicy,
    limiter: HostLimiter,
    tls: Option<Arc<rustls::ClientConfig>>,
    resolver: Arc<dyn Resolve>,
    events: EventLog,
    /// The bound secrets' values in every form they travel in, looked for in responses.
    reflected: Arc<Scrubber>,
    /// Requests in flight (until their response body ends or is dropped).
    in_flight: Arc<tokio::sync::Semaphore>,
}

impl NetPolicy {
    /// A policy for `connector` from `config`; refusals and requests go to `events`.
    pub fn new(
        connector: &str,
        config: NetConfig,
        resolver: Arc<dyn Resolve>,
        events: EventLog,
    ) -> Result<NetPolicy, tls::TlsError> {
        let needs_tls = config.allow.iter().any(|r| r.scheme == Scheme::Https);
        let tls = if needs_tls || config.ca_file.is_some() {
            Some(tls::client_config(config.ca_file.as_deref())?)
        } else {
            None
        };
        let reflected = Arc::new(Scrubber::new(
            config
                .secrets
                .iter()
                .filter(|s| !s.inside)
                .map(|s| (s.name.as_str(), s.expose())),
        ));
        Ok(NetPolicy {
            reflected,
            in_flight: Arc::new(tokio::sync::Semaphore::new(
                crate::boundary::limits::HTTP_IN_FLIGHT,
            )),
            connector: connector.to_string(),
            allow: config.allow,
            secrets: config.secrets,
            limits: config.limits,
            retry: config.retry,
            limiter: HostLimiter::new(config.rate),
            tls,
            resolver,
            events,
        })
    }

    /// No network at all; every attempt is refused and recorded.
    pub fn deny_all(connector: &str, resolver: Arc<dyn Resolve>, events: EventLog) -> NetPolicy {
        NetPolicy::new(connector, NetConfig::default(), resolver, events)
            .expect("an empty policy needs no TLS set-up")
    }

    /// The connector this policy is for.
    pub fn connector(&self) -> &str {
        &self.connector
    }

    /// The allowlist.
    pub fn allow(&self) -> &[AllowRule] {
        &self.allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every number a grant carries is judged before a run: found by an outside review
    /// (`timeout_secs = 1e300` panicked a run task), and body sizes that wrapped round.
    #[test]
    fn a_grants_numbers_out_of_range_are_refused_by_name() {
        let call = Duration::from_secs(60);
        let cases: Vec<(NetGrant, &str)> = vec![
            (
                NetGrant {
                    timeout_secs: Some(1e300),
                    ..Default::default()
                },
                "timeout_secs",
            ),
            (
                NetGrant {
                    timeout_secs: Some(-1.0),
                    ..Default::default()
                },
                "timeout_secs",
            ),
            (
                NetGrant {
                    retry_budget_secs: Some(f64::NAN),
                    ..Default::default()
                },
                "retry_budget_secs",
            ),
            (
                NetGrant {
                    retry_budget_secs: Some(90.0),
                    ..Default::default()
                },
                "retry_budget_secs",
            ),
            (
                NetGrant {
                    requests_per_second: Some(0),
                    ..Default::default()
                },
                "requests_per_second",
            ),
            (
                NetGrant {
                    max_request_mib: Some(1 << 45),
                    ..Default::default()
                },
                "max_request_mib",
            ),
            (
                NetGrant {
                    max_response_mib: Some(0),
                    ..Default::default()
                },
                "max_response_mib",
            ),
        ];
        for (grant, field) in cases {
            let e = grant.config(call).unwrap_err();
            assert!(e.to_string().contains(field), "{field}: {e}");
        }
        let ok = NetGrant {
            timeout_secs: Some(30.0),
            max_response_mib: Some(BODY_MIB),
            ..Default::default()
        }
        .config(call)
        .unwrap();
        assert_eq!(ok.limits.max_response_bytes, BODY_MIB << 20);
        assert_eq!(ok.limits.timeout, Duration::from_secs(30));
    }
}
