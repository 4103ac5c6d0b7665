-- The control API's resources. Workspaces group sources, destinations and connections; members
-- are API keys with a workspace role (editor or viewer). Owners and admins see every workspace.
CREATE TABLE workspaces (
    name       TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);

CREATE TABLE workspace_members (
    workspace TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
    key_id    TEXT NOT NULL,
    role      TEXT NOT NULL CHECK (role IN ('editor', 'viewer')),
    PRIMARY KEY (workspace, key_id)
);

-- Sources and destinations: an installed connector, its config (placeholders only, no secret
-- values) and its grant, as JSON.
CREATE TABLE endpoints (
    workspace  TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
    kind       TEXT NOT NULL CHECK (kind IN ('source', 'destination')),
    name       TEXT NOT NULL,
    connector  TEXT NOT NULL,
    config     TEXT NOT NULL,
    grant_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (workspace, kind, name)
);

-- Secret values given with a source or destination: sealed (AES-256-GCM, envelope keys), never
-- returned by the API.
CREATE TABLE endpoint_secrets (
    workspace  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    endpoint   TEXT NOT NULL,
    name       TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (workspace, kind, endpoint, name),
    FOREIGN KEY (workspace, kind, endpoint) REFERENCES endpoints (workspace, kind, name) ON DELETE CASCADE
);

-- Connections: a source and a destination of the same workspace, and how to move data between
-- them (streams, PII policy, limits, failed records) as JSON in the connection file's shape.
-- A source or destination in use by a connection cannot be deleted (checked by the store).
CREATE TABLE connections (
    workspace   TEXT NOT NULL REFERENCES workspaces (name) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    source      TEXT NOT NULL,
    destination TEXT NOT NULL,
    settings    TEXT NOT NULL,
    schedule    TEXT,
    status      TEXT NOT NULL CHECK (status IN ('active', 'paused')),
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (workspace, name)
);
