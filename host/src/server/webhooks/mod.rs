//! Webhooks: when a run ends, every webhook of its workspace that receives that event gets a
//! signed POST ([`signature`]). Events are written to an outbox in the store first
//! ([`crate::store::Webhook`]), then delivered by one task per server ([`deliver`]): retried
//! with exponential backoff and jitter until the retries are spent, every attempt audited.
//! Deliveries go through the same guard as connectors' requests (allowlist, addresses checked
//! after resolution, connect to a checked address): a webhook URL cannot reach the server's
//! own network unless the operator named that host (`sluice serve --webhook-allow`).
//! Delivery is at least once: receivers deduplicate on `Sluice-Delivery`.

pub mod deliver;
pub mod signature;

use std::sync::Arc;
use std::time::Duration;

use crate::boundary::events::EventLog;
use crate::capability::net::tls::TlsError;
use crate::capability::net::{
    AllowRule, NetConfig, NetLimits, NetPolicy, PostError, SystemResolver,
};

/// The events a webhook can receive.
pub const EVENTS: &[&str] = &["run.succeeded", "run.failed", "run.interrupted"];

/// Where webhooks may point unless the operator says otherwise: any HTTPS host on the public
/// internet (addresses that are not public are refused after resolution).
pub const DEFAULT_ALLOW: &str = "https://*:*";

/// How webhooks are delivered.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Where webhook URLs may point (`scheme://host[:port]` rules; a host named exactly may
    /// resolve to private or loopback addresses).
    pub allow: Vec<AllowRule>,
    /// Attempts after the first before giving up.
    pub retries: usize,
    /// The first retry's delay; each next one doubles (with jitter), up to an hour.
    pub retry_delay: Duration,
    /// Connect and answer timeout of one attempt.
    pub timeout: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allow: vec![DEFAULT_ALLOW.parse().expect("the default rule parses")],
            retries: 8,
            retry_delay: Duration::from_secs(10),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The webhook sender of a server: its guard, its settings, and a bell that wakes the
/// delivery task when an event is queued.
#[derive(Debug)]
pub struct Webhooks {
    policy: NetPolicy,
    config: WebhookConfig,
    wake: tokio::sync::Notify,
}

impl Webhooks {
    /// A sender with `config`; fails when TLS cannot be set up.
    pub fn new(config: WebhookConfig) -> Result<Webhooks, TlsError> {
        let net = NetConfig {
            allow: config.allow.clone(),
            limits: NetLimits {
                timeout: config.timeout,
                max_request_bytes: 1 << 20,
                max_response_bytes: 1 << 20,
            },
            ..NetConfig::default()
        };
        let policy = NetPolicy::new("webhooks", net, Arc::new(SystemResolver), EventLog::new())?;
        Ok(Webhooks {
            policy,
            config,
            wake: tokio::sync::Notify::new(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &WebhookConfig {
        &self.config
    }

    /// Whether a webhook may point at `url` (the allowlist, and the address when the URL
    /// names one); re-checked with name resolution on every delivery.
    pub fn check_url(&self, url: &str) -> Result<(), PostError> {
        self.policy.check_url(url)
    }

    /// Wake the delivery task (an event was queued).
    pub fn notify(&self) {
        self.wake.notify_one();
    }
}

impl Default for Webhooks {
    fn default() -> Self {
        Webhooks::new(WebhookConfig::default()).expect("the platform's TLS roots load")
    }
}

/// `scheme://host:port` of a URL, for the audit log and messages (paths and queries of
/// webhook URLs often carry tokens).
pub fn origin(url: &str) -> String {
    match url.parse::<http::Uri>() {
        Ok(u) => match (u.scheme_str(), u.authority()) {
            (Some(s), Some(a)) => {
                let a = a.as_str();
                // No credentials (`user:pass@`), should a URL carry them.
                let a = a.rsplit_once('@').map_or(a, |(_, host)| host);
                format!("{s}://{a}")
            }
            _ => "(not a URL)".to_string(),
        },
        Err(_) => "(not a URL)".to_string(),
    }
}
