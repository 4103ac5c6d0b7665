//! Command-line interface: parsing, dispatch, and error reporting at the edge.

mod audit;
mod connector;
mod format;
mod history;
mod install;
mod keys;
mod package;
mod purge;
mod run;
mod samples;
mod secrets;
mod serve;
mod sql;
mod trust;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice::runtime::{Runtime, RuntimeConfig};

/// sluice: move data between sandboxed WebAssembly connectors.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None)]
struct Cli {
    /// Where the store (state, run history) and the compiled-connector cache live.
    #[arg(long, global = true, env = "SLUICE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a connection: move its streams from the source to the destination.
    Run(run::RunArgs),
    /// Show a connector's manifest: what it is and every capability it requests.
    Inspect(connector::InspectArgs),
    /// Print a connector's spec (its config schema) as JSON.
    Spec(connector::ConnectorArgs),
    /// Check a connector's config.
    Check(connector::ConfigArgs),
    /// Print the streams a source can read with a config, as JSON.
    Discover(connector::ConfigArgs),
    /// List recent runs.
    Runs(history::RunsArgs),
    /// Forget a connection's committed state: its next run reads everything again.
    Reset(history::ResetArgs),
    /// The audit log: verify its chain and signatures, or list entries.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The keyring that seals secrets, state and samples at rest.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Secrets kept sealed in the data dir, for grants with `stored = true`.
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
    /// Remove what the retention settings say is overdue, and say what was removed.
    Purge(purge::PurgeArgs),
    /// Print a run's failed-record samples (opened from their sealed files) as JSON lines.
    Samples(samples::SamplesArgs),
    /// Connector packages and the index: pack, sign, verify, publish, yank; installed
    /// connectors: install, upgrade, list, info, remove.
    #[command(subcommand)]
    Connector(package::ConnectorCommand),
    /// Publisher keys this data dir trusts to sign packages.
    #[command(subcommand)]
    Trust(trust::TrustCommand),
    /// Serve the control API: HTTPS with --tls-cert/--tls-key, plain HTTP on loopback only;
    /// runs schedules and delivers webhooks while it serves.
    Serve(serve::ServeArgs),
    /// API keys for the control API.
    #[command(subcommand)]
    Admin(serve::AdminCommand),
    /// Databases: the least-privilege PostgreSQL role a grant should connect as.
    #[command(subcommand)]
    Sql(sql::SqlCommand),
}

/// Who is acting, for the audit log: `cli:` and the OS user.
pub fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

/// The data dir: the flag, `SLUICE_DATA_DIR`, or the platform's data dir.
fn data_dir(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match flag {
        Some(d) => Ok(d),
        None => dirs::data_dir()
            .map(|d| d.join("sluice"))
            .context("no platform data dir is known here; pass --data-dir or set SLUICE_DATA_DIR"),
    }
}

fn runtime(data_dir: &std::path::Path) -> anyhow::Result<Arc<Runtime>> {
    let keyring = sluice::boundary::crypto::Keyring::open(data_dir)?;
    Ok(Runtime::new(RuntimeConfig {
        cache_dir: Some(data_dir.join("cache").join("compiled")),
        cache_key: Some(keyring.cache_key()),
        ..RuntimeConfig::default()
    })?)
}

/// Exit codes: 0 success, 1 a run or check failed, 2 the command could not be carried out.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(async move {
        let data_dir = data_dir(cli.data_dir)?;
        match cli.command {
            Command::Run(a) => run::run(&data_dir, a).await,
            Command::Inspect(a) => connector::inspect(&data_dir, a).await,
            Command::Spec(a) => connector::spec(&data_dir, a).await,
            Command::Check(a) => connector::check(&data_dir, a).await,
            Command::Discover(a) => connector::discover(&data_dir, a).await,
            Command::Runs(a) => history::runs(&data_dir, a).await,
            Command::Reset(a) => history::reset(&data_dir, a).await,
            Command::Audit(a) => audit::run(&data_dir, a).await,
            Command::Keys(a) => keys::run(&data_dir, a).await,
            Command::Secrets(a) => secrets::run(&data_dir, a).await,
            Command::Purge(a) => purge::run(&data_dir, a).await,
            Command::Samples(a) => samples::run(&data_dir, a).await,
            Command::Connector(a) => package::run(&data_dir, a).await,
            Command::Trust(a) => trust::run(&data_dir, a).await,
            Command::Serve(a) => serve::serve(&data_dir, a).await,
            Command::Admin(a) => serve::admin(&data_dir, a).await,
            Command::Sql(a) => sql::run(a).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(2)
        }
    }
}
