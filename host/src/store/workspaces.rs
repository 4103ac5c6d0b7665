//! The control API's resources: workspaces and their members, sources and destinations (with
//! sealed, write-only secret values), and connections. Definitions only: turning them into a
//! runnable [`crate::connection::Connection`] is the API's job.

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::Serialize;
use serde_json::Value;
use sqlx::Row;

use super::{Store, StoreError, db, now};
use crate::boundary::crypto;

/// A workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Workspace {
    /// Its name (the key in paths).
    pub name: String,
    /// RFC 3339.
    pub created_at: String,
    /// The CIDRs its routes may be called from; none means any address.
    pub allowed_ips: Option<Vec<String>>,
}

/// A key's role in one workspace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Member {
    /// The API key's id.
    pub key_id: String,
    /// `editor` or `viewer`.
    pub role: String,
}

/// A source or a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EndpointKind {
    /// Reads data.
    Source,
    /// Writes data.
    Destination,
}

impl EndpointKind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            EndpointKind::Source => "source",
            EndpointKind::Destination => "destination",
        }
    }
}

/// A secret of an endpoint, as it may be shown: whether a value is set, never the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SecretStatus {
    /// Its name (what `{{secret:NAME}}` placeholders use).
    pub name: String,
    /// Whether a value is stored.
    pub set: bool,
    /// RFC 3339, when set.
    pub updated_at: Option<String>,
}

/// A source or destination as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct EndpointDef {
    /// Its workspace.
    pub workspace: String,
    /// Source or destination.
    pub kind: EndpointKind,
    /// Its name in the workspace.
    pub name: String,
    /// The installed connector's name.
    pub connector: String,
    /// The connector's config (a JSON object; secrets as placeholders).
    pub config: Value,
    /// The grant, in the connection file's shape.
    pub grant: Value,
    /// The secrets its grant names, set or not.
    pub secrets: Vec<SecretStatus>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

/// A connection as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ConnectionDef {
    /// Its workspace.
    pub workspace: String,
    /// Its name in the workspace.
    pub name: String,
    /// The source's name (same workspace).
    pub source: String,
    /// The destination's name (same workspace).
    pub destination: String,
    /// Streams, PII policy, limits, failed records: the connection file's fields, as JSON.
    pub settings: Value,
    /// A cron expression, when it runs on a schedule.
    pub schedule: Option<String>,
    /// `active` or `paused`.
    pub status: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl ConnectionDef {
    /// The name its runs, state and lock are kept under: `WORKSPACE/NAME`.
    pub fn key(&self) -> String {
        connection_key(&self.workspace, &self.name)
    }
}

/// The name a workspace's connection is run under (runs, state, lock, audit).
pub fn connection_key(workspace: &str, name: &str) -> String {
    format!("{workspace}/{name}")
}

fn secret_identity(workspace: &str, kind: EndpointKind, endpoint: &str, name: &str) -> String {
    format!(
        "endpoint-secret/{workspace}/{}/{endpoint}/{name}",
        kind.as_str()
    )
}

fn json_col(r: &sqlx::any::AnyRow, col: &str) -> Result<Value, StoreError> {
    let text: String = r.get(col);
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

/// The secret names a grant (JSON, connection file shape) binds.
fn grant_secret_names(grant: &Value) -> Vec<String> {
    grant
        .get("secrets")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.get("name").and_then(Value::as_str).map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl Store {
    /// Create a workspace; `false` when one of that name exists.
    pub async fn create_workspace(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO workspaces (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(db("create workspace"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Every workspace, by name.
    pub async fn workspaces(&self) -> Result<Vec<Workspace>, StoreError> {
        self.workspace_rows(None).await
    }

    /// One workspace.
    pub async fn workspace(&self, name: &str) -> Result<Option<Workspace>, StoreError> {
        Ok(self.workspace_rows(Some(name)).await?.pop())
    }

    async fn workspace_rows(&self, name: Option<&str>) -> Result<Vec<Workspace>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, created_at, allowed_ips FROM workspaces \
             WHERE ($1 IS NULL OR name = $1) ORDER BY name",
        )
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .map_err(db("list workspaces"))?;
        Ok(rows
            .iter()
            .map(|r| Workspace {
                name: r.get("name"),
                created_at: r.get("created_at"),
                allowed_ips: r
                    .get::<Option<String>, _>("allowed_ips")
                    // Unreadable fails closed: an empty list allows no address.
                    .map(|j| serde_json::from_str(&j).unwrap_or_default()),
            })
            .collect())
    }

    /// Limit the addresses a workspace's routes may be called from (`None`: any). The CIDRs
    /// are checked by the caller. `false` when there is no such workspace.
    pub async fn set_workspace_ips(
        &self,
        name: &str,
        cidrs: Option<&[String]>,
    ) -> Result<bool, StoreError> {
        let json = cidrs.map(|c| serde_json::to_string(c).unwrap_or_default());
        let done = sqlx::query("UPDATE workspaces SET allowed_ips = $1 WHERE name = $2")
            .bind(json)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db("set workspace allowlist"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Give `key_id` a role in `workspace` (replacing its previous one).
    pub async fn set_member(
        &self,
        workspace: &str,
        key_id: &str,
        role: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO workspace_members (workspace, key_id, role) VALUES ($1, $2, $3) ON CONFLICT (workspace, key_id) DO UPDATE SET role = excluded.role")
            .bind(workspace)
            .bind(key_id)
            .bind(role)
            .execute(&self.pool)
            .await
            .map_err(db("set member"))?;
        Ok(())
    }

    /// Take `key_id` out of `workspace`; `false` when it was not a member.
    pub async fn remove_member(&self, workspace: &str, key_id: &str) -> Result<bool, StoreError> {
        let done =
            sqlx::query("DELETE FROM workspace_members WHERE workspace = $1 AND key_id = $2")
                .bind(workspace)
                .bind(key_id)
                .execute(&self.pool)
                .await
                .map_err(db("remove member"))?;
        Ok(done.rows_affected() == 1)
    }

    /// The members of `workspace`.
    pub async fn members(&self, workspace: &str) -> Result<Vec<Member>, StoreError> {
        let rows = sqlx::query(
            "SELECT key_id, role FROM workspace_members WHERE workspace = $1 ORDER BY key_id",
        )
        .bind(workspace)
        .fetch_all(&self.pool)
        .await
        .map_err(db("list members"))?;
        Ok(rows
            .iter()
            .map(|r| Member {
                key_id: r.get("key_id"),
                role: r.get("role"),
            })
            .collect())
    }

    /// `key_id`'s role in `workspace`, if it is a member.
    pub async fn member_role(
        &self,
        workspace: &str,
        key_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let row =
            sqlx::query("SELECT role FROM workspace_members WHERE workspace = $1 AND key_id = $2")
                .bind(workspace)
                .bind(key_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db("read member"))?;
        Ok(row.map(|r| r.get("role")))
    }

    /// The workspaces `key_id` is a member of.
    pub async fn workspaces_of(&self, key_id: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT workspace FROM workspace_members WHERE key_id = $1 ORDER BY workspace",
        )
        .bind(key_id)
        .fetch_all(&self.pool)
        .await
        .map_err(db("list memberships"))?;
        Ok(rows.iter().map(|r| r.get("workspace")).collect())
    }

    /// Create or replace a source or destination. `secrets` are new values (sealed here); a
    /// secret the grant still names keeps its stored value unless a new one is given, and
    /// values of secrets the grant no longer names are deleted.
    pub async fn put_endpoint(
        &self,
        e: &EndpointDef,
        secrets: &BTreeMap<String, SecretString>,
    ) -> Result<(), StoreError> {
        use secrecy::ExposeSecret;
        let now = now();
        let mut tx = self.write_tx().await.map_err(db("begin put endpoint"))?;
        sqlx::query("INSERT INTO endpoints (workspace, kind, name, connector, config, grant_json, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (workspace, kind, name) DO UPDATE SET connector = excluded.connector, config = excluded.config, grant_json = excluded.grant_json, updated_at = excluded.updated_at")
            .bind(&e.workspace)
            .bind(e.kind.as_str())
            .bind(&e.name)
            .bind(&e.connector)
            .bind(e.config.to_string())
            .bind(e.grant.to_string())
            .bind(&now)
            .bind(&now)
            .execute(&mut *tx)
            .await
            .map_err(db("put endpoint"))?;
        let named = grant_secret_names(&e.grant);
        let stored = sqlx::query(
            "SELECT name FROM endpoint_secrets WHERE workspace = $1 AND kind = $2 AND endpoint = $3",
        )
        .bind(&e.workspace)
        .bind(e.kind.as_str())
        .bind(&e.name)
        .fetch_all(&mut *tx)
        .await
        .map_err(db("read endpoint secrets"))?;
        for r in stored {
            let name: String = r.get("name");
            if !named.contains(&name) {
                sqlx::query("DELETE FROM endpoint_secrets WHERE workspace = $1 AND kind = $2 AND endpoint = $3 AND name = $4")
                    .bind(&e.workspace)
                    .bind(e.kind.as_str())
                    .bind(&e.name)
                    .bind(&name)
                    .execute(&mut *tx)
                    .await
                    .map_err(db("drop endpoint secret"))?;
            }
        }
        for (name, value) in secrets {
            let sealed = crypto::seal(
                self.keyring(),
                &secret_identity(&e.workspace, e.kind, &e.name, name),
                value.expose_secret().as_bytes(),
            );
            sqlx::query("INSERT INTO endpoint_secrets (workspace, kind, endpoint, name, sealed, updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (workspace, kind, endpoint, name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at")
                .bind(&e.workspace)
                .bind(e.kind.as_str())
                .bind(&e.name)
                .bind(name)
                .bind(sealed)
                .bind(&now)
                .execute(&mut *tx)
                .await
                .map_err(db("put endpoint secret"))?;
        }
        tx.commit().await.map_err(db("put endpoint"))?;
        Ok(())
    }

    async fn endpoint_rows(
        &self,
        workspace: &str,
        kind: EndpointKind,
        name: Option<&str>,
    ) -> Result<Vec<EndpointDef>, StoreError> {
        let rows = sqlx::query("SELECT * FROM endpoints WHERE workspace = $1 AND kind = $2 AND ($3 IS NULL OR name = $3) ORDER BY name")
            .bind(workspace)
            .bind(kind.as_str())
            .bind(name)
            .fetch_all(&self.pool)
            .await
            .map_err(db("read endpoints"))?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let name: String = r.get("name");
            let grant = json_col(&r, "grant_json")?;
            let set: BTreeMap<String, String> = sqlx::query("SELECT name, updated_at FROM endpoint_secrets WHERE workspace = $1 AND kind = $2 AND endpoint = $3")
                .bind(workspace)
                .bind(kind.as_str())
                .bind(&name)
                .fetch_all(&self.pool)
                .await
                .map_err(db("read endpoint secrets"))?
                .iter()
                .map(|r| (r.get("name"), r.get("updated_at")))
                .collect();
            let secrets = grant_secret_names(&grant)
                .into_iter()
                .map(|n| SecretStatus {
                    set: set.contains_key(&n),
                    updated_at: set.get(&n).cloned(),
                    name: n,
                })
                .collect();
            out.push(EndpointDef {
                workspace: workspace.to_string(),
                kind,
                name,
                connector: r.get("connector"),
                config: json_col(&r, "config")?,
                grant,
                secrets,
                created_at: r.get("created_at"),
                updated_at: r.get("updated_at"),
            });
        }
        Ok(out)
    }

    /// The sources or destinations of a workspace.
    pub async fn endpoints(
        &self,
        workspace: &str,
        kind: EndpointKind,
    ) -> Result<Vec<EndpointDef>, StoreError> {
        self.endpoint_rows(workspace, kind, None).await
    }

    /// One source or destination.
    pub async fn endpoint(
        &self,
        workspace: &str,
        kind: EndpointKind,
        name: &str,
    ) -> Result<Option<EndpointDef>, StoreError> {
        Ok(self.endpoint_rows(workspace, kind, Some(name)).await?.pop())
    }

    /// The connections of `workspace` that use this source or destination.
    pub async fn endpoint_users(
        &self,
        workspace: &str,
        kind: EndpointKind,
        name: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(match kind {
            EndpointKind::Source => {
                "SELECT name FROM connections WHERE workspace = $1 AND source = $2 ORDER BY name"
            }
            EndpointKind::Destination => {
                "SELECT name FROM connections WHERE workspace = $1 AND destination = $2 ORDER BY name"
            }
        })
        .bind(workspace)
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .map_err(db("find endpoint users"))?;
        Ok(rows.iter().map(|r| r.get("name")).collect())
    }

    /// Delete a source or destination and its secrets; `false` when there was none. The
    /// caller checks no connection uses it ([`Store::endpoint_users`]).
    pub async fn delete_endpoint(
        &self,
        workspace: &str,
        kind: EndpointKind,
        name: &str,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("DELETE FROM endpoints WHERE workspace = $1 AND kind = $2 AND name = $3")
                .bind(workspace)
                .bind(kind.as_str())
                .bind(name)
                .execute(&self.pool)
                .await
                .map_err(db("delete endpoint"))?;
        Ok(done.rows_affected() == 1)
    }

    /// The secret values of an endpoint, opened (for a run).
    pub async fn endpoint_secrets(
        &self,
        workspace: &str,
        kind: EndpointKind,
        name: &str,
    ) -> Result<BTreeMap<String, SecretString>, StoreError> {
        let rows = sqlx::query("SELECT name, sealed FROM endpoint_secrets WHERE workspace = $1 AND kind = $2 AND endpoint = $3")
            .bind(workspace)
            .bind(kind.as_str())
            .bind(name)
            .fetch_all(&self.pool)
            .await
            .map_err(db("read endpoint secrets"))?;
        let mut out = BTreeMap::new();
        for r in rows {
            let secret: String = r.get("name");
            let sealed: Vec<u8> = r.get("sealed");
            let plain = crypto::open(
                self.keyring(),
                &secret_identity(workspace, kind, name, &secret),
                &sealed,
            )?;
            let text = String::from_utf8(plain.to_vec())
                .map_err(|_| StoreError::Corrupt(format!("secret `{secret}` is not UTF-8")))?;
            out.insert(secret, SecretString::from(text));
        }
        Ok(out)
    }

    /// Create or replace a connection.
    pub async fn put_connection(&self, c: &ConnectionDef) -> Result<(), StoreError> {
        let now = now();
        sqlx::query("INSERT INTO connections (workspace, name, source, destination, settings, schedule, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (workspace, name) DO UPDATE SET source = excluded.source, destination = excluded.destination, settings = excluded.settings, schedule = excluded.schedule, status = excluded.status, updated_at = excluded.updated_at")
            .bind(&c.workspace)
            .bind(&c.name)
            .bind(&c.source)
            .bind(&c.destination)
            .bind(c.settings.to_string())
            .bind(&c.schedule)
            .bind(&c.status)
            .bind(&now)
            .bind(&now)
            .execute(&self.pool)
            .await
            .map_err(db("put connection"))?;
        Ok(())
    }

    async fn connection_rows(
        &self,
        workspace: Option<&str>,
        name: Option<&str>,
    ) -> Result<Vec<ConnectionDef>, StoreError> {
        let rows = sqlx::query("SELECT * FROM connections WHERE ($1 IS NULL OR workspace = $1) AND ($2 IS NULL OR name = $2) ORDER BY workspace, name")
            .bind(workspace)
            .bind(name)
            .fetch_all(&self.pool)
            .await
            .map_err(db("read connections"))?;
        rows.iter()
            .map(|r| {
                Ok(ConnectionDef {
                    workspace: r.get("workspace"),
                    name: r.get("name"),
                    source: r.get("source"),
                    destination: r.get("destination"),
                    settings: json_col(r, "settings")?,
                    schedule: r.get("schedule"),
                    status: r.get("status"),
                    created_at: r.get("created_at"),
                    updated_at: r.get("updated_at"),
                })
            })
            .collect()
    }

    /// The connections of a workspace, or of all workspaces.
    pub async fn connection_defs(
        &self,
        workspace: Option<&str>,
    ) -> Result<Vec<ConnectionDef>, StoreError> {
        self.connection_rows(workspace, None).await
    }

    /// One connection.
    pub async fn connection_def(
        &self,
        workspace: &str,
        name: &str,
    ) -> Result<Option<ConnectionDef>, StoreError> {
        Ok(self
            .connection_rows(Some(workspace), Some(name))
            .await?
            .pop())
    }

    /// Delete a connection (its runs and state stay, under its key); `false` when there was none.
    pub async fn delete_connection(&self, workspace: &str, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM connections WHERE workspace = $1 AND name = $2")
            .bind(workspace)
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db("delete connection"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Re-wrap the endpoint secrets under the keyring's current key (part of
    /// [`Store::rewrap_all`]).
    pub(super) async fn rewrap_endpoint_secrets(
        &self,
        tx: &mut sqlx::AnyConnection,
    ) -> Result<u64, StoreError> {
        let rows =
            sqlx::query("SELECT workspace, kind, endpoint, name, sealed FROM endpoint_secrets")
                .fetch_all(&mut *tx)
                .await
                .map_err(db("read endpoint secrets"))?;
        let mut n = 0;
        for r in rows {
            let (workspace, kind, endpoint, name): (String, String, String, String) = (
                r.get("workspace"),
                r.get("kind"),
                r.get("endpoint"),
                r.get("name"),
            );
            let k = if kind == "source" {
                EndpointKind::Source
            } else {
                EndpointKind::Destination
            };
            let sealed: Vec<u8> = r.get("sealed");
            let identity = secret_identity(&workspace, k, &endpoint, &name);
            if let Some(new) = crypto::rewrap(self.keyring(), &identity, &sealed)? {
                sqlx::query("UPDATE endpoint_secrets SET sealed = $1 WHERE workspace = $2 AND kind = $3 AND endpoint = $4 AND name = $5")
                    .bind(new)
                    .bind(&workspace)
                    .bind(&kind)
                    .bind(&endpoint)
                    .bind(&name)
                    .execute(&mut *tx)
                    .await
                    .map_err(db("rewrap endpoint secret"))?;
                n += 1;
            }
        }
        Ok(n)
    }
}
