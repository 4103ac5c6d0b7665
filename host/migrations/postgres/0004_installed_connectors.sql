-- PostgreSQL's form of sqlite/0004_installed_connectors.sql (BIGINT for INTEGER, BYTEA for BLOB).
-- Connectors installed from an index (`sluice connector install`): one version per name, the
-- files under DATA_DIR/connectors/NAME/VERSION/, the digests they were checked against, who
-- signed them and the capabilities the operator approved.
CREATE TABLE installed_connectors (
    name             TEXT PRIMARY KEY,
    version          TEXT NOT NULL,
    kind             TEXT NOT NULL,
    component_sha256 TEXT NOT NULL,
    package_sha256   TEXT NOT NULL,
    key_id           TEXT NOT NULL,
    index_location   TEXT NOT NULL,
    manifest         TEXT NOT NULL,
    approved         TEXT NOT NULL,
    installed_at     TEXT NOT NULL
);
