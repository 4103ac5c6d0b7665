//! Installing connectors from an index, in two steps so that nothing is half-installed:
//!
//! 1. [`Installer::plan`] resolves the version, downloads the package, checks its digest and
//!    size against the index, its signature against the trust store, that it is what the index
//!    says, that its component really is the kind of connector its manifest claims (by compiling
//!    it, without touching the cache), and how its capabilities differ from the installed
//!    version's. It writes nothing.
//! 2. [`Installer::commit`] takes the operator's approval of the capabilities, then writes the
//!    files under `DATA_DIR/connectors/NAME/VERSION/` (staged, then renamed into place), the
//!    compiled code into the cache, the record into the store, and the audit entry.

use std::path::Path;

use serde_json::json;

use super::index::{self, Entry, Index, IndexError, Location};
use super::package::{Package, PackageError};
use super::publisher::TrustStore;
use crate::boundary::audit::NewEntry;
use crate::capability::Access;
use crate::capability::manifest::Manifest;
use crate::capability::sql::SqlAccess;
use crate::protocol::ConnectorKind;
use crate::runtime::{Connector, Runtime};
use crate::store::{InstalledConnector, Store, StoreError};

/// Why an install, upgrade or removal was refused or failed. Nothing was changed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// Reading the index or downloading the package.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The package is damaged, unsigned, or not signed by a trusted publisher.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// The component is not the connector its manifest says.
    #[error("`{name}` {version} cannot be installed: its component {reason}")]
    NotAConnector {
        /// The connector.
        name: String,
        /// The version.
        version: String,
        /// What is wrong.
        reason: String,
    },
    /// `upgrade` or `remove` of something not installed.
    #[error("`{name}` is not installed (see `sluice connector list`)")]
    NotInstalled {
        /// The connector.
        name: String,
    },
    /// A version below the installed one, without `--allow-downgrade`.
    #[error(
        "`{name}` {installed} is installed; {requested} would be a downgrade (pass --allow-downgrade if that is what you want)"
    )]
    Downgrade {
        /// The connector.
        name: String,
        /// What is installed.
        installed: String,
        /// What was asked for.
        requested: String,
    },
    /// The operator did not approve every capability the version adds.
    #[error(
        "`{name}` {version} was not installed: these capabilities were not approved: {}; review them and approve (`--approve`, or answer yes at the prompt)",
        missing.join("; ")
    )]
    NotApproved {
        /// The connector.
        name: String,
        /// The version.
        version: String,
        /// What still needs approval.
        missing: Vec<String>,
    },
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the installed files or the compiled cache.
    #[error("cannot write {what}: {reason}")]
    Write {
        /// The file or directory.
        what: String,
        /// Why.
        reason: String,
    },
}

/// The capabilities a manifest requests, one reviewable line each, in a stable order (so two
/// versions can be compared line by line).
pub fn capability_lines(m: &Manifest) -> Vec<String> {
    let mut out = Vec::new();
    for d in &m.capabilities.dirs {
        let access = match (m.kind, d.access) {
            (ConnectorKind::Source, _) | (_, Access::ReadOnly) => "read-only",
            _ => "read-write",
        };
        out.push(format!("directory {} ({access})", d.guest));
    }
    for n in &m.capabilities.network {
        out.push(format!("network {n}"));
    }
    for s in &m.capabilities.secrets {
        out.push(format!("secret `{}` held inside the sandbox", s.name));
    }
    for s in &m.capabilities.sql {
        let access = match s.access {
            SqlAccess::Read => "read-only",
            SqlAccess::Write => "write",
        };
        out.push(format!("database `{}` ({access})", s.name));
    }
    out
}

/// What to install.
#[derive(Debug, Clone)]
pub struct Request {
    /// The connector's name.
    pub name: String,
    /// A pinned version, or the newest non-yanked one.
    pub version: Option<String>,
    /// The index.
    pub index: Location,
    /// Extra CA certificates (PEM) for an https:// index behind a private CA.
    pub ca: Option<std::path::PathBuf>,
    /// Whether a version below the installed one is acceptable.
    pub allow_downgrade: bool,
}

/// A vetted package, ready to commit once approved.
pub struct Plan {
    /// The connector's name.
    pub name: String,
    /// The index entry.
    pub entry: Entry,
    /// The index it came from.
    pub index: String,
    /// The package.
    pub package: Package,
    /// The package file's bytes.
    package_bytes: Vec<u8>,
    /// Who signed it (trusted).
    pub key_id: String,
    /// Every capability it requests.
    pub capabilities: Vec<String>,
    /// What is installed now.
    pub previous: Option<InstalledConnector>,
    /// Capabilities the installed version was not approved for (all of them on a first
    /// install).
    pub added: Vec<String>,
    /// Capabilities the installed version had and this one gives up.
    pub removed: Vec<String>,
    /// Whether the installed version's component is still the one recorded.
    intact: bool,
    connector: Connector,
}

impl Plan {
    /// Whether this is the version already installed, with its files intact (nothing to do).
    pub fn is_installed(&self) -> bool {
        self.intact
            && self.previous.as_ref().is_some_and(|p| {
                p.version == self.entry.version && p.package_sha256 == self.entry.sha256
            })
    }

    /// What the operator must approve, one line each: the capabilities this version adds and,
    /// when another publisher signed it than the installed version, that change.
    pub fn to_approve(&self) -> Vec<String> {
        let mut lines = self.added.clone();
        if let Some(p) = &self.previous
            && p.key_id != self.key_id
        {
            lines.push(publisher_change(&p.key_id, &self.key_id));
        }
        lines
    }

    /// Whether the operator must approve: a first install, or an upgrade that asks for more
    /// or comes from another publisher.
    pub fn needs_approval(&self) -> bool {
        self.previous.is_none() || !self.to_approve().is_empty()
    }
}

/// The approval line for a change of publisher.
fn publisher_change(old: &str, new: &str) -> String {
    format!("signed by `{new}` instead of `{old}`")
}

/// Installs, upgrades and removes connectors in one data dir.
pub struct Installer<'a> {
    /// The store (and data dir).
    pub store: &'a Store,
    /// For compiling and the compiled cache.
    pub runtime: &'a Runtime,
    /// Who acts, for the audit log.
    pub actor: String,
}

impl Installer<'_> {
    fn data_dir(&self) -> &Path {
        self.store.dir()
    }

    /// Resolve, download and vet `req` (see the module docs). Writes nothing.
    pub async fn plan(&self, req: &Request) -> Result<Plan, InstallError> {
        let trust = TrustStore::open(self.data_dir()).map_err(|e| InstallError::Write {
            what: "the trust store".into(),
            reason: e.to_string(),
        })?;
        let idx = Index::load(req.index.clone(), req.ca.clone()).await?;
        let entry = idx.resolve(&req.name, req.version.as_deref())?.clone();
        let previous = self.store.installed_connector(&req.name).await?;
        if let Some(p) = &previous
            && !req.allow_downgrade
        {
            let (old, new) = (
                semver::Version::parse(&p.version).ok(),
                semver::Version::parse(&entry.version).ok(),
            );
            if let (Some(old), Some(new)) = (old, new)
                && new < old
            {
                return Err(InstallError::Downgrade {
                    name: req.name.clone(),
                    installed: p.version.clone(),
                    requested: entry.version.clone(),
                });
            }
        }
        let bytes = idx.download(&req.name, &entry).await?;
        let what = format!("{} {} from {}", req.name, entry.version, idx.location);
        let package = Package::parse(&bytes, &what)?;
        let key_id = package.verify(&trust, &what)?;
        index::check_entry(&req.name, &entry, &package)?;
        let connector = self
            .runtime
            .load_uncached(&req.name, &package.component)
            .map_err(|e| InstallError::NotAConnector {
                name: req.name.clone(),
                version: entry.version.clone(),
                reason: e.to_string(),
            })?;
        if connector.kind() != entry.kind {
            return Err(InstallError::NotAConnector {
                name: req.name.clone(),
                version: entry.version.clone(),
                reason: format!(
                    "is a {}, but the index lists a {}",
                    connector.kind(),
                    entry.kind
                ),
            });
        }
        let intact = previous.as_ref().is_some_and(|p| {
            std::fs::read(self.store.installed_component(p))
                .is_ok_and(|b| crate::boundary::crypto::sha256_hex(&b) == p.component_sha256)
        });
        let capabilities = capability_lines(&package.manifest);
        let before: Vec<String> = previous
            .as_ref()
            .map(|p| p.approved.clone())
            .unwrap_or_default();
        let added = capabilities
            .iter()
            .filter(|c| !before.contains(c))
            .cloned()
            .collect();
        let removed = before
            .iter()
            .filter(|c| !capabilities.contains(c))
            .cloned()
            .collect();
        Ok(Plan {
            name: req.name.clone(),
            entry,
            index: idx.location.to_string(),
            package,
            package_bytes: bytes,
            key_id,
            capabilities,
            previous,
            added,
            removed,
            intact,
            connector,
        })
    }

    /// Install a vetted plan. `approved` lists the lines the operator approved (`None`: no
    /// approval given); every line of [`Plan::to_approve`] must be in it.
    pub async fn commit(
        &self,
        plan: Plan,
        approved: Option<&[String]>,
    ) -> Result<InstalledConnector, InstallError> {
        let version = plan.entry.version.clone();
        if plan.needs_approval() {
            let wanted = plan.to_approve();
            let missing: Vec<String> = match approved {
                None if wanted.is_empty() => {
                    vec!["the install itself (it requests no capabilities)".into()]
                }
                None => wanted,
                Some(list) => wanted.into_iter().filter(|c| !list.contains(c)).collect(),
            };
            if !missing.is_empty() {
                return Err(InstallError::NotApproved {
                    name: plan.name,
                    version,
                    missing,
                });
            }
        }
        let write = |what: &Path| {
            let what = what.display().to_string();
            move |e: std::io::Error| InstallError::Write {
                what,
                reason: e.to_string(),
            }
        };
        let root = self.data_dir().join("connectors");
        let final_dir = self.store.installed_dir(&plan.name, &version);
        let parent = final_dir.parent().expect("has a parent").to_path_buf();
        std::fs::create_dir_all(&parent).map_err(write(&parent))?;
        // Stage beside the final place (same file system), then rename: a crash leaves either
        // no directory or a whole one, never a torn component.
        let staging = tempfile::Builder::new()
            .prefix(".staging-")
            .tempdir_in(&root)
            .map_err(write(&root))?;
        for (file, bytes) in [
            ("component.wasm", &plan.package.component[..]),
            ("manifest.toml", plan.package.manifest_text.as_bytes()),
            ("package.slpkg", &plan.package_bytes[..]),
        ] {
            let path = staging.path().join(file);
            std::fs::write(&path, bytes).map_err(write(&path))?;
        }
        let cache_file = self.runtime.cache_entry(plan.connector.digest());
        let cache_was_there = cache_file.as_ref().is_some_and(|f| f.exists());
        self.runtime
            .cache_compiled(&plan.connector)
            .map_err(|e| InstallError::Write {
                what: "the compiled cache".into(),
                reason: e.to_string(),
            })?;
        let undo_cache = || {
            if !cache_was_there && let Some(f) = &cache_file {
                let _ = std::fs::remove_file(f);
            }
        };
        let replaced = final_dir.exists();
        if replaced && let Err(e) = std::fs::remove_dir_all(&final_dir) {
            undo_cache();
            return Err(write(&final_dir)(e));
        }
        let staged = staging.keep();
        if let Err(e) = std::fs::rename(&staged, &final_dir) {
            let _ = std::fs::remove_dir_all(&staged);
            undo_cache();
            return Err(write(&final_dir)(e));
        }
        let record = InstalledConnector {
            name: plan.name.clone(),
            version: version.clone(),
            kind: plan.entry.kind,
            component_sha256: plan.connector.digest().to_string(),
            package_sha256: plan.entry.sha256.clone(),
            key_id: plan.key_id.clone(),
            index: plan.index.clone(),
            manifest: plan.package.manifest_text.clone(),
            approved: plan.capabilities.clone(),
            installed_at: String::new(),
        };
        let record = match self.store.put_installed(&record).await {
            Ok(r) => r,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&final_dir);
                undo_cache();
                return Err(e.into());
            }
        };
        // The previous version's files go once the new one is recorded.
        if let Some(p) = &plan.previous
            && p.version != version
        {
            let _ = std::fs::remove_dir_all(self.store.installed_dir(&p.name, &p.version));
            if p.component_sha256 != record.component_sha256
                && let Some(f) = self.runtime.cache_entry(&p.component_sha256)
            {
                let _ = std::fs::remove_file(f);
            }
        }
        let action = match &plan.previous {
            None => "connector.installed",
            Some(p) if p.version == version => "connector.reinstalled",
            Some(p) => match (
                semver::Version::parse(&p.version),
                semver::Version::parse(&version),
            ) {
                (Ok(old), Ok(new)) if new < old => "connector.downgraded",
                _ => "connector.upgraded",
            },
        };
        self.store
            .audit(&[NewEntry::new(
                &self.actor,
                action,
                format!("connector/{}", plan.name),
                "ok",
                json!({
                    "version": version,
                    "previous": plan.previous.as_ref().map(|p| &p.version),
                    "index": plan.index,
                    "package_sha256": plan.entry.sha256,
                    "component_sha256": record.component_sha256,
                    "signed_by": plan.key_id,
                    "approved": plan.capabilities,
                    "added": plan.added,
                    "removed": plan.removed,
                }),
            )])
            .await?;
        Ok(record)
    }

    /// Audit a refused install or upgrade of `name` (the refusal itself changed nothing).
    pub async fn audit_refusal(&self, name: &str, error: &InstallError) -> Result<(), StoreError> {
        self.store
            .audit(&[NewEntry::new(
                &self.actor,
                "connector.install",
                format!("connector/{name}"),
                "refused",
                json!({ "reason": error.to_string() }),
            )])
            .await
    }

    /// Uninstall `name`: its record, its files and its compiled code.
    pub async fn remove(&self, name: &str) -> Result<InstalledConnector, InstallError> {
        let Some(c) = self.store.installed_connector(name).await? else {
            return Err(InstallError::NotInstalled { name: name.into() });
        };
        self.store.remove_installed(name).await?;
        let dir = self.data_dir().join("connectors").join(name);
        let _ = std::fs::remove_dir_all(&dir);
        if let Some(f) = self.runtime.cache_entry(&c.component_sha256) {
            let _ = std::fs::remove_file(f);
        }
        self.store
            .audit(&[NewEntry::new(
                &self.actor,
                "connector.removed",
                format!("connector/{name}"),
                "ok",
                json!({ "version": c.version, "component_sha256": c.component_sha256 }),
            )])
            .await?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_read_as_stable_lines() {
        let m = Manifest::parse(
            r#"
name = "x"
version = "1.0.0"
kind = "destination"
[capabilities]
dirs = [{ guest = "/out", access = "read-write" }, { guest = "/ref", access = "read-only" }]
network = ["https://*.example.com"]
secrets = [{ name = "token", why = "signs requests" }]
sql = [{ name = "wh", access = "write" }]
"#,
        )
        .unwrap();
        assert_eq!(
            capability_lines(&m),
            [
                "directory /out (read-write)",
                "directory /ref (read-only)",
                "network https://*.example.com",
                "secret `token` held inside the sandbox",
                "database `wh` (write)",
            ]
        );
    }
}
