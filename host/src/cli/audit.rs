//! `sluice audit verify|list`.

use std::process::ExitCode;

use sluice::store::AuditFilter;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Check every entry's hash chain and every signed digest; name the first bad entry.
    Verify {
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print entries as JSON lines, oldest first.
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// At or after this time (RFC 3339, e.g. 2026-11-01T00:00:00Z).
    #[arg(long)]
    since: Option<String>,
    /// Before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
    /// Exactly this actor (`cli:alice`, `connector:source-http`).
    #[arg(long)]
    actor: Option<String>,
    /// This action or those under it (`run` matches `run.started` and `run.finished`).
    #[arg(long)]
    action: Option<String>,
    /// This resource or those under it (`connection/users`).
    #[arg(long)]
    resource: Option<String>,
    /// At most this many entries.
    #[arg(long)]
    limit: Option<u32>,
}

fn check_time(flag: &str, v: &Option<String>) -> anyhow::Result<()> {
    if let Some(t) = v {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).map_err(
            |_| {
                anyhow::anyhow!(
                    "--{flag} `{t}` is not an RFC 3339 time (like 2026-11-01T00:00:00Z)"
                )
            },
        )?;
    }
    Ok(())
}

pub async fn run(ctx: &super::Ctx, cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    match cmd {
        AuditCommand::Verify { json } => {
            let v = store.audit_verify().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else if let Some(p) = &v.problem {
                println!("audit log FAILED verification: {p}");
                println!(
                    "  ({} entries, {} signed digests checked)",
                    v.entries, v.digests
                );
            } else {
                println!(
                    "audit log intact: {} entries chained, {} signed digests verified{}",
                    v.entries,
                    v.digests,
                    if v.unsigned > 0 {
                        format!(
                            "; the last {} entries are chained but not yet covered by a digest",
                            v.unsigned
                        )
                    } else {
                        String::new()
                    }
                );
            }
            Ok(if v.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        AuditCommand::List(a) => {
            check_time("since", &a.since)?;
            check_time("until", &a.until)?;
            let filter = AuditFilter {
                since: a.since,
                until: a.until,
                actor: a.actor,
                action: a.action,
                resource: a.resource,
                limit: a.limit,
            };
            for e in store.audit_entries(&filter).await? {
                let details: serde_json::Value =
                    serde_json::from_str(&e.details).unwrap_or(serde_json::Value::Null);
                println!(
                    "{}",
                    serde_json::json!({
                        "seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action,
                        "resource": e.resource, "outcome": e.outcome, "source_ip": e.source_ip,
                        "details": details, "hash": e.hash,
                    })
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
