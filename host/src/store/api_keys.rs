//! API keys of the control API: created with a role and an optional expiry, shown once, stored
//! as the SHA-256 of their secret half, revocable.

use secrecy::SecretString;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use subtle::ConstantTimeEq;

use super::{Store, StoreError, db, now};

/// The prefix of every token, so a leaked one is recognisable (and scannable) as sluice's.
pub const TOKEN_PREFIX: &str = "sluice_";

/// An API key as stored (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    /// The public id (16 hex digits), the middle of the token.
    pub id: String,
    /// What it is for.
    pub name: String,
    /// Its organization role: `owner`, `admin`, `billing` or `member`.
    pub role: String,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339, or none.
    pub expires_at: Option<String>,
    /// RFC 3339, once revoked.
    pub revoked_at: Option<String>,
}

/// Why a presented token is not accepted. The variants stay distinct for the audit log; the
/// caller is told only that authentication failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    /// Not a sluice token, or no key with that id, or the wrong secret.
    Unknown,
    /// Past its expiry.
    Expired,
    /// Revoked.
    Revoked,
}

/// What a change to a key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyChange {
    /// Done.
    Done,
    /// No such active key.
    NotFound,
    /// Refused: it is the last active owner key (create another owner key first).
    LastOwner,
}

/// Changes that could leave no owner are made one at a time (within this process).
static KEY_CHANGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn row_to(r: &sqlx::sqlite::SqliteRow) -> ApiKey {
    ApiKey {
        id: r.get("id"),
        name: r.get("name"),
        role: r.get("role"),
        created_at: r.get("created_at"),
        expires_at: r.get("expires_at"),
        revoked_at: r.get("revoked_at"),
    }
}

fn is_past(rfc3339: &str) -> bool {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(|t| t <= time::OffsetDateTime::now_utc())
        .unwrap_or(true)
}

impl Store {
    /// Create a key; returns it and its token (`sluice_<id>_<secret>`), which is shown once.
    pub async fn create_api_key(
        &self,
        name: &str,
        role: &str,
        expires_at: Option<time::OffsetDateTime>,
    ) -> Result<(ApiKey, SecretString), StoreError> {
        let mut id = [0u8; 8];
        let mut secret = [0u8; 32];
        getrandom::fill(&mut id)
            .and_then(|()| getrandom::fill(&mut secret))
            .map_err(|e| StoreError::Corrupt(format!("no randomness for a key: {e}")))?;
        let id = hex::encode(id);
        let secret = hex::encode(secret);
        let expires = expires_at.map(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        });
        let key = ApiKey {
            id: id.clone(),
            name: name.to_string(),
            role: role.to_string(),
            created_at: now(),
            expires_at: expires,
            revoked_at: None,
        };
        sqlx::query("INSERT INTO api_keys (id, name, role, secret_sha256, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)")
            .bind(&key.id)
            .bind(&key.name)
            .bind(&key.role)
            .bind(secret_hash(&secret))
            .bind(&key.created_at)
            .bind(&key.expires_at)
            .execute(&self.pool)
            .await
            .map_err(db("create api key"))?;
        let token = SecretString::from(format!("{TOKEN_PREFIX}{id}_{secret}"));
        Ok((key, token))
    }

    /// The key a token belongs to, if the token is valid now; else why not (with the key's id
    /// when one was named, for the audit log).
    pub async fn authenticate_api_key(
        &self,
        token: &str,
    ) -> Result<Result<ApiKey, (KeyRefusal, Option<String>)>, StoreError> {
        let Some((id, secret)) = token
            .strip_prefix(TOKEN_PREFIX)
            .and_then(|rest| rest.split_once('_'))
        else {
            return Ok(Err((KeyRefusal::Unknown, None)));
        };
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(Err((KeyRefusal::Unknown, None)));
        }
        let row = sqlx::query("SELECT * FROM api_keys WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("read api key"))?;
        let Some(row) = row else {
            return Ok(Err((KeyRefusal::Unknown, Some(id.to_string()))));
        };
        let stored: String = row.get("secret_sha256");
        if !bool::from(stored.as_bytes().ct_eq(secret_hash(secret).as_bytes())) {
            return Ok(Err((KeyRefusal::Unknown, Some(id.to_string()))));
        }
        let key = row_to(&row);
        if key.revoked_at.is_some() {
            return Ok(Err((KeyRefusal::Revoked, Some(key.id))));
        }
        if key.expires_at.as_deref().is_some_and(is_past) {
            return Ok(Err((KeyRefusal::Expired, Some(key.id))));
        }
        Ok(Ok(key))
    }

    /// Revoke a key. Refused for the last active owner key: there is always an owner.
    pub async fn revoke_api_key(&self, id: &str) -> Result<KeyChange, StoreError> {
        let _one_at_a_time = KEY_CHANGES.lock().await;
        let Some(key) = self.api_key(id).await?.filter(|k| k.revoked_at.is_none()) else {
            return Ok(KeyChange::NotFound);
        };
        if key.role == "owner" && self.active_owners_except(id).await? == 0 {
            return Ok(KeyChange::LastOwner);
        }
        sqlx::query("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db("revoke api key"))?;
        Ok(KeyChange::Done)
    }

    /// Change a key's organization role. Demoting the last active owner is refused.
    pub async fn set_api_key_role(&self, id: &str, role: &str) -> Result<KeyChange, StoreError> {
        let _one_at_a_time = KEY_CHANGES.lock().await;
        let Some(key) = self.api_key(id).await?.filter(|k| k.revoked_at.is_none()) else {
            return Ok(KeyChange::NotFound);
        };
        if key.role == "owner" && role != "owner" && self.active_owners_except(id).await? == 0 {
            return Ok(KeyChange::LastOwner);
        }
        sqlx::query("UPDATE api_keys SET role = ? WHERE id = ?")
            .bind(role)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db("set api key role"))?;
        if role != "member" {
            // Workspace roles are for members; other roles reach every workspace by themselves.
            sqlx::query("DELETE FROM workspace_members WHERE key_id = ?")
                .bind(id)
                .execute(&self.pool)
                .await
                .map_err(db("drop memberships"))?;
        }
        Ok(KeyChange::Done)
    }

    /// Rotate a key: a new key with the same name, role and workspace memberships, and the old
    /// one expiring after `grace` (sooner if it expired sooner anyway). Returns the new key and
    /// its token, shown once.
    pub async fn rotate_api_key(
        &self,
        id: &str,
        grace: time::Duration,
    ) -> Result<Option<(ApiKey, SecretString)>, StoreError> {
        let _one_at_a_time = KEY_CHANGES.lock().await;
        let Some(old) = self
            .api_key(id)
            .await?
            .filter(|k| k.revoked_at.is_none() && !k.expires_at.as_deref().is_some_and(is_past))
        else {
            return Ok(None);
        };
        let expires = old.expires_at.as_deref().and_then(|e| {
            time::OffsetDateTime::parse(e, &time::format_description::well_known::Rfc3339).ok()
        });
        let (new, token) = self.create_api_key(&old.name, &old.role, expires).await?;
        sqlx::query("INSERT INTO workspace_members (workspace, key_id, role) SELECT workspace, ?, role FROM workspace_members WHERE key_id = ?")
            .bind(&new.id)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db("copy memberships"))?;
        let grace_end = time::OffsetDateTime::now_utc() + grace;
        let old_end = match expires {
            Some(e) if e < grace_end => e,
            _ => grace_end,
        };
        sqlx::query("UPDATE api_keys SET expires_at = ? WHERE id = ?")
            .bind(
                old_end
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
            )
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db("expire rotated key"))?;
        Ok(Some((new, token)))
    }

    /// One key (never its secret).
    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query("SELECT * FROM api_keys WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("read api key"))?;
        Ok(row.as_ref().map(row_to))
    }

    async fn active_owners_except(&self, id: &str) -> Result<usize, StoreError> {
        Ok(self
            .api_keys()
            .await?
            .iter()
            .filter(|k| {
                k.id != id
                    && k.role == "owner"
                    && k.revoked_at.is_none()
                    && !k.expires_at.as_deref().is_some_and(is_past)
            })
            .count())
    }

    /// Every key, newest first.
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query("SELECT * FROM api_keys ORDER BY created_at DESC, id")
            .fetch_all(&self.pool)
            .await
            .map_err(db("list api keys"))?;
        Ok(rows.iter().map(row_to).collect())
    }
}
