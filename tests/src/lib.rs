//! Helpers for sluice's end-to-end tests and benchmarks: where the built connectors and binary
//! are, connection files in temporary directories, and native (in-process) runners of the same
//! connectors through the same sync engine.

pub mod bench;
pub mod native;
pub mod pg;
pub mod serve;
pub mod server;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use sluice::capability::net::resolve::{Resolve, Resolving};

use sluice::connection::Connection;
use sluice::runtime::{Runtime, RuntimeConfig};
use sluice::store::Store;
use sluice::sync::{self, RunOptions, RunReport};

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_path_buf()
}

/// `dist/`, where `cargo xtask build` puts the connectors.
pub fn dist() -> PathBuf {
    std::env::var_os("SLUICE_DIST")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("dist"))
}

fn must_exist(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run the tests with `cargo xtask test` (it builds the connectors and \
         the binary first), or run `cargo xtask build` once",
        path.display()
    );
    path
}

/// A first-party connector, e.g. `connector("source-faker")`.
pub fn connector(name: &str) -> PathBuf {
    must_exist(dist().join("connectors").join(format!("{name}.wasm")))
}

/// A test connector, e.g. `test_connector("chaos-source")`.
pub fn test_connector(name: &str) -> PathBuf {
    must_exist(dist().join("test-connectors").join(format!("{name}.wasm")))
}

/// The `sluice` binary built by `cargo xtask build`.
pub fn sluice_bin() -> PathBuf {
    let path = std::env::var_os("SLUICE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root().join("target"));
            target.join("release").join("sluice")
        });
    must_exist(path)
}

/// The key the test processes' shared compiled cache is authenticated with (a data dir's
/// keyring gives the real one).
fn test_cache_key() -> zeroize::Zeroizing<[u8; 32]> {
    zeroize::Zeroizing::new(*b"sluice test compiled cache key!!")
}

/// One runtime per test process, with a compiled cache shared by all test processes.
pub fn runtime() -> Arc<Runtime> {
    static RT: OnceLock<Arc<Runtime>> = OnceLock::new();
    RT.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            cache_dir: Some(dist().join(".test-cache")),
            cache_key: Some(test_cache_key()),
            ..RuntimeConfig::default()
        })
        .expect("runtime")
    })
    .clone()
}

/// A resolver answering from a script: each name has a list of answers, given out in turn (the
/// last one repeats). Counts lookups, so tests can prove the host resolved once.
#[derive(Debug, Default)]
pub struct ScriptedResolver {
    answers: Mutex<HashMap<String, Vec<Vec<IpAddr>>>>,
    calls: Mutex<HashMap<String, usize>>,
}

impl ScriptedResolver {
    /// An empty script: every name fails to resolve.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// `name` resolves to `answers[0]` the first time, `answers[1]` the next…
    pub fn script(&self, name: &str, answers: &[&[&str]]) {
        let answers = answers
            .iter()
            .map(|a| a.iter().map(|ip| ip.parse().expect("an IP")).collect())
            .collect();
        self.answers
            .lock()
            .unwrap()
            .insert(name.to_string(), answers);
    }

    /// How many times `name` was looked up.
    pub fn calls(&self, name: &str) -> usize {
        self.calls.lock().unwrap().get(name).copied().unwrap_or(0)
    }
}

impl Resolve for ScriptedResolver {
    fn resolve<'a>(&'a self, host: &'a str, _port: u16) -> Resolving<'a> {
        Box::pin(async move {
            let n = {
                let mut calls = self.calls.lock().unwrap();
                let c = calls.entry(host.to_string()).or_default();
                *c += 1;
                *c
            };
            let answers = self.answers.lock().unwrap();
            match answers.get(host) {
                Some(list) if !list.is_empty() => Ok(list[(n - 1).min(list.len() - 1)].clone()),
                _ => Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{host}: no such name in the test's script"),
                )),
            }
        })
    }
}

/// A runtime whose outbound requests resolve names with `resolver`.
pub fn runtime_with(resolver: Arc<dyn Resolve>) -> Arc<Runtime> {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(dist().join(".test-cache")),
        cache_key: Some(test_cache_key()),
        resolver,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

/// A scratch directory holding connection files, granted directories and a data dir.
pub struct Scratch {
    /// The temporary directory (deleted on drop).
    pub dir: tempfile::TempDir,
}

impl Scratch {
    /// A new, empty scratch directory.
    pub fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// A path inside it.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The data dir (store and cache) used by this scratch's runs.
    pub fn data_dir(&self) -> PathBuf {
        self.path("data")
    }

    /// Write `text` to `rel` and return its path.
    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, text).expect("write");
        path
    }

    /// Open this scratch's store.
    pub async fn store(&self) -> Store {
        Store::open(&self.data_dir()).await.expect("store")
    }

    /// Run the connection file `rel` in-process.
    pub async fn run(&self, rel: &str) -> RunReport {
        self.run_with(&runtime(), rel).await
    }

    /// Run the connection file `rel` in-process on `rt`.
    pub async fn run_with(&self, rt: &Runtime, rel: &str) -> RunReport {
        let conn = Connection::load(&self.path(rel)).expect("connection file");
        let store = self.store().await;
        sync::run(rt, &store, &conn, RunOptions::default())
            .await
            .expect("the run starts")
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

/// TOML for a path (quoted, escaped).
pub fn toml_path(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// A connection `name` from the source described by `source` (the body of its `[source]` table:
/// `connector = …`, config, grants) into destination-file writing JSON lines to `out/`, with
/// `extra` TOML appended (stream selections, limits).
pub fn source_to_file(name: &str, source: &str, extra: &str) -> String {
    connection_to_file(name, source, "jsonl", extra)
}

/// A connection from source-faker (config `faker`, a TOML inline table) into destination-file
/// writing `out/` as `format`, with extra TOML appended (streams, limits).
pub fn faker_to_file(faker: &str, format: &str, extra: &str) -> String {
    let source = format!(
        "connector = {}\nconfig = {faker}",
        toml_path(&connector("source-faker"))
    );
    connection_to_file("faker-to-file", &source, format, extra)
}

fn connection_to_file(name: &str, source: &str, format: &str, extra: &str) -> String {
    format!(
        r#"
name = "{name}"
[source]
{source}
[destination]
connector = {dest}
config = {{ path = "/output", format = "{format}" }}
[[destination.grant.dirs]]
host = "out"
guest = "/output"
{extra}
"#,
        dest = toml_path(&connector("destination-file")),
    )
}

/// The records of a JSONL file as JSON values.
pub fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

/// A CA, and a server certificate for 127.0.0.1 it signed: (CA PEM, chain PEM, key PEM).
pub fn private_ca() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

/// Run the `sluice` binary in the scratch directory with its data dir: exit code, stdout, stderr.
pub fn sluice_cli(s: &Scratch, args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(sluice_bin())
        .current_dir(s.path("."))
        .arg("--data-dir")
        .arg(s.data_dir())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
