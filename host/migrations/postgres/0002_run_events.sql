-- PostgreSQL's form of sqlite/0002_run_events.sql (BIGINT for INTEGER, BYTEA for BLOB).
-- What connectors did at the sandbox wall during a run: outbound requests, and every attempt the
-- host refused (network, filesystem, secrets, imports, grants). Never headers, bodies, query
-- strings, record values or secrets.
CREATE TABLE run_events (
    run_id     BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    at_ms      BIGINT NOT NULL,
    connector  TEXT    NOT NULL,
    capability TEXT    NOT NULL,
    outcome    TEXT    NOT NULL CHECK (outcome IN ('allowed', 'refused', 'failed')),
    action     TEXT    NOT NULL,
    detail     TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX run_events_refused ON run_events (outcome, run_id);
