//! Phase one of a run: find both connectors' code, load and link them, check each grant against
//! its manifest and build its sandbox.

use super::*;

/// One side of the connection, loaded and granted.
pub(super) struct Side {
    pub(super) connector: Connector,
    pub(super) sandbox: Sandbox,
    pub(super) config: String,
    pub(super) secrets: Vec<Secret>,
}

/// What both sides of a run share while they are prepared.
pub(super) struct RunCtx<'a> {
    pub(super) log: &'a RunLog,
    pub(super) events: &'a EventLog,
    pub(super) warehouse: &'a Path,
    pub(super) stored: &'a BTreeMap<String, SecretString>,
}

/// Load a side's connector, check its grant against its manifest, and build its sandbox.
fn prepare_side(
    runtime: &Runtime,
    conn: &Connection,
    endpoint: &Endpoint,
    code: Code,
    expected: ConnectorKind,
    ctx: &RunCtx<'_>,
) -> Result<Side, SyncError> {
    let RunCtx {
        log,
        events,
        warehouse,
        stored,
    } = *ctx;
    let field = match expected {
        ConnectorKind::Source => "source.connector",
        ConnectorKind::Destination => "destination.connector",
    };
    let connector = load(runtime, code, field, expected)?;
    let side = match expected {
        ConnectorKind::Source => "source",
        ConnectorKind::Destination => "destination",
    };
    let caps: Capabilities = endpoint
        .grant
        .check(
            side,
            connector.manifest(),
            &endpoint.dirs,
            &GrantEnv {
                base: &endpoint.base,
                warehouse,
                call_timeout: conn.limits.connector.call_timeout,
                stored,
            },
        )
        .map_err(|source| {
            events.refused(
                connector.name(),
                Capability::Load,
                "grant",
                &source.to_string(),
            );
            SyncError::Grant {
                file: conn.file.clone(),
                source,
            }
        })?;
    let config = caps.config_for_connector(&endpoint.config);
    for s in &caps.inside {
        log.push(
            connector.name(),
            crate::protocol::LogLevel::Info,
            &format!(
                "secret `{}` is handed to the connector inside its config",
                s.name
            ),
        );
    }
    let net = NetPolicy::new(
        connector.name(),
        caps.net,
        runtime.resolver().clone(),
        events.clone(),
    )
    .map_err(|e| SyncError::Grant {
        file: conn.file.clone(),
        source: GrantError {
            field: format!("{side}.grant.network"),
            reason: e.to_string(),
        },
    })?;
    let sandbox = Sandbox {
        limits: conn.limits.connector,
        dirs: caps.dirs,
        net: Some(Arc::new(net)),
        log: log.clone(),
        events: events.clone(),
        sql: caps.sql,
    };
    Ok(Side {
        connector,
        sandbox,
        config,
        secrets: caps.secrets,
    })
}

/// A side's component, found: a file, or an installed connector's bytes (digest checked).
enum Code {
    File(std::path::PathBuf),
    Installed {
        path: std::path::PathBuf,
        bytes: Vec<u8>,
    },
}

/// Find a side's component; an installed one is read and checked against its recorded digest.
async fn find_code(
    store: &Store,
    connector: &ConnectorRef,
    field: &'static str,
) -> Result<Code, SyncError> {
    let name = match connector {
        ConnectorRef::File(p) => return Ok(Code::File(p.clone())),
        ConnectorRef::Installed(name) => name,
    };
    let Some(c) = store.installed_connector(name).await? else {
        return Err(SyncError::NotInstalled {
            field,
            name: name.clone(),
        });
    };
    let path = store.installed_component(&c);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|source| RuntimeError::Read {
            path: path.clone(),
            source,
        })?;
    let actual = crate::boundary::crypto::sha256_hex(&bytes);
    if actual != c.component_sha256 {
        return Err(SyncError::InstalledChanged {
            name: name.clone(),
            version: c.version,
            path,
            expected: c.component_sha256,
            actual,
        });
    }
    Ok(Code::Installed { path, bytes })
}

fn load(
    runtime: &Runtime,
    code: Code,
    field: &'static str,
    expected: ConnectorKind,
) -> Result<Connector, SyncError> {
    let (mut connector, path) = match code {
        Code::File(path) => (runtime.load(&path)?, path),
        Code::Installed { path, bytes } => {
            let name = path.display().to_string();
            let c = runtime.load_bytes(&name, &bytes).map_err(|e| match e {
                LoadError::NotAConnector(reason) => RuntimeError::NotAConnector {
                    path: path.clone(),
                    reason,
                },
                LoadError::Forbidden(reason) => RuntimeError::Forbidden {
                    path: path.clone(),
                    reason,
                },
            })?;
            (c, path)
        }
    };
    // Messages name the connector by its package name, whatever its file is called.
    let package = connector.manifest().name.clone();
    connector.set_name(&package);
    if connector.kind() != expected {
        return Err(SyncError::WrongKind {
            field,
            path: path.display().to_string(),
            actual: connector.kind(),
            expected,
        });
    }
    Ok(connector)
}

/// Both sides, loaded and granted.
pub(super) struct Loaded {
    pub(super) source: Side,
    pub(super) destination: Side,
}

impl Loaded {
    /// The secrets both sides hold, by name, for scrubbing.
    pub(super) fn secrets(&self) -> Vec<(String, SecretString)> {
        let mut out = wall::named(&self.source.secrets);
        out.extend(wall::named(&self.destination.secrets));
        out
    }
}

/// Load both sides of `conn` (the source first; the destination's code is looked up either way,
/// so a missing one is named even when the source fails).
pub(super) async fn sides(
    runtime: &Runtime,
    store: &Store,
    conn: &Connection,
    ctx: &RunCtx<'_>,
) -> Result<Loaded, SyncError> {
    let source_code = find_code(store, &conn.source.connector, "source.connector").await;
    let destination_code =
        find_code(store, &conn.destination.connector, "destination.connector").await;
    let source = prepare_side(
        runtime,
        conn,
        &conn.source,
        source_code?,
        ConnectorKind::Source,
        ctx,
    )?;
    let destination = prepare_side(
        runtime,
        conn,
        &conn.destination,
        destination_code?,
        ConnectorKind::Destination,
        ctx,
    )?;
    Ok(Loaded {
        source,
        destination,
    })
}

/// The audit entries of a load: each connector loaded (version, digest), each secret read.
pub(super) fn loaded_entries(
    actor: &str,
    run_id: i64,
    conn: &Connection,
    loaded: &Loaded,
) -> Vec<NewEntry> {
    let mut audit = Vec::new();
    for (side, s) in [
        ("source", &loaded.source),
        ("destination", &loaded.destination),
    ] {
        audit.push(NewEntry::new(
            actor,
            "connector.loaded",
            format!("connector/{}", s.connector.name()),
            "ok",
            json!({
                "run": run_id,
                "side": side,
                "version": s.connector.manifest().version,
                "digest": s.connector.digest(),
            }),
        ));
        for secret in &s.secrets {
            audit.push(NewEntry::new(
                actor,
                "secret.read",
                format!("secret/{}", secret.name),
                "ok",
                json!({ "run": run_id, "connection": conn.name, "side": side }),
            ));
        }
    }
    audit
}
