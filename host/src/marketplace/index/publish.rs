//! The publisher's side: adding a signed package to a directory index, yanking a version.

use super::*;

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
