//! The run queue: runs asked for and not yet finished, claimed by workers under a lease.
//!
//! A job is one connection's next run (one per connection: the table's unique key refuses a
//! second, so runs of a connection never overlap). A worker claims the oldest job it may run
//! (the labels the job requires are among its own) with `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL (workers claiming at once pass over each other's rows instead of waiting) and
//! under SQLite's write lock on the embedded store. Claiming begins the job's run, or, for a
//! job whose lease lapsed, resumes it at the next attempt: the attempt is the fencing token
//! that [`Store::commit_checkpoint`] and [`Store::finish_run`] check, so the worker that held
//! the older attempt can no longer write. The holder renews its lease while it runs; when the
//! run has finished it releases the job.

use std::collections::BTreeMap;
use std::time::Duration;

use super::runs::{begin_in, stream_stats};
use super::*;

/// Worker labels (`region = "eu"`): what a worker has and what a job requires.
pub type Labels = BTreeMap<String, String>;

/// A job a worker holds: the run it began or resumed, and the lease it holds it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The job.
    pub job: i64,
    /// The connection (its key).
    pub connection: String,
    /// Who asked for the run (for the audit log).
    pub actor: String,
    /// The worker holding it.
    pub worker: String,
    /// The run and the attempt this worker runs (its fencing token).
    pub start: RunStart,
}

/// What renewing a lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lease {
    /// Still held, until the new expiry; `cancel` when an operator asked the run to stop.
    Held {
        /// Why the run should stop, when asked.
        cancel: Option<String>,
    },
    /// Another worker holds the job now (this one's lease lapsed), or it is gone.
    Lost,
}

/// A job as listed: waiting or held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct QueuedRun {
    /// The job.
    pub job: i64,
    /// The connection (its key).
    pub connection: String,
    /// The labels a worker must have to run it.
    pub labels: Labels,
    /// The run, once a worker has claimed it.
    pub run_id: Option<i64>,
    /// The worker holding it, while one does.
    pub worker: Option<String>,
    /// When the holder's lease ends (unix ms).
    pub lease_until: Option<i64>,
    /// When it was asked for (unix ms).
    pub enqueued_at: i64,
}

/// What enqueuing a schedule occurrence did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Occurrence {
    /// Enqueued as this job.
    Enqueued(i64),
    /// Another replica enqueued this occurrence already.
    Taken,
    /// The connection's previous run is still queued or running: the occurrence is skipped.
    Busy,
}

/// Whether `key = value` may be a label: each 1 to 63 letters, digits, `.`, `_`, `-` or `/`
/// (what Kubernetes allows in a label, near enough), so labels print and compare plainly.
pub fn check_label(key: &str, value: &str) -> Result<(), String> {
    for (what, text) in [("key", key), ("value", value)] {
        let ok = (1..=63).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'));
        if !ok {
            return Err(format!(
                "label {what} `{}` must be 1 to 63 letters, digits, `.`, `_`, `-` or `/`",
                text.escape_debug()
            ));
        }
    }
    Ok(())
}

fn labels_json(labels: &Labels) -> String {
    serde_json::to_string(labels).unwrap_or_else(|_| "{}".into())
}

fn parse_labels(text: &str) -> Result<Labels, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("a queued run's labels are not an object: {e}")))
}

/// The oldest job a worker with labels `$2` may claim at `$1` (unix ms): free, or held by a
/// lease that lapsed, requiring no label the worker lacks, and of a connection no run outside
/// the queue is running (`sluice run` holds only its machine's lock). PostgreSQL skips rows another
/// worker's claim has locked.
const CLAIMABLE_PG: &str = "SELECT id, connection, fresh, actor, run_id, cancel FROM run_queue \
     WHERE (worker IS NULL OR lease_until < $1) AND CAST(labels AS JSONB) <@ CAST($2 AS JSONB) \
     AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.connection = run_queue.connection \
       AND r.status = 'running' AND (run_queue.run_id IS NULL OR r.id <> run_queue.run_id)) \
     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED";
const CLAIMABLE_SQLITE: &str = "SELECT id, connection, fresh, actor, run_id, cancel FROM run_queue \
     WHERE (worker IS NULL OR lease_until < $1) AND NOT EXISTS (\
       SELECT 1 FROM json_each(run_queue.labels) AS need WHERE NOT EXISTS (\
         SELECT 1 FROM json_each($2) AS has \
         WHERE has.key = need.key AND has.value = need.value)) \
     AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.connection = run_queue.connection \
       AND r.status = 'running' AND (run_queue.run_id IS NULL OR r.id <> run_queue.run_id)) \
     ORDER BY id LIMIT 1";

impl Store {
    /// Ask for a run of `connection` by a worker with `labels`; `None` when the connection
    /// has a run queued or running already (one at a time).
    pub async fn enqueue_run(
        &self,
        connection: &str,
        labels: &Labels,
        fresh: bool,
        actor: &str,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "INSERT INTO run_queue (connection, labels, fresh, actor, enqueued_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (connection) DO NOTHING RETURNING id",
        )
        .bind(connection)
        .bind(labels_json(labels))
        .bind(i64::from(fresh))
        .bind(actor)
        .bind(now_ms())
        .fetch_optional(&self.pool)
        .await
        .map_err(db("enqueue run"))?;
        Ok(row.map(|r| r.get("id")))
    }

    /// Enqueue a run of `connection` already claimed by `worker` for `lease`, in one
    /// transaction: how a server runs a run it was asked for itself, with the same exclusion
    /// and fencing as any queued run. `None` when the connection has a run queued or running.
    pub async fn enqueue_claimed(
        &self,
        connection: &str,
        labels: &Labels,
        fresh: bool,
        actor: &str,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Claimed>, StoreError> {
        let mut tx = self.write_tx().await.map_err(db("begin enqueue"))?;
        let now = now_ms();
        let Some(row) = sqlx::query(
            "INSERT INTO run_queue (connection, labels, fresh, actor, enqueued_at, worker, \
             lease_until) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (connection) DO NOTHING \
             RETURNING id",
        )
        .bind(connection)
        .bind(labels_json(labels))
        .bind(i64::from(fresh))
        .bind(actor)
        .bind(now)
        .bind(worker)
        .bind(now + lease_ms(lease))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("enqueue run"))?
        else {
            tx.rollback().await.map_err(db("enqueue run"))?;
            return Ok(None);
        };
        let job: i64 = row.get("id");
        // A run outside the queue (`sluice run`, a server on the embedded store) is going.
        let outside =
            sqlx::query("SELECT id FROM runs WHERE connection = $1 AND status = 'running'")
                .bind(connection)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db("look for a running run"))?;
        if outside.is_some() {
            tx.rollback().await.map_err(db("enqueue run"))?;
            return Ok(None);
        }
        let start = begin_in(&mut tx, connection, fresh).await?;
        sqlx::query("UPDATE run_queue SET run_id = $1, attempt = $2 WHERE id = $3")
            .bind(start.run_id)
            .bind(start.attempt)
            .bind(job)
            .execute(&mut *tx)
            .await
            .map_err(db("hold a queued run"))?;
        tx.commit().await.map_err(db("enqueue run"))?;
        Ok(Some(Claimed {
            job,
            connection: connection.to_string(),
            actor: actor.to_string(),
            worker: worker.to_string(),
            start,
        }))
    }

    /// Enqueue the schedule occurrence `occurrence` (its time, RFC 3339) of `connection`,
    /// once however many replicas try: the first to record the occurrence enqueues it.
    pub async fn enqueue_occurrence(
        &self,
        connection: &str,
        occurrence: &str,
        labels: &Labels,
        actor: &str,
    ) -> Result<Occurrence, StoreError> {
        let mut tx = self.write_tx().await.map_err(db("begin occurrence"))?;
        let first = sqlx::query(
            "INSERT INTO schedule_occurrences (connection, occurrence, enqueued_at) \
             VALUES ($1, $2, $3) ON CONFLICT (connection, occurrence) DO NOTHING",
        )
        .bind(connection)
        .bind(occurrence)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(db("record occurrence"))?;
        if first.rows_affected() == 0 {
            return Ok(Occurrence::Taken);
        }
        let job = sqlx::query(
            "INSERT INTO run_queue (connection, labels, fresh, actor, enqueued_at) \
             VALUES ($1, $2, 0, $3, $4) ON CONFLICT (connection) DO NOTHING RETURNING id",
        )
        .bind(connection)
        .bind(labels_json(labels))
        .bind(actor)
        .bind(now_ms())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db("enqueue occurrence"))?;
        tx.commit().await.map_err(db("enqueue occurrence"))?;
        Ok(match job {
            Some(r) => Occurrence::Enqueued(r.get("id")),
            None => Occurrence::Busy,
        })
    }

    /// Claim the oldest job worker `worker` (with `labels`) may run, for `lease`: its run
    /// begins (or resumes, at the next attempt, when the lease of the worker before lapsed).
    /// `None` when there is none.
    pub async fn claim_run(
        &self,
        worker: &str,
        labels: &Labels,
        lease: Duration,
    ) -> Result<Option<Claimed>, StoreError> {
        let claimable = match self.backend {
            Backend::Postgres => CLAIMABLE_PG,
            Backend::Sqlite => CLAIMABLE_SQLITE,
        };
        let has = labels_json(labels);
        let mut tx = self.write_tx().await.map_err(db("begin claim"))?;
        // A job whose run finished but whose worker died before releasing it is released here,
        // and the next one looked at; a handful per claim is plenty.
        for _ in 0..8 {
            let now = now_ms();
            let Some(row) = sqlx::query(claimable)
                .bind(now)
                .bind(&has)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db("find a queued run"))?
            else {
                break;
            };
            let job: i64 = row.get("id");
            let connection: String = row.get("connection");
            let run_id: Option<i64> = row.get("run_id");
            // Cancelled, and its holder gone before it stopped: ended, not resumed.
            if let Some(why) = row.get::<Option<String>, _>("cancel") {
                if let Some(run_id) = run_id {
                    sqlx::query(
                        "UPDATE runs SET status = 'interrupted', error = $1, finished_at = $2 \
                         WHERE id = $3 AND status = 'running'",
                    )
                    .bind(format!("stopped before the end: {why}"))
                    .bind(super::now())
                    .bind(run_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(db("end a cancelled run"))?;
                }
                release_in(&mut tx, job).await?;
                continue;
            }
            let start = match run_id {
                None => begin_in(&mut tx, &connection, row.get::<i64, _>("fresh") != 0).await?,
                Some(run_id) => match take_over(&mut tx, run_id).await? {
                    Some(start) => start,
                    None => {
                        release_in(&mut tx, job).await?;
                        continue;
                    }
                },
            };
            sqlx::query(
                "UPDATE run_queue SET run_id = $1, worker = $2, lease_until = $3, attempt = $4 \
                 WHERE id = $5",
            )
            .bind(start.run_id)
            .bind(worker)
            .bind(now + lease_ms(lease))
            .bind(start.attempt)
            .bind(job)
            .execute(&mut *tx)
            .await
            .map_err(db("hold a queued run"))?;
            tx.commit().await.map_err(db("claim run"))?;
            return Ok(Some(Claimed {
                job,
                connection,
                actor: row.get("actor"),
                worker: worker.to_string(),
                start,
            }));
        }
        tx.commit().await.map_err(db("claim run"))?;
        Ok(None)
    }

    /// Renew `claimed`'s lease for `lease` more (and say whether its run should stop).
    pub async fn renew_lease(
        &self,
        claimed: &Claimed,
        lease: Duration,
    ) -> Result<Lease, StoreError> {
        let row = sqlx::query(
            "UPDATE run_queue SET lease_until = $1 WHERE id = $2 AND worker = $3 AND run_id = $4 \
             AND attempt = $5 \
             AND EXISTS (SELECT 1 FROM runs WHERE runs.id = $4 AND runs.attempt = $5) \
             RETURNING cancel",
        )
        .bind(now_ms() + lease_ms(lease))
        .bind(claimed.job)
        .bind(&claimed.worker)
        .bind(claimed.start.run_id)
        .bind(claimed.start.attempt)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("renew lease"))?;
        Ok(match row {
            Some(r) => Lease::Held {
                cancel: r.get("cancel"),
            },
            None => Lease::Lost,
        })
    }

    /// Let `claimed`'s job go once its run has finished (or could not start): the connection
    /// may be queued again. A worker that lost the job releases nothing.
    pub async fn release_run(&self, claimed: &Claimed) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "DELETE FROM run_queue WHERE id = $1 AND worker = $2 AND run_id = $3 AND attempt = $4",
        )
        .bind(claimed.job)
        .bind(&claimed.worker)
        .bind(claimed.start.run_id)
        .bind(claimed.start.attempt)
        .execute(&self.pool)
        .await
        .map_err(db("release run"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Give `claimed`'s job back unfinished (its worker is shutting down, or may not run it):
    /// the next worker to claim it resumes the run at its next attempt, at once. Whether it was
    /// still this worker's to give.
    pub async fn hand_back(&self, claimed: &Claimed, labels: &Labels) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE run_queue SET worker = NULL, lease_until = NULL, labels = $1 \
             WHERE id = $2 AND worker = $3 AND run_id = $4 AND attempt = $5",
        )
        .bind(labels_json(labels))
        .bind(claimed.job)
        .bind(&claimed.worker)
        .bind(claimed.start.run_id)
        .bind(claimed.start.attempt)
        .execute(&self.pool)
        .await
        .map_err(db("hand a run back"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Ask run `run_id`, held from the queue by whichever worker, to stop at its holder's next
    /// heartbeat. Whether the queue holds that run.
    pub async fn cancel_run(&self, run_id: i64, why: &str) -> Result<bool, StoreError> {
        let held = sqlx::query("UPDATE run_queue SET cancel = $1 WHERE run_id = $2")
            .bind(why)
            .bind(run_id)
            .execute(&self.pool)
            .await
            .map_err(db("cancel a run"))?;
        Ok(held.rows_affected() > 0)
    }

    /// Ask the queued or running run of `connection` to stop: a waiting job is dropped, a held
    /// one is told at its worker's next heartbeat. Whether there was one.
    pub async fn cancel_queued(&self, connection: &str, why: &str) -> Result<bool, StoreError> {
        let mut tx = self.write_tx().await.map_err(db("begin cancel"))?;
        let waiting = sqlx::query("DELETE FROM run_queue WHERE connection = $1 AND run_id IS NULL")
            .bind(connection)
            .execute(&mut *tx)
            .await
            .map_err(db("drop a queued run"))?;
        let held = sqlx::query("UPDATE run_queue SET cancel = $1 WHERE connection = $2")
            .bind(why)
            .bind(connection)
            .execute(&mut *tx)
            .await
            .map_err(db("cancel a queued run"))?;
        tx.commit().await.map_err(db("cancel a queued run"))?;
        Ok(waiting.rows_affected() + held.rows_affected() > 0)
    }

    /// Forget the schedule occurrences enqueued, and the workers last heard from, before
    /// `before` (unix ms): a per-second schedule records 86,400 occurrences a day, and only
    /// the latest ones can still be contended by replicas. How many of each went.
    pub async fn prune_queue(&self, before: i64) -> Result<(u64, u64), StoreError> {
        let occurrences = sqlx::query("DELETE FROM schedule_occurrences WHERE enqueued_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(db("prune occurrences"))?;
        let workers = sqlx::query("DELETE FROM workers WHERE seen_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await
            .map_err(db("prune workers"))?;
        Ok((occurrences.rows_affected(), workers.rows_affected()))
    }

    /// The queue, oldest first.
    pub async fn queued_runs(&self) -> Result<Vec<QueuedRun>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, connection, labels, run_id, worker, lease_until, enqueued_at \
             FROM run_queue ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db("list the queue"))?;
        rows.iter()
            .map(|r| {
                Ok(QueuedRun {
                    job: r.get("id"),
                    connection: r.get("connection"),
                    labels: parse_labels(&r.get::<String, _>("labels"))?,
                    run_id: r.get("run_id"),
                    worker: r.get("worker"),
                    lease_until: r.get("lease_until"),
                    enqueued_at: r.get("enqueued_at"),
                })
            })
            .collect()
    }

    /// Record that worker `worker` with `labels` is alive (its heartbeat).
    pub async fn worker_seen(&self, worker: &str, labels: &Labels) -> Result<(), StoreError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO workers (id, labels, started_at, seen_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (id) DO UPDATE SET labels = excluded.labels, seen_at = excluded.seen_at",
        )
        .bind(worker)
        .bind(labels_json(labels))
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(db("record a worker"))?;
        Ok(())
    }

    /// The labels of the workers seen since `since` (unix ms), by worker.
    pub async fn live_workers(&self, since: i64) -> Result<Vec<(String, Labels)>, StoreError> {
        let rows = sqlx::query("SELECT id, labels FROM workers WHERE seen_at >= $1 ORDER BY id")
            .bind(since)
            .fetch_all(&self.pool)
            .await
            .map_err(db("list workers"))?;
        rows.iter()
            .map(|r| Ok((r.get("id"), parse_labels(&r.get::<String, _>("labels"))?)))
            .collect()
    }
}

/// Why a job requiring `required` waits, given the live workers and their labels: `None` when
/// one of them may claim it.
pub fn waiting_for(required: &Labels, workers: &[(String, Labels)]) -> Option<String> {
    if workers
        .iter()
        .any(|(_, has)| required.iter().all(|(k, v)| has.get(k) == Some(v)))
    {
        return None;
    }
    if workers.is_empty() {
        return Some("no worker is running: start `sluice worker` on this store".into());
    }
    // Some worker lives, so `required` is not empty.
    let wanted: Vec<String> = required.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Some(format!(
        "no live worker has the labels {}: start `sluice worker --label {}` where the run may go",
        wanted.join(", "),
        wanted.join(" --label ")
    ))
}

fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2)
}

/// Resume run `run_id`, whose worker's lease lapsed, at its next attempt; `None` when the run
/// finished (its worker died between finishing and releasing the job).
async fn take_over(
    conn: &mut sqlx::AnyConnection,
    run_id: i64,
) -> Result<Option<RunStart>, StoreError> {
    let row = sqlx::query(
        "UPDATE runs SET status = 'running', attempt = attempt + 1, finished_at = NULL, \
         error = NULL WHERE id = $1 AND status IN ('running', 'interrupted') RETURNING attempt",
    )
    .bind(run_id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(db("take over a run"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    Ok(Some(RunStart {
        run_id,
        attempt: row.get("attempt"),
        committed: stream_stats(conn, run_id).await?,
    }))
}

async fn release_in(conn: &mut sqlx::AnyConnection, job: i64) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM run_queue WHERE id = $1")
        .bind(job)
        .execute(&mut *conn)
        .await
        .map_err(db("release a finished run"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const LEASE: Duration = Duration::from_secs(30);

    #[test]
    fn a_job_says_which_worker_it_waits_for() {
        let eu = labels(&[("region", "eu")]);
        let us = (
            "w1".to_string(),
            labels(&[("region", "us"), ("disk", "ssd")]),
        );
        assert_eq!(waiting_for(&Labels::new(), std::slice::from_ref(&us)), None);
        let why = waiting_for(&eu, std::slice::from_ref(&us)).unwrap();
        assert!(
            why.contains("region=eu") && why.contains("--label region=eu"),
            "{why}"
        );
        assert!(
            waiting_for(&eu, &[])
                .unwrap()
                .contains("no worker is running")
        );
        let both = (
            "w2".to_string(),
            labels(&[("region", "eu"), ("disk", "ssd")]),
        );
        assert_eq!(waiting_for(&eu, &[us, both]), None);
    }

    #[tokio::test]
    async fn one_job_per_connection_and_claims_go_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).await.unwrap();
        let none = Labels::new();
        let a = s.enqueue_run("w/a", &none, false, "t").await.unwrap();
        assert!(a.is_some());
        assert_eq!(s.enqueue_run("w/a", &none, false, "t").await.unwrap(), None);
        let b = s.enqueue_run("w/b", &none, false, "t").await.unwrap();
        let first = s.claim_run("w1", &none, LEASE).await.unwrap().unwrap();
        assert_eq!((Some(first.job), first.connection.as_str()), (a, "w/a"));
        assert_eq!(first.start.attempt, 1);
        let second = s.claim_run("w2", &none, LEASE).await.unwrap().unwrap();
        assert_eq!(Some(second.job), b);
        assert!(s.claim_run("w3", &none, LEASE).await.unwrap().is_none());
        // Held: a second trigger is still refused until the job is released.
        assert_eq!(s.enqueue_run("w/a", &none, false, "t").await.unwrap(), None);
        s.finish_run(first.start.run_id, 1, RunStatus::Succeeded, None, &[], 0)
            .await
            .unwrap();
        assert!(s.release_run(&first).await.unwrap());
        assert!(
            s.enqueue_run("w/a", &none, false, "t")
                .await
                .unwrap()
                .is_some()
        );
    }

    #[tokio::test]
    async fn a_job_requiring_labels_waits_for_a_worker_that_has_them() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).await.unwrap();
        let eu = labels(&[("region", "eu")]);
        s.enqueue_run("w/eu", &eu, false, "t").await.unwrap();
        for worker in [
            Labels::new(),
            labels(&[("region", "us")]),
            labels(&[("zone", "eu")]),
        ] {
            assert!(
                s.claim_run("x", &worker, LEASE).await.unwrap().is_none(),
                "{worker:?}"
            );
        }
        let both = labels(&[("region", "eu"), ("disk", "ssd")]);
        let c = s.claim_run("eu-1", &both, LEASE).await.unwrap().unwrap();
        assert_eq!(c.connection, "w/eu");
    }

    /// A lease that lapses hands the run to the next worker at the next attempt; the first
    /// worker's checkpoint, finish and heartbeat are refused from then on.
    #[tokio::test]
    async fn a_lapsed_lease_is_taken_over_and_fences_the_worker_before() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).await.unwrap();
        let none = Labels::new();
        s.enqueue_run("w/a", &none, false, "t").await.unwrap();
        let short = Duration::from_millis(1);
        let old = s.claim_run("w1", &none, short).await.unwrap().unwrap();
        let state = StreamState {
            stream: "s".into(),
            state: "1".into(),
        };
        let stats = [StreamStats {
            stream: "s".into(),
            records: 7,
            bytes: 70,
        }];
        s.commit_checkpoint(
            old.start.run_id,
            1,
            "w/a",
            std::slice::from_ref(&state),
            &stats,
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let new = s.claim_run("w2", &none, LEASE).await.unwrap().unwrap();
        assert_eq!((new.job, new.start.run_id), (old.job, old.start.run_id));
        assert_eq!(new.start.attempt, 2);
        assert_eq!(new.start.committed, stats);
        assert_eq!(s.renew_lease(&old, LEASE).await.unwrap(), Lease::Lost);
        let refused = s
            .commit_checkpoint(old.start.run_id, 1, "w/a", &[], &[])
            .await;
        assert!(
            matches!(refused, Err(StoreError::Fenced { .. })),
            "{refused:?}"
        );
        assert!(!s.release_run(&old).await.unwrap());
        assert_eq!(
            s.renew_lease(&new, LEASE).await.unwrap(),
            Lease::Held { cancel: None }
        );
        assert!(s.cancel_queued("w/a", "stop it").await.unwrap());
        assert_eq!(
            s.renew_lease(&new, LEASE).await.unwrap(),
            Lease::Held {
                cancel: Some("stop it".into())
            }
        );
    }

    #[tokio::test]
    async fn a_job_whose_run_finished_before_release_is_dropped_on_the_next_claim() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).await.unwrap();
        let none = Labels::new();
        s.enqueue_run("w/a", &none, false, "t").await.unwrap();
        let c = s
            .claim_run("w1", &none, Duration::from_millis(1))
            .await
            .unwrap()
            .unwrap();
        s.finish_run(c.start.run_id, 1, RunStatus::Succeeded, None, &[], 0)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(s.claim_run("w2", &none, LEASE).await.unwrap().is_none());
        assert!(s.queued_runs().await.unwrap().is_empty());
        let run = s.run(c.start.run_id).await.unwrap().unwrap();
        assert_eq!((run.status, run.attempt), (RunStatus::Succeeded, 1));
    }

    #[tokio::test]
    async fn each_schedule_occurrence_is_enqueued_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).await.unwrap();
        let none = Labels::new();
        let at = "2026-12-03T10:00:00Z";
        assert!(matches!(
            s.enqueue_occurrence("w/a", at, &none, "scheduler")
                .await
                .unwrap(),
            Occurrence::Enqueued(_)
        ));
        assert_eq!(
            s.enqueue_occurrence("w/a", at, &none, "scheduler")
                .await
                .unwrap(),
            Occurrence::Taken
        );
        assert_eq!(
            s.enqueue_occurrence("w/a", "2026-12-03T10:01:00Z", &none, "scheduler")
                .await
                .unwrap(),
            Occurrence::Busy
        );
        assert_eq!(s.queued_runs().await.unwrap().len(), 1);
        // Old occurrences and gone workers are forgotten; recent ones stay.
        s.worker_seen("w1", &none).await.unwrap();
        assert_eq!(s.prune_queue(now_ms() - 60_000).await.unwrap(), (0, 0));
        assert_eq!(s.prune_queue(now_ms() + 1).await.unwrap(), (2, 1));
        assert!(s.live_workers(0).await.unwrap().is_empty());
    }
}
