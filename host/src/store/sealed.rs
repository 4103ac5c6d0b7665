//! Sealed values in the store: operator secrets (`sluice secrets set`) and, for key rotation,
//! re-wrapping every sealed value under the current key.

use sqlx::Row;

use super::{SEALED, Store, StoreError, db, now, state_identity};
use crate::boundary::crypto;

/// A stored secret's name and when it was set (never its value).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoredSecret {
    /// Its name.
    pub name: String,
    /// RFC 3339.
    pub updated_at: String,
}

fn secret_identity(name: &str) -> String {
    format!("secret/{name}")
}

impl Store {
    /// Seal and store a secret (replacing one of the same name).
    pub async fn set_secret(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let sealed = crypto::seal(self.keyring(), &secret_identity(name), value.as_bytes());
        sqlx::query("INSERT INTO secrets (name, sealed, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated_at = excluded.updated_at")
            .bind(name)
            .bind(sealed)
            .bind(now())
            .execute(&self.pool)
            .await
            .map_err(db("store secret"))?;
        Ok(())
    }

    /// A stored secret's value, or `None` when there is none of that name.
    pub async fn secret(&self, name: &str) -> Result<Option<secrecy::SecretString>, StoreError> {
        let row = sqlx::query("SELECT sealed FROM secrets WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db("read secret"))?;
        let Some(row) = row else { return Ok(None) };
        let sealed: Vec<u8> = row.get("sealed");
        let plain = crypto::open(self.keyring(), &secret_identity(name), &sealed)?;
        let text = std::str::from_utf8(&plain)
            .map_err(|_| StoreError::Corrupt(format!("secret `{name}` is not UTF-8")))?;
        Ok(Some(secrecy::SecretString::from(text.to_string())))
    }

    /// The stored secrets' names.
    pub async fn secrets(&self) -> Result<Vec<StoredSecret>, StoreError> {
        let rows = sqlx::query("SELECT name, updated_at FROM secrets ORDER BY name")
            .fetch_all(&self.pool)
            .await
            .map_err(db("list secrets"))?;
        Ok(rows
            .into_iter()
            .map(|r| StoredSecret {
                name: r.get("name"),
                updated_at: r.get("updated_at"),
            })
            .collect())
    }

    /// Remove a stored secret; whether there was one.
    pub async fn remove_secret(&self, name: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM secrets WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(db("remove secret"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Re-wrap every sealed value in the store under the keyring's current key (after a
    /// rotation). Returns how many were re-wrapped. Plain state left by an older version is
    /// sealed on the way.
    pub async fn rewrap_all(&self) -> Result<u64, StoreError> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut tx = self.write_tx().await.map_err(db("begin rewrap"))?;
        let mut n = 0;
        let rows = sqlx::query("SELECT name, sealed FROM secrets")
            .fetch_all(&mut *tx)
            .await
            .map_err(db("read secrets"))?;
        for r in rows {
            let name: String = r.get("name");
            let sealed: Vec<u8> = r.get("sealed");
            if let Some(new) = crypto::rewrap(self.keyring(), &secret_identity(&name), &sealed)? {
                sqlx::query("UPDATE secrets SET sealed = $1 WHERE name = $2")
                    .bind(new)
                    .bind(&name)
                    .execute(&mut *tx)
                    .await
                    .map_err(db("rewrap secret"))?;
                n += 1;
            }
        }
        let rows = sqlx::query("SELECT connection, stream, state FROM stream_state")
            .fetch_all(&mut *tx)
            .await
            .map_err(db("read states"))?;
        for r in rows {
            let (connection, stream, stored): (String, String, String) =
                (r.get("connection"), r.get("stream"), r.get("state"));
            let identity = state_identity(&connection, &stream);
            let new = match stored.strip_prefix(SEALED) {
                Some(text) => {
                    let bytes = b64
                        .decode(text)
                        .map_err(|_| StoreError::Corrupt(format!("{identity} is not base64")))?;
                    crypto::rewrap(self.keyring(), &identity, &bytes)?
                        .map(|b| format!("{SEALED}{}", b64.encode(b)))
                }
                None => Some(self.seal_text(&identity, &stored)),
            };
            if let Some(new) = new {
                sqlx::query(
                    "UPDATE stream_state SET state = $1 WHERE connection = $2 AND stream = $3",
                )
                .bind(new)
                .bind(&connection)
                .bind(&stream)
                .execute(&mut *tx)
                .await
                .map_err(db("rewrap state"))?;
                n += 1;
            }
        }
        n += self.rewrap_endpoint_secrets(&mut tx).await?;
        n += self.rewrap_signing_secrets(&mut tx).await?;
        n += self.rewrap_webhook_secrets(&mut tx).await?;
        tx.commit().await.map_err(db("rewrap"))?;
        Ok(n)
    }
}
