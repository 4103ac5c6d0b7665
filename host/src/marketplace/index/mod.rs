//! The package index: a static `index.json` beside the packages it lists, in a directory or
//! behind any HTTPS URL. It names, per connector, each published version with its kind,
//! package digest and size, download path (relative to the index), signer and yanked flag.
//!
//! The index is not trusted for integrity: a download must match the digest and size the index
//! gives, the package's signature must verify against the operator's trust store, and the
//! package must be what its index entry says (name, version, kind, signer). A path that would
//! leave the index root is refused before anything is read.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

mod location;
mod publish;
mod read;

pub use location::Location;
pub use publish::{Published, publish, set_yanked};
pub use read::{Index, check_entry};

use super::fetch;
use super::package::{MAX_PACKAGE, Package};
use crate::protocol::ConnectorKind;

/// The index file's name, at the root of the index.
pub const INDEX_FILE: &str = "index.json";
/// The `format` an index declares.
pub const INDEX_FORMAT: &str = "sluice-index-v1";
/// The largest `index.json` read.
const MAX_INDEX: u64 = 16 << 20;

/// Why an index cannot be read, resolved or published to, or a download is refused.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The `--index` value is neither a directory nor an acceptable URL.
    #[error("index `{location}`: {reason}")]
    Location {
        /// As given.
        location: String,
        /// Why.
        reason: String,
    },
    /// Reading or writing a file of a directory index.
    #[error("{what}: {source}")]
    Io {
        /// The file.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A download from an HTTP index.
    #[error(transparent)]
    Fetch(#[from] fetch::FetchError),
    /// `index.json` is not a valid index.
    #[error("{what} is not a valid sluice index: {reason}")]
    Format {
        /// The file.
        what: String,
        /// Why.
        reason: String,
    },
    /// No connector of that name.
    #[error("the index {index} has no connector `{name}` (it lists: {available})")]
    UnknownName {
        /// The index.
        index: String,
        /// What was asked for.
        name: String,
        /// What it has.
        available: String,
    },
    /// No such version.
    #[error("the index {index} has no version {version} of `{name}` (it lists: {available})")]
    UnknownVersion {
        /// The index.
        index: String,
        /// The connector.
        name: String,
        /// What was asked for.
        version: String,
        /// What it has.
        available: String,
    },
    /// The pinned version is yanked, or every version is.
    #[error(
        "`{name}` {version} is yanked from the index (withdrawn by its publisher); pick another version"
    )]
    Yanked {
        /// The connector.
        name: String,
        /// The version, or `every version`.
        version: String,
    },
    /// An entry's download path leaves the index root.
    #[error(
        "the index entry for `{name}` {version} points outside the index ({path}); refusing to read it"
    )]
    OutsideRoot {
        /// The connector.
        name: String,
        /// The version.
        version: String,
        /// The path as the entry gives it.
        path: String,
    },
    /// The package is (or claims to be) over the size limit, or larger than its entry says.
    #[error("the package of `{name}` {version} is too large: {reason}")]
    Oversized {
        /// The connector.
        name: String,
        /// The version.
        version: String,
        /// The sizes involved.
        reason: String,
    },
    /// The download does not have the digest the index gives.
    #[error(
        "the package of `{name}` {version} does not match the index: its SHA-256 is {actual}, the index says {expected} (a corrupted or substituted download)"
    )]
    Digest {
        /// The connector.
        name: String,
        /// The version.
        version: String,
        /// From the index.
        expected: String,
        /// Of the bytes received.
        actual: String,
    },
    /// The package is not what its entry says it is.
    #[error("the package of `{name}` {version} is not what the index says: {reason}")]
    Mismatch {
        /// The connector.
        name: String,
        /// The version.
        version: String,
        /// Which field differs.
        reason: String,
    },
    /// Publishing a version that is already there with other contents.
    #[error(
        "`{name}` {version} is already in the index with different contents; published versions never change: bump the version"
    )]
    Republish {
        /// The connector.
        name: String,
        /// The version.
        version: String,
    },
    /// Publishing an unsigned package.
    #[error(
        "{what} is not signed; sign it with `sluice connector sign PKG --key KEY` before publishing"
    )]
    Unsigned {
        /// The package file.
        what: String,
    },
}

/// `index.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexFile {
    /// Always [`INDEX_FORMAT`].
    pub format: String,
    /// Versions per connector name, oldest first.
    pub packages: BTreeMap<String, Vec<Entry>>,
}

/// One published version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Semver.
    pub version: String,
    /// Source or destination.
    pub kind: ConnectorKind,
    /// The package file, relative to the index root, `/`-separated.
    pub path: String,
    /// Hex SHA-256 of the package file.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
    /// The publisher key that signed it.
    pub key_id: String,
    /// Withdrawn: never picked as the newest, refused when pinned.
    #[serde(default)]
    pub yanked: bool,
}

pub(super) fn parse_index(bytes: &[u8], what: &str) -> Result<IndexFile, IndexError> {
    let format = |reason: String| IndexError::Format {
        what: what.to_string(),
        reason,
    };
    let file: IndexFile = serde_json::from_slice(bytes).map_err(|e| format(e.to_string()))?;
    if file.format != INDEX_FORMAT {
        return Err(format(format!(
            "its format is `{}`, this sluice reads `{INDEX_FORMAT}`",
            file.format
        )));
    }
    for (name, entries) in &file.packages {
        for e in entries {
            semver::Version::parse(&e.version).map_err(|err| {
                format(format!(
                    "`{name}` version `{}` is not semver ({err})",
                    e.version
                ))
            })?;
        }
    }
    Ok(file)
}

/// Read a file of at most `limit` bytes, saying when it is larger.
pub(super) fn read_capped(path: &Path, limit: u64) -> Result<Result<Vec<u8>, u64>, std::io::Error> {
    let f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    if len > limit {
        return Ok(Err(len));
    }
    let mut data = Vec::with_capacity(len as usize);
    f.take(limit + 1).read_to_end(&mut data)?;
    if data.len() as u64 > limit {
        return Ok(Err(data.len() as u64));
    }
    Ok(Ok(data))
}

/// The path's parts when it is a plain relative path inside the root (no `..`, `.`, root,
/// backslash, colon or percent sign), or `None`.
pub(super) fn inside(path: &str) -> Option<Vec<&str>> {
    if path.is_empty() || path.contains(['\\', ':', '%', '?', '#']) || path.starts_with('/') {
        return None;
    }
    let parts: Vec<&str> = path.split('/').collect();
    let plain = parts.iter().all(|p| {
        !p.is_empty()
            && matches!(Path::new(p).components().next(), Some(Component::Normal(_)))
            && Path::new(p).components().count() == 1
    });
    plain.then_some(parts)
}

/// The names, or "nothing".
pub(super) fn list_or_nothing(items: &[&str]) -> String {
    if items.is_empty() {
        "nothing".into()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: &str, yanked: bool) -> Entry {
        Entry {
            version: version.into(),
            kind: ConnectorKind::Source,
            path: format!("packages/x-{version}.slpkg"),
            sha256: "00".into(),
            size: 1,
            key_id: "k:1".into(),
            yanked,
        }
    }

    fn index(entries: Vec<Entry>) -> Index {
        Index {
            location: Location::Dir("idx".into()),
            file: IndexFile {
                format: INDEX_FORMAT.into(),
                packages: [("x".to_string(), entries)].into(),
            },
            ca: None,
        }
    }

    #[test]
    fn the_newest_release_that_is_not_yanked_is_picked() {
        let i = index(vec![
            entry("0.9.0", false),
            entry("0.10.0", false),
            entry("0.11.0", true),
            entry("0.12.0-rc.1", false),
        ]);
        // Semver order, not text order: 0.10 > 0.9.
        assert_eq!(i.resolve("x", None).unwrap().version, "0.10.0");
        assert_eq!(i.resolve("x", Some("0.9.0")).unwrap().version, "0.9.0");
        assert_eq!(
            i.resolve("x", Some("0.12.0-rc.1")).unwrap().version,
            "0.12.0-rc.1"
        );
        let e = i.resolve("x", Some("0.11.0")).unwrap_err().to_string();
        assert!(e.contains("yanked"), "{e}");
        let e = i.resolve("x", Some("2.0.0")).unwrap_err().to_string();
        assert!(e.contains("0.9.0, 0.10.0"), "{e}");
        let e = i.resolve("y", None).unwrap_err().to_string();
        assert!(
            e.contains("no connector `y`") && e.contains("lists: x"),
            "{e}"
        );
        let all_yanked = index(vec![entry("1.0.0", true)]);
        assert!(matches!(
            all_yanked.resolve("x", None),
            Err(IndexError::Yanked { .. })
        ));
    }

    #[test]
    fn paths_that_leave_the_index_are_refused() {
        for bad in [
            "../x.slpkg",
            "packages/../../x.slpkg",
            "/etc/passwd",
            "packages//x.slpkg",
            "./x.slpkg",
            "packages\\..\\x.slpkg",
            "https://evil.example/x.slpkg",
            "packages/%2e%2e/x.slpkg",
            "",
        ] {
            assert!(inside(bad).is_none(), "{bad} accepted");
        }
        assert_eq!(
            inside("packages/x-1.0.0.slpkg"),
            Some(vec!["packages", "x-1.0.0.slpkg"])
        );
    }

    #[test]
    fn locations_are_directories_or_acceptable_urls() {
        assert_eq!(
            Location::parse("examples/index").unwrap(),
            Location::Dir("examples/index".into())
        );
        let Location::Url(u) = Location::parse("https://idx.example.com/sluice").unwrap() else {
            panic!("not a URL");
        };
        assert_eq!(u.to_string(), "https://idx.example.com/sluice/");
        assert!(Location::parse("http://127.0.0.1:8080/index.json").is_ok());
        for bad in [
            "http://idx.example.com/",
            "ftp://idx.example.com/",
            "https://user:pw@idx.example.com/",
        ] {
            let e = Location::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("pw@"), "{e}");
        }
    }

    #[test]
    fn an_index_with_another_format_or_a_bad_version_is_refused() {
        let e = parse_index(br#"{"format":"v9","packages":{}}"#, "i")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sluice-index-v1"), "{e}");
        let bad =
            serde_json::json!({"format": INDEX_FORMAT, "packages": {"x": [entry("one", false)]}});
        let e = parse_index(bad.to_string().as_bytes(), "i")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not semver"), "{e}");
    }
}
