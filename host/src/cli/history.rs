//! `sluice runs` and `sluice reset`.

use std::path::PathBuf;
use std::process::ExitCode;

use sluice::connection::Connection;

use super::format;

#[derive(Debug, clap::Args)]
pub struct RunsArgs {
    /// Only this connection (its name).
    #[arg(long)]
    connection: Option<String>,
    /// How many runs.
    #[arg(long, default_value_t = 20)]
    limit: u32,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// Print the connector log and the events at the wall (requests, refusals) of this run.
    #[arg(long, value_name = "RUN_ID")]
    log: Option<i64>,
}

#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    /// The connection file whose state to forget.
    connection: PathBuf,
}

pub async fn runs(ctx: &super::Ctx, args: RunsArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    if let Some(id) = args.log {
        for (connector, level, message) in store.logs(id).await? {
            println!("[{connector}] {level}: {message}");
        }
        for e in store.events(id).await? {
            let at =
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(e.at_ms) * 1_000_000)
                    .ok()
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_default();
            println!(
                "{at} [{}] {} {:?}: {} ({})",
                e.connector, e.capability, e.outcome, e.action, e.detail
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let runs = store.runs(args.connection.as_deref(), args.limit).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:>6}  {:<24} {:<12} {:>7} {:>12}  started",
        "run", "connection", "status", "attempt", "records"
    );
    for r in runs {
        let records: u64 = r.streams.iter().map(|s| s.records).sum();
        println!(
            "{:>6}  {:<24} {:<12} {:>7} {:>12}  {}",
            r.id,
            r.connection,
            format!("{:?}", r.status).to_lowercase(),
            r.attempt,
            format::count(records),
            r.started_at
        );
        if let Some(e) = r.error {
            println!("        error: {e}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn reset(ctx: &super::Ctx, args: ResetArgs) -> anyhow::Result<ExitCode> {
    let conn = Connection::load(&args.connection)?;
    let store = ctx.store().await?;
    let _lock = store.lock(&conn.name)?;
    let n = store.reset_state(&conn.name).await?;
    println!(
        "forgot {n} stream states of `{}`; its next run reads everything",
        conn.name
    );
    Ok(ExitCode::SUCCESS)
}
