//! Reading an index and downloading from it: capped, digest-checked, paths kept inside the
//! root, and each package checked against its entry.

use super::*;

/// An index, read.
#[derive(Debug, Clone)]
pub struct Index {
    /// Where it was read from (a directory made absolute, so a record of it means the same
    /// thing from any working directory).
    pub location: Location,
    /// Its contents.
    pub file: IndexFile,
    /// Extra CA certificates (PEM) trusted for an https:// index.
    pub(super) ca: Option<PathBuf>,
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
