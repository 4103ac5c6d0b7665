-- One row per run of a connection. A run that was interrupted or failed is resumed by the next
-- run of the same connection (same id, attempt + 1) unless the operator asks for a fresh one.
CREATE TABLE runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    connection  TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
    attempt     INTEGER NOT NULL DEFAULT 1,
    started_at  TEXT    NOT NULL,
    finished_at TEXT,
    error       TEXT,
    log_dropped INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_by_connection ON runs (connection, id);

-- Records and bytes per stream that the destination has durably written, committed together with
-- the checkpoint that covers them.
CREATE TABLE run_streams (
    run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    stream  TEXT    NOT NULL,
    records INTEGER NOT NULL,
    bytes   INTEGER NOT NULL,
    PRIMARY KEY (run_id, stream)
);

-- The last committed checkpoint of each stream of each connection, and the run that committed it.
CREATE TABLE stream_state (
    connection TEXT    NOT NULL,
    stream     TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    run_id     INTEGER NOT NULL,
    updated_at TEXT    NOT NULL,
    PRIMARY KEY (connection, stream)
);

-- What the connectors logged during a run (bounded by the host).
CREATE TABLE run_logs (
    run_id    INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    connector TEXT    NOT NULL,
    level     TEXT    NOT NULL,
    message   TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
);
