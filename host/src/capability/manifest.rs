//! The connector manifest: who a connector is and every capability it may be granted.
//!
//! A connector crate keeps it in `sluice.toml`; sluice-sdk's export macros embed that file in
//! the component as the `sluice:manifest` custom section, so the component file is the whole
//! connector and the host can read the request before it instantiates anything. A connection's
//! grant is checked against it ([`super::Grant::check`]) and can only narrow it.

use serde::{Deserialize, Serialize};

use super::request::Requests;
use crate::protocol::ConnectorKind;

/// The name of the custom section holding the manifest.
pub const SECTION: &str = "sluice:manifest";

/// What a connector says it is and asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Package name, e.g. `source-http`.
    pub name: String,
    /// Its version (semver).
    pub version: String,
    /// Source or destination; must match what the component exports.
    pub kind: ConnectorKind,
    /// One line for operators.
    #[serde(default)]
    pub description: String,
    /// Everything it may be granted.
    #[serde(default)]
    pub capabilities: Requests,
}

/// Why a component's manifest cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// No `sluice:manifest` section.
    #[error(
        "it carries no manifest (custom section `{SECTION}`); connectors built with \
         sluice-sdk's export macros embed their crate's `sluice.toml`"
    )]
    Missing,
    /// The section is not valid UTF-8 TOML of the right shape.
    #[error("its manifest (`sluice.toml`) is invalid: {0}")]
    Invalid(String),
    /// The component is not valid WebAssembly.
    #[error("it cannot be read as a WebAssembly component: {0}")]
    Unreadable(String),
}

impl Manifest {
    /// Parse the text of a `sluice.toml`.
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        let m: Manifest =
            toml::from_str(text).map_err(|e| ManifestError::Invalid(e.to_string()))?;
        if m.name.trim().is_empty() {
            return Err(ManifestError::Invalid("`name` is empty".into()));
        }
        for d in &m.capabilities.dirs {
            super::fs::check_guest_path(&d.guest)
                .map_err(|e| ManifestError::Invalid(format!("capabilities.dirs: {e}")))?;
        }
        for r in &m.capabilities.sql {
            if m.kind == ConnectorKind::Source && r.access == super::request::SqlAccess::Write {
                return Err(ManifestError::Invalid(format!(
                    "capabilities.sql: a source only reads, but it asks to write `{}`",
                    r.name
                )));
            }
        }
        Ok(m)
    }

    /// Read the manifest embedded in a component's bytes (in any of its nested modules).
    pub fn from_component(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        Manifest::parse(&Manifest::embedded_text(bytes)?)
    }

    /// The text of the manifest embedded in a component, exactly as embedded.
    pub fn embedded_text(bytes: &[u8]) -> Result<String, ManifestError> {
        let mut found = None;
        for payload in wasmparser::Parser::new(0).parse_all(bytes) {
            let payload = payload.map_err(|e| ManifestError::Unreadable(e.to_string()))?;
            if let wasmparser::Payload::CustomSection(s) = payload
                && s.name() == SECTION
            {
                if found.is_some() {
                    return Err(ManifestError::Invalid(format!(
                        "the component carries more than one `{SECTION}` section"
                    )));
                }
                found = Some(s.data().to_vec());
            }
        }
        let data = found.ok_or(ManifestError::Missing)?;
        String::from_utf8(data).map_err(|_| ManifestError::Invalid("it is not UTF-8 text".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::Access;

    #[test]
    fn a_full_manifest_parses() {
        let m = Manifest::parse(
            r#"
name = "source-http"
version = "0.1.0"
kind = "source"
description = "REST APIs"
[capabilities]
network = ["https://*", "http://localhost:*"]
dirs = [{ guest = "/input", access = "read-only" }]
secrets = [{ name = "signing_key", why = "HMAC signatures" }]
"#,
        )
        .unwrap();
        assert_eq!(m.kind, ConnectorKind::Source);
        assert_eq!(m.capabilities.network.len(), 2);
        assert_eq!(m.capabilities.dirs[0].access, Access::ReadOnly);
        assert_eq!(m.capabilities.secrets[0].name, "signing_key");
    }

    #[test]
    fn bad_manifests_say_what_is_wrong() {
        let cases = [
            ("version = \"1\"\nkind = \"source\"", "name"),
            ("name = \"x\"\nversion = \"1\"\nkind = \"sink\"", "sink"),
            (
                "name = \"x\"\nversion = \"1\"\nkind = \"source\"\n[capabilities]\nnetwork = [\"ftp://x\"]",
                "ftp",
            ),
            (
                "name = \"x\"\nversion = \"1\"\nkind = \"source\"\n[capabilities]\nsockets = true",
                "sockets",
            ),
            (
                "name = \"x\"\nversion = \"1\"\nkind = \"source\"\n[capabilities]\ndirs = [{ guest = \"in\", access = \"read-only\" }]",
                "`in`",
            ),
        ];
        for (text, needle) in cases {
            let err = Manifest::parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{needle:?} not in {err:?}");
        }
    }

    #[test]
    fn a_component_without_the_section_is_refused() {
        // The smallest valid component: the preamble only.
        let empty = [0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
        assert!(matches!(
            Manifest::from_component(&empty),
            Err(ManifestError::Missing)
        ));
        assert!(matches!(
            Manifest::from_component(b"not wasm"),
            Err(ManifestError::Unreadable(_))
        ));
    }
}
