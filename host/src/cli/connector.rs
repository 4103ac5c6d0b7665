//! `sluice spec|check|discover CONNECTOR.wasm`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use sluice::capability::{Access, DirGrant};
use sluice::protocol::{ConnectorKind, Failure};
use sluice::runtime::{Connector, RunLog, Runtime, Sandbox};

#[derive(Debug, clap::Args)]
pub struct ConnectorArgs {
    /// The connector component (.wasm).
    connector: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// The connector component (.wasm).
    connector: PathBuf,
    /// Its config: a JSON or TOML file (by extension). Default: `{}`.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Grant a directory, `HOST=GUEST` (read-only for sources, read-write for destinations).
    #[arg(long = "dir", value_name = "HOST=GUEST")]
    dirs: Vec<String>,
}

fn load(data_dir: &Path, path: &Path) -> anyhow::Result<(std::sync::Arc<Runtime>, Connector)> {
    let runtime = super::runtime(data_dir)?;
    let connector = runtime.load(path)?;
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

fn sandbox(args: &ConfigArgs, kind: ConnectorKind) -> anyhow::Result<Sandbox> {
    let access = match kind {
        ConnectorKind::Source => Access::ReadOnly,
        ConnectorKind::Destination => Access::ReadWrite,
    };
    let mut dirs = Vec::new();
    for d in &args.dirs {
        let Some((host, guest)) = d.split_once('=') else {
            bail!("--dir {d}: expected HOST=GUEST, e.g. --dir ./data=/input");
        };
        let grant = DirGrant {
            host: host.into(),
            guest: guest.into(),
        };
        dirs.push(grant.resolve(Path::new("."), access)?);
    }
    Ok(Sandbox {
        dirs,
        log: RunLog::new(),
        ..Sandbox::default()
    })
}

pub async fn spec(data_dir: &Path, args: ConnectorArgs) -> anyhow::Result<ExitCode> {
    let (rt, c) = load(data_dir, &args.connector)?;
    let sandbox = Sandbox::default();
    let spec = match c.kind() {
        ConnectorKind::Source => c.source(&rt, &sandbox).await?.spec().await?,
        ConnectorKind::Destination => c.destination(&rt, &sandbox).await?.spec().await?,
    };
    let out = serde_json::json!({ "name": c.name(), "kind": c.kind(), "digest": c.digest(), "spec": spec });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

pub async fn check(data_dir: &Path, args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let (rt, c) = load(data_dir, &args.connector)?;
    let config = config_json(args.config.as_deref())?;
    let sandbox = sandbox(&args, c.kind())?;
    let result = match c.kind() {
        ConnectorKind::Source => c.source(&rt, &sandbox).await?.check(&config).await,
        ConnectorKind::Destination => c.destination(&rt, &sandbox).await?.check(&config).await,
    };
    print_log(&sandbox.log);
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

pub async fn discover(data_dir: &Path, args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let (rt, c) = load(data_dir, &args.connector)?;
    if c.kind() != ConnectorKind::Source {
        bail!(
            "{} is a destination; only sources discover streams",
            args.connector.display()
        );
    }
    let config = config_json(args.config.as_deref())?;
    let sandbox = sandbox(&args, c.kind())?;
    let catalog = c.source(&rt, &sandbox).await?.discover(&config).await;
    print_log(&sandbox.log);
    println!("{}", serde_json::to_string_pretty(&catalog?)?);
    Ok(ExitCode::SUCCESS)
}

fn print_log(log: &RunLog) {
    for line in log.lines() {
        eprintln!("[{}] {:?}: {}", line.connector, line.level, line.message);
    }
}
