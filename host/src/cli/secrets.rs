//! `sluice secrets set|list|rm`.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use sluice::boundary::audit::NewEntry;

#[derive(Debug, clap::Subcommand)]
pub enum SecretsCommand {
    /// Store a secret, sealed: its value is read from standard input (never an argument, which
    /// would land in the shell history and the process list).
    Set {
        /// The name grants refer to (`{ name = "…", stored = true }`).
        name: String,
    },
    /// List stored secrets (names and dates, never values).
    List,
    /// Remove a stored secret.
    Rm {
        /// Its name.
        name: String,
    },
}

pub async fn run(ctx: &super::Ctx, cmd: SecretsCommand) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    match cmd {
        SecretsCommand::Set { name } => {
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                anyhow::bail!("secret name `{name}` must be letters, digits, `_` or `-`");
            }
            if std::io::stdin().is_terminal() {
                eprintln!("value of secret `{name}` (then Ctrl-D):");
            }
            let mut value = zeroize::Zeroizing::new(String::new());
            std::io::stdin().read_to_string(&mut value)?;
            while value.ends_with(['\n', '\r']) {
                value.pop();
            }
            if value.len() < sluice::boundary::scrub::MIN_LEN {
                anyhow::bail!(
                    "the value is shorter than {} characters; nothing was stored",
                    sluice::boundary::scrub::MIN_LEN
                );
            }
            store.set_secret(&name, &value).await?;
            store
                .audit(&[NewEntry::new(
                    super::actor(),
                    "secret.stored",
                    format!("secret/{name}"),
                    "ok",
                    serde_json::json!({}),
                )])
                .await?;
            store.audit_seal().await?;
            println!(
                "stored secret `{name}` (sealed under key `{}`)",
                store.keyring().current_id()
            );
        }
        SecretsCommand::List => {
            for s in store.secrets().await? {
                println!("{}  set {}", s.name, s.updated_at);
            }
        }
        SecretsCommand::Rm { name } => {
            if !store.remove_secret(&name).await? {
                anyhow::bail!("there is no stored secret `{name}`");
            }
            store
                .audit(&[NewEntry::new(
                    super::actor(),
                    "secret.removed",
                    format!("secret/{name}"),
                    "ok",
                    serde_json::json!({}),
                )])
                .await?;
            store.audit_seal().await?;
            println!("removed secret `{name}`");
        }
    }
    Ok(ExitCode::SUCCESS)
}
