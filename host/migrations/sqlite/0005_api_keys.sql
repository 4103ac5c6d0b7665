-- API keys for `sluice serve`. The secret half is never stored: only its SHA-256 (the secret is
-- 256 random bits, so a fast hash is enough). Shown once at creation.
CREATE TABLE api_keys (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL,
    role          TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    expires_at    TEXT,
    revoked_at    TEXT
);
