//! `sluice run CONNECTION.toml`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use sluice::boundary::events::{Capability, Outcome};
use sluice::connection::Connection;
use sluice::sync::{self, Progress, RunOptions, RunReport};

use super::format;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The connection file.
    connection: PathBuf,
    /// Start a new run even if the last one did not finish (its partial progress is abandoned).
    #[arg(long)]
    fresh: bool,
    /// Print the report as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(ctx: &super::Ctx, args: RunArgs) -> anyhow::Result<ExitCode> {
    let data_dir = ctx.data_dir.as_path();
    let conn = Connection::load(&args.connection)?;
    let store = ctx.store().await?;
    super::purge::on_start(&store).await?;
    let runtime = super::runtime(data_dir)?;
    let progress = Arc::new(Progress::default());
    let bar = (!args.json && std::io::stderr().is_terminal()).then(|| spinner(&conn.name));
    let ticker = bar.clone().map(|bar| {
        let progress = progress.clone();
        tokio::spawn(async move {
            loop {
                let records = progress.records.load(Ordering::Relaxed);
                let bytes = progress.bytes.load(Ordering::Relaxed);
                let secs = bar.elapsed().as_secs_f64();
                bar.set_message(format!(
                    "{} records, {} ({} records/s)",
                    format::count(records),
                    format::bytes(bytes),
                    format::rate(records, secs)
                ));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    let options = RunOptions {
        fresh: args.fresh,
        progress,
        actor: super::actor(),
        started: None,
        stop: Default::default(),
    };
    let report = sync::run(&runtime, &store, &conn, options)
        .await
        .with_context(|| format!("cannot run connection `{}`", conn.name))?;
    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json_report(&conn, &report))?
        );
    } else {
        print_summary(&conn, &report);
    }
    Ok(if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn spinner(name: &str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix}: {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(name.to_string());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

fn json_report(conn: &Connection, r: &RunReport) -> serde_json::Value {
    serde_json::json!({
        "connection": conn.name,
        "run_id": r.run_id,
        "attempt": r.attempt,
        "status": if r.succeeded() { "succeeded" } else { "failed" },
        "error": r.error_message,
        "duration_secs": r.duration.as_secs_f64(),
        "checkpoints": r.commits,
        "streams": r.streams.iter().zip(&r.active).map(|(s, t)| serde_json::json!({
            "stream": s.stream, "records": s.records, "bytes": s.bytes,
            "active_secs": t.as_secs_f64(),
        })).collect::<Vec<_>>(),
        "records": r.records(),
        "bytes": r.bytes(),
        "log_lines_dropped": r.log_dropped,
        "refusals": r.refusals,
        "masked": r.masked.lines(),
        "skipped_invalid": r.skipped,
        "samples": r.samples,
        "spilled": {"segments": r.spilled.segments, "bytes": r.spilled.bytes},
        "events": r.events,
    })
}

fn print_summary(conn: &Connection, r: &RunReport) {
    let secs = r.duration.as_secs_f64();
    let verdict = if r.succeeded() { "succeeded" } else { "FAILED" };
    let resumed = if r.attempt > 1 {
        format!(", resumed: attempt {}", r.attempt)
    } else {
        String::new()
    };
    println!(
        "run {} of `{}` {verdict} in {secs:.2}s ({} checkpoints{resumed})",
        r.run_id, conn.name, r.commits
    );
    println!(
        "  {:<24} {:>12} {:>12} {:>12}",
        "stream", "records", "bytes", "records/s"
    );
    for (s, active) in r.streams.iter().zip(&r.active) {
        println!(
            "  {:<24} {:>12} {:>12} {:>12}",
            s.stream,
            format::count(s.records),
            format::bytes(s.bytes),
            format::rate(s.records, active.as_secs_f64())
        );
    }
    println!(
        "  {:<24} {:>12} {:>12} {:>12}   {}/s",
        "total",
        format::count(r.records()),
        format::bytes(r.bytes()),
        format::rate(r.records(), secs),
        format::bytes((r.bytes() as f64 / secs.max(1e-9)) as u64)
    );
    let requests = r
        .events
        .iter()
        .filter(|e| e.capability == Capability::Network && e.outcome != Outcome::Refused)
        .count();
    if requests > 0 {
        println!("  outbound requests: {requests}");
    }
    if r.refusals > 0 {
        println!(
            "  REFUSED {} attempt(s) to reach past the grant:",
            format::count(r.refusals)
        );
        for e in r
            .events
            .iter()
            .filter(|e| e.outcome == Outcome::Refused)
            .take(10)
        {
            println!(
                "    [{}] {} {}: {}",
                e.connector, e.capability, e.action, e.detail
            );
        }
        println!("  (all events: sluice runs --log {})", r.run_id);
    }
    if r.masked.total() > 0 {
        println!(
            "  masked {} value(s) by the PII policy:",
            format::count(r.masked.total())
        );
        for l in r.masked.lines().iter().take(20) {
            println!(
                "    {}.{} by {}: {}",
                l.stream,
                l.field,
                l.by,
                format::count(l.count)
            );
        }
    }
    if r.skipped > 0 {
        println!(
            "  left out {} invalid record(s); {} sample(s) kept (sluice samples {})",
            format::count(r.skipped),
            r.samples,
            r.run_id
        );
    }
    if r.spilled.segments > 0 {
        println!(
            "  spilled {} to {} sealed segment(s) while the destination caught up",
            format::bytes(r.spilled.bytes),
            r.spilled.segments
        );
    }
    if r.log_dropped > 0 {
        println!(
            "  note: connectors logged more than the run log keeps; {} lines were dropped",
            format::count(r.log_dropped)
        );
    }
    if let Some(e) = &r.error_message {
        eprintln!("error: {e}");
        eprintln!(
            "  what was written before the failure is committed; the next `sluice run` of this \
             connection resumes from the last checkpoint (or pass --fresh to start over)"
        );
    }
}
