//! `sluice purge`, and the purge every stateful command runs on start.

use std::process::ExitCode;

use sluice::boundary::audit::NewEntry;
use sluice::boundary::retention::Retention;
use sluice::store::{PurgeReport, Store};

#[derive(Debug, clap::Args)]
pub struct PurgeArgs {
    /// Print what was removed as JSON.
    #[arg(long)]
    json: bool,
}

async fn purge(store: &Store) -> anyhow::Result<PurgeReport> {
    // The command line purges with the default audit floor; only `sluice serve --audit-floor`
    // lowers it.
    let retention = Retention::load(store.dir())?.floored(sluice::boundary::retention::AUDIT_FLOOR);
    let report = store
        .purge(&retention, time::OffsetDateTime::now_utc())
        .await?;
    if !report.is_empty() {
        store
            .audit(&[NewEntry::new(
                super::actor(),
                "purge",
                "data-dir",
                "ok",
                serde_json::to_value(&report)?,
            )])
            .await?;
        store.audit_seal().await?;
    }
    Ok(report)
}

fn describe(r: &PurgeReport) -> String {
    format!(
        "{} run log line(s), {} wall event(s), {} sample file(s), {} staging dir(s), {} audit \
         entr(ies), {} checkpoint(s)",
        r.run_log_lines, r.run_events, r.samples, r.staging, r.audit_entries, r.states
    )
}

/// Purge before a command that writes: overdue data goes even when nobody runs `sluice purge`.
pub async fn on_start(store: &Store) -> anyhow::Result<()> {
    let r = purge(store).await?;
    if !r.is_empty() {
        eprintln!("purged overdue data: {}", describe(&r));
    }
    Ok(())
}

pub async fn run(ctx: &super::Ctx, args: PurgeArgs) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let r = purge(&store).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else if r.is_empty() {
        println!("nothing is overdue");
    } else {
        println!("purged {}", describe(&r));
    }
    Ok(ExitCode::SUCCESS)
}
