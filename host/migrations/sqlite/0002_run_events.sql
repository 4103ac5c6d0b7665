-- What connectors did at the sandbox wall during a run: outbound requests, and every attempt the
-- host refused (network, filesystem, secrets, imports, grants). Never headers, bodies, query
-- strings, record values or secrets.
CREATE TABLE run_events (
    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    at_ms      INTEGER NOT NULL,
    connector  TEXT    NOT NULL,
    capability TEXT    NOT NULL,
    outcome    TEXT    NOT NULL CHECK (outcome IN ('allowed', 'refused', 'failed')),
    action     TEXT    NOT NULL,
    detail     TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX run_events_refused ON run_events (outcome, run_id);
