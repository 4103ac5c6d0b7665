//! `sluice keys rotate|list|publisher new`.

use std::process::ExitCode;
use std::sync::Arc;

use sluice::boundary::audit::NewEntry;
use sluice::boundary::crypto::Keyring;
use sluice::store::Store;

#[derive(Debug, clap::Subcommand)]
pub enum KeysCommand {
    /// Add a key-encryption key, make it current, and re-wrap every sealed value under it.
    /// Old keys stay in the keyring: anything sealed under them still opens.
    Rotate,
    /// List key ids (never key material).
    List,
    /// Publisher keys, for signing connector packages.
    #[command(subcommand)]
    Publisher(PublisherCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum PublisherCommand {
    /// Make a publisher key pair: `NAME.key` (secret, 0600: keep it safe) and `NAME.pub`
    /// (give it to operators, who `sluice trust add` it).
    New {
        /// The publisher's name (a-z, 0-9, `-`).
        name: String,
        /// Where to write the two files.
        #[arg(long, value_name = "DIR", default_value = ".")]
        out: std::path::PathBuf,
    },
}

pub async fn run(ctx: &super::Ctx, cmd: KeysCommand) -> anyhow::Result<ExitCode> {
    let data_dir = ctx.data_dir.as_path();
    if let KeysCommand::Publisher(PublisherCommand::New { name, out }) = cmd {
        let key = sluice::marketplace::PublisherKey::generate(&name)?;
        let secret = out.join(format!("{name}.key"));
        let public = out.join(format!("{name}.pub"));
        if public.exists() {
            anyhow::bail!("{} exists already; move it away first", public.display());
        }
        key.save(&secret)?;
        std::fs::write(&public, key.public().to_text())?;
        println!(
            "publisher key `{}`\n  secret: {} (0600; signs packages: keep it private)\n  public: {} (operators trust it with `sluice trust add`)",
            key.id(),
            secret.display(),
            public.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::create_dir_all(data_dir)?;
    let mut ring = Keyring::open(data_dir)?;
    match cmd {
        KeysCommand::List => {
            for (id, created) in ring.key_ids() {
                let current = if id == ring.current_id() {
                    " (current)"
                } else {
                    ""
                };
                println!("{id}  created {created}{current}");
            }
            println!("keyring: {}", ring.source());
        }
        KeysCommand::Publisher(_) => unreachable!("handled above"),
        KeysCommand::Rotate => {
            let old = ring.current_id().to_string();
            let new = ring.rotate()?;
            let store = Store::open_at_with(&ctx.store, data_dir, Arc::new(ring)).await?;
            let rewrapped = store.rewrap_all().await?;
            let files = rewrap_samples(&store)?;
            store
                .audit(&[NewEntry::new(
                    super::actor(),
                    "key.rotated",
                    format!("key/{new}"),
                    "ok",
                    serde_json::json!({ "from": old, "to": new, "rewrapped": rewrapped + files }),
                )])
                .await?;
            store.audit_seal().await?;
            println!(
                "rotated: `{new}` is the current key (was `{old}`); re-wrapped {} sealed value(s) \
                 and {files} sample file(s)",
                rewrapped
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Re-wrap the data keys in the headers of sealed sample files (the data is untouched).
fn rewrap_samples(store: &Store) -> anyhow::Result<u64> {
    let mut n = 0;
    for dir in store.areas("samples") {
        n += rewrap_samples_in(store, &dir)?;
    }
    Ok(n)
}

/// [`rewrap_samples`] for one folder.
fn rewrap_samples_in(store: &Store, dir: &std::path::Path) -> anyhow::Result<u64> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    let mut n = 0;
    for e in entries.flatten() {
        let path = e.path();
        let Some(identity) = sluice::sync::wall::Samples::identity_of(&path) else {
            continue;
        };
        let bytes = std::fs::read(&path)?;
        if let Some(new) = sluice::boundary::crypto::rewrap(store.keyring(), &identity, &bytes)? {
            let tmp = path.with_extension("rewrap");
            std::fs::write(&tmp, new)?;
            std::fs::rename(&tmp, &path)?;
            n += 1;
        }
    }
    Ok(n)
}
