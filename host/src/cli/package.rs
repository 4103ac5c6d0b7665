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
    /// Make a package of an Airbyte declarative source: a `manifest.yaml`, or an Airbyte source
    /// wheel (`airbyte-source-*` from PyPI) that ships one. The package is the
    /// `source-declarative` component with the manifest and its schemas packed in, requesting
    /// the network its `url_base` values reach; the manifest is checked in the sandbox first.
    ImportAirbyte(ImportArgs),
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

/// `sluice connector import-airbyte`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The manifest (`manifest.yaml`, with any `schemas/` beside it) or a wheel (`.whl`).
    file: PathBuf,
    /// The `source-declarative` component to pack the manifest into.
    #[arg(
        long,
        value_name = "WASM",
        default_value = "dist/connectors/source-declarative.wasm"
    )]
    component: PathBuf,
    /// The package's name. Default: `airbyte-source-NAME`, from the wheel or the manifest's
    /// directory.
    #[arg(long)]
    name: Option<String>,
    /// The package's version. Default: the wheel's, else 0.1.0.
    #[arg(long)]
    version: Option<String>,
    /// Where to write the package. Default: `NAME-VERSION.slpkg` in the current directory.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Sign it with this publisher key (from `sluice keys publisher new`).
    #[arg(long, value_name = "KEY")]
    key: Option<PathBuf>,
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
        ConnectorCommand::ImportAirbyte(a) => import_airbyte(ctx, a).await,
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

async fn import_airbyte(ctx: &super::Ctx, args: ImportArgs) -> anyhow::Result<ExitCode> {
    use sluice::marketplace::airbyte;
    let what = args.file.display().to_string();
    let imported = airbyte::read(&args.file)?;
    let interpreter = std::fs::read(&args.component).with_context(|| {
        format!(
            "cannot read the interpreter component {} (build it with `cargo xtask build`, or \
             give its path with --component)",
            args.component.display()
        )
    })?;
    let base = sluice::capability::Manifest::from_component(&interpreter)
        .with_context(|| format!("{}", args.component.display()))?;
    if base.name != airbyte::INTERPRETER {
        bail!(
            "{} is `{}`, not the `{}` component manifests are packed into",
            args.component.display(),
            base.name,
            airbyte::INTERPRETER
        );
    }
    let name = args.name.unwrap_or_else(|| imported.name.clone());
    let version = args
        .version
        .or_else(|| imported.version.clone())
        .unwrap_or_else(|| "0.1.0".into());
    let title = imported
        .manifest
        .pointer("/spec/connection_specification/title")
        .and_then(|t| t.as_str())
        .unwrap_or(&name)
        .to_string();
    let description = format!(
        "{title}: an Airbyte declarative manifest run by source-declarative {}",
        base.version
    );
    let network = airbyte::network(&imported.manifest)?;
    let manifest_text = airbyte::package_manifest(&name, &version, &description, network)?;
    let component = airbyte::component(&interpreter, &imported, &manifest_text)?;

    // The component itself checks the manifest, in a sandbox with no network: every component
    // must be one it runs, every schema file must be packed.
    let rt = super::runtime(&ctx.data_dir)?;
    let c = rt
        .load_uncached(&name, &component)
        .map_err(|e| anyhow::anyhow!("the imported component does not load: {e}"))?;
    let sandbox = sluice::runtime::Sandbox::default();
    let spec = c.source(&rt, &sandbox).await?.spec().await?;
    let catalog = match c
        .source(&rt, &sandbox)
        .await?
        .discover(&"{}".to_string())
        .await
    {
        Ok(catalog) => catalog,
        Err(e) => bail!("{what} cannot be imported: {e}"),
    };
    let mut package = Package::from_component(component, &name)?;
    if let Some(key) = &args.key {
        package.sign(&PublisherKey::load(key)?);
    }
    let out = args
        .out
        .unwrap_or_else(|| PathBuf::from(package.file_name()));
    package.write(&out)?;

    let m = &package.manifest;
    println!(
        "imported {what} as {} {} into {}",
        m.name,
        m.version,
        out.display()
    );
    let streams: Vec<&str> = catalog.streams.iter().map(|s| s.name.as_str()).collect();
    println!("  streams ({}): {}", streams.len(), streams.join(", "));
    for n in &m.capabilities.network {
        println!("  network    {n}");
    }
    let mut secrets = Vec::new();
    super::connector::secret_fields(&spec.config_schema, "", &mut secrets);
    for s in &secrets {
        println!("  secret     {s} (put a `{{{{secret:NAME}}}}` placeholder in the config)");
    }
    println!("  packed     {}", c.bundle().names().join(", "));
    if imported.python_components {
        println!(
            "  note       components.py came with it; the manifest uses none of it (a `Custom*` \
             component would have been refused)"
        );
    }
    if args.key.is_none() {
        println!(
            "unsigned: sign it with `sluice connector sign {} --key KEY`, then `publish` and `install` it",
            out.display()
        );
    }
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
