//! `sluice worker`: claim queued runs from the store and run them; `sluice queue`: ask for
//! runs, list and cancel them.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use sluice::server::runs::Running;
use sluice::server::worker::{WorkerConfig, work};
use sluice::store::{Labels, connection_key};

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    /// A label this worker has, KEY=VALUE (repeat it): it runs only connections whose
    /// `[labels]` are all among its own.
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// Runs at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    max_runs: u16,
    /// Seconds a claimed run stays this worker's without a heartbeat (heartbeats come every
    /// third of it); after that another worker resumes it from its last checkpoint.
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    lease: f64,
}

/// A label as given: `KEY=VALUE`, both made of letters, digits, `.`, `_`, `-` and `/`.
fn parse_label(text: &str) -> Result<(String, String), String> {
    let (k, v) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))?;
    sluice::store::check_label(k, v)?;
    Ok((k.to_string(), v.to_string()))
}

pub async fn worker(ctx: &super::Ctx, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    if !(0.3..=3600.0).contains(&args.lease) {
        bail!(
            "--lease {} is out of range: give 0.3 to 3600 seconds",
            args.lease
        );
    }
    let store = Arc::new(ctx.store().await?);
    let runtime = super::runtime(&ctx.data_dir)?;
    let labels: Labels = args.labels.into_iter().collect();
    let mut config = WorkerConfig::new(labels);
    config.lease = std::time::Duration::from_secs_f64(args.lease);
    eprintln!(
        "worker {} on {} (labels {:?}, {} runs at once)",
        config.id,
        ctx.store.shown(),
        config.labels,
        args.max_runs
    );
    let running = Arc::new(Running::new(usize::from(args.max_runs)));
    let working = tokio::spawn(work(store, runtime, config, running.clone()));
    super::serve::shutdown_signal().await;
    eprintln!("stopping: the runs in progress commit what they wrote and end interrupted");
    running.stop_all("the worker is shutting down");
    working.await?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Subcommand)]
pub enum QueueCommand {
    /// Ask for a run of a workspace's connection; a worker with its labels runs it.
    Add {
        /// WORKSPACE/CONNECTION.
        connection: String,
        /// Start afresh instead of resuming an unfinished run.
        #[arg(long)]
        fresh: bool,
    },
    /// The queued and running runs, oldest first, as JSON lines.
    List,
    /// Drop a queued run, or ask the worker running it to stop.
    Cancel {
        /// WORKSPACE/CONNECTION.
        connection: String,
    },
}

pub async fn queue(ctx: &super::Ctx, cmd: QueueCommand) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    match cmd {
        QueueCommand::Add { connection, fresh } => {
            let Some((workspace, name)) = connection.split_once('/') else {
                bail!("`{connection}` is not WORKSPACE/CONNECTION");
            };
            let Some(def) = store.connection_def(workspace, name).await? else {
                bail!("no connection `{name}` in workspace `{workspace}`");
            };
            let conn = sluice::server::resolve::resolve(&store, &def).await?;
            let key = connection_key(workspace, name);
            match store
                .enqueue_run(&key, &conn.labels, fresh, &super::actor())
                .await?
            {
                Some(job) => {
                    println!("queued {key} as job {job}");
                    let workers = store.live_workers(live_since()).await?;
                    if let Some(why) = sluice::store::waiting_for(&conn.labels, &workers) {
                        println!("it waits: {why}");
                    }
                }
                None => bail!(
                    "`{key}` has a run queued or running already; runs of one connection never \
                     overlap (`sluice queue list` shows it)"
                ),
            }
        }
        QueueCommand::List => {
            let workers = store.live_workers(live_since()).await?;
            let now = sluice::store::now_ms();
            for q in store.queued_runs().await? {
                let mut line = serde_json::to_value(&q)?;
                let held = q.worker.is_some() && q.lease_until.is_some_and(|until| until > now);
                if !held && let Some(why) = sluice::store::waiting_for(&q.labels, &workers) {
                    line["waiting"] = why.into();
                }
                println!("{line}");
            }
        }
        QueueCommand::Cancel { connection } => {
            if !store
                .cancel_queued(&connection, &format!("cancelled by {}", super::actor()))
                .await?
            {
                bail!("`{connection}` has no queued or running run");
            }
            println!("cancel asked of {connection}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Workers heard from in the last five minutes count as live (each records a heartbeat every
/// third of its lease).
fn live_since() -> i64 {
    sluice::store::now_ms() - 5 * 60 * 1000
}
