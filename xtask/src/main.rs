//! Developer tasks. Each does its own set-up on a fresh machine (the wasm32-wasip2 target, the
//! connectors, the binary), so the README's commands work from a clean clone:
//!
//! - `cargo xtask build`: connectors into `dist/`, the `sluice` binary (release), and the
//!   first-party index in `examples/index/` (packed, signed with this checkout's own publisher
//!   key, published).
//! - `cargo xtask demo`: build, then run `examples/faker-to-file.toml`.
//! - `cargo xtask test [ARGS]`: build, start a throwaway PostgreSQL on loopback, generate the
//!   PII detectors' labelled set with Faker (pinned, in a venv under the target dir), then the
//!   whole test suite (`cargo test --release`); the server is stopped afterwards.
//! - `cargo xtask bench [ARGS]`: the same set-up, then the benchmarks.
//! - `cargo xtask fuzz [SECONDS] [--merge]`: the SQL policy's fuzz target (libFuzzer coverage on
//!   stable Rust, no sanitizer) over the committed corpus for SECONDS (default 120); what it
//!   finds new goes to `host/sql-wall/fuzz/corpus/policy-new/` (`--merge` folds that into the
//!   committed corpus, minimized); a crash leaves its input in `…/fuzz/artifacts/` and fails.
//! - `cargo xtask api-fuzz [SECONDS]`: build, then schemathesis against a seeded `sluice serve`
//!   for SECONDS (default 300), every check on; any failure fails ([`api_fuzz`]).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

mod api_fuzz;
mod postgres;

/// First-party connectors, shipped in `dist/connectors/`.
const CONNECTORS: &[&str] = &[
    "source-faker",
    "source-file",
    "source-http",
    "source-declarative",
    "source-postgres",
    "destination-file",
    "destination-postgres",
    "destination-sqlite",
];
/// Connectors that exist to test the host (and the README's tutorial connector), in
/// `dist/test-connectors/`.
const TEST_CONNECTORS: &[&str] = &[
    "chaos-source",
    "chaos-destination",
    "hostile-source",
    "hostile-socket",
    "hostile-destination",
    "hello-source",
];
const TARGET: &str = "wasm32-wasip2";

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let ws = Workspace::find()?;
    match task.as_str() {
        "build" => ws.build(),
        "demo" => {
            ws.build()?;
            ws.demo()
        }
        "test" => {
            ws.build()?;
            ws.test(&rest)
        }
        "bench" => {
            ws.build()?;
            ws.bench(&rest)
        }
        "fuzz" => ws.fuzz(&rest),
        "api-fuzz" => {
            ws.build()?;
            ws.api_fuzz(&rest)
        }
        _ => bail!(
            "usage: cargo xtask build|demo|test [cargo test args]|bench [args]|fuzz [SECONDS] \
             [--merge]|api-fuzz [SECONDS]"
        ),
    }
}

struct Workspace {
    root: PathBuf,
    target: PathBuf,
}

/// Cargo, with the environment `cargo run` gave this process taken away again. Build scripts
/// (ring's, through `cc`) rerun when `CARGO_MANIFEST_DIR` and the like change, so a build
/// started from here with them set and one started from a shell without would each rebuild
/// ring, rustls, sqlx and the host for the other.
fn cargo() -> Command {
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if key.starts_with("CARGO_PKG_")
            || matches!(
                key,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
            )
        {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn run(cmd: &mut Command) -> Result<()> {
    let shown = shown(cmd);
    eprintln!("xtask: {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} failed ({status})");
    }
    Ok(())
}

/// `cmd` as it is logged: the program, its arguments and the names of the variables it sets,
/// never their values (a token passed in the environment stays out of CI logs).
fn shown(cmd: &Command) -> String {
    let mut out = String::new();
    if let Some(dir) = cmd.get_current_dir() {
        out.push_str(&format!("(in {}) ", dir.display()));
    }
    for (name, value) in cmd.get_envs() {
        let name = name.to_string_lossy();
        match value {
            Some(_) => out.push_str(&format!("{name}=… ")),
            None => out.push_str(&format!("-u {name} ")),
        }
    }
    out.push_str(&cmd.get_program().to_string_lossy());
    for a in cmd.get_args() {
        out.push(' ');
        out.push_str(&a.to_string_lossy());
    }
    out
}

impl Workspace {
    fn find() -> Result<Self> {
        let out = cargo()
            .args(["metadata", "--no-deps", "--format-version", "1"])
            .output()
            .context("cannot run `cargo metadata`")?;
        if !out.status.success() {
            bail!(
                "cargo metadata failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let meta: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let path = |key: &str| -> Result<PathBuf> {
            meta[key]
                .as_str()
                .map(PathBuf::from)
                .with_context(|| format!("cargo metadata has no {key}"))
        };
        Ok(Workspace {
            root: path("workspace_root")?,
            target: path("target_directory")?,
        })
    }

    fn dist(&self) -> PathBuf {
        self.root.join("dist")
    }

    fn sluice_bin(&self) -> PathBuf {
        self.target.join("release").join("sluice")
    }

    /// `rustup target add` unless the target is already installed (RUSTUP_AUTO_INSTALL=0 means a
    /// toolchain file alone would not do it).
    fn ensure_target(&self) -> Result<()> {
        let out = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output()
            .context("rustup is needed to install the wasm32-wasip2 target")?;
        if String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l.trim() == TARGET)
        {
            return Ok(());
        }
        run(Command::new("rustup").args(["target", "add", TARGET]))
    }

    fn build(&self) -> Result<()> {
        self.ensure_target()?;
        let mut cmd = cargo();
        cmd.current_dir(&self.root)
            .args(["build", "--profile", "connector", "--target", TARGET]);
        for c in CONNECTORS.iter().chain(TEST_CONNECTORS) {
            cmd.args(["-p", c]);
        }
        run(&mut cmd)?;
        run(cargo().current_dir(&self.root).args([
            "build",
            "--release",
            "-p",
            "sluice",
            "--bin",
            "sluice",
        ]))?;
        let built = self.target.join(TARGET).join("connector");
        for (list, dir) in [
            (CONNECTORS, "connectors"),
            (TEST_CONNECTORS, "test-connectors"),
        ] {
            let dest = self.dist().join(dir);
            std::fs::create_dir_all(&dest)?;
            for name in list {
                let from = built.join(format!("{}.wasm", name.replace('-', "_")));
                copy_if_changed(&from, &dest.join(format!("{name}.wasm")))?;
            }
        }
        eprintln!("xtask: connectors are in {}", self.dist().display());
        self.first_party_index()
    }

    /// `examples/index/`: every first-party connector packed, signed and published with the
    /// sluice binary itself. The signing key is this checkout's own (kept under the target dir,
    /// never committed); its public half is `examples/index/sluice.pub`, for `sluice trust add`.
    /// Rebuilt from scratch each time: packing and ed25519 signing are deterministic, so
    /// unchanged connectors give byte-identical packages.
    fn first_party_index(&self) -> Result<()> {
        let index = self.root.join("examples/index");
        let keys = self.target.join("xtask-publisher");
        let secret = keys.join("sluice.key");
        std::fs::create_dir_all(&keys)?;
        if !secret.exists() {
            run(Command::new(self.sluice_bin())
                .args(["keys", "publisher", "new", "sluice", "--out"])
                .arg(&keys))?;
        }
        std::fs::copy(keys.join("sluice.pub"), index.join("sluice.pub"))?;
        let _ = std::fs::remove_file(index.join("index.json"));
        let _ = std::fs::remove_dir_all(index.join("packages"));
        let work = fresh_dir(&self.target.join("xtask-packages"))?;
        for name in CONNECTORS {
            let pkg = work.join(format!("{name}.slpkg"));
            let quiet = |cmd: &mut Command| -> Result<()> {
                let out = cmd
                    .output()
                    .with_context(|| format!("cannot start {cmd:?}"))?;
                if !out.status.success() {
                    bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
                }
                Ok(())
            };
            quiet(
                Command::new(self.sluice_bin())
                    .args(["connector", "pack"])
                    .arg(self.dist().join("connectors").join(format!("{name}.wasm")))
                    .arg("--out")
                    .arg(&pkg),
            )?;
            quiet(
                Command::new(self.sluice_bin())
                    .args(["connector", "sign"])
                    .arg(&pkg)
                    .arg("--key")
                    .arg(&secret),
            )?;
            quiet(
                Command::new(self.sluice_bin())
                    .args(["connector", "publish"])
                    .arg(&pkg)
                    .arg("--index")
                    .arg(&index),
            )?;
        }
        eprintln!(
            "xtask: the first-party index is in {} (trust its key with `sluice trust add {}`)",
            index.display(),
            index.join("sluice.pub").display()
        );
        Ok(())
    }

    fn demo(&self) -> Result<()> {
        let data = self.root.join("examples/output/sluice-data");
        let conn = self.root.join("examples/faker-to-file.toml");
        run(Command::new(self.sluice_bin())
            .arg("--data-dir")
            .arg(&data)
            .arg("run")
            .arg(&conn))?;
        eprintln!(
            "xtask: the records are in {}; run history: {} --data-dir {} runs",
            self.root.join("examples/output/faker").display(),
            self.sluice_bin().display(),
            data.display()
        );
        Ok(())
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env("SLUICE_DIST", self.dist())
            .env("SLUICE_BIN", self.sluice_bin());
    }

    fn test(&self, args: &[String]) -> Result<()> {
        let pii_set = self.pii_set()?;
        let mut cmd = cargo();
        cmd.current_dir(&self.root)
            .args(["test", "--release", "--workspace"])
            .args(args)
            .env("SLUICE_PII_SET", &pii_set);
        self.env(&mut cmd);
        let pg = postgres::Postgres::start("pg-test")?;
        pg.env(&mut cmd);
        run(&mut cmd)
    }

    /// The PII detectors' labelled set, made by Faker (tests/pii/labelled.py): 200 values per
    /// entity and locale in ten locales, and look-alikes. `SLUICE_PII_SEED` picks another set.
    fn pii_set(&self) -> Result<PathBuf> {
        let venv = self.venv()?;
        let out = self.target.join("pii-set.jsonl");
        let seed = std::env::var("SLUICE_PII_SEED").unwrap_or_else(|_| "2026".into());
        run(Command::new(venv.join("bin/python"))
            .arg(self.root.join("tests/pii/labelled.py"))
            .arg(&out)
            .args(["200", &seed]))?;
        Ok(out)
    }

    fn bench(&self, args: &[String]) -> Result<()> {
        let mut cmd = cargo();
        cmd.current_dir(&self.root)
            .args(["bench", "-p", "sluice-tests"])
            .args(args);
        self.env(&mut cmd);
        let pg = postgres::Postgres::start("pg-bench")?;
        pg.env(&mut cmd);
        run(&mut cmd)
    }
}

/// libFuzzer's instrumentation, as cargo-fuzz sets it, without a sanitizer (stable Rust).
const FUZZ_RUSTFLAGS: &str = "-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
    -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions \
    -Coverflow-checks";

impl Workspace {
    fn fuzz(&self, args: &[String]) -> Result<()> {
        let merge = args.iter().any(|a| a == "--merge");
        let secs: u64 = match args.iter().find(|a| !a.starts_with("--")) {
            Some(s) => s
                .parse()
                .context("usage: cargo xtask fuzz [SECONDS] [--merge]")?,
            None => 120,
        };
        let dir = self.root.join("host/sql-wall/fuzz");
        let host = std::env::var("FUZZ_TARGET_TRIPLE").unwrap_or_else(|_| {
            let out = Command::new("rustc").arg("-vV").output().ok();
            out.and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
            })
            .unwrap_or_else(|| "x86_64-unknown-linux-gnu".into())
        });
        let target = self.target.join("fuzz");
        // An explicit --target keeps the instrumentation out of build scripts and proc macros.
        run(cargo()
            .current_dir(&dir)
            .args([
                "build",
                "--release",
                "--locked",
                "--target",
                &host,
                "--bin",
                "policy",
            ])
            .env("CARGO_TARGET_DIR", &target)
            .env("RUSTFLAGS", FUZZ_RUSTFLAGS))?;
        let bin = target.join(&host).join("release").join("policy");
        let corpus = dir.join("corpus/policy");
        let new = dir.join("corpus/policy-new");
        let artifacts = dir.join("artifacts");
        std::fs::create_dir_all(&new)?;
        std::fs::create_dir_all(&artifacts)?;
        let mut cmd = Command::new(&bin);
        if merge {
            cmd.arg("-merge=1").arg(&corpus).arg(&new);
        } else {
            cmd.arg(&new)
                .arg(&corpus)
                .arg(format!("-max_total_time={secs}"))
                .arg("-max_len=2048")
                .arg("-timeout=10")
                .arg("-rss_limit_mb=2048")
                .arg(format!("-dict={}", dir.join("sql.dict").display()))
                .arg("-print_final_stats=1");
        }
        cmd.arg(format!("-artifact_prefix={}/", artifacts.display()));
        run(&mut cmd).context(
            "the fuzzer found an input that breaks the SQL policy's invariant: it is in \
             host/sql-wall/fuzz/artifacts/ (add it to the corpus once fixed)",
        )?;
        if merge {
            let _ = std::fs::remove_dir_all(&new);
        }
        Ok(())
    }
}

/// An empty directory at `dir` (emptied if it exists).
fn fresh_dir(dir: &Path) -> Result<PathBuf> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    Ok(dir.to_path_buf())
}

/// Copy via a temporary file, and only when the bytes differ, so a running test never sees a
/// half-written component and unchanged connectors keep their compiled cache entries warm.
fn copy_if_changed(from: &Path, to: &Path) -> Result<()> {
    let bytes = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
    if std::fs::read(to).ok().as_deref() == Some(&bytes[..]) {
        return Ok(());
    }
    let tmp = to.with_extension("wasm.tmp");
    std::fs::write(&tmp, &bytes)?;
    std::fs::rename(&tmp, to)?;
    Ok(())
}
