-- Webhooks of a workspace: where run events are POSTed, signed with the webhook's secret.
-- `secret_sealed`: the signing secret, sealed with the keyring. During a rotation the old one
-- stays in `previous_sealed` until `previous_until` (unix ms), and deliveries carry a
-- signature under each.
CREATE TABLE webhooks (
    id              TEXT PRIMARY KEY,
    workspace       TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
    url             TEXT NOT NULL,
    events          TEXT NOT NULL,
    secret_sealed   BLOB NOT NULL,
    previous_sealed BLOB,
    previous_until  INTEGER,
    created_at      TEXT NOT NULL
);
CREATE INDEX webhooks_by_workspace ON webhooks (workspace);

-- One event to deliver to one webhook (the outbox): written when the run ends, so a delivery
-- survives a restart of the server. `status`: pending, delivered, failed (gave up or the
-- webhook was deleted). `next_at`: unix ms of the next attempt.
CREATE TABLE webhook_deliveries (
    id          TEXT PRIMARY KEY,
    webhook     TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event       TEXT NOT NULL,
    body        TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'pending',
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_at     INTEGER NOT NULL,
    last_status INTEGER,
    last_error  TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_at);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook, created_at);
