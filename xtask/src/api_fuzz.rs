//! The Python side of the tasks (a pinned venv), and `cargo xtask api-fuzz [SECONDS]`: schemathesis (PyPI, pinned, in a venv under the target
//! dir) against a `sluice serve` started on loopback with an owner key and a seeded workspace
//! (tests/schemathesis/seed.py), every check on, positive and negative data, the stateful phase
//! following the document's links. Bounded by SECONDS (default 300). Any failure fails the task;
//! the report (JUnit) is left in `TARGET/xtask-api-fuzz/report/`.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{Workspace, fresh_dir, run, shown};

/// The PyPI tools the tasks use, pinned: schemathesis (the API fuzzer) and Faker (the PII
/// detectors' labelled set).
const PYPI: &[&str] = &["schemathesis==4.32.5", "Faker==40.63.0"];

/// `sluice serve`, stopped when dropped (also when the task fails half-way).
struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Workspace {
    pub(super) fn api_fuzz(&self, args: &[String]) -> Result<()> {
        let secs: u64 = match args.first() {
            Some(s) => s.parse().context("usage: cargo xtask api-fuzz [SECONDS]")?,
            None => 300,
        };
        let venv = self.venv()?;
        let dir = fresh_dir(&self.target.join("xtask-api-fuzz"))?;
        let data = dir.join("data");
        let sluice = || {
            let mut c = Command::new(self.sluice_bin());
            c.arg("--data-dir").arg(&data);
            c
        };
        let index = self.root.join("examples/index");
        quiet(
            sluice()
                .args(["trust", "add"])
                .arg(index.join("sluice.pub")),
        )?;
        let owner = token(sluice().args(["admin", "create-key", "--role", "owner"]))?;
        let member = token(sluice().args(["admin", "create-key", "--role", "member"]))?;
        let member_id = member
            .split('_')
            .nth(1)
            .context("a key's token is sluice_<id>_<secret>")?
            .to_string();

        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("serve.log"))?;
        let _serve = Serve(
            sluice()
                .args(["serve", "--listen", &addr, "--rate-limit", "100000"])
                .arg("--index")
                .arg(&index)
                // The seeded webhook's deliveries go nowhere (nothing listens on port 9).
                .args(["--webhook-allow", "http://127.0.0.1:9"])
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("cannot start `sluice serve`")?,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&addr).is_err() {
            if Instant::now() > deadline {
                bail!(
                    "`sluice serve` did not listen on {addr}: see {}",
                    dir.join("serve.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let base = format!("http://{addr}");

        let seeded = Command::new(venv.join("bin/python"))
            .arg(self.root.join("tests/schemathesis/seed.py"))
            .args([&base, &member_id])
            .env("SLUICE_TOKEN", &owner)
            .output()?;
        if !seeded.status.success() {
            bail!(
                "seeding failed: {}",
                String::from_utf8_lossy(&seeded.stderr)
            );
        }
        let seeded: serde_json::Value = serde_json::from_slice(&seeded.stdout)
            .context("seed.py prints what it made as JSON")?;
        let dict = |name: &str, value: &serde_json::Value| {
            let text = match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            std::fs::write(dir.join(name), format!("\"{text}\"\n"))
        };
        dict("webhooks.dict", &seeded["webhook"])?;
        dict("keys.dict", &seeded["member"])?;
        let config = dir.join("schemathesis.toml");
        std::fs::copy(
            self.root.join("tests/schemathesis/schemathesis.toml"),
            &config,
        )?;

        eprintln!("xtask: schemathesis against {base} for at most {secs} s");
        run(Command::new(venv.join("bin/schemathesis"))
            .arg("--config-file")
            .arg(&config)
            .arg("run")
            .arg(format!("{base}/openapi.json"))
            .args(["--checks", "all"])
            .args(["--max-time", &secs.to_string()])
            .args(["--report", "junit", "--report-dir"])
            .arg(dir.join("report"))
            .args(["--no-color", "--seed", "1"])
            .env("SLUICE_TOKEN", &owner)
            .env("HYPOTHESIS_STORAGE_DIRECTORY", dir.join("hypothesis"))
            .current_dir(&dir))
        .context(
            "schemathesis found answers that do not match /openapi.json (above; the report is \
             in the target dir's xtask-api-fuzz/report/)",
        )
    }

    /// A venv with [`PYPI`], kept under the target dir so later runs reuse it.
    pub(super) fn venv(&self) -> Result<PathBuf> {
        let venv = self.target.join("xtask-venv");
        let pinned = venv.join("pinned.txt");
        let wanted = PYPI.join("\n");
        if std::fs::read_to_string(&pinned).ok() == Some(wanted.clone()) {
            return Ok(venv);
        }
        let _ = std::fs::remove_dir_all(&venv);
        let has_venv = || {
            Command::new("python3")
                .args(["-c", "import venv, ensurepip"])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !has_venv() && super::postgres::is_root() && Path::new("/usr/bin/apt-get").exists() {
            eprintln!("xtask: python3's venv module is missing; installing Debian's python3-venv");
            run(Command::new("apt-get").args(["update", "-q"]))?;
            run(Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "-q",
                    "--no-install-recommends",
                    "python3-venv",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive"))?;
        }
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv)).context(
            "python3 with its venv module is needed: `sudo apt-get install python3-venv` \
             (Debian/Ubuntu), then try again",
        )?;
        run(Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(PYPI))?;
        std::fs::write(&pinned, wanted)?;
        Ok(venv)
    }
}

/// Run `cmd`, failing with its stderr.
fn quiet(cmd: &mut Command) -> Result<()> {
    output(cmd).map(drop)
}

/// What `cmd` printed on stdout; its stderr in the error when it fails.
fn output(cmd: &mut Command) -> Result<Vec<u8>> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {}", shown(cmd)))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            shown(cmd),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out.stdout)
}

/// The token `sluice admin create-key` printed.
fn token(cmd: &mut Command) -> Result<String> {
    String::from_utf8_lossy(&output(cmd)?)
        .split_whitespace()
        .find(|w| w.starts_with("sluice_"))
        .map(str::to_string)
        .context("`sluice admin create-key` printed no token")
}
