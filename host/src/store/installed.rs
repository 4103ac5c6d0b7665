//! Connectors installed from an index: what is installed, checked against which digests, signed
//! by whom, and which capabilities the operator approved.

use std::path::PathBuf;

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, db, now};
use crate::protocol::ConnectorKind;

/// One installed connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct InstalledConnector {
    /// Its package name.
    pub name: String,
    /// The installed version.
    pub version: String,
    /// Source or destination.
    pub kind: ConnectorKind,
    /// Hex SHA-256 of its component (checked again every time it is loaded).
    pub component_sha256: String,
    /// Hex SHA-256 of the package it came from.
    pub package_sha256: String,
    /// The publisher key that signed it.
    pub key_id: String,
    /// The index it was installed from.
    pub index: String,
    /// Its `manifest.toml`.
    pub manifest: String,
    /// The capabilities the operator approved, one line each.
    pub approved: Vec<String>,
    /// RFC 3339.
    pub installed_at: String,
}

fn kind_text(k: ConnectorKind) -> &'static str {
    match k {
        ConnectorKind::Source => "source",
        ConnectorKind::Destination => "destination",
    }
}

fn row_to(r: &sqlx::any::AnyRow) -> Result<InstalledConnector, StoreError> {
    let name: String = r.get("name");
    let kind = match r.get::<String, _>("kind").as_str() {
        "source" => ConnectorKind::Source,
        "destination" => ConnectorKind::Destination,
        other => {
            return Err(StoreError::Corrupt(format!(
                "installed connector `{name}` has kind `{other}`"
            )));
        }
    };
    let approved: Vec<String> =
        serde_json::from_str(&r.get::<String, _>("approved")).map_err(|e| {
            StoreError::Corrupt(format!(
                "installed connector `{name}` has unreadable approvals: {e}"
            ))
        })?;
    Ok(InstalledConnector {
        version: r.get("version"),
        kind,
        component_sha256: r.get("component_sha256"),
        package_sha256: r.get("package_sha256"),
        key_id: r.get("key_id"),
        index: r.get("index_location"),
        manifest: r.get("manifest"),
        approved,
        installed_at: r.get("installed_at"),
        name,
    })
}

impl Store {
    /// Where an installed version's files are: `DATA_DIR/connectors/NAME/VERSION/`.
    pub fn installed_dir(&self, name: &str, version: &str) -> PathBuf {
        self.dir.join("connectors").join(name).join(version)
    }

    /// The component file of an installed connector.
    pub fn installed_component(&self, c: &InstalledConnector) -> PathBuf {
        self.installed_dir(&c.name, &c.version)
            .join("component.wasm")
    }

    /// Every installed connector, by name.
    pub async fn installed_connectors(&self) -> Result<Vec<InstalledConnector>, StoreError> {
        let rows = sqlx::query("SELECT * FROM installed_connectors ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(db("list installed connectors"))?;
        rows.iter().map(row_to).collect()
    }

    /// The installed connector called `name`, if any.
    pub async fn installed_connector(
        &self,
        name: &str,
    ) -> Result<Option<InstalledConnector>, StoreError> {
        let row = sqlx::query("SELECT * FROM installed_connectors WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("read installed connector"))?;
        row.as_ref().map(row_to).transpose()
    }

    /// Record `c` as installed (replacing the version installed before); `installed_at` is set
    /// to now.
    pub async fn put_installed(
        &self,
        c: &InstalledConnector,
    ) -> Result<InstalledConnector, StoreError> {
        let mut c = c.clone();
        c.installed_at = now();
        sqlx::query(
            "INSERT INTO installed_connectors (name, version, kind, component_sha256, package_sha256, key_id, index_location, manifest, approved, installed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (name) DO UPDATE SET version = excluded.version, kind = excluded.kind, \
             component_sha256 = excluded.component_sha256, package_sha256 = excluded.package_sha256, \
             key_id = excluded.key_id, index_location = excluded.index_location, \
             manifest = excluded.manifest, approved = excluded.approved, installed_at = excluded.installed_at",
        )
        .bind(&c.name)
        .bind(&c.version)
        .bind(kind_text(c.kind))
        .bind(&c.component_sha256)
        .bind(&c.package_sha256)
        .bind(&c.key_id)
        .bind(&c.index)
        .bind(&c.manifest)
        .bind(serde_json::to_string(&c.approved).expect("strings serialize"))
        .bind(&c.installed_at)
        .execute(&self.pool)
        .await
        .map_err(db("record installed connector"))?;
        Ok(c)
    }

    /// Forget the installed connector `name`; whether there was one.
    pub async fn remove_installed(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM installed_connectors WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db("remove installed connector"))?;
        Ok(done.rows_affected() > 0)
    }
}
