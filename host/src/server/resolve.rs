//! Building the runnable connection a stored definition describes: its source and
//! destination as stored now, their secret values, and the workspace's own folders.

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::SecretString;
use serde_json::{Map, Value, json};

use crate::connection::Connection;
use crate::store::{ConnectionDef, EndpointKind, Store, StoreError};

/// Why a stored connection cannot be built into a runnable one.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// A source or destination it names does not exist.
    #[error("{kind} `{name}` does not exist in workspace `{workspace}`")]
    Missing {
        /// Source or destination.
        kind: &'static str,
        /// Its name.
        name: String,
        /// The workspace.
        workspace: String,
    },
    /// The definition does not make a valid connection.
    #[error("{0}")]
    Invalid(String),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// JSON → TOML has no null: leave nulls out.
fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// The workspace's file area: where relative directories in its grants point.
pub fn files_dir(store: &Store, workspace: &str) -> PathBuf {
    store.dir().join("files").join(workspace)
}

/// The workspace's own folder, apart from every other workspace's: its SQLite warehouse
/// (`warehouse/`, where its grants' `sqlite` files live), its runs' `staging/` and `samples/`.
pub fn workspace_dir(store: &Store, workspace: &str) -> PathBuf {
    store.dir().join("workspaces").join(workspace)
}

/// Build the runnable connection a stored definition describes: its source and destination as
/// stored now, their secret values (held for this run only), directories inside the
/// workspace's file area.
pub async fn resolve(store: &Store, def: &ConnectionDef) -> Result<Connection, ResolveError> {
    let ws = &def.workspace;
    let mut doc = Map::new();
    doc.insert("name".into(), json!(def.key()));
    doc.insert("workspace".into(), json!(ws));
    let mut held: BTreeMap<String, SecretString> = BTreeMap::new();
    for (kind, name) in [
        (EndpointKind::Source, &def.source),
        (EndpointKind::Destination, &def.destination),
    ] {
        let e = store
            .endpoint(ws, kind, name)
            .await?
            .ok_or_else(|| ResolveError::Missing {
                kind: kind.as_str(),
                name: name.clone(),
                workspace: ws.clone(),
            })?;
        doc.insert(
            kind.as_str().into(),
            json!({ "connector": e.connector, "config": e.config, "grant": e.grant }),
        );
        for (secret, value) in store.endpoint_secrets(ws, kind, name).await? {
            if held.insert(secret.clone(), value).is_some() {
                return Err(ResolveError::Invalid(format!(
                    "the source and the destination both bind a secret named `{secret}`: \
                     rename one of them"
                )));
            }
        }
    }
    if let Value::Object(settings) = &def.settings {
        for (k, v) in settings {
            doc.insert(k.clone(), v.clone());
        }
    }
    let text = toml::to_string(&without_nulls(Value::Object(doc)))
        .map_err(|e| ResolveError::Invalid(format!("cannot express the connection: {e}")))?;
    let base = files_dir(store, ws);
    std::fs::create_dir_all(&base)
        .map_err(|e| ResolveError::Invalid(format!("cannot create {}: {e}", base.display())))?;
    let origin = PathBuf::from(format!("workspaces/{ws}/connections/{}", def.name));
    let mut conn = Connection::from_toml(&origin, &base, &text)
        .map_err(|e| ResolveError::Invalid(e.to_string()))?;
    conn.held_secrets = Some(held);
    conn.area = Some(workspace_dir(store, ws));
    Ok(conn)
}
