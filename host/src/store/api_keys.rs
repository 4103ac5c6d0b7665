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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
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
    /// The CIDRs it may call from; none means any address.
    pub allowed_ips: Option<Vec<String>>,
    /// Whether its requests must be signed (HMAC-SHA256 with its signing secret).
    pub signed: bool,
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

/// Rotations are made one at a time (within this process).
static KEY_CHANGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The advisory lock PostgreSQL stores take around changes that could leave no owner.
const KEY_LOCK: i64 = 7_310_412;

/// Key `id`, read in `conn`'s transaction.
async fn key_in(conn: &mut sqlx::AnyConnection, id: &str) -> Result<Option<ApiKey>, StoreError> {
    let row = sqlx::query("SELECT * FROM api_keys WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db("read api key"))?;
    Ok(row.as_ref().map(row_to))
}

/// Active owner keys other than `id`, counted in `conn`'s transaction.
async fn active_owners_except(
    conn: &mut sqlx::AnyConnection,
    id: &str,
) -> Result<usize, StoreError> {
    let rows = sqlx::query("SELECT * FROM api_keys WHERE role = 'owner' AND revoked_at IS NULL")
        .fetch_all(&mut *conn)
        .await
        .map_err(db("count owner keys"))?;
    Ok(rows
        .iter()
        .map(row_to)
        .filter(|k| k.id != id && !k.expires_at.as_deref().is_some_and(is_past))
        .count())
}

fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn row_to(r: &sqlx::any::AnyRow) -> ApiKey {
    ApiKey {
        id: r.get("id"),
        name: r.get("name"),
        role: r.get("role"),
        created_at: r.get("created_at"),
        expires_at: r.get("expires_at"),
        revoked_at: r.get("revoked_at"),
        allowed_ips: r
            .get::<Option<String>, _>("allowed_ips")
            // Unreadable fails closed: an empty list allows no address.
            .map(|j| serde_json::from_str(&j).unwrap_or_default()),
        signed: r.get::<Option<Vec<u8>>, _>("signing_sealed").is_some(),
    }
}

/// The identity a key's signing secret is sealed under.
fn signing_identity(id: &str) -> String {
    format!("api-key-signing/{id}")
}

/// The prefix of signing secrets, so a leaked one is recognisable.
pub const SIGNING_PREFIX: &str = "sluice_sig_";

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
            allowed_ips: None,
            signed: false,
        };
        sqlx::query("INSERT INTO api_keys (id, name, role, secret_sha256, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
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
        let row = sqlx::query("SELECT * FROM api_keys WHERE id = $1")
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
        let mut tx = self.key_change().await?;
        let Some(key) = key_in(&mut tx, id)
            .await?
            .filter(|k| k.revoked_at.is_none())
        else {
            return Ok(KeyChange::NotFound);
        };
        if key.role == "owner" && active_owners_except(&mut tx, id).await? == 0 {
            return Ok(KeyChange::LastOwner);
        }
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now())
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db("revoke api key"))?;
        tx.commit().await.map_err(db("revoke api key"))?;
        Ok(KeyChange::Done)
    }

    /// Change a key's organization role. Demoting the last active owner is refused.
    pub async fn set_api_key_role(&self, id: &str, role: &str) -> Result<KeyChange, StoreError> {
        let mut tx = self.key_change().await?;
        let Some(key) = key_in(&mut tx, id)
            .await?
            .filter(|k| k.revoked_at.is_none())
        else {
            return Ok(KeyChange::NotFound);
        };
        if key.role == "owner" && role != "owner" && active_owners_except(&mut tx, id).await? == 0 {
            return Ok(KeyChange::LastOwner);
        }
        sqlx::query("UPDATE api_keys SET role = $1 WHERE id = $2")
            .bind(role)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db("set api key role"))?;
        if role != "member" {
            // Workspace roles are for members; other roles reach every workspace by themselves.
            sqlx::query("DELETE FROM workspace_members WHERE key_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db("drop memberships"))?;
        }
        tx.commit().await.map_err(db("set api key role"))?;
        Ok(KeyChange::Done)
    }

    /// A transaction for a change that could leave no owner, serialized with every other such
    /// change in every process on the store: SQLite's `BEGIN IMMEDIATE`, or PostgreSQL's
    /// advisory lock [`KEY_LOCK`] (a replica's own mutex would not stop another replica).
    async fn key_change(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        let mut tx = match self.backend {
            super::Backend::Sqlite => self.write_tx().await,
            // Each statement reads what was committed when it began, so the owners are counted
            // after the lock is granted, whatever the role's default isolation.
            super::Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
                    .await
            }
        }
        .map_err(db("begin key change"))?;
        if self.backend == super::Backend::Postgres {
            sqlx::query("SELECT 1 AS locked FROM pg_advisory_xact_lock($1)")
                .bind(KEY_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(db("lock key changes"))?;
        }
        Ok(tx)
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
        let (mut new, token) = self.create_api_key(&old.name, &old.role, expires).await?;
        // The new key keeps the old one's policies: its allowlist and its signing secret.
        if let Some(ips) = &old.allowed_ips {
            self.set_api_key_ips(&new.id, Some(ips)).await?;
        }
        if let Some(secret) = self.api_key_signing_secret(id).await? {
            self.store_signing_secret(&new.id, Some(&secret)).await?;
        }
        new.allowed_ips = old.allowed_ips.clone();
        new.signed = old.signed;
        sqlx::query("INSERT INTO workspace_members (workspace, key_id, role) SELECT workspace, $1, role FROM workspace_members WHERE key_id = $2")
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
        sqlx::query("UPDATE api_keys SET expires_at = $1 WHERE id = $2")
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
        let row = sqlx::query("SELECT * FROM api_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("read api key"))?;
        Ok(row.as_ref().map(row_to))
    }

    /// Limit the addresses a key may call from (`None`: any). The CIDRs are checked by the
    /// caller. `false` when there is no such key.
    pub async fn set_api_key_ips(
        &self,
        id: &str,
        cidrs: Option<&[String]>,
    ) -> Result<bool, StoreError> {
        let json = cidrs.map(|c| serde_json::to_string(c).unwrap_or_default());
        let done = sqlx::query("UPDATE api_keys SET allowed_ips = $1 WHERE id = $2")
            .bind(json)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db("set key allowlist"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Require signed requests from a key, with a new signing secret (returned, shown once;
    /// calling again replaces it), or stop requiring them (`enable` false). `None` when there
    /// is no such key.
    pub async fn set_api_key_signing(
        &self,
        id: &str,
        enable: bool,
    ) -> Result<Option<Option<SecretString>>, StoreError> {
        let secret = if enable {
            let mut raw = zeroize::Zeroizing::new([0u8; 32]);
            getrandom::fill(raw.as_mut())
                .map_err(|e| StoreError::Corrupt(format!("no randomness for a secret: {e}")))?;
            Some(SecretString::from(format!(
                "{SIGNING_PREFIX}{}",
                hex::encode(raw.as_ref())
            )))
        } else {
            None
        };
        if !self.store_signing_secret(id, secret.as_ref()).await? {
            return Ok(None);
        }
        Ok(Some(secret))
    }

    async fn store_signing_secret(
        &self,
        id: &str,
        secret: Option<&SecretString>,
    ) -> Result<bool, StoreError> {
        use secrecy::ExposeSecret;
        let sealed = secret.map(|s| {
            crate::boundary::crypto::seal(
                self.keyring(),
                &signing_identity(id),
                s.expose_secret().as_bytes(),
            )
        });
        let done = sqlx::query("UPDATE api_keys SET signing_sealed = $1 WHERE id = $2")
            .bind(sealed)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db("set key signing"))?;
        Ok(done.rows_affected() == 1)
    }

    /// A key's signing secret, when its requests must be signed.
    pub async fn api_key_signing_secret(
        &self,
        id: &str,
    ) -> Result<Option<SecretString>, StoreError> {
        let sealed: Option<Vec<u8>> =
            sqlx::query("SELECT signing_sealed FROM api_keys WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(db("read key signing"))?
                .and_then(|r| r.get("signing_sealed"));
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let plain = crate::boundary::crypto::open(self.keyring(), &signing_identity(id), &sealed)?;
        let text = String::from_utf8(plain.to_vec())
            .map_err(|_| StoreError::Corrupt(format!("key {id}'s signing secret is not UTF-8")))?;
        Ok(Some(SecretString::from(text)))
    }

    /// Re-wrap the keys' signing secrets under the keyring's current key (part of
    /// [`Store::rewrap_all`]).
    pub(super) async fn rewrap_signing_secrets(
        &self,
        tx: &mut sqlx::AnyConnection,
    ) -> Result<u64, StoreError> {
        let rows =
            sqlx::query("SELECT id, signing_sealed FROM api_keys WHERE signing_sealed IS NOT NULL")
                .fetch_all(&mut *tx)
                .await
                .map_err(db("read signing secrets"))?;
        let mut n = 0;
        for r in rows {
            let id: String = r.get("id");
            let sealed: Vec<u8> = r.get("signing_sealed");
            if let Some(new) =
                crate::boundary::crypto::rewrap(self.keyring(), &signing_identity(&id), &sealed)?
            {
                sqlx::query("UPDATE api_keys SET signing_sealed = $1 WHERE id = $2")
                    .bind(new)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db("rewrap signing secret"))?;
                n += 1;
            }
        }
        Ok(n)
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
