//! Webhooks of a workspace and their deliveries (an outbox: an event is written once per
//! subscribed webhook when it happens, then delivered, retried and finally marked delivered or
//! failed, so a restart of the server loses none). Signing secrets are sealed with the keyring
//! and shown once; during a rotation the previous one stays valid until its grace ends.

use secrecy::SecretString;
use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError, db, now};
use crate::boundary::crypto;

/// The prefix of webhook signing secrets, so a leaked one is recognisable.
pub const WEBHOOK_SECRET_PREFIX: &str = "whsec_";

/// A webhook as it may be shown (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Webhook {
    /// `wh_` and 16 hex digits.
    pub id: String,
    /// The workspace whose events it receives.
    pub workspace: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The event types it receives (`run.succeeded`, `run.failed`, `run.interrupted`).
    pub events: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    /// Unix ms until which the previous secret still signs deliveries (after a rotation).
    pub previous_secret_until: Option<i64>,
}

/// One event for one webhook, and how delivering it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    /// `dlv_` and 16 hex digits (sent as `Sluice-Delivery`, for receivers to deduplicate).
    pub id: String,
    /// The webhook.
    pub webhook: String,
    /// The event type.
    pub event: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// Unix ms of the next attempt (while pending).
    pub next_at: i64,
    /// The HTTP status of the last attempt that got an answer.
    pub last_status: Option<i64>,
    /// Why the last attempt did not succeed.
    pub last_error: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// RFC 3339 of the last change.
    pub updated_at: String,
    /// The JSON body POSTed.
    #[serde(skip)]
    pub body: String,
}

/// A due delivery with where it goes.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// The delivery (its attempts not yet counting this one).
    pub delivery: Delivery,
    /// The webhook's workspace.
    pub workspace: String,
    /// The webhook's URL.
    pub url: String,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver answered 2xx.
    Delivered(u16),
    /// It did not; try again at `next_at` (unix ms).
    Retry {
        /// The HTTP status, if it answered.
        status: Option<u16>,
        /// Why it did not succeed.
        error: String,
        /// When to try again.
        next_at: i64,
    },
    /// It did not, and that was the last try.
    GaveUp {
        /// The HTTP status, if it answered.
        status: Option<u16>,
        /// Why it did not succeed.
        error: String,
    },
}

fn identity(id: &str) -> String {
    format!("webhook/{id}")
}

fn random_hex(bytes: usize) -> Result<String, StoreError> {
    let mut raw = zeroize::Zeroizing::new(vec![0u8; bytes]);
    getrandom::fill(raw.as_mut())
        .map_err(|e| StoreError::Corrupt(format!("no randomness: {e}")))?;
    Ok(hex::encode(raw.as_slice()))
}

fn new_secret() -> Result<SecretString, StoreError> {
    Ok(SecretString::from(format!(
        "{WEBHOOK_SECRET_PREFIX}{}",
        random_hex(32)?
    )))
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn webhook_row(r: &sqlx::any::AnyRow) -> Webhook {
    Webhook {
        id: r.get("id"),
        workspace: r.get("workspace"),
        url: r.get("url"),
        // Unreadable fails closed: no events.
        events: serde_json::from_str(&r.get::<String, _>("events")).unwrap_or_default(),
        created_at: r.get("created_at"),
        previous_secret_until: r
            .get::<Option<i64>, _>("previous_until")
            .filter(|until| *until > now_ms()),
    }
}

fn delivery_row(r: &sqlx::any::AnyRow) -> Delivery {
    Delivery {
        id: r.get("id"),
        webhook: r.get("webhook"),
        event: r.get("event"),
        status: r.get("status"),
        attempts: r.get("attempts"),
        next_at: r.get("next_at"),
        last_status: r.get("last_status"),
        last_error: r.get("last_error"),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
        body: r.get("body"),
    }
}

// Column lists as macros: sqlx takes only static SQL, which `concat!` builds from literals.
macro_rules! webhook_columns {
    () => {
        "id, workspace, url, events, created_at, previous_until"
    };
}
macro_rules! delivery_columns {
    () => {
        "d.id, d.webhook, d.event, d.status, d.attempts, d.next_at, d.last_status, \
         d.last_error, d.created_at, d.updated_at, d.body"
    };
}

/// The pending deliveries due by `$1`, oldest first, at most `$2`.
const DUE_DELIVERIES: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    ", w.workspace, w.url FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook \
     WHERE d.status = 'pending' AND d.next_at <= $1 ORDER BY d.next_at LIMIT $2"
);

/// [`DUE_DELIVERIES`], locking the deliveries it returns and skipping those another replica
/// is leasing.
const DUE_DELIVERIES_PG: &str = concat!(
    "SELECT ",
    delivery_columns!(),
    ", w.workspace, w.url FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook \
     WHERE d.status = 'pending' AND d.next_at <= $1 ORDER BY d.next_at LIMIT $2 \
     FOR UPDATE OF d SKIP LOCKED"
);

impl Store {
    /// Add a webhook to `workspace`; returns it and its signing secret (shown once).
    pub async fn create_webhook(
        &self,
        workspace: &str,
        url: &str,
        events: &[String],
    ) -> Result<(Webhook, SecretString), StoreError> {
        use secrecy::ExposeSecret;
        let id = format!("wh_{}", random_hex(8)?);
        let secret = new_secret()?;
        let sealed = crypto::seal(
            self.keyring(),
            &identity(&id),
            secret.expose_secret().as_bytes(),
        );
        sqlx::query(
            "INSERT INTO webhooks (id, workspace, url, events, secret_sealed, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(workspace)
        .bind(url)
        .bind(serde_json::to_string(events).unwrap_or_default())
        .bind(sealed)
        .bind(now())
        .execute(&self.pool)
        .await
        .map_err(db("create webhook"))?;
        let hook = self
            .webhook(workspace, &id)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("webhook {id} vanished")))?;
        Ok((hook, secret))
    }

    /// The webhooks of `workspace`, oldest first.
    pub async fn webhooks(&self, workspace: &str) -> Result<Vec<Webhook>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            webhook_columns!(),
            " FROM webhooks WHERE workspace = $1 ORDER BY created_at, id"
        ))
        .bind(workspace)
        .fetch_all(&self.pool)
        .await
        .map_err(db("list webhooks"))?;
        Ok(rows.iter().map(webhook_row).collect())
    }

    /// Webhook `id` of `workspace`.
    pub async fn webhook(&self, workspace: &str, id: &str) -> Result<Option<Webhook>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            webhook_columns!(),
            " FROM webhooks WHERE workspace = $1 AND id = $2"
        ))
        .bind(workspace)
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("read webhook"))?;
        Ok(row.as_ref().map(webhook_row))
    }

    /// Remove a webhook and its deliveries; whether there was one.
    pub async fn remove_webhook(&self, workspace: &str, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM webhooks WHERE workspace = $1 AND id = $2")
            .bind(workspace)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(db("remove webhook"))?;
        Ok(done.rows_affected() > 0)
    }

    /// Give a webhook a new signing secret (returned, shown once); the current one keeps
    /// signing deliveries, alongside the new one, for `grace`. `None` when there is no such
    /// webhook.
    pub async fn rotate_webhook_secret(
        &self,
        workspace: &str,
        id: &str,
        grace: std::time::Duration,
    ) -> Result<Option<SecretString>, StoreError> {
        use secrecy::ExposeSecret;
        let secret = new_secret()?;
        let sealed = crypto::seal(
            self.keyring(),
            &identity(id),
            secret.expose_secret().as_bytes(),
        );
        let until = now_ms().saturating_add(grace.as_millis().min(i64::MAX as u128) as i64);
        let done = sqlx::query(
            "UPDATE webhooks SET previous_sealed = secret_sealed, previous_until = $1, \
             secret_sealed = $2 WHERE workspace = $3 AND id = $4",
        )
        .bind(until)
        .bind(sealed)
        .bind(workspace)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db("rotate webhook secret"))?;
        Ok((done.rows_affected() == 1).then_some(secret))
    }

    /// The secrets that sign a webhook's deliveries now: the current one, then the previous
    /// one while its grace lasts.
    pub async fn webhook_secrets(&self, id: &str) -> Result<Vec<SecretString>, StoreError> {
        let Some(row) = sqlx::query(
            "SELECT secret_sealed, previous_sealed, previous_until FROM webhooks WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("read webhook secret"))?
        else {
            return Ok(Vec::new());
        };
        let mut sealed: Vec<Vec<u8>> = vec![row.get("secret_sealed")];
        let until: Option<i64> = row.get("previous_until");
        if let Some(previous) = row.get::<Option<Vec<u8>>, _>("previous_sealed")
            && until.is_some_and(|u| u > now_ms())
        {
            sealed.push(previous);
        }
        sealed
            .iter()
            .map(|s| {
                let plain = crypto::open(self.keyring(), &identity(id), s)?;
                String::from_utf8(plain.to_vec())
                    .map(SecretString::from)
                    .map_err(|_| StoreError::Corrupt(format!("webhook {id}'s secret is not UTF-8")))
            })
            .collect()
    }

    /// Queue `event` (its JSON `body`) for every webhook of `workspace` that receives it;
    /// returns the deliveries' ids with their webhooks.
    pub async fn enqueue_webhook_event(
        &self,
        workspace: &str,
        event: &str,
        body: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let hooks: Vec<Webhook> = self
            .webhooks(workspace)
            .await?
            .into_iter()
            .filter(|h| h.events.iter().any(|e| e == event))
            .collect();
        if hooks.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write_tx().await.map_err(db("begin enqueue"))?;
        let (at, due) = (now(), now_ms());
        let mut queued = Vec::new();
        for hook in hooks {
            let id = format!("dlv_{}", random_hex(8)?);
            sqlx::query(
                "INSERT INTO webhook_deliveries \
                 (id, webhook, event, body, next_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&id)
            .bind(&hook.id)
            .bind(event)
            .bind(body)
            .bind(due)
            .bind(&at)
            .bind(&at)
            .execute(&mut *tx)
            .await
            .map_err(db("enqueue delivery"))?;
            queued.push((id, hook.id));
        }
        tx.commit().await.map_err(db("commit enqueue"))?;
        Ok(queued)
    }

    /// Take up to `limit` deliveries due at `now` (unix ms). Taking one moves its next attempt
    /// `lease_ms` later, so a server that dies mid-attempt leaves it to be tried again then,
    /// and another server on the same data dir does not take it meanwhile.
    pub async fn take_due_deliveries(
        &self,
        now: i64,
        limit: u32,
        lease_ms: i64,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        // Most looks find nothing due: answer those with a read, without the write lock.
        let any = sqlx::query(
            "SELECT 1 FROM webhook_deliveries WHERE status = 'pending' AND next_at <= $1 LIMIT 1",
        )
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("look for due deliveries"))?;
        if any.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.write_tx().await.map_err(db("begin take deliveries"))?;
        // On PostgreSQL, replicas look at once under READ COMMITTED: the rows one leases are
        // locked until it commits, and the others skip them (then see them leased). SQLite's
        // BEGIN IMMEDIATE serializes the looks instead.
        let query = match self.backend {
            super::Backend::Postgres => DUE_DELIVERIES_PG,
            super::Backend::Sqlite => DUE_DELIVERIES,
        };
        let rows = sqlx::query(query)
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(db("read due deliveries"))?;
        let due: Vec<DueDelivery> = rows
            .iter()
            .map(|r| DueDelivery {
                delivery: delivery_row(r),
                workspace: r.get("workspace"),
                url: r.get("url"),
            })
            .collect();
        for d in &due {
            sqlx::query("UPDATE webhook_deliveries SET next_at = $1 WHERE id = $2")
                .bind(now.saturating_add(lease_ms))
                .bind(&d.delivery.id)
                .execute(&mut *tx)
                .await
                .map_err(db("lease delivery"))?;
        }
        tx.commit().await.map_err(db("commit take deliveries"))?;
        Ok(due)
    }

    /// Record an attempt at delivery `id` (its `attempts`-th). A record of an attempt no later
    /// than one recorded already, or of a delivery no longer pending, changes nothing: a
    /// replica that woke late does not turn a delivered event back into a pending one.
    pub async fn record_delivery_attempt(
        &self,
        id: &str,
        attempts: i64,
        attempt: &Attempt,
    ) -> Result<(), StoreError> {
        let (status, next_at, last_status, last_error) = match attempt {
            Attempt::Delivered(s) => ("delivered", None, Some(*s), None),
            Attempt::Retry {
                status,
                error,
                next_at,
            } => ("pending", Some(*next_at), *status, Some(error.as_str())),
            Attempt::GaveUp { status, error } => ("failed", None, *status, Some(error.as_str())),
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, attempts = $2, \
             next_at = COALESCE($3, next_at), last_status = $4, last_error = $5, updated_at = $6 \
             WHERE id = $7 AND status = 'pending' AND attempts < $2",
        )
        .bind(status)
        .bind(attempts)
        .bind(next_at)
        .bind(last_status.map(i64::from))
        .bind(last_error)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(db("record delivery attempt"))?;
        Ok(())
    }

    /// The latest `limit` deliveries of a webhook, newest first.
    pub async fn webhook_deliveries(
        &self,
        webhook: &str,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            delivery_columns!(),
            " FROM webhook_deliveries d WHERE d.webhook = $1 \
             ORDER BY d.created_at DESC, d.rowid DESC LIMIT $2"
        ))
        .bind(webhook)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db("list deliveries"))?;
        Ok(rows.iter().map(delivery_row).collect())
    }

    /// Re-wrap the webhooks' secrets under the keyring's current key (part of
    /// [`Store::rewrap_all`]).
    pub(super) async fn rewrap_webhook_secrets(
        &self,
        tx: &mut sqlx::AnyConnection,
    ) -> Result<u64, StoreError> {
        let rows = sqlx::query("SELECT id, secret_sealed, previous_sealed FROM webhooks")
            .fetch_all(&mut *tx)
            .await
            .map_err(db("read webhook secrets"))?;
        let mut n = 0;
        for r in rows {
            let id: String = r.get("id");
            let current: Vec<u8> = r.get("secret_sealed");
            let previous: Option<Vec<u8>> = r.get("previous_sealed");
            let new_current = crypto::rewrap(self.keyring(), &identity(&id), &current)?;
            let new_previous = match &previous {
                Some(p) => crypto::rewrap(self.keyring(), &identity(&id), p)?,
                None => None,
            };
            if new_current.is_none() && new_previous.is_none() {
                continue;
            }
            sqlx::query(
                "UPDATE webhooks SET secret_sealed = $1, previous_sealed = $2 WHERE id = $3",
            )
            .bind(new_current.unwrap_or(current))
            .bind(new_previous.or(previous))
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(db("rewrap webhook secret"))?;
            n += 1;
        }
        Ok(n)
    }
}
