//! `sluice connector publish|yank|install|upgrade|list|info|remove`: the index and the
//! connectors installed from it.

use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use sluice::marketplace::index::{self, Published};
use sluice::marketplace::{Index, InstallError, Installer, Location, Plan, Request};
use sluice::store::{InstalledConnector, Store};

/// Where to install from.
#[derive(Debug, Clone, clap::Args)]
pub struct IndexArg {
    /// The index: a directory, or an https:// URL (http:// on loopback only). Default:
    /// `$SLUICE_INDEX`, else the first-party index of this sluice's source tree
    /// (`examples/index`, filled by `cargo xtask build`).
    #[arg(long, env = "SLUICE_INDEX", value_name = "DIR|URL")]
    index: Option<String>,
    /// CA certificates (PEM) to trust, beside the platform's, for an https:// index behind a
    /// private CA.
    #[arg(long, env = "SLUICE_INDEX_CA", value_name = "FILE")]
    index_ca: Option<PathBuf>,
}

/// `install` and `upgrade`.
#[derive(Debug, clap::Args)]
pub struct InstallArgs {
    /// `NAME` (the newest version that is not yanked) or `NAME@VERSION`.
    spec: String,
    #[command(flatten)]
    index: IndexArg,
    /// Approve the capabilities it requests without asking (for scripts; read them first with
    /// `sluice connector info NAME --index …`). Without it, a terminal is asked.
    #[arg(long)]
    approve: bool,
    /// Accept a version below the installed one.
    #[arg(long)]
    allow_downgrade: bool,
}

/// The index's first-party connectors in this source tree, when it is there.
fn built_in_index() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("examples")
        .join("index");
    dir.join(index::INDEX_FILE)
        .is_file()
        .then(|| dir.canonicalize().unwrap_or(dir))
}

fn location(arg: &IndexArg, fallback: Option<&str>) -> anyhow::Result<Location> {
    if let Some(i) = arg.index.as_deref().or(fallback) {
        return Ok(Location::parse(i)?);
    }
    match built_in_index() {
        Some(dir) => Ok(Location::Dir(dir)),
        None => bail!(
            "no index given: pass --index DIR|URL or set SLUICE_INDEX (the first-party index \
             is built into examples/index by `cargo xtask build`)"
        ),
    }
}

fn split_spec(spec: &str) -> (String, Option<String>) {
    match spec.split_once('@') {
        Some((n, v)) => (n.to_string(), Some(v.to_string())),
        None => (spec.to_string(), None),
    }
}

fn installer<'a>(store: &'a Store, runtime: &'a sluice::runtime::Runtime) -> Installer<'a> {
    Installer {
        store,
        runtime,
        actor: super::actor(),
    }
}

/// Print what the plan installs and what it asks for.
fn review(plan: &Plan) {
    let m = &plan.package.manifest;
    match &plan.previous {
        Some(p) => println!(
            "{} {} → {} ({}) from {}",
            plan.name, p.version, plan.entry.version, m.kind, plan.index
        ),
        None => println!(
            "{} {} ({}) from {}",
            plan.name, plan.entry.version, m.kind, plan.index
        ),
    }
    if !m.description.is_empty() {
        println!("  {}", m.description);
    }
    println!("  signed by `{}` (trusted)", plan.key_id);
    if let Some(p) = plan.previous.as_ref().filter(|p| p.key_id != plan.key_id) {
        println!(
            "  ! another publisher: the installed version is signed by `{}`",
            p.key_id
        );
    }
    println!("  package sha256:{}", plan.entry.sha256);
    println!("requested capabilities (a connection's grant can only narrow these):");
    if plan.capabilities.is_empty() && plan.removed.is_empty() {
        println!("  none: no files, no network, no secrets, no databases");
    }
    let upgrade = plan.previous.is_some();
    for c in &plan.capabilities {
        let new = upgrade && plan.added.contains(c);
        println!(
            "  {} {c}{}",
            if new { "+" } else { " " },
            if new { "   (new)" } else { "" }
        );
    }
    for c in &plan.removed {
        println!("  - {c}   (no longer requested)");
    }
}

/// Ask on the terminal; `None` when there is no terminal to ask.
fn ask(question: &str) -> anyhow::Result<Option<bool>> {
    if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
        return Ok(None);
    }
    print!("{question} [y/N] ");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(Some(matches!(line.trim(), "y" | "Y" | "yes" | "Yes")))
}

pub async fn install(
    ctx: &super::Ctx,
    args: InstallArgs,
    upgrade: bool,
) -> anyhow::Result<ExitCode> {
    let data_dir = ctx.data_dir.as_path();
    let store = ctx.store().await?;
    let runtime = super::runtime(data_dir)?;
    let inst = installer(&store, &runtime);
    let (name, version) = split_spec(&args.spec);
    let installed = store.installed_connector(&name).await?;
    if upgrade && installed.is_none() {
        let e = InstallError::NotInstalled { name: name.clone() };
        bail!("{e}; install it with `sluice connector install {name}`");
    }
    // An upgrade looks where the installed version came from, unless told otherwise.
    let fallback = if upgrade {
        installed.as_ref().map(|c| c.index.as_str())
    } else {
        None
    };
    let req = Request {
        name: name.clone(),
        version,
        index: location(&args.index, fallback)?,
        ca: args.index.index_ca.clone(),
        allow_downgrade: args.allow_downgrade,
    };
    let result = async {
        let plan = inst.plan(&req).await?;
        if plan.is_installed() {
            return Ok(None);
        }
        review(&plan);
        let approved = if !plan.needs_approval() {
            println!("it asks for nothing it was not approved for before");
            Some(plan.capabilities.clone())
        } else if args.approve {
            Some(plan.to_approve())
        } else {
            match ask(if upgrade {
                "Upgrade and grant these?"
            } else {
                "Install and allow these?"
            })
            .map_err(|e| InstallError::Write {
                what: "the terminal".into(),
                reason: e.to_string(),
            })? {
                Some(true) => Some(plan.to_approve()),
                Some(false) => {
                    println!("not installed");
                    return Ok(Some(None));
                }
                None => {
                    eprintln!("stdin is not a terminal, so nobody can approve: pass --approve");
                    None
                }
            }
        };
        inst.commit(plan, approved.as_deref())
            .await
            .map(|r| Some(Some(r)))
    }
    .await;
    match result {
        Ok(None) => {
            let c = installed.expect("installed when already installed");
            println!("{} {} is already installed", c.name, c.version);
            Ok(ExitCode::SUCCESS)
        }
        Ok(Some(None)) => Ok(ExitCode::from(1)),
        Ok(Some(Some(c))) => {
            println!(
                "installed {} {} ({}); use it in a connection file as `connector = \"{}\"`",
                c.name, c.version, c.kind, c.name
            );
            store.audit_seal().await?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            inst.audit_refusal(&name, &e).await?;
            store.audit_seal().await?;
            Err(e.into())
        }
    }
}

pub async fn list(ctx: &super::Ctx, json: bool) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let all = store.installed_connectors().await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        println!("no connectors installed (install one with `sluice connector install NAME`)");
    }
    for c in &all {
        println!(
            "{:<24} {:<10} {:<12} signed by {}",
            c.name,
            c.version,
            c.kind.to_string(),
            c.key_id
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_installed(c: &InstalledConnector, store: &Store) {
    println!(
        "{} {} ({}), installed {}",
        c.name, c.version, c.kind, c.installed_at
    );
    println!("  from        {}", c.index);
    println!("  signed by   {}", c.key_id);
    println!("  package     sha256:{}", c.package_sha256);
    println!("  component   sha256:{}", c.component_sha256);
    println!("  file        {}", store.installed_component(c).display());
    println!("approved capabilities:");
    if c.approved.is_empty() {
        println!("  none");
    }
    for a in &c.approved {
        println!("  {a}");
    }
}

pub async fn info(
    ctx: &super::Ctx,
    name: &str,
    index_arg: &IndexArg,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let installed = store.installed_connector(name).await?;
    // The index is read when asked for, or when the connector is not installed.
    let idx = if index_arg.index.is_some() || installed.is_none() {
        Some(Index::load(location(index_arg, None)?, index_arg.index_ca.clone()).await?)
    } else {
        None
    };
    let versions = idx.as_ref().and_then(|i| i.file.packages.get(name));
    if installed.is_none() && versions.is_none() {
        bail!(
            "`{name}` is neither installed nor in the index {}",
            idx.as_ref()
                .map_or(String::new(), |i| i.location.to_string())
        );
    }
    if json {
        let out = serde_json::json!({ "installed": installed, "index": versions });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    match &installed {
        Some(c) => print_installed(c, &store),
        None => println!("{name} is not installed"),
    }
    if let (Some(i), Some(vs)) = (&idx, versions) {
        println!("in the index {}:", i.location);
        for v in vs {
            println!(
                "  {:<10} {:<12} signed by {}{}",
                v.version,
                v.kind.to_string(),
                v.key_id,
                if v.yanked { "  (yanked)" } else { "" }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn remove(ctx: &super::Ctx, name: &str) -> anyhow::Result<ExitCode> {
    let data_dir = ctx.data_dir.as_path();
    let store = ctx.store().await?;
    let runtime = super::runtime(data_dir)?;
    let c = installer(&store, &runtime).remove(name).await?;
    store.audit_seal().await?;
    println!("removed {} {}", c.name, c.version);
    Ok(ExitCode::SUCCESS)
}

pub fn publish(package: &Path, index_dir: &Path) -> anyhow::Result<ExitCode> {
    let bytes =
        std::fs::read(package).with_context(|| format!("cannot read {}", package.display()))?;
    match index::publish(index_dir, &bytes, &package.display().to_string())? {
        Published::Added(e) => println!(
            "published {} into {} (signed by `{}`)",
            e.path,
            index_dir.display(),
            e.key_id
        ),
        Published::Unchanged(e) => println!(
            "{} is already in {}, unchanged",
            e.path,
            index_dir.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn yank(spec: &str, index_dir: &Path, undo: bool) -> anyhow::Result<ExitCode> {
    let (name, Some(version)) = split_spec(spec) else {
        bail!("name the version to yank: NAME@VERSION");
    };
    let e = index::set_yanked(index_dir, &name, &version, !undo)?;
    println!(
        "{name} {} is {} in {}",
        e.version,
        if undo { "no longer yanked" } else { "yanked" },
        index_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
