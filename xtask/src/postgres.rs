//! A throwaway PostgreSQL server for the tests and benchmarks: Debian's `postgresql` package
//! (installed with apt-get when missing and allowed), a fresh cluster in the target dir, on a
//! free loopback port, with a password, stopped when the guard drops.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use std::process::Command;

use anyhow::{Context, Result, bail};

use super::run;

/// The user and password the test cluster is created with (loopback only, thrown away).
const USER: &str = "sluice";
const PASSWORD: &str = "sluice-test-password";

/// A running server; stopped on drop.
pub struct Postgres {
    dir: PathBuf,
    bin: PathBuf,
    data: PathBuf,
    as_postgres: bool,
    /// `postgres://sluice@127.0.0.1:PORT/postgres` (no password: it is in `password`).
    pub url: String,
    /// The password.
    pub password: &'static str,
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The newest installed server's `bin` directory.
fn find_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

/// The server's binaries, installing Debian's package when they are missing and we may.
fn ensure_installed() -> Result<PathBuf> {
    if let Some(bin) = find_bin() {
        return Ok(bin);
    }
    if is_root() && Path::new("/usr/bin/apt-get").exists() {
        eprintln!("xtask: PostgreSQL is not installed; installing Debian's package");
        run(Command::new("apt-get").arg("update").arg("-q"))?;
        run(Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                "postgresql",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
        if let Some(bin) = find_bin() {
            return Ok(bin);
        }
    }
    bail!(
        "the tests need a real PostgreSQL server and none is installed: run \
         `sudo apt-get install postgresql` (Debian/Ubuntu), then try again"
    )
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot find a free loopback port")?;
    Ok(l.local_addr()?.port())
}

impl Postgres {
    /// Start a fresh cluster in a new directory under the system's temp dir (the server's
    /// user must be able to reach it; a home directory often is closed to it), removed on drop.
    pub fn start(name: &str) -> Result<Postgres> {
        let dir = std::env::temp_dir().join(format!("sluice-{name}-{}", std::process::id()));
        let dir = dir.as_path();
        let bin = ensure_installed()?;
        // The server refuses to run as root: run it as Debian's `postgres` user then.
        let as_postgres = is_root();
        if dir.exists() {
            std::fs::remove_dir_all(dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        std::fs::create_dir_all(dir)?;
        let data = dir.join("data");
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, PASSWORD)?;
        if as_postgres {
            run(Command::new("chown")
                .arg("-R")
                .arg("postgres:postgres")
                .arg(dir))?;
        }
        let port = free_port()?;
        let pg = Postgres {
            dir: dir.to_path_buf(),
            bin,
            data,
            as_postgres,
            url: format!("postgres://{USER}@127.0.0.1:{port}/postgres"),
            password: PASSWORD,
        };
        run(pg
            .command("initdb")
            .arg("-D")
            .arg(&pg.data)
            .args([
                "-U",
                USER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["-E", "UTF8", "--no-sync"])
            .stdout(std::process::Stdio::null()))?;
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={} \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c max_connections=300",
            dir.display()
        );
        run(pg
            .command("pg_ctl")
            .arg("-D")
            .arg(&pg.data)
            .args(["-o", &opts, "-w", "-l"])
            .arg(dir.join("server.log"))
            .arg("start")
            .stdout(std::process::Stdio::null()))?;
        eprintln!("xtask: PostgreSQL {} on 127.0.0.1:{port}", pg.bin.display());
        Ok(pg)
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    /// The environment the tests read it from.
    pub fn env(&self, cmd: &mut Command) {
        cmd.env("SLUICE_TEST_PG_URL", &self.url)
            .env("SLUICE_TEST_PG_PASSWORD", self.password)
            .env("SLUICE_TEST_PG_BIN", &self.bin);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .stdout(std::process::Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
