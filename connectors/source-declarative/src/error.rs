//! Why a manifest cannot be run.

use std::fmt;

/// A manifest sluice refuses, with where in it the problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    /// Where: `streams[2].retriever.paginator`, or empty for the whole manifest.
    pub path: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl ManifestError {
    /// An error at `path` (keys and list indexes from the root).
    pub fn at(path: &[String], message: impl Into<String>) -> Self {
        ManifestError {
            path: render_path(path),
            message: message.into(),
        }
    }
}

/// `["streams", "0", "retriever"]` → `streams[0].retriever`.
pub fn render_path(path: &[String]) -> String {
    let mut out = String::new();
    for part in path {
        if part.parse::<usize>().is_ok() {
            out.push('[');
            out.push_str(part);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "the manifest: {}", self.message)
        } else {
            write!(f, "the manifest at `{}`: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ManifestError {}

impl From<ManifestError> for sluice_sdk::Error {
    fn from(e: ManifestError) -> Self {
        sluice_sdk::Error::config(e)
    }
}
