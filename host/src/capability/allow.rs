//! Allowlist rules: `scheme://host[:port]`, where host is exact (`api.example.com`, `127.0.0.1`,
//! `[::1]`), a subdomain wildcard (`*.example.com`) or any host (`*`, only in a manifest's
//! request), and port is a number, `*` (any), or absent (the scheme's default port).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `http` or `https`; nothing else leaves the sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// Port used when a URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// Parse `http` / `https` (case-insensitive).
    pub fn parse(s: &str) -> Option<Scheme> {
        match s.to_ascii_lowercase().as_str() {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            _ => None,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        })
    }
}

/// Which hosts a rule admits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// Exactly this host (lowercase, no trailing dot; IPv6 without brackets).
    Exact(String),
    /// Any host ending in `.` + this suffix (not the suffix itself).
    Subdomains(String),
    /// Any host at all.
    Any,
}

impl HostPattern {
    /// Whether `host` (already normalized) matches.
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => h == host,
            HostPattern::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            HostPattern::Any => true,
        }
    }

    /// Whether every host `other` matches, this one matches too.
    pub fn covers(&self, other: &HostPattern) -> bool {
        match (self, other) {
            (HostPattern::Any, _) => true,
            (_, HostPattern::Any) => false,
            (HostPattern::Exact(a), HostPattern::Exact(b)) => a == b,
            (HostPattern::Exact(_), HostPattern::Subdomains(_)) => false,
            (HostPattern::Subdomains(_), HostPattern::Exact(b)) => self.matches(b),
            (HostPattern::Subdomains(a), HostPattern::Subdomains(b)) => {
                a == b || HostPattern::Subdomains(a.clone()).matches(b)
            }
        }
    }

    /// Whether the operator named this host exactly (which lets it reach private addresses).
    pub fn is_exact(&self) -> bool {
        matches!(self, HostPattern::Exact(_))
    }
}

/// Normalize a host for comparison: lowercase, no trailing dot, IPv6 without brackets.
pub fn normalize_host(host: &str) -> String {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    match h.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) => inner.to_string(),
        None => h,
    }
}

/// One allowlist entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AllowRule {
    /// The scheme.
    pub scheme: Scheme,
    /// The hosts.
    pub host: HostPattern,
    /// The port; `None` is any port.
    pub port: Option<u16>,
}

impl AllowRule {
    /// Whether a request to `scheme://host:port` (host normalized) is admitted.
    pub fn matches(&self, scheme: Scheme, host: &str, port: u16) -> bool {
        self.scheme == scheme && self.port.is_none_or(|p| p == port) && self.host.matches(host)
    }

    /// Whether everything `other` admits, this rule admits too.
    pub fn covers(&self, other: &AllowRule) -> bool {
        self.scheme == other.scheme
            && match (self.port, other.port) {
                (None, _) => true,
                (Some(_), None) => false,
                (Some(a), Some(b)) => a == b,
            }
            && self.host.covers(&other.host)
    }
}

/// Why a text is not an allowlist entry: the entry and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{entry}` is not an allowlist entry ({why}); write scheme://host[:port], e.g. \
     `https://api.example.com`, `https://*.example.com` or `http://127.0.0.1:8080`"
)]
pub struct AllowRuleError {
    /// The text as written.
    pub entry: String,
    /// What is wrong with it.
    pub why: &'static str,
}

impl FromStr for AllowRule {
    type Err = AllowRuleError;

    fn from_str(s: &str) -> Result<AllowRule, AllowRuleError> {
        let bad = |why: &'static str| AllowRuleError {
            entry: s.to_string(),
            why,
        };
        let (scheme, rest) = s.split_once("://").ok_or_else(|| bad("no scheme"))?;
        let scheme =
            Scheme::parse(scheme).ok_or_else(|| bad("the scheme must be http or https"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(bad("no path, query or credentials"));
        }
        // Split off the port; an IPv6 literal is bracketed.
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (inner, after) = v6.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| bad("junk after `]`"))?),
            };
            inner
                .parse::<std::net::Ipv6Addr>()
                .map_err(|_| bad("bad IPv6 address"))?;
            (inner.to_string(), port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (rest.to_string(), None),
            }
        };
        let port = match port {
            None => Some(scheme.default_port()),
            Some("*") => None,
            Some(p) => Some(p.parse::<u16>().map_err(|_| bad("bad port"))?),
        };
        if host.starts_with("*.") && normalize_host(&host[2..]).is_empty() {
            return Err(bad("a wildcard covers subdomains: `*.example.com`"));
        }
        let host = normalize_host(&host);
        let pattern = if host == "*" {
            HostPattern::Any
        } else if let Some(suffix) = host.strip_prefix("*.") {
            if suffix.is_empty() || suffix.contains('*') {
                return Err(bad("a wildcard covers subdomains: `*.example.com`"));
            }
            HostPattern::Subdomains(suffix.to_string())
        } else {
            if host.is_empty() || host.contains('*') {
                return Err(bad("`*` may only start the host, as in `*.example.com`"));
            }
            if !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_'))
            {
                return Err(bad("the host has characters a host name cannot have"));
            }
            HostPattern::Exact(host)
        };
        Ok(AllowRule {
            scheme,
            host: pattern,
            port,
        })
    }
}

impl fmt::Display for AllowRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme)?;
        match &self.host {
            HostPattern::Exact(h) if h.contains(':') => write!(f, "[{h}]")?,
            HostPattern::Exact(h) => f.write_str(h)?,
            HostPattern::Subdomains(s) => write!(f, "*.{s}")?,
            HostPattern::Any => f.write_str("*")?,
        }
        match self.port {
            None => f.write_str(":*"),
            Some(p) if p == self.scheme.default_port() => Ok(()),
            Some(p) => write!(f, ":{p}"),
        }
    }
}

impl Serialize for AllowRule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AllowRule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> AllowRule {
        s.parse().unwrap()
    }

    #[test]
    fn rules_match_scheme_host_and_port() {
        let exact = r("https://api.example.com");
        assert!(exact.matches(Scheme::Https, "api.example.com", 443));
        assert!(!exact.matches(Scheme::Http, "api.example.com", 443));
        assert!(!exact.matches(Scheme::Https, "api.example.com", 8443));
        assert!(!exact.matches(Scheme::Https, "evil.api.example.com", 443));
        assert!(!exact.matches(Scheme::Https, "api.example.com.evil.net", 443));

        let wild = r("https://*.example.com");
        assert!(wild.matches(Scheme::Https, "a.example.com", 443));
        assert!(wild.matches(Scheme::Https, "a.b.example.com", 443));
        assert!(!wild.matches(Scheme::Https, "example.com", 443));
        assert!(!wild.matches(Scheme::Https, "badexample.com", 443));

        let local = r("http://127.0.0.1:8080");
        assert!(local.matches(Scheme::Http, "127.0.0.1", 8080));
        assert!(!local.matches(Scheme::Http, "127.0.0.1", 8081));
        assert!(r("http://[::1]:*").matches(Scheme::Http, "::1", 9));
        assert!(r("HTTPS://API.Example.COM.").matches(Scheme::Https, "api.example.com", 443));
    }

    #[test]
    fn narrowing_is_checked_by_cover() {
        assert!(r("https://*").covers(&r("https://api.example.com")));
        assert!(r("https://*").covers(&r("https://*.example.com")));
        assert!(!r("https://*").covers(&r("http://api.example.com")));
        assert!(!r("https://*").covers(&r("https://api.example.com:8443")));
        assert!(r("https://*:*").covers(&r("https://api.example.com:8443")));
        assert!(r("https://*.example.com").covers(&r("https://a.example.com")));
        assert!(r("https://*.example.com").covers(&r("https://*.a.example.com")));
        assert!(!r("https://*.example.com").covers(&r("https://example.com")));
        assert!(!r("https://a.example.com").covers(&r("https://*.example.com")));
        assert!(!r("https://api.example.com").covers(&r("https://*")));
        assert!(!r("http://localhost:80").covers(&r("http://localhost:*")));
    }

    #[test]
    fn bad_rules_are_refused_with_the_reason() {
        for (bad, why) in [
            ("api.example.com", "no scheme"),
            ("ftp://x.com", "http or https"),
            ("https://x.com/path", "no path"),
            ("https://user@x.com", "credentials"),
            ("https://a.*.com", "`*` may only start"),
            ("https://*.", "wildcard covers"),
            ("https://x.com:99999", "bad port"),
            ("https://[::1", "unclosed"),
            ("https://exa mple.com", "characters"),
        ] {
            let err = bad.parse::<AllowRule>().unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn rules_print_as_written() {
        for s in [
            "https://api.example.com",
            "http://127.0.0.1:8080",
            "https://*.example.com",
            "https://*",
            "http://[::1]:*",
        ] {
            assert_eq!(r(s).to_string(), s);
        }
    }
}
