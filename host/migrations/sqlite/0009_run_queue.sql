-- The run queue: runs asked for (triggered or scheduled) and not yet finished, claimed by
-- workers. One job per connection at a time (the unique index): a second trigger while one is
-- queued or running is refused, so runs of a connection never overlap, in one process or a
-- fleet.
-- `labels`: the worker labels the connection requires, a JSON object (`{"region":"eu"}`).
-- `run_id`: the run the job became once claimed. `worker`, `lease_until` (unix ms): who holds
-- it and until when; a job whose lease lapsed is claimed again, by a worker that resumes its
-- run at the next attempt (the run's `attempt` is the fencing token: the worker that held the
-- older attempt can no longer commit a checkpoint or finish the run).
-- `attempt`: the run's attempt the holder runs; its heartbeat and release name it, so a holder
-- whose attempt was taken over renews and releases nothing.
-- `cancel`: why an operator asked the run to stop; the worker holding it stops it, and a job
-- whose holder is gone is not resumed but ended.
CREATE TABLE run_queue (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    connection  TEXT    NOT NULL,
    labels      TEXT    NOT NULL DEFAULT '{}',
    fresh       INTEGER NOT NULL DEFAULT 0,
    actor       TEXT    NOT NULL,
    enqueued_at INTEGER NOT NULL,
    run_id      INTEGER REFERENCES runs (id) ON DELETE CASCADE,
    worker      TEXT,
    lease_until INTEGER,
    attempt     INTEGER,
    cancel      TEXT
);
CREATE UNIQUE INDEX run_queue_one_per_connection ON run_queue (connection);
CREATE INDEX run_queue_claimable ON run_queue (lease_until, id);

-- Schedule occurrences already enqueued: the first replica to insert one enqueues it, every
-- other finds it here, so each occurrence runs once however many replicas serve.
CREATE TABLE schedule_occurrences (
    connection  TEXT    NOT NULL,
    occurrence  TEXT    NOT NULL,
    enqueued_at INTEGER NOT NULL,
    PRIMARY KEY (connection, occurrence)
);

-- Workers seen lately: their labels (a JSON object) and last heartbeat (unix ms), so a job
-- waiting for labels no live worker has can say so.
CREATE TABLE workers (
    id         TEXT PRIMARY KEY,
    labels     TEXT    NOT NULL DEFAULT '{}',
    started_at INTEGER NOT NULL,
    seen_at    INTEGER NOT NULL
);
