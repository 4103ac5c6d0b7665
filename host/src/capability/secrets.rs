//! Secrets a connection binds to a connector, and the `{{secret:NAME}}` placeholders that stand
//! for them.
//!
//! A secret is **bound to outbound hosts** by default: the connector's config holds only the
//! placeholder, the connector copies it into a header or a query value, and the host's send hook
//! substitutes the value for requests to those hosts only. The connector never holds the
//! credential, and a placeholder sent anywhere else is refused.
//!
//! A secret marked `inside = true` is substituted into the connector's config instead, for
//! connectors that must hold it (to sign requests, say). The connector's manifest must request
//! it by name, with a reason the operator sees at grant time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::allow::AllowRule;

/// The placeholder syntax: `{{secret:NAME}}`.
const OPEN: &str = "{{secret:";
const CLOSE: &str = "}}";

/// A secret as the connection file binds it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretGrant {
    /// The name placeholders use.
    pub name: String,
    /// Read the value from this environment variable of the sluice process…
    #[serde(default)]
    pub env: Option<String>,
    /// …or from this file (relative to the connection file; trailing newline removed)…
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// …or from the data dir's sealed secret store (`sluice secrets set NAME`).
    #[serde(default)]
    pub stored: bool,
    /// The outbound destinations it may be sent to (allowlist syntax).
    #[serde(default)]
    pub to: Vec<AllowRule>,
    /// The request headers it may be substituted in (case-insensitive names). With neither
    /// `headers` nor `query`, a secret bound by `to` goes in `Authorization` only.
    #[serde(default)]
    pub headers: Vec<String>,
    /// The query parameters whose value it may be substituted in.
    #[serde(default)]
    pub query: Vec<String>,
    /// Hand the value to the connector inside its config (its manifest must request it).
    #[serde(default)]
    pub inside: bool,
}

/// A secret value that never prints: `Debug` shows only the name.
#[derive(Clone)]
pub struct Secret {
    /// Its name.
    pub name: String,
    value: SecretString,
    /// Where it may be sent.
    pub to: Vec<AllowRule>,
    /// Where in a request it may be substituted.
    pub places: Places,
    /// Whether the connector receives it in its config.
    pub inside: bool,
}

/// The parts of a request a bound secret may be substituted in; nowhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Places {
    /// Header names, lower-cased.
    pub headers: Vec<String>,
    /// Query parameter names, as sent (before percent-encoding).
    pub query: Vec<String>,
}

impl Default for Places {
    /// `Authorization` only: where credentials go unless the grant says otherwise.
    fn default() -> Self {
        Places {
            headers: vec!["authorization".into()],
            query: Vec::new(),
        }
    }
}

impl Places {
    /// Whether the header `name` may carry the secret.
    pub fn header(&self, name: &str) -> bool {
        self.headers.iter().any(|h| h.eq_ignore_ascii_case(name))
    }

    /// Whether the query parameter `name` may carry the secret.
    pub fn query(&self, name: &str) -> bool {
        self.query.iter().any(|q| q == name)
    }

    /// As the grant would write it, for error messages.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .headers
            .iter()
            .map(|h| format!("header `{h}`"))
            .collect();
        parts.extend(self.query.iter().map(|q| format!("query parameter `{q}`")));
        if parts.is_empty() {
            "nowhere".into()
        } else {
            parts.join(", ")
        }
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secret")
            .field("name", &self.name)
            .field("value", &"[redacted]")
            .field("to", &self.to)
            .field("inside", &self.inside)
            .finish()
    }
}

/// Why a secret cannot be used. Never contains the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Not exactly one of `env`, `file` and `stored`.
    #[error(
        "secret `{0}` needs exactly one of `env`, `file` or `stored = true` to say where its \
         value comes from"
    )]
    Source(String),
    /// `stored = true`, but the store has no such secret.
    #[error("secret `{0}` is not in the secret store; set it with `sluice secrets set {0}`")]
    NotStored(String),
    /// The environment variable is not set.
    #[error("secret `{name}`: environment variable `{var}` is not set (or not UTF-8)")]
    Env {
        /// The secret.
        name: String,
        /// The variable.
        var: String,
    },
    /// The file cannot be read.
    #[error("secret `{name}`: cannot read {}: {reason}", path.display())]
    File {
        /// The secret.
        name: String,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The value is empty.
    #[error("secret `{0}` is empty")]
    Empty(String),
    /// Too short to be told apart from ordinary text (and so to scrub from logs).
    #[error(
        "secret `{0}` is shorter than {min} characters: too short to scrub from logs reliably",
        min = crate::boundary::scrub::MIN_LEN
    )]
    Short(String),
    /// A bad name.
    #[error("secret name `{0}` must be letters, digits, `_` or `-`")]
    Name(String),
    /// A `headers` entry that is not a header name, or an empty `query` entry.
    #[error("secret `{name}`: {place:?} is not a header or query parameter name")]
    Place {
        /// The secret.
        name: String,
        /// The entry.
        place: String,
    },
}

impl SecretGrant {
    /// Load the value: from the environment, a file relative to `base`, or `stored` (the
    /// secret store's values, opened for this run).
    pub fn load(
        &self,
        base: &Path,
        stored: &BTreeMap<String, SecretString>,
    ) -> Result<Secret, SecretError> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(SecretError::Name(self.name.clone()));
        }
        let value = match (&self.env, &self.file) {
            (None, None) if self.stored => stored
                .get(&self.name)
                .map(|v| v.expose_secret().to_string())
                .ok_or_else(|| SecretError::NotStored(self.name.clone()))?,
            _ if self.stored => return Err(SecretError::Source(self.name.clone())),
            (Some(var), None) => std::env::var(var).map_err(|_| SecretError::Env {
                name: self.name.clone(),
                var: var.clone(),
            })?,
            (None, Some(path)) => {
                let path = base.join(path);
                let mut v = std::fs::read_to_string(&path).map_err(|e| SecretError::File {
                    name: self.name.clone(),
                    path: path.clone(),
                    reason: e.kind().to_string(),
                })?;
                while v.ends_with(['\n', '\r']) {
                    v.pop();
                }
                v
            }
            _ => return Err(SecretError::Source(self.name.clone())),
        };
        let places = self.places()?;
        if value.is_empty() {
            return Err(SecretError::Empty(self.name.clone()));
        }
        if value.len() < crate::boundary::scrub::MIN_LEN {
            return Err(SecretError::Short(self.name.clone()));
        }
        Ok(Secret {
            name: self.name.clone(),
            value: SecretString::from(value),
            to: self.to.clone(),
            places,
            inside: self.inside,
        })
    }

    /// Where in a request the secret may be substituted, checked.
    pub fn places(&self) -> Result<Places, SecretError> {
        if self.headers.is_empty() && self.query.is_empty() {
            return Ok(Places::default());
        }
        let bad = |place: &str| SecretError::Place {
            name: self.name.clone(),
            place: place.to_string(),
        };
        let mut headers = Vec::new();
        for h in &self.headers {
            let name = http::HeaderName::from_bytes(h.as_bytes()).map_err(|_| bad(h))?;
            headers.push(name.as_str().to_string());
        }
        for q in &self.query {
            if q.is_empty() || secrets_syntax(q) {
                return Err(bad(q));
            }
        }
        Ok(Places {
            headers,
            query: self.query.clone(),
        })
    }
}

/// Whether a name contains characters of the placeholder or query syntax.
fn secrets_syntax(name: &str) -> bool {
    name.contains(['&', '=', '#', '{', '}'])
}

impl Secret {
    /// A secret from a value in memory (tests, the API later).
    pub fn new(name: &str, value: &str, to: Vec<AllowRule>, inside: bool) -> Secret {
        Secret {
            name: name.to_string(),
            value: SecretString::from(value.to_string()),
            to,
            places: Places::default(),
            inside,
        }
    }

    /// The same secret, substituted in `places` instead.
    pub fn in_places(self, places: Places) -> Secret {
        Secret { places, ..self }
    }

    /// The value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        self.value.expose_secret()
    }
}

/// The names of the placeholders in `text`, in order.
pub fn placeholders(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(OPEN) {
        let after = &rest[i + OPEN.len()..];
        match after.find(CLOSE) {
            Some(j) => {
                out.push(&after[..j]);
                rest = &after[j + CLOSE.len()..];
            }
            None => break,
        }
    }
    out
}

/// Replace every placeholder in `text` with what `value` returns for its name.
pub fn substitute<E>(
    text: &str,
    mut value: impl FnMut(&str) -> Result<String, E>,
) -> Result<String, E> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(OPEN) {
        let after = &rest[i + OPEN.len()..];
        let Some(j) = after.find(CLOSE) else { break };
        out.push_str(&rest[..i]);
        out.push_str(&value(&after[..j])?);
        rest = &after[j + CLOSE.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Whether `text` contains something that looks like a placeholder.
pub fn has_placeholder(text: &str) -> bool {
    text.contains(OPEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_and_substituted() {
        let t = "Bearer {{secret:token}} and {{secret:other}}";
        assert_eq!(placeholders(t), ["token", "other"]);
        let out = substitute::<()>(t, |n| Ok(n.to_uppercase())).unwrap();
        assert_eq!(out, "Bearer TOKEN and OTHER");
        assert_eq!(
            substitute::<()>("no secrets", |_| Ok("x".into())).unwrap(),
            "no secrets"
        );
        assert!(!has_placeholder("{secret:x}"));
        assert!(has_placeholder("a{{secret:x}}"));
    }

    #[test]
    fn a_secret_goes_in_authorization_unless_the_grant_names_its_places() {
        let g: SecretGrant = toml::from_str("name = \"t\"\nenv = \"X\"").unwrap();
        let p = g.places().unwrap();
        assert!(p.header("Authorization") && !p.header("x-api-key") && !p.query("key"));
        let g: SecretGrant = toml::from_str(
            "name = \"t\"\nenv = \"X\"\nheaders = [\"X-Api-Key\"]\nquery = [\"key\"]",
        )
        .unwrap();
        let p = g.places().unwrap();
        assert!(p.header("x-api-key") && p.query("key"));
        assert!(
            !p.header("authorization"),
            "naming places replaces the default"
        );
        assert!(!p.query("Key"), "parameter names are exact");
        for bad in [
            "headers = [\"bad header\"]",
            "query = [\"a=b\"]",
            "query = [\"\"]",
        ] {
            let g: SecretGrant =
                toml::from_str(&format!("name = \"t\"\nenv = \"X\"\n{bad}")).unwrap();
            assert!(
                matches!(g.places(), Err(SecretError::Place { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn secrets_never_print_and_load_from_env_or_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tok"), "s3cr3t-value\n").unwrap();
        let g = SecretGrant {
            name: "tok".into(),
            env: None,
            file: Some("tok".into()),
            stored: false,
            to: vec![],
            headers: vec![],
            query: vec![],
            inside: false,
        };
        let s = g.load(dir.path(), &BTreeMap::new()).unwrap();
        assert_eq!(s.expose(), "s3cr3t-value");
        assert!(!format!("{s:?}").contains("s3cr3t"));

        let missing = SecretGrant {
            env: Some("SLUICE_TEST_SURELY_UNSET_VAR".into()),
            file: None,
            ..g.clone()
        };
        let err = missing
            .load(dir.path(), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("SLUICE_TEST_SURELY_UNSET_VAR"), "{err}");
        let both = SecretGrant {
            env: Some("X".into()),
            ..g.clone()
        };
        assert!(matches!(
            both.load(dir.path(), &BTreeMap::new()),
            Err(SecretError::Source(_))
        ));

        // From the store: present, absent (says how to set it), and too short to scrub.
        let stored = SecretGrant {
            file: None,
            stored: true,
            ..g
        };
        let mut values = BTreeMap::new();
        values.insert("tok".to_string(), SecretString::from("from-the-store"));
        assert_eq!(
            stored.load(dir.path(), &values).unwrap().expose(),
            "from-the-store"
        );
        let e = stored
            .load(dir.path(), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("sluice secrets set tok"), "{e}");
        values.insert("tok".to_string(), SecretString::from("ab"));
        assert!(matches!(
            stored.load(dir.path(), &values),
            Err(SecretError::Short(_))
        ));
    }
}
