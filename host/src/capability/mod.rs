//! What a connector may touch. Everything is denied unless a grant names it; the runtime builds
//! each sandbox from a [`Grant`].

pub mod fs;

use serde::{Deserialize, Serialize};

pub use fs::{Access, DirGrant, Preopen};

/// The capabilities a connection gives one connector.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Host directories the connector sees, each at a path of its own.
    #[serde(default)]
    pub dirs: Vec<DirGrant>,
}
