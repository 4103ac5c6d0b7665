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

/// Where an index is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory holding `index.json`.
    Dir(PathBuf),
    /// A URL whose `index.json` is the index (the URL of the directory, ending in `/`).
    Url(http::Uri),
}

impl Location {
    /// `https://…` (or `http://` on loopback) is a URL; anything else a directory.
    pub fn parse(s: &str) -> Result<Location, IndexError> {
        let bad = |reason: String| IndexError::Location {
            location: redact(s),
            reason,
        };
        if !(s.starts_with("http://") || s.starts_with("https://")) {
            if s.contains("://") {
                return Err(bad(
                    "only directories and https:// (or loopback http://) URLs are supported".into(),
                ));
            }
            return Ok(Location::Dir(PathBuf::from(s)));
        }
        let mut text = s.to_string();
        if let Some(stripped) = text.strip_suffix(INDEX_FILE) {
            text = stripped.to_string();
        }
        if !text.ends_with('/') {
            text.push('/');
        }
        let uri: http::Uri = text
            .parse()
            .map_err(|e| bad(format!("not a valid URL ({e})")))?;
        if uri.query().is_some() {
            return Err(bad("an index URL cannot have a query".into()));
        }
        fetch::check_scheme(&uri).map_err(bad)?;
        Ok(Location::Url(uri))
    }

    /// The `index.json` this location means.
    fn index_what(&self) -> String {
        match self {
            Location::Dir(d) => d.join(INDEX_FILE).display().to_string(),
            Location::Url(u) => format!("{u}{INDEX_FILE}"),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Dir(d) => write!(f, "{}", d.display()),
            Location::Url(u) => write!(f, "{u}"),
        }
    }
}

/// `s` without a URL's user info (which may hold a password).
fn redact(s: &str) -> String {
    match (s.find("://"), s.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &s[..scheme], &s[at + 1..])
        }
        _ => s.to_string(),
    }
}

/// An index, read.
#[derive(Debug, Clone)]
pub struct Index {
    /// Where it was read from (a directory made absolute, so a record of it means the same
    /// thing from any working directory).
    pub location: Location,
    /// Its contents.
    pub file: IndexFile,
    /// Extra CA certificates (PEM) trusted for an https:// index.
    ca: Option<PathBuf>,
}

fn parse_index(bytes: &[u8], what: &str) -> Result<IndexFile, IndexError> {
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
fn read_capped(path: &Path, limit: u64) -> Result<Result<Vec<u8>, u64>, std::io::Error> {
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
fn inside(path: &str) -> Option<Vec<&str>> {
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

impl Index {
    /// Read the index at `location`; `ca`: a PEM file of CA certificates to trust beside the
    /// platform's, for an https:// index behind a private CA.
    pub async fn load(location: Location, ca: Option<PathBuf>) -> Result<Index, IndexError> {
        let location = match location {
            Location::Dir(d) => Location::Dir(d.canonicalize().unwrap_or(d)),
            url => url,
        };
        let what = location.index_what();
        let bytes = match &location {
            Location::Dir(dir) => {
                let path = dir.join(INDEX_FILE);
                match read_capped(&path, MAX_INDEX) {
                    Ok(Ok(b)) => b,
                    Ok(Err(len)) => {
                        return Err(IndexError::Format {
                            what,
                            reason: format!("it is {len} bytes, over the {MAX_INDEX} allowed"),
                        });
                    }
                    Err(source) if source.kind() == std::io::ErrorKind::NotFound => {
                        return Err(IndexError::Location {
                            location: location.to_string(),
                            reason: format!(
                                "there is no {INDEX_FILE} there (create one with `sluice connector publish PKG --index DIR`)"
                            ),
                        });
                    }
                    Err(source) => return Err(IndexError::Io { what, source }),
                }
            }
            Location::Url(base) => {
                let uri: http::Uri =
                    format!("{base}{INDEX_FILE}")
                        .parse()
                        .map_err(|e| IndexError::Location {
                            location: base.to_string(),
                            reason: format!("{e}"),
                        })?;
                fetch::get(&uri, MAX_INDEX, ca.as_deref()).await?
            }
        };
        let file = parse_index(&bytes, &what)?;
        Ok(Index { location, file, ca })
    }

    /// The entry to install: `version` exactly (refused if yanked), or the newest non-yanked
    /// release (pre-releases only when pinned).
    pub fn resolve(&self, name: &str, version: Option<&str>) -> Result<&Entry, IndexError> {
        let Some(entries) = self.file.packages.get(name) else {
            let names: Vec<&str> = self.file.packages.keys().map(String::as_str).collect();
            return Err(IndexError::UnknownName {
                index: self.location.to_string(),
                name: name.to_string(),
                available: list_or_nothing(&names),
            });
        };
        let versions = || {
            let v: Vec<&str> = entries.iter().map(|e| e.version.as_str()).collect();
            list_or_nothing(&v)
        };
        if let Some(want) = version {
            let want_v = semver::Version::parse(want).ok();
            let found = entries.iter().find(|e| {
                e.version == want
                    || want_v.as_ref().is_some_and(|w| {
                        semver::Version::parse(&e.version).ok().as_ref() == Some(w)
                    })
            });
            let Some(e) = found else {
                return Err(IndexError::UnknownVersion {
                    index: self.location.to_string(),
                    name: name.to_string(),
                    version: want.to_string(),
                    available: versions(),
                });
            };
            if e.yanked {
                return Err(IndexError::Yanked {
                    name: name.to_string(),
                    version: e.version.clone(),
                });
            }
            return Ok(e);
        }
        entries
            .iter()
            .filter(|e| !e.yanked)
            .filter_map(|e| semver::Version::parse(&e.version).ok().map(|v| (v, e)))
            .filter(|(v, _)| v.pre.is_empty())
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, e)| e)
            .ok_or_else(|| IndexError::Yanked {
                name: name.to_string(),
                version: "every released version".into(),
            })
    }

    /// Download `entry`'s package and check it against the entry's path, size and digest.
    pub async fn download(&self, name: &str, entry: &Entry) -> Result<Vec<u8>, IndexError> {
        let outside = || IndexError::OutsideRoot {
            name: name.to_string(),
            version: entry.version.clone(),
            path: entry.path.clone(),
        };
        let oversized = |reason: String| IndexError::Oversized {
            name: name.to_string(),
            version: entry.version.clone(),
            reason,
        };
        let parts = inside(&entry.path).ok_or_else(outside)?;
        if entry.size > MAX_PACKAGE {
            return Err(oversized(format!(
                "the index says {} bytes; packages may be at most {MAX_PACKAGE}",
                entry.size
            )));
        }
        let bytes = match &self.location {
            Location::Dir(dir) => {
                let path = parts.iter().fold(dir.clone(), |p, part| p.join(part));
                // A symlink inside the index may still lead out of it.
                let root = dir.canonicalize().map_err(|source| IndexError::Io {
                    what: dir.display().to_string(),
                    source,
                })?;
                let real = path.canonicalize().map_err(|source| IndexError::Io {
                    what: path.display().to_string(),
                    source,
                })?;
                if !real.starts_with(&root) {
                    return Err(outside());
                }
                match read_capped(&real, entry.size) {
                    Ok(Ok(b)) => b,
                    Ok(Err(len)) => {
                        return Err(oversized(format!(
                            "the file is {len} bytes, the index says {}",
                            entry.size
                        )));
                    }
                    Err(source) => {
                        return Err(IndexError::Io {
                            what: path.display().to_string(),
                            source,
                        });
                    }
                }
            }
            Location::Url(base) => {
                let uri: http::Uri = format!("{base}{}", parts.join("/"))
                    .parse()
                    .map_err(|_| outside())?;
                match fetch::get(&uri, entry.size, self.ca.as_deref()).await {
                    Ok(b) => b,
                    Err(e) if e.oversized => {
                        return Err(oversized(format!(
                            "the server sent more than the {} bytes the index says",
                            entry.size
                        )));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let actual = crate::boundary::crypto::sha256_hex(&bytes);
        if !actual.eq_ignore_ascii_case(&entry.sha256) {
            return Err(IndexError::Digest {
                name: name.to_string(),
                version: entry.version.clone(),
                expected: entry.sha256.clone(),
                actual,
            });
        }
        Ok(bytes)
    }
}

fn list_or_nothing(items: &[&str]) -> String {
    if items.is_empty() {
        "nothing".into()
    } else {
        items.join(", ")
    }
}

/// Check that a downloaded package is what its entry says.
pub fn check_entry(name: &str, entry: &Entry, p: &Package) -> Result<(), IndexError> {
    let mismatch = |reason: String| IndexError::Mismatch {
        name: name.to_string(),
        version: entry.version.clone(),
        reason,
    };
    if p.manifest.name != name {
        return Err(mismatch(format!("it is `{}`", p.manifest.name)));
    }
    if p.manifest.version != entry.version {
        return Err(mismatch(format!("it is version {}", p.manifest.version)));
    }
    if p.manifest.kind != entry.kind {
        return Err(mismatch(format!("it is a {}", p.manifest.kind)));
    }
    match &p.signature {
        Some(s) if s.key_id == entry.key_id => Ok(()),
        Some(s) => Err(mismatch(format!(
            "it is signed by `{}`, the index says `{}`",
            s.key_id, entry.key_id
        ))),
        None => Err(mismatch("it is not signed".into())),
    }
}

/// What [`publish`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// Added to the index.
    Added(Entry),
    /// The same package was already there.
    Unchanged(Entry),
}

fn load_dir(dir: &Path) -> Result<IndexFile, IndexError> {
    let path = dir.join(INDEX_FILE);
    let what = path.display().to_string();
    match read_capped(&path, MAX_INDEX) {
        Ok(Ok(b)) => parse_index(&b, &what),
        Ok(Err(len)) => Err(IndexError::Format {
            what,
            reason: format!("it is {len} bytes, over the {MAX_INDEX} allowed"),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(IndexFile {
            format: INDEX_FORMAT.into(),
            packages: BTreeMap::new(),
        }),
        Err(source) => Err(IndexError::Io { what, source }),
    }
}

/// Replace `index.json` in one step (write a temporary file, then rename).
fn save_dir(dir: &Path, file: &IndexFile) -> Result<(), IndexError> {
    let path = dir.join(INDEX_FILE);
    let io = |source| IndexError::Io {
        what: path.display().to_string(),
        source,
    };
    let text = serde_json::to_string_pretty(file).expect("an index serializes") + "\n";
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(io)?;
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .map_err(io)?;
    tmp.persist(&path).map_err(|e| io(e.error))?;
    Ok(())
}

/// Add a signed package (`bytes`, read from `what`) to the directory index `dir` (created if
/// needed): the file goes to `packages/NAME-VERSION.slpkg`, then the entry into `index.json`.
/// Publishing the same package again changes nothing; other contents under a published version
/// are refused.
pub fn publish(dir: &Path, bytes: &[u8], what: &str) -> Result<Published, IndexError> {
    let p = Package::parse(bytes, what).map_err(|e| IndexError::Format {
        what: what.to_string(),
        reason: e.to_string(),
    })?;
    let Some(sig) = &p.signature else {
        return Err(IndexError::Unsigned {
            what: what.to_string(),
        });
    };
    semver::Version::parse(&p.manifest.version).map_err(|e| IndexError::Format {
        what: what.to_string(),
        reason: format!("version `{}` is not semver ({e})", p.manifest.version),
    })?;
    let io = |what: String| move |source| IndexError::Io { what, source };
    std::fs::create_dir_all(dir.join("packages")).map_err(io(dir.display().to_string()))?;
    let mut file = load_dir(dir)?;
    let name = p.manifest.name.clone();
    let entry = Entry {
        version: p.manifest.version.clone(),
        kind: p.manifest.kind,
        path: format!("packages/{}", p.file_name()),
        sha256: crate::boundary::crypto::sha256_hex(bytes),
        size: bytes.len() as u64,
        key_id: sig.key_id.clone(),
        yanked: false,
    };
    let versions = file.packages.entry(name.clone()).or_default();
    if let Some(old) = versions.iter().find(|e| e.version == entry.version) {
        if old.sha256 == entry.sha256 {
            return Ok(Published::Unchanged(old.clone()));
        }
        return Err(IndexError::Republish {
            name,
            version: entry.version,
        });
    }
    let target = dir.join(&entry.path);
    let mut tmp = tempfile::NamedTempFile::new_in(dir.join("packages"))
        .map_err(io(target.display().to_string()))?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(io(target.display().to_string()))?;
    std::fs::set_permissions(
        tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .map_err(io(target.display().to_string()))?;
    tmp.persist(&target)
        .map_err(|e| io(target.display().to_string())(e.error))?;
    versions.push(entry.clone());
    versions.sort_by(|a, b| {
        let v = |e: &Entry| semver::Version::parse(&e.version).ok();
        v(a).cmp(&v(b))
    });
    save_dir(dir, &file)?;
    Ok(Published::Added(entry))
}

/// Mark a version yanked (or not) in the directory index `dir`.
pub fn set_yanked(
    dir: &Path,
    name: &str,
    version: &str,
    yanked: bool,
) -> Result<Entry, IndexError> {
    let mut file = load_dir(dir)?;
    let names: Vec<String> = file.packages.keys().cloned().collect();
    let Some(entries) = file.packages.get_mut(name) else {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        return Err(IndexError::UnknownName {
            index: dir.display().to_string(),
            name: name.to_string(),
            available: list_or_nothing(&names),
        });
    };
    let listed: Vec<String> = entries.iter().map(|e| e.version.clone()).collect();
    let Some(e) = entries.iter_mut().find(|e| e.version == version) else {
        let listed: Vec<&str> = listed.iter().map(String::as_str).collect();
        return Err(IndexError::UnknownVersion {
            index: dir.display().to_string(),
            name: name.to_string(),
            version: version.to_string(),
            available: list_or_nothing(&listed),
        });
    };
    e.yanked = yanked;
    let e = e.clone();
    save_dir(dir, &file)?;
    Ok(e)
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
