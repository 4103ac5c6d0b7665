//! `sluice trust add|list`: the publisher keys whose packages this data dir installs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use sluice::boundary::audit::NewEntry;
use sluice::marketplace::{PublicKey, TrustStore};

#[derive(Debug, clap::Subcommand)]
pub enum TrustCommand {
    /// Trust a publisher's public key (a `.pub` file from `sluice keys publisher new`).
    Add {
        /// The public key file.
        key: PathBuf,
    },
    /// List trusted publisher keys.
    List,
}

pub async fn run(ctx: &super::Ctx, cmd: TrustCommand) -> anyhow::Result<ExitCode> {
    let data_dir = ctx.data_dir.as_path();
    match cmd {
        TrustCommand::Add { key } => {
            let text = std::fs::read_to_string(&key)
                .with_context(|| format!("cannot read {}", key.display()))?;
            let public = PublicKey::parse(&text, &key.display().to_string())?;
            std::fs::create_dir_all(data_dir)?;
            let added = TrustStore::add(data_dir, &public)?;
            if added {
                let store = ctx.store().await?;
                store
                    .audit(&[NewEntry::new(
                        super::actor(),
                        "trust.added",
                        format!("publisher/{}", public.id),
                        "ok",
                        serde_json::json!({}),
                    )])
                    .await?;
                store.audit_seal().await?;
                println!("trusted `{}`", public.id);
            } else {
                println!("`{}` was already trusted", public.id);
            }
        }
        TrustCommand::List => {
            for k in TrustStore::open(data_dir)?.keys() {
                println!("{}", k.id);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
