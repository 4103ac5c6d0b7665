//! What a connector may touch. Everything is denied unless a grant names it, and a grant can
//! only narrow what the connector's [`Manifest`] requests: [`Grant::check`] turns the pair into
//! the [`Capabilities`] a sandbox is built from, or refuses before anything runs.
//!
//! - [`fs`]: preopened directories over cap-std (read-only for sources);
//! - [`net`]: outbound HTTP through the host's send hook (allowlist, SSRF guard, TLS, limits);
//! - [`secrets`]: values bound to outbound destinations (or a database URL), or handed inside
//!   when requested;
//! - [`sql`]: databases through the host: read-only for sources, one schema for destinations;
//! - [`bundle`]: read-only files packed into the component itself (not granted: carried).

pub mod allow;
pub mod bundle;
pub mod fs;
pub mod manifest;
pub mod net;
pub mod request;
pub mod secrets;
pub mod sql;

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

pub use fs::{Access, DirGrant, Preopen};
pub use manifest::{Manifest, ManifestError};
pub use net::{NetConfig, NetGrant};
pub use secrets::{Secret, SecretGrant};
pub use sql::{Database, SqlGrant};

use crate::protocol::ConnectorKind;

/// The capabilities a connection grants one connector, as the connection file writes them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Host directories the connector sees, each at a path of its own.
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
    /// Outbound HTTP; absent means no network at all.
    #[serde(default)]
    pub network: Option<NetGrant>,
    /// Secrets bound to outbound destinations (or handed inside).
    #[serde(default)]
    pub secrets: Vec<SecretGrant>,
    /// Databases, reached through the host.
    #[serde(default)]
    pub sql: Vec<SqlGrant>,
}

/// A grant checked against a manifest: exactly what the connector's sandboxes get.
#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    /// Directories to preopen.
    pub dirs: Vec<Preopen>,
    /// Outbound HTTP.
    pub net: NetConfig,
    /// Secrets substituted into the connector's config (requested in its manifest).
    pub inside: Vec<Secret>,
    /// Databases it may open.
    pub sql: Vec<std::sync::Arc<Database>>,
    /// Every secret the grant loaded (for scrubbing and the audit log).
    pub secrets: Vec<Secret>,
}

/// Where a grant is checked: the paths it is relative to, the run's call timeout, and the
/// stored secrets opened for it.
#[derive(Debug, Clone, Copy)]
pub struct GrantEnv<'a> {
    /// Relative paths in the grant are relative to this (the connection file's directory).
    pub base: &'a Path,
    /// The folder SQLite grants' files live in: `DATA_DIR/warehouse/` for connection files,
    /// `DATA_DIR/workspaces/WORKSPACE/warehouse/` for a workspace's connections.
    pub warehouse: &'a Path,
    /// Statement timeouts must stay below it.
    pub call_timeout: Duration,
    /// Values of `stored = true` secrets.
    pub stored: &'a std::collections::BTreeMap<String, secrecy::SecretString>,
}

/// Why a grant cannot be given. Each names the field of the connection file to change.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct GrantError {
    /// `source.grant.network.allow[1]`, …
    pub field: String,
    /// What is wrong and what to do.
    pub reason: String,
}

fn err(field: impl Into<String>, reason: impl Into<String>) -> GrantError {
    GrantError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// Everything in a grant that decides where one secret's value can end up: its destinations and
/// places in a request, whether the connector holds it, the network rules (and CA) its
/// requests go out under, and the database URLs that use it. A stored secret may be kept across
/// a change of its grant only if this stays the same.
#[derive(Debug, Clone, PartialEq)]
pub struct SecretReach {
    to: Vec<String>,
    places: Option<(Vec<String>, Vec<String>)>,
    inside: bool,
    network: Option<(Vec<String>, Option<std::path::PathBuf>)>,
    sql: Vec<String>,
}

impl SecretReach {
    /// Whether the connector holds the value (substituted into its config).
    pub fn inside(&self) -> bool {
        self.inside
    }

    /// What differs between `self` (before) and `other` (after), in the grant's words; `None`
    /// when the value would go exactly where it went.
    pub fn change(&self, other: &SecretReach) -> Option<&'static str> {
        if self.to != other.to {
            Some("its `to` list changed")
        } else if self.places != other.places {
            Some("the headers or query parameters it goes in changed")
        } else if self.inside != other.inside {
            Some("whether the connector holds it changed")
        } else if self.network != other.network {
            Some("the grant's network rules changed")
        } else if self.sql != other.sql {
            Some("a database URL that uses it changed")
        } else {
            None
        }
    }
}

impl Grant {
    /// Where secret `name`'s value can end up under this grant.
    pub fn reach_of(&self, name: &str) -> SecretReach {
        let s = self.secrets.iter().find(|s| s.name == name);
        let to: Vec<String> = s
            .map(|s| s.to.iter().map(|r| r.to_string()).collect())
            .unwrap_or_default();
        let inside = s.is_some_and(|s| s.inside);
        let network = (!to.is_empty() || inside).then(|| {
            self.network.as_ref().map_or((Vec::new(), None), |n| {
                (
                    n.allow.iter().map(|r| r.to_string()).collect(),
                    n.ca_file.clone(),
                )
            })
        });
        let sql = self
            .sql
            .iter()
            .filter_map(|g| g.url.as_deref())
            .filter(|u| {
                secrets::placeholders(u)
                    .iter()
                    .any(|p| p.split('|').next() == Some(name))
            })
            .map(str::to_string)
            .collect();
        SecretReach {
            places: s.map(|s| (s.headers.clone(), s.query.clone())),
            to,
            inside,
            network,
            sql,
        }
    }
    /// Check this grant (of the connection side `side`, with paths relative to `base`) against
    /// what `manifest` requests. The directories must already be resolved (`dirs`, in the order of
    /// [`Grant::dirs`]); secrets are loaded here.
    pub fn check(
        &self,
        side: &str,
        manifest: &Manifest,
        dirs: &[Preopen],
        env: &GrantEnv<'_>,
    ) -> Result<Capabilities, GrantError> {
        let GrantEnv {
            base,
            warehouse,
            call_timeout,
            stored,
        } = *env;
        let req = &manifest.capabilities;
        let name = &manifest.name;

        let mut preopens = Vec::new();
        for (i, (grant, resolved)) in self.dirs.iter().zip(dirs).enumerate() {
            let field = format!("{side}.grant.dirs[{i}]");
            let Some(asked) = req.dirs.iter().find(|d| d.guest == grant.guest) else {
                let asked: Vec<_> = req.dirs.iter().map(|d| d.guest.as_str()).collect();
                return Err(err(
                    field,
                    format!(
                        "`{name}` does not ask for a directory at `{}` (it asks for {}); a grant \
                         can only narrow what the connector requests",
                        grant.guest,
                        if asked.is_empty() {
                            "none".to_string()
                        } else {
                            asked.join(", ")
                        }
                    ),
                ));
            };
            // Sources only ever read, whatever they ask for.
            let most = match manifest.kind {
                ConnectorKind::Source => Access::ReadOnly,
                ConnectorKind::Destination => asked.access,
            };
            let access = match grant.access {
                None => most,
                Some(Access::ReadOnly) => Access::ReadOnly,
                Some(Access::ReadWrite) if most == Access::ReadWrite => Access::ReadWrite,
                Some(Access::ReadWrite) => {
                    return Err(err(
                        field,
                        format!(
                            "`{name}` may only read `{}` ({}); read-write cannot be granted",
                            grant.guest,
                            if manifest.kind == ConnectorKind::Source {
                                "sources are read-only"
                            } else {
                                "its manifest asks for read-only"
                            }
                        ),
                    ));
                }
            };
            preopens.push(Preopen {
                access,
                ..resolved.clone()
            });
        }

        let mut net = match &self.network {
            None => NetConfig::default(),
            Some(g) => {
                for (i, rule) in g.allow.iter().enumerate() {
                    if !req.network.iter().any(|r| r.covers(rule)) {
                        return Err(err(
                            format!("{side}.grant.network.allow[{i}]"),
                            format!(
                                "`{rule}` is outside what `{name}` requests ({}); a grant can \
                                 only narrow the request",
                                if req.network.is_empty() {
                                    "no network".to_string()
                                } else {
                                    req.network
                                        .iter()
                                        .map(|r| r.to_string())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                }
                            ),
                        ));
                    }
                }
                let mut config = g
                    .config(call_timeout)
                    .map_err(|e| err(format!("{side}.grant.network"), e.to_string()))?;
                config.ca_file = g.ca_file.as_ref().map(|p| base.join(p));
                config
            }
        };

        let for_sql = sql::url_secrets(&self.sql);
        let mut loaded = Vec::new();
        let mut inside = Vec::new();
        for (i, s) in self.secrets.iter().enumerate() {
            let field = format!("{side}.grant.secrets[{i}]");
            if self.secrets[..i].iter().any(|o| o.name == s.name) {
                return Err(err(field, format!("secret `{}` is bound twice", s.name)));
            }
            if s.inside && !req.secrets.iter().any(|r| r.name == s.name) {
                return Err(err(
                    field,
                    format!(
                        "`{name}` does not ask to hold secret `{}` inside its sandbox; bind it to \
                         destinations with `to` instead, and the host substitutes it in requests",
                        s.name
                    ),
                ));
            }
            if !s.inside && s.to.is_empty() && !for_sql.contains(&s.name) {
                return Err(err(
                    field,
                    format!(
                        "secret `{}` is bound to no destination: list where it may be sent in \
                         `to`, or use it in a `sql` grant's `url`",
                        s.name
                    ),
                ));
            }
            for (j, rule) in s.to.iter().enumerate() {
                if !net.allow.iter().any(|a| a.covers(rule)) {
                    return Err(err(
                        format!("{field}.to[{j}]"),
                        format!("`{rule}` is not in `{side}.grant.network.allow`"),
                    ));
                }
            }
            let secret = s
                .load(base, stored)
                .map_err(|e| err(field, e.to_string()))?;
            if s.inside {
                inside.push(secret.clone());
            }
            loaded.push(secret.clone());
            if !s.to.is_empty() || s.inside {
                net.secrets.push(secret);
            }
        }

        let mut databases = Vec::new();
        for (i, g) in self.sql.iter().enumerate() {
            let field = format!("{side}.grant.sql[{i}]");
            if self.sql[..i].iter().any(|o| o.name == g.name) {
                return Err(err(
                    field,
                    format!("database `{}` is granted twice", g.name),
                ));
            }
            let db = g
                .check(&field, manifest, &loaded, warehouse, call_timeout)
                .map_err(|(field, reason)| err(field, reason))?;
            databases.push(std::sync::Arc::new(db));
        }

        Ok(Capabilities {
            dirs: preopens,
            net,
            inside,
            sql: databases,
            secrets: loaded,
        })
    }
}

impl Capabilities {
    /// The connector's config with inside secrets substituted for their placeholders. A
    /// placeholder of a secret that is not inside stays: the send hook substitutes it.
    pub fn config_for_connector(&self, config: &str) -> String {
        if self.inside.is_empty() || !secrets::has_placeholder(config) {
            return config.to_string();
        }
        secrets::substitute::<std::convert::Infallible>(config, |name| {
            Ok(match self.inside.iter().find(|s| s.name == name) {
                // JSON-escape the value: it lands inside a JSON string.
                Some(s) => {
                    let quoted = serde_json::to_string(s.expose()).unwrap_or_default();
                    quoted[1..quoted.len().saturating_sub(1)].to_string()
                }
                None => format!("{{{{secret:{name}}}}}"),
            })
        })
        .unwrap_or_else(|e| match e {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(text: &str) -> Manifest {
        Manifest::parse(&format!("name = \"c\"\nversion = \"1\"\n{text}")).unwrap()
    }

    fn grant(text: &str) -> Grant {
        toml::from_str(text).unwrap()
    }

    fn check(g: &Grant, m: &Manifest) -> Result<Capabilities, GrantError> {
        let dirs: Vec<Preopen> = g
            .dirs
            .iter()
            .map(|d| Preopen {
                host: "/tmp".into(),
                guest: d.guest.clone(),
                access: Access::ReadWrite,
            })
            .collect();
        g.check(
            "source",
            m,
            &dirs,
            &GrantEnv {
                base: Path::new("/"),
                warehouse: Path::new("/data/warehouse"),
                call_timeout: Duration::from_secs(60),
                stored: &Default::default(),
            },
        )
    }

    #[test]
    fn network_grants_must_fall_inside_the_request() {
        let m =
            manifest("kind = \"source\"\n[capabilities]\nnetwork = [\"https://*.example.com\"]");
        let ok = check(
            &grant("[network]\nallow = [\"https://api.example.com\"]"),
            &m,
        )
        .unwrap();
        assert_eq!(ok.net.allow.len(), 1);
        let e = check(&grant("[network]\nallow = [\"https://evil.com\"]"), &m).unwrap_err();
        assert_eq!(e.field, "source.grant.network.allow[0]");
        assert!(e.reason.contains("https://*.example.com"), "{e}");
        let none = manifest("kind = \"source\"");
        let e = check(
            &grant("[network]\nallow = [\"https://api.example.com\"]"),
            &none,
        )
        .unwrap_err();
        assert!(e.reason.contains("no network"), "{e}");
    }

    #[test]
    fn directories_must_be_requested_and_sources_only_read() {
        let m = manifest(
            "kind = \"source\"\n[capabilities]\ndirs = [{ guest = \"/input\", access = \"read-write\" }]",
        );
        let caps = check(&grant("dirs = [{ host = \".\", guest = \"/input\" }]"), &m).unwrap();
        assert_eq!(
            caps.dirs[0].access,
            Access::ReadOnly,
            "a source never writes"
        );
        let e = check(&grant("dirs = [{ host = \".\", guest = \"/etc\" }]"), &m).unwrap_err();
        assert!(e.reason.contains("/input"), "{e}");
        let e = check(
            &grant("dirs = [{ host = \".\", guest = \"/input\", access = \"read-write\" }]"),
            &m,
        )
        .unwrap_err();
        assert!(e.reason.contains("read-only"), "{e}");

        let d = manifest(
            "kind = \"destination\"\n[capabilities]\ndirs = [{ guest = \"/out\", access = \"read-write\" }]",
        );
        let caps = check(&grant("dirs = [{ host = \".\", guest = \"/out\" }]"), &d).unwrap();
        assert_eq!(caps.dirs[0].access, Access::ReadWrite);
        let caps = check(
            &grant("dirs = [{ host = \".\", guest = \"/out\", access = \"read-only\" }]"),
            &d,
        )
        .unwrap();
        assert_eq!(caps.dirs[0].access, Access::ReadOnly, "narrowed");
    }

    #[test]
    fn secrets_are_bound_to_granted_destinations_and_inside_only_when_asked() {
        // SAFETY: tests in this module read this variable only.
        unsafe { std::env::set_var("SLUICE_TEST_GRANT_TOKEN", "tok-123\"x") };
        let m = manifest(
            "kind = \"source\"\n[capabilities]\nnetwork = [\"https://*\"]\nsecrets = [{ name = \"sign\", why = \"HMAC\" }]",
        );
        let g = grant(
            r#"
[network]
allow = ["https://api.example.com"]
[[secrets]]
name = "token"
env = "SLUICE_TEST_GRANT_TOKEN"
to = ["https://api.example.com"]
[[secrets]]
name = "sign"
env = "SLUICE_TEST_GRANT_TOKEN"
inside = true
"#,
        );
        let caps = check(&g, &m).unwrap();
        assert_eq!(caps.net.secrets.len(), 2);
        let config = r#"{"a":"{{secret:sign}}","b":"{{secret:token}}"}"#;
        let given = caps.config_for_connector(config);
        let v: serde_json::Value = serde_json::from_str(&given).unwrap();
        assert_eq!(v["a"], "tok-123\"x", "inside: substituted, JSON-escaped");
        assert_eq!(v["b"], "{{secret:token}}", "bound: left for the send hook");

        let outside = grant(
            r#"
[network]
allow = ["https://api.example.com"]
[[secrets]]
name = "token"
env = "SLUICE_TEST_GRANT_TOKEN"
to = ["https://other.example.com"]
"#,
        );
        let e = check(&outside, &m).unwrap_err();
        assert_eq!(e.field, "source.grant.secrets[0].to[0]");
        let not_asked = grant(
            "[[secrets]]\nname = \"token\"\nenv = \"SLUICE_TEST_GRANT_TOKEN\"\ninside = true",
        );
        let e = check(&not_asked, &m).unwrap_err();
        assert!(e.reason.contains("does not ask to hold"), "{e}");
        assert!(!e.to_string().contains("tok-123"), "never the value");
    }
}
