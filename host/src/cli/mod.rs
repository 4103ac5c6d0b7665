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
mod state;
mod trust;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use sluice::runtime::{Runtime, RuntimeConfig};
use sluice::store::{PgEnv, Store, StoreLocation};

/// sluice: move data between sandboxed WebAssembly connectors.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None)]
struct Cli {
    /// Where the store (state, run history) and the compiled-connector cache live.
    #[arg(long, global = true, env = "SLUICE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// The store, when a fleet shares one: a PostgreSQL URL, postgres://USER@HOST/DATABASE
    /// (verified TLS, ?sslmode=verify-full, unless it is on this machine). Its password comes
    /// from PGPASSWORD, ~/.pgpass or --store-password-file, never from this flag. Default: the
    /// SQLite file in the data dir.
    #[arg(
        long,
        global = true,
        env = "SLUICE_STORE",
        value_name = "URL",
        hide_env_values = true
    )]
    store: Option<String>,

    /// A file holding the store's password (its first line).
    #[arg(
        long,
        global = true,
        env = "SLUICE_STORE_PASSWORD_FILE",
        value_name = "FILE"
    )]
    store_password_file: Option<PathBuf>,

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
    /// A connection's committed stream states in Airbyte's format: show them, or import a
    /// state moved over from Airbyte.
    #[command(subcommand)]
    State(state::StateCommand),
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
    /// Claim queued runs from the store and run them (many workers may share one store).
    Worker(worker::WorkerArgs),
    /// The run queue: ask for a run, list what waits and runs, cancel.
    #[command(subcommand)]
    Queue(worker::QueueCommand),
    /// Databases: the least-privilege PostgreSQL role a grant should connect as.
    #[command(subcommand)]
    Sql(sql::SqlCommand),
}

/// What every command works on: the data dir (keyring, compiled cache, installed
/// connectors) and where the store keeps its tables.
#[derive(Debug)]
pub struct Ctx {
    /// The data dir.
    pub data_dir: PathBuf,
    /// The store's tables: the data dir's SQLite file or a shared PostgreSQL.
    pub store: StoreLocation,
}

impl Ctx {
    /// Open the store.
    pub async fn store(&self) -> anyhow::Result<Store> {
        Store::open_at(&self.store, &self.data_dir)
            .await
            .with_context(|| format!("cannot open the store ({})", self.store.shown()))
    }
}

/// Where `--store` points, read under the rules of [`StoreLocation::parse`].
fn store_location(
    store: Option<&str>,
    from_args: bool,
    password_file: Option<&std::path::Path>,
) -> anyhow::Result<StoreLocation> {
    let password = match password_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("cannot read the store's password file {}", path.display())
            })?;
            Some(text.lines().next().unwrap_or_default().to_string())
        }
        None => None,
    };
    Ok(StoreLocation::parse(
        store,
        from_args,
        password.as_deref(),
        &PgEnv::current(),
    )?)
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
    let matches = Cli::command().get_matches();
    let store_from_args = matches.value_source("store") == Some(ValueSource::CommandLine);
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
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
        let ctx = Ctx {
            data_dir: data_dir(cli.data_dir)?,
            store: store_location(
                cli.store.as_deref(),
                store_from_args,
                cli.store_password_file.as_deref(),
            )?,
        };
        match cli.command {
            Command::Run(a) => run::run(&ctx, a).await,
            Command::Inspect(a) => connector::inspect(&ctx, a).await,
            Command::Spec(a) => connector::spec(&ctx, a).await,
            Command::Check(a) => connector::check(&ctx, a).await,
            Command::Discover(a) => connector::discover(&ctx, a).await,
            Command::Runs(a) => history::runs(&ctx, a).await,
            Command::Reset(a) => history::reset(&ctx, a).await,
            Command::State(a) => state::run(&ctx, a).await,
            Command::Audit(a) => audit::run(&ctx, a).await,
            Command::Keys(a) => keys::run(&ctx, a).await,
            Command::Secrets(a) => secrets::run(&ctx, a).await,
            Command::Purge(a) => purge::run(&ctx, a).await,
            Command::Samples(a) => samples::run(&ctx, a).await,
            Command::Connector(a) => package::run(&ctx, a).await,
            Command::Trust(a) => trust::run(&ctx, a).await,
            Command::Serve(a) => serve::serve(&ctx, a).await,
            Command::Admin(a) => serve::admin(&ctx, a).await,
            Command::Worker(a) => worker::worker(&ctx, a).await,
            Command::Queue(a) => worker::queue(&ctx, a).await,
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
