-- Values masked by a connection's PII policy, per run, stream, field and rule or detector.
-- Counts only: never the values.
CREATE TABLE run_masking (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    stream TEXT    NOT NULL,
    field  TEXT    NOT NULL,
    by     TEXT    NOT NULL,
    count  INTEGER NOT NULL,
    PRIMARY KEY (run_id, stream, field, by)
);

-- Secrets an operator stored (`sluice secrets set`), sealed under the keyring (identity
-- `secret/NAME`).
CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    sealed     BLOB NOT NULL,
    updated_at TEXT NOT NULL
);

-- The tamper-evident audit log: append-only, each entry carrying the SHA-256 of the one before.
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        TEXT    NOT NULL,
    actor     TEXT    NOT NULL,
    action    TEXT    NOT NULL,
    resource  TEXT    NOT NULL,
    outcome   TEXT    NOT NULL,
    source_ip TEXT,
    details   TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);

-- Signed digests over the audit log: each covers the entries up to `last_seq` (by the hash of
-- that entry) and the previous digest's signature, so a removed digest is detected too.
CREATE TABLE audit_digests (
    seq            INTEGER PRIMARY KEY,
    at             TEXT    NOT NULL,
    last_seq       INTEGER NOT NULL,
    last_hash      TEXT    NOT NULL,
    prev_signature TEXT    NOT NULL,
    key_id         TEXT    NOT NULL,
    public_key     TEXT    NOT NULL,
    signature      TEXT    NOT NULL
);

-- Failed-record samples of a run (off by default), sealed in files under DATA_DIR/samples.
CREATE TABLE run_samples (
    run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    file    TEXT    NOT NULL,
    records INTEGER NOT NULL,
    PRIMARY KEY (run_id, file)
);
