//! What a connector's manifest may ask for, capability by capability: plain data, so the
//! manifest is composed of these and each capability's grant check reads them without the
//! manifest and the capability importing each other.

use serde::{Deserialize, Serialize};

use super::allow::AllowRule;
use super::fs::Access;

/// The capabilities a connector requests: the most any grant may give it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requests {
    /// Directories, by the guest path the connector expects them at.
    #[serde(default)]
    pub dirs: Vec<DirRequest>,
    /// Outbound HTTP, as allowlist patterns (`https://*`, `https://*.example.com`,
    /// `http://localhost:*`): a grant's entries must each fall inside one of them.
    #[serde(default)]
    pub network: Vec<AllowRule>,
    /// Secrets the connector needs to hold in its own memory (to sign requests, say). Secrets
    /// the host substitutes into outbound requests need no request: the connector never sees them.
    #[serde(default)]
    pub secrets: Vec<SecretRequest>,
    /// Databases reached through the host, by name and access.
    #[serde(default)]
    pub sql: Vec<SqlRequest>,
}

/// A directory a connector asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirRequest {
    /// Where the connector looks for it, e.g. `/input`.
    pub guest: String,
    /// The most it may do there.
    pub access: Access,
}

/// A secret a connector asks to receive inside its sandbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRequest {
    /// The name its config refers to as `{{secret:NAME}}`.
    pub name: String,
    /// Why it must be inside, shown to the operator at grant time.
    pub why: String,
}

/// The access a connector asks for, or a grant gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SqlAccess {
    /// Queries only, in a read-only session.
    Read,
    /// Create and write tables inside one schema or table prefix.
    Write,
}

/// A database a connector's manifest asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlRequest {
    /// The name the connector opens it by (and its config may let the operator choose).
    pub name: String,
    /// What it needs to do there.
    pub access: SqlAccess,
}
