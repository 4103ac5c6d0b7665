//! `sluice inspect|spec|check|discover CONNECTOR.wasm`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use sluice::boundary::events::EventLog;
use sluice::capability::net::{AllowRule, NetGrant, NetPolicy};
use sluice::capability::sql::SqlAccess;
use sluice::capability::{DirGrant, Grant, SqlGrant};
use sluice::protocol::{ConnectorKind, Failure};
use sluice::runtime::{Connector, RunLog, Runtime, Sandbox};

#[derive(Debug, clap::Args)]
pub struct ConnectorArgs {
    /// The connector: a component file (.wasm), or the name of an installed connector.
    connector: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The connector: a component file (.wasm), or the name of an installed connector.
    connector: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// The connector: a component file (.wasm), or the name of an installed connector.
    connector: PathBuf,
    /// Its config: a JSON or TOML file (by extension). Default: `{}`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Grant a directory, `HOST=GUEST` (read-only for sources, read-write for destinations).
    #[arg(long = "dir", value_name = "HOST=GUEST")]
    dirs: Vec<String>,
    /// Grant outbound HTTP to `scheme://host[:port]` (within what the connector requests).
    #[arg(long = "allow", value_name = "URL")]
    allow: Vec<AllowRule>,
    /// Grant a database, read-only: `NAME=postgres://…` (the password from `$PGPASSWORD` when
    /// the URL has none) or `NAME=FILE.db` (SQLite under the data dir's `warehouse/`).
    #[arg(long = "sql", value_name = "NAME=URL")]
    sql: Vec<String>,
}

/// Load a component file, or an installed connector by name (a value without `/` or `.`, as
/// in connection files), whose component must still have the digest recorded at install.
async fn load(
    ctx: &super::Ctx,
    path: &Path,
) -> anyhow::Result<(std::sync::Arc<Runtime>, Connector)> {
    let runtime = super::runtime(&ctx.data_dir)?;
    let name = path
        .to_str()
        .filter(|s| !s.is_empty() && !s.contains(['/', '.', '\\']));
    let Some(name) = name else {
        let connector = runtime.load(path)?;
        return Ok((runtime, connector));
    };
    let store = ctx.store().await?;
    let Some(record) = store.installed_connector(name).await? else {
        bail!(
            "`{name}` is not an installed connector (see `sluice connector list`); for a file, \
             give its path, e.g. ./{name}.wasm"
        );
    };
    let mut connector = runtime.load(&store.installed_component(&record))?;
    if connector.digest() != record.component_sha256 {
        bail!(
            "the installed connector `{name}` has changed on disk since it was installed; \
             reinstall it with `sluice connector install {name}@{}`",
            record.version
        );
    }
    connector.set_name(name);
    Ok((runtime, connector))
}

fn config_json(path: Option<&Path>) -> anyhow::Result<String> {
    let Some(path) = path else {
        return Ok("{}".into());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let value: serde_json::Value = if path.extension().is_some_and(|e| e == "toml") {
        let t: toml::Table = toml::from_str(&text)
            .with_context(|| format!("{} is not valid TOML", path.display()))?;
        serde_json::to_value(t)?
    } else {
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not valid JSON", path.display()))?
    };
    Ok(value.to_string())
}

/// The sandbox the flags grant, checked against the connector's manifest like a connection's.
fn sandbox(
    args: &ConfigArgs,
    data_dir: &Path,
    rt: &Runtime,
    c: &Connector,
) -> anyhow::Result<Sandbox> {
    let mut grant = Grant::default();
    for s in &args.sql {
        let Some((name, target)) = s.split_once('=') else {
            bail!("--sql {s}: expected NAME=URL, e.g. --sql db=postgres://reader@127.0.0.1/app");
        };
        let postgres = target.starts_with("postgres://") || target.starts_with("postgresql://");
        grant.sql.push(SqlGrant {
            name: name.into(),
            url: postgres.then(|| target.to_string()),
            sqlite: (!postgres).then(|| target.into()),
            schema: None,
            table_prefix: None,
            access: Some(SqlAccess::Read),
            statement_timeout_secs: None,
            allow_broad_role: false,
        });
    }
    let mut resolved = Vec::new();
    for d in &args.dirs {
        let Some((host, guest)) = d.split_once('=') else {
            bail!("--dir {d}: expected HOST=GUEST, e.g. --dir ./data=/input");
        };
        let dir = DirGrant {
            host: host.into(),
            guest: guest.into(),
            access: None,
        };
        resolved.push(dir.resolve(Path::new("."), sluice::capability::Access::ReadOnly)?);
        grant.dirs.push(dir);
    }
    if !args.allow.is_empty() {
        grant.network = Some(NetGrant {
            allow: args.allow.clone(),
            ..NetGrant::default()
        });
    }
    let limits = sluice::runtime::Limits::default();
    let caps = grant
        .check(
            "",
            c.manifest(),
            &resolved,
            &sluice::capability::GrantEnv {
                base: Path::new("."),
                warehouse: &data_dir.join("warehouse"),
                call_timeout: limits.call_timeout,
                stored: &Default::default(),
            },
        )
        .map_err(|e| anyhow::anyhow!("{}", e.reason))?;
    let events = EventLog::new();
    let net = NetPolicy::new(c.name(), caps.net, rt.resolver().clone(), events.clone())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Sandbox {
        limits,
        dirs: caps.dirs,
        net: Some(Arc::new(net)),
        log: RunLog::new(),
        events,
        sql: caps.sql,
    })
}

/// Paths (`a.b`) of the fields a JSON schema marks `"secret": true`.
pub(super) fn secret_fields(schema: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
    let Some(props) = schema.get("properties").and_then(|p| p.as_object()) else {
        return;
    };
    for (name, sub) in props {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        if sub.get("secret").and_then(|v| v.as_bool()) == Some(true) {
            out.push(path.clone());
        }
        secret_fields(sub, &path, out);
        if let Some(items) = sub.get("items") {
            secret_fields(items, &format!("{path}[]"), out);
        }
        for key in ["oneOf", "anyOf"] {
            for alt in sub
                .get(key)
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
            {
                secret_fields(alt, &path, out);
            }
        }
    }
}

pub async fn inspect(ctx: &super::Ctx, args: InspectArgs) -> anyhow::Result<ExitCode> {
    let (rt, c) = load(ctx, &args.connector).await?;
    let sandbox = Sandbox::default();
    let spec = match c.kind() {
        ConnectorKind::Source => c.source(&rt, &sandbox).await?.spec().await?,
        ConnectorKind::Destination => c.destination(&rt, &sandbox).await?.spec().await?,
    };
    let mut secrets = Vec::new();
    secret_fields(&spec.config_schema, "", &mut secrets);
    let m = c.manifest();
    if args.json {
        let out = serde_json::json!({
            "manifest": m,
            "digest": c.digest(),
            "packed": c.bundle().names(),
            "config_schema": spec.config_schema,
            "secret_fields": secrets,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} {} ({})", m.name, m.version, m.kind);
    if !m.description.is_empty() {
        println!("  {}", m.description);
    }
    println!("  sha256 {}", c.digest());
    println!("\nrequested capabilities (a connection's grant can only narrow these):");
    let caps = &m.capabilities;
    if caps.dirs.is_empty() && caps.network.is_empty() && caps.secrets.is_empty() {
        println!("  none: no files, no network, no secrets");
    }
    for d in &caps.dirs {
        let access = match (m.kind, d.access) {
            (ConnectorKind::Source, _) | (_, sluice::capability::Access::ReadOnly) => "read-only",
            _ => "read-write",
        };
        println!("  directory  {} ({access})", d.guest);
    }
    for n in &caps.network {
        println!("  network    {n}");
    }
    for s in &caps.secrets {
        println!(
            "  secret     `{}` held inside the sandbox: {}",
            s.name, s.why
        );
    }
    let packed = c.bundle().names();
    if !packed.is_empty() {
        println!("\npacked with it (read-only, covered by its digest):");
        for n in &packed {
            println!("  {n}");
        }
    }
    println!(
        "\nconfig fields marked secret (put a `{{{{secret:NAME}}}}` placeholder there, not the value):"
    );
    if secrets.is_empty() {
        println!("  none");
    }
    for s in &secrets {
        println!("  {s}");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn spec(ctx: &super::Ctx, args: ConnectorArgs) -> anyhow::Result<ExitCode> {
    let (rt, c) = load(ctx, &args.connector).await?;
    let sandbox = Sandbox::default();
    let spec = match c.kind() {
        ConnectorKind::Source => c.source(&rt, &sandbox).await?.spec().await?,
        ConnectorKind::Destination => c.destination(&rt, &sandbox).await?.spec().await?,
    };
    let out = serde_json::json!({ "name": c.name(), "kind": c.kind(), "digest": c.digest(), "spec": spec });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

pub async fn check(ctx: &super::Ctx, args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let data_dir = ctx.data_dir.as_path();
    let (rt, c) = load(ctx, &args.connector).await?;
    let config = config_json(args.config.as_deref())?;
    let sandbox = sandbox(&args, data_dir, &rt, &c)?;
    let result = match c.kind() {
        ConnectorKind::Source => c.source(&rt, &sandbox).await?.check(&config).await,
        ConnectorKind::Destination => c.destination(&rt, &sandbox).await?.check(&config).await,
    };
    print_log(&sandbox.log);
    print_events(&sandbox.events);
    match result {
        Ok(()) => {
            println!("ok: `{}` accepts this config", c.name());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if matches!(e.failure, Failure::Reported(_)) => {
            println!("failed: {e}");
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn discover(ctx: &super::Ctx, args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let data_dir = ctx.data_dir.as_path();
    let (rt, c) = load(ctx, &args.connector).await?;
    if c.kind() != ConnectorKind::Source {
        bail!(
            "{} is a destination; only sources discover streams",
            args.connector.display()
        );
    }
    let config = config_json(args.config.as_deref())?;
    let sandbox = sandbox(&args, data_dir, &rt, &c)?;
    let catalog = c.source(&rt, &sandbox).await?.discover(&config).await;
    print_log(&sandbox.log);
    print_events(&sandbox.events);
    println!("{}", serde_json::to_string_pretty(&catalog?)?);
    Ok(ExitCode::SUCCESS)
}

fn print_events(events: &EventLog) {
    for e in events.events() {
        if e.outcome != sluice::boundary::events::Outcome::Allowed {
            eprintln!(
                "[{}] {:?} {}: {} ({})",
                e.connector, e.outcome, e.capability, e.action, e.detail
            );
        }
    }
}

fn print_log(log: &RunLog) {
    for line in log.lines() {
        eprintln!("[{}] {:?}: {}", line.connector, line.level, line.message);
    }
}
