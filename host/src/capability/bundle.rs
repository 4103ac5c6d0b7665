//! Files packed into a component with its code: the `sluice:bundle` custom section, an
//! uncompressed tar of plain files at the component's top level. The guest reads them through
//! `sluice:connector/bundle`; they are part of the component's bytes, so its digest and its
//! package's signature cover them.
//!
//! `sluice connector import-airbyte` makes such components: the `source-declarative` interpreter
//! with a manifest and its schemas packed beside it ([`repack`]), under a manifest of its own.
//!
//! Every size and count is bounded and checked when the component is loaded.

use std::collections::BTreeMap;
use std::io::Read;

use wasm_encoder::reencode::{Reencode, ReencodeComponent};

/// The custom section holding the packed files.
pub const SECTION: &str = "sluice:bundle";
/// The most files one component may carry.
pub const MAX_FILES: usize = 1_000;
/// The most bytes all packed files may hold together.
pub const MAX_BYTES: usize = 16 << 20;
/// The longest file name.
pub const MAX_NAME: usize = 200;

/// Why packed files cannot be read or packed.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The section is not a tar of plain files.
    #[error("its packed files (`{SECTION}`) are unreadable: {0}")]
    Format(String),
    /// A limit was passed.
    #[error("its packed files (`{SECTION}`) pass a limit: {0}")]
    Limit(String),
    /// A file name that is not a plain relative path.
    #[error(
        "packed file name `{0}` is not a plain relative path (letters, digits, `.`, `_`, `-`, \
         separated by `/`; no `..`)"
    )]
    Name(String),
    /// The component could not be re-encoded.
    #[error("the component cannot be re-encoded: {0}")]
    Component(String),
}

/// The files a component carries, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bundle {
    files: BTreeMap<String, Vec<u8>>,
    bytes: usize,
}

/// Check a packed file's name: plain relative path components, no `.` or `..`.
pub fn check_name(name: &str) -> Result<(), BundleError> {
    let bad = || BundleError::Name(name.chars().take(MAX_NAME).collect());
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(bad());
    }
    for part in name.split('/') {
        let plain = part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if part.is_empty() || part == "." || part == ".." || !plain {
            return Err(bad());
        }
    }
    Ok(())
}

impl Bundle {
    /// No files.
    pub fn new() -> Bundle {
        Bundle::default()
    }

    /// Add (or replace) one file, within the limits.
    pub fn insert(&mut self, name: &str, data: Vec<u8>) -> Result<(), BundleError> {
        check_name(name)?;
        let old = self.files.get(name).map_or(0, Vec::len);
        let bytes = self.bytes - old + data.len();
        if bytes > MAX_BYTES {
            return Err(BundleError::Limit(format!(
                "over {} MiB together",
                MAX_BYTES >> 20
            )));
        }
        if !self.files.contains_key(name) && self.files.len() >= MAX_FILES {
            return Err(BundleError::Limit(format!("more than {MAX_FILES} files")));
        }
        self.files.insert(name.to_string(), data);
        self.bytes = bytes;
        Ok(())
    }

    /// The file names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.files.keys().cloned().collect()
    }

    /// One file.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(Vec::as_slice)
    }

    /// Whether it holds no file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// The files a component carries (none when it has no `sluice:bundle` section).
    pub fn from_component(bytes: &[u8]) -> Result<Bundle, BundleError> {
        let mut found: Option<&[u8]> = None;
        for payload in wasmparser::Parser::new(0).parse_all(bytes) {
            let payload = payload.map_err(|e| BundleError::Format(e.to_string()))?;
            if let wasmparser::Payload::CustomSection(s) = payload
                && s.name() == SECTION
            {
                if found.is_some() {
                    return Err(BundleError::Format(format!(
                        "the component carries more than one `{SECTION}` section"
                    )));
                }
                found = Some(s.data());
            }
        }
        match found {
            None => Ok(Bundle::new()),
            Some(data) => Bundle::from_tar(data),
        }
    }

    /// Read the section's tar.
    pub fn from_tar(data: &[u8]) -> Result<Bundle, BundleError> {
        if data.len() > MAX_BYTES + (MAX_FILES + 2) * 1024 {
            return Err(BundleError::Limit(format!(
                "over {} MiB together",
                MAX_BYTES >> 20
            )));
        }
        let mut bundle = Bundle::new();
        let mut archive = tar::Archive::new(data);
        let entries = archive
            .entries()
            .map_err(|e| BundleError::Format(e.to_string()))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| BundleError::Format(e.to_string()))?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                return Err(BundleError::Format(
                    "it holds something other than plain files".into(),
                ));
            }
            let name = String::from_utf8(entry.path_bytes().into_owned())
                .map_err(|_| BundleError::Format("a file name is not UTF-8".into()))?;
            check_name(&name)?;
            if bundle.files.contains_key(&name) {
                return Err(BundleError::Format(format!("`{name}` appears twice")));
            }
            if entry.size() > MAX_BYTES as u64 {
                return Err(BundleError::Limit(format!(
                    "`{name}` is over {} MiB",
                    MAX_BYTES >> 20
                )));
            }
            let mut file = Vec::with_capacity(entry.size() as usize);
            entry
                .by_ref()
                .take(MAX_BYTES as u64 + 1)
                .read_to_end(&mut file)
                .map_err(|e| BundleError::Format(format!("`{name}`: {e}")))?;
            bundle.insert(&name, file)?;
        }
        Ok(bundle)
    }

    /// The section's tar (sorted names, fixed modes and times: the same files give the same
    /// bytes, so a repacked component's digest is reproducible).
    pub fn to_tar(&self) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, data) in &self.files {
            let mut header = tar::Header::new_ustar();
            header.set_size(data.len() as u64);
            header.set_mode(0o444);
            header.set_mtime(0);
            header.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut header, name, data.as_slice())
                .expect("writing to memory");
        }
        tar.into_inner().expect("writing to memory")
    }
}

/// A copy of `component` whose embedded manifest is `manifest_text` and whose packed files are
/// `bundle` (any it carried before are dropped). The code is unchanged.
pub fn repack(
    component: &[u8],
    manifest_text: &str,
    bundle: &Bundle,
) -> Result<Vec<u8>, BundleError> {
    struct Repack<'a> {
        manifest: &'a str,
        replaced: usize,
    }
    impl Reencode for Repack<'_> {
        type Error = std::convert::Infallible;
        fn parse_custom_section(
            &mut self,
            module: &mut wasm_encoder::Module,
            section: wasmparser::CustomSectionReader<'_>,
        ) -> Result<(), wasm_encoder::reencode::Error<Self::Error>> {
            if section.name() == super::manifest::SECTION {
                self.replaced += 1;
                module.section(&wasm_encoder::CustomSection {
                    name: super::manifest::SECTION.into(),
                    data: self.manifest.as_bytes().into(),
                });
                return Ok(());
            }
            wasm_encoder::reencode::utils::parse_custom_section(self, module, section)
        }
    }
    impl ReencodeComponent for Repack<'_> {
        fn parse_component_custom_section(
            &mut self,
            component: &mut wasm_encoder::Component,
            section: wasmparser::CustomSectionReader<'_>,
        ) -> Result<(), wasm_encoder::reencode::Error<Self::Error>> {
            if section.name() == SECTION {
                return Ok(());
            }
            if section.name() == super::manifest::SECTION {
                self.replaced += 1;
                component.section(&wasm_encoder::CustomSection {
                    name: super::manifest::SECTION.into(),
                    data: self.manifest.as_bytes().into(),
                });
                return Ok(());
            }
            wasm_encoder::reencode::component_utils::parse_component_custom_section(
                self, component, section,
            )
        }
    }
    let mut out = wasm_encoder::Component::new();
    let mut r = Repack {
        manifest: manifest_text,
        replaced: 0,
    };
    r.parse_component(&mut out, wasmparser::Parser::new(0), component)
        .map_err(|e| BundleError::Component(e.to_string()))?;
    if r.replaced != 1 {
        return Err(BundleError::Component(format!(
            "it carries {} `{}` sections, not one",
            r.replaced,
            super::manifest::SECTION
        )));
    }
    if !bundle.is_empty() {
        out.section(&wasm_encoder::CustomSection {
            name: SECTION.into(),
            data: bundle.to_tar().into(),
        });
    }
    Ok(out.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_relative_paths() {
        for good in ["manifest.json", "schemas/users.json", "a-b_c.d/e"] {
            check_name(good).unwrap();
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "a//b",
            "./a",
            "a/",
            "sp ace",
            "é",
            "a\\b",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"a".repeat(MAX_NAME + 1)).is_err());
    }

    #[test]
    fn a_bundle_round_trips_through_its_tar() {
        let mut b = Bundle::new();
        b.insert("manifest.json", b"{}".to_vec()).unwrap();
        b.insert("schemas/users.json", b"{\"type\":\"object\"}".to_vec())
            .unwrap();
        let again = Bundle::from_tar(&b.to_tar()).unwrap();
        assert_eq!(again, b);
        assert_eq!(again.names(), ["manifest.json", "schemas/users.json"]);
        assert_eq!(b.to_tar(), again.to_tar(), "reproducible bytes");
    }

    #[test]
    fn limits_are_typed_errors() {
        let mut b = Bundle::new();
        for i in 0..MAX_FILES {
            b.insert(&format!("f{i}"), vec![]).unwrap();
        }
        assert!(matches!(
            b.insert("one-more", vec![]),
            Err(BundleError::Limit(_))
        ));
        b.insert("f0", vec![1]).unwrap();
        let mut b = Bundle::new();
        b.insert("big", vec![0; MAX_BYTES]).unwrap();
        assert!(matches!(
            b.insert("more", vec![0]),
            Err(BundleError::Limit(_))
        ));
    }

    #[test]
    fn a_tar_with_a_bad_name_or_a_link_is_refused() {
        // The builder refuses `..`; a hostile tar is written by hand.
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..9].copy_from_slice(b"../escape");
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        tar.append(&h, &b"x"[..]).unwrap();
        let data = tar.into_inner().unwrap();
        assert!(matches!(Bundle::from_tar(&data), Err(BundleError::Name(_))));

        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_entry_type(tar::EntryType::Symlink);
        tar.append_link(&mut h, "link", "/etc/passwd").unwrap();
        let data = tar.into_inner().unwrap();
        assert!(matches!(
            Bundle::from_tar(&data),
            Err(BundleError::Format(_))
        ));
    }
}
