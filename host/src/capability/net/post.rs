//! Requests the host sends on its own behalf (webhook deliveries), through the same guard as a
//! connector's: the URL must match the policy's allowlist, the host is resolved once, every
//! address is checked (loopback, private, metadata… refused unless the rule names the host
//! exactly), and the connection goes to an address that was checked. No secrets are
//! substituted and nothing is retried here: the caller owns its retries.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Uri};

use super::NetPolicy;
use super::send::Target;

/// Why a host-originated request got no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// The guard refused the destination (allowlist or address).
    #[error("refused: {0}")]
    Refused(String),
    /// It was allowed, but connecting or sending failed.
    #[error("failed: {0}")]
    Failed(String),
}

impl NetPolicy {
    fn admit_url(&self, url: &str) -> Result<(http::request::Parts, Target), PostError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| PostError::Refused(format!("`{url}` is not a URL: {e}")))?;
        let (mut parts, ()) = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .body(())
            .map_err(|e| PostError::Refused(format!("`{url}` is not a URL: {e}")))?
            .into_parts();
        let target = self
            .admit(&mut parts)
            .map_err(|r| PostError::Refused(r.reason))?;
        Ok((parts, target))
    }

    /// Whether `url` may be sent to, as far as can be told without resolving it: the
    /// allowlist, and (for an address written in the URL) the address check. The same checks
    /// run again, with name resolution, on every send.
    pub fn check_url(&self, url: &str) -> Result<(), PostError> {
        let (_, target) = self.admit_url(url)?;
        target
            .check_literal()
            .map_err(|r| PostError::Refused(r.reason))
    }

    /// POST `body` to `url` with `headers`; the response's status.
    pub async fn post(&self, url: &str, headers: HeaderMap, body: Bytes) -> Result<u16, PostError> {
        let (mut parts, target) = self.admit_url(url)?;
        parts.headers = headers;
        let addrs = self
            .resolve_checked(&target)
            .await
            .map_err(|r| PostError::Refused(r.reason))?;
        let response = self
            .attempt(&target, &addrs, &parts, body, None)
            .await
            .map_err(|e| PostError::Failed(e.to_string()))?;
        Ok(response.status().as_u16())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::boundary::events::EventLog;
    use crate::capability::net::{NetConfig, SystemResolver};

    fn policy(rules: &[&str]) -> NetPolicy {
        let config = NetConfig {
            allow: rules.iter().map(|r| r.parse().unwrap()).collect(),
            ..NetConfig::default()
        };
        NetPolicy::new("t", config, Arc::new(SystemResolver), EventLog::new()).unwrap()
    }

    #[test]
    fn an_exact_rule_lets_its_host_be_private_whatever_the_order_and_nothing_else() {
        for rules in [
            ["http://*:*", "http://127.0.0.1:8080"],
            ["http://127.0.0.1:8080", "http://*:*"],
        ] {
            let p = policy(&rules);
            assert_eq!(
                p.check_url("http://127.0.0.1:8080/hook"),
                Ok(()),
                "{rules:?}"
            );
            assert_eq!(p.check_url("http://example.com/hook"), Ok(()), "{rules:?}");
            for inside in [
                "http://127.0.0.1:9090/",
                "http://169.254.169.254/latest/meta-data/",
                "http://[::1]:8080/",
                "http://10.0.0.7/",
                "http://[::ffff:127.0.0.1]:8080/",
            ] {
                let e = p.check_url(inside).unwrap_err().to_string();
                assert!(
                    e.contains("only a host granted by its exact name"),
                    "{inside}: {e}"
                );
            }
            let e = p.check_url("https://example.com/").unwrap_err().to_string();
            assert!(e.contains("not in the network allowlist"), "{e}");
        }
    }
}
