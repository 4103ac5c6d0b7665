//! `sluice connector …`: build, sign and check packages (here), publish them to an index and
//! install from it ([`super::install`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use sluice::marketplace::package::{EXTENSION, Package};
use sluice::marketplace::{PublisherKey, TrustStore};

#[derive(Debug, clap::Subcommand)]
pub enum ConnectorCommand {
    /// Build a package (`NAME-VERSION.slpkg`) from a component, or from a directory holding
    /// exactly one component (`.wasm`). The manifest is the one the component embeds.
    Pack {
        /// The component, or a directory with one.
        input: PathBuf,
        /// Where to write the package. Default: `NAME-VERSION.slpkg` in the current directory.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Sign a package in place with a publisher key (from `sluice keys publisher new`).
    Sign {
        /// The package.
        package: PathBuf,
        /// The publisher's secret key file.
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
    },
    /// Check a package: whole, signed, and by a publisher this data dir trusts.
    Verify {
        /// The package.
        package: PathBuf,
    },
    /// Add a signed package to a directory index (created if needed).
    Publish {
        /// The package.
        package: PathBuf,
        /// The index directory.
        #[arg(long, value_name = "DIR")]
        index: PathBuf,
    },
    /// Withdraw a published version (it stays listed, is never picked, and is refused when
    /// pinned).
    Yank {
        /// `NAME@VERSION`.
        spec: String,
        /// The index directory.
        #[arg(long, value_name = "DIR")]
        index: PathBuf,
        /// Un-yank it.
        #[arg(long)]
        undo: bool,
    },
    /// Install a connector from an index: download, verify, review its capabilities, compile.
    Install(super::install::InstallArgs),
    /// Move an installed connector to another version (approval again if it asks for more).
    Upgrade(super::install::InstallArgs),
    /// List installed connectors.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show an installed connector, and the versions an index has of it.
    Info {
        /// The connector's name.
        name: String,
        #[command(flatten)]
        index: super::install::IndexArg,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Uninstall a connector: its files, its compiled code and its record.
    Remove {
        /// The connector's name.
        name: String,
    },
}

pub async fn run(ctx: &super::Ctx, cmd: ConnectorCommand) -> anyhow::Result<ExitCode> {
    let data_dir = ctx.data_dir.as_path();
    use super::install;
    match cmd {
        ConnectorCommand::Pack { input, out } => pack(&input, out),
        ConnectorCommand::Sign { package, key } => sign(&package, &key),
        ConnectorCommand::Verify { package } => verify(data_dir, &package),
        ConnectorCommand::Publish { package, index } => install::publish(&package, &index),
        ConnectorCommand::Yank { spec, index, undo } => install::yank(&spec, &index, undo),
        ConnectorCommand::Install(a) => install::install(ctx, a, false).await,
        ConnectorCommand::Upgrade(a) => install::install(ctx, a, true).await,
        ConnectorCommand::List { json } => install::list(ctx, json).await,
        ConnectorCommand::Info { name, index, json } => {
            install::info(ctx, &name, &index, json).await
        }
        ConnectorCommand::Remove { name } => install::remove(ctx, &name).await,
    }
}

fn pack(input: &Path, out: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let wasm = component_in(input)?;
    let bytes = std::fs::read(&wasm).with_context(|| format!("cannot read {}", wasm.display()))?;
    let p = Package::from_component(bytes, &wasm.display().to_string())?;
    let out = out.unwrap_or_else(|| PathBuf::from(p.file_name()));
    p.write(&out)?;
    println!(
        "packed {} {} ({}) into {} (unsigned: sign it with `sluice connector sign {} --key KEY`)",
        p.manifest.name,
        p.manifest.version,
        p.manifest.kind,
        out.display(),
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn sign(package: &Path, key: &Path) -> anyhow::Result<ExitCode> {
    let key = PublisherKey::load(key)?;
    let mut p = Package::read(package)?;
    p.sign(&key);
    p.write(package)?;
    println!(
        "signed {} {} as `{}`",
        p.manifest.name,
        p.manifest.version,
        key.id()
    );
    Ok(ExitCode::SUCCESS)
}

fn verify(data_dir: &Path, package: &Path) -> anyhow::Result<ExitCode> {
    let trust = TrustStore::open(data_dir)?;
    let p = Package::read(package)?;
    let by = p.verify(&trust, &package.display().to_string())?;
    let d = p.digests();
    println!(
        "{} {} ({}): signed by `{by}`, a trusted publisher\ncomponent sha256:{}\nmanifest  sha256:{}",
        p.manifest.name,
        p.manifest.version,
        p.manifest.kind,
        hex::encode(d.component),
        hex::encode(d.manifest)
    );
    Ok(ExitCode::SUCCESS)
}

/// The component to pack: the file itself, or the one `.wasm` in a directory.
fn component_in(input: &Path) -> anyhow::Result<PathBuf> {
    if !input.is_dir() {
        if input.extension().is_some_and(|e| e == EXTENSION) {
            bail!("{} is already a package", input.display());
        }
        return Ok(input.to_path_buf());
    }
    let wasm: Vec<PathBuf> = std::fs::read_dir(input)
        .with_context(|| format!("cannot read {}", input.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .collect();
    match wasm.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "{} holds no component (.wasm); build the connector first (`cargo build --target wasm32-wasip2`)",
            input.display()
        ),
        _ => bail!(
            "{} holds {} components; name the one to pack",
            input.display(),
            wasm.len()
        ),
    }
}
