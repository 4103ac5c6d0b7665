//! A source that tries to reach past its grant, one attack chosen by its config. When an attack
//! succeeds, it emits what it got as a `loot` record, so a test sees an escape in the output;
//! when the host refuses, it ends its read with the error it was given.

use std::collections::BTreeMap;

use serde::Deserialize;
use sluice_sdk::{
    Catalog, ConfiguredCatalog, Emitter, Error, Reader, Result, Source, Spec, State, Stream, Value,
    http, json,
};

/// What to try.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "kebab-case")]
pub enum Attack {
    /// Read `path` with std (libc resolves it against the preopened directories).
    ReadFile,
    /// Open `path` relative to the first preopened directory with the raw WASI call, skipping
    /// libc's path handling (absolute paths, `..`).
    RawOpen,
    /// Write a file at `path`.
    WriteFile,
    /// Report the environment variables and arguments it sees.
    Env,
    /// GET `url` with `headers` (redirects followed, each checked by the host again).
    Http,
    /// Send a request whose URL has a scheme but no host, with the raw WASI calls.
    NoAuthority,
    /// Hold `count` WASI resources (header fields) at once.
    ResourceFlood,
    /// Send `count` requests to `url` at once, reading none of the answers until all are sent.
    HttpFlood,
    /// Open `count` sessions on the granted database `db` and keep them all.
    SqlSessions,
    /// Run each of `statements` on the granted database `db`: one `loot` record per statement
    /// saying what happened (`ok` with the rows, `refused`, `timeout`, `error`).
    Sql,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub attack: Attack,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// For `http`: `TRACE` or `CONNECT`, sent with the raw WASI calls (the SDK has neither).
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub statements: Vec<String>,
    #[serde(default)]
    pub count: usize,
    /// A credential the connector holds in its config (marked secret in its spec).
    #[serde(default)]
    pub token: String,
}

pub struct Hostile;

impl Source for Hostile {
    type Config = Config;
    type Reader = Loot;

    fn spec() -> Spec {
        Spec::new(json!({"type": "object", "required": ["attack"],
            "properties": {"token": {"type": "string", "secret": true}}}))
    }

    fn check(_: &Config) -> Result<()> {
        Ok(())
    }

    fn discover(_: &Config) -> Result<Catalog> {
        Ok(Catalog {
            streams: vec![Stream::new("loot", json!({"type": "object"}))],
        })
    }

    fn read(config: Config, _: ConfiguredCatalog, _: State) -> Result<Loot> {
        if config.attack == Attack::Sql {
            return Ok(Loot(sql_attacks(&config.statements)?));
        }
        let loot = attack(&config)?;
        Ok(Loot(vec![loot]))
    }
}

/// Each statement's outcome. A statement that starts like a query is read to the end.
fn sql_attacks(statements: &[String]) -> Result<Vec<Value>> {
    use sluice_sdk::sql::{Connection, SqlError};
    let db = Connection::open("db")?;
    let mut out = Vec::new();
    for stmt in statements {
        let lower = stmt.trim_start().to_ascii_lowercase();
        let result = if lower.starts_with("select") || lower.starts_with("with") {
            db.query(stmt, &[]).and_then(|mut rows| {
                let mut n = 0;
                while let Some(b) = rows.next(1000)? {
                    n += b.iter().filter(|c| **c == b'\n').count();
                }
                Ok(n as u64)
            })
        } else {
            db.execute(stmt, &[])
        };
        let (outcome, message) = match result {
            Ok(n) => ("ok", format!("{n} rows")),
            Err(SqlError::Refused(m)) => ("refused", m),
            Err(SqlError::Timeout(m)) => ("timeout", m),
            Err(e) => ("error", e.to_string()),
        };
        out.push(json!({"sql": stmt, "outcome": outcome, "message": message}));
    }
    Ok(out)
}

fn attack(c: &Config) -> Result<Value> {
    match c.attack {
        Attack::Sql => Err(Error::fatal("the sql attack runs in `read`")),
        Attack::ReadFile => match std::fs::read_to_string(&c.path) {
            Ok(text) => Ok(json!({"read": c.path, "content": text})),
            Err(e) => Err(Error::fatal(format!("read {}: {e}", c.path))),
        },
        Attack::RawOpen => {
            raw::open(&c.path).map(|text| json!({"raw-open": c.path, "content": text}))
        }
        Attack::WriteFile => match std::fs::write(&c.path, "pwned") {
            Ok(()) => Ok(json!({"wrote": c.path})),
            Err(e) => Err(Error::fatal(format!("write {}: {e}", c.path))),
        },
        Attack::Env => Ok(json!({
            "env": std::env::vars().collect::<Vec<_>>(),
            "args": std::env::args().collect::<Vec<_>>(),
            "cwd": std::env::current_dir().ok().map(|d| d.display().to_string()),
        })),
        Attack::Http if c.method.is_some() => {
            let method = c.method.as_deref().unwrap_or_default();
            raw::request(method, &c.url, &c.headers).map(|status| json!({"status": status}))
        }
        Attack::Http => {
            let mut req = http::get(&c.url);
            for (k, v) in &c.headers {
                req = req.header(k, v);
            }
            let resp = req.send()?;
            Ok(json!({
                "status": resp.status,
                "body": String::from_utf8_lossy(&resp.body),
            }))
        }
        Attack::NoAuthority => raw::no_authority().map(|status| json!({"status": status})),
        Attack::ResourceFlood => raw::resource_flood(c.count).map(|n| json!({"held": n})),
        Attack::HttpFlood => raw::http_flood(&c.url, c.count),
        Attack::SqlSessions => {
            let mut held = Vec::new();
            let mut refused = Vec::new();
            for _ in 0..c.count {
                match sluice_sdk::sql::Connection::open("db") {
                    Ok(conn) => held.push(conn),
                    Err(e) => refused.push(e.to_string()),
                }
            }
            Ok(json!({"open": held.len(), "refused": refused}))
        }
    }
}

pub struct Loot(Vec<Value>);

impl Reader for Loot {
    fn read(&mut self, out: &mut Emitter) -> Result<bool> {
        for v in self.0.drain(..) {
            out.record("loot", &v)?;
        }
        Ok(false)
    }
}

#[cfg(target_arch = "wasm32")]
mod raw {
    use sluice_sdk::{Error, Result};
    use wasip2::filesystem::preopens::get_directories;
    use wasip2::filesystem::types::{DescriptorFlags, OpenFlags, PathFlags};
    use wasip2::http::outgoing_handler;
    use wasip2::http::types::{Fields, Method, OutgoingRequest, Scheme};

    pub fn open(path: &str) -> Result<String> {
        let dirs = get_directories();
        let (dir, _) = dirs
            .first()
            .ok_or_else(|| Error::fatal("no preopened directory to start from"))?;
        let fd = dir
            .open_at(
                PathFlags::SYMLINK_FOLLOW,
                path,
                OpenFlags::empty(),
                DescriptorFlags::READ,
            )
            .map_err(|e| Error::fatal(format!("open-at {path}: {e:?}")))?;
        let (bytes, _) = fd
            .read(1 << 20, 0)
            .map_err(|e| Error::fatal(format!("read {path}: {e:?}")))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    pub fn request(
        method: &str,
        url: &str,
        headers: &std::collections::BTreeMap<String, String>,
    ) -> Result<u16> {
        let (scheme, authority, path) = sluice_sdk::http::split_url(url)?;
        let fields = Fields::new();
        for (k, v) in headers {
            fields
                .append(k, v.as_bytes())
                .map_err(|e| Error::fatal(format!("header {k}: {e:?}")))?;
        }
        let req = aimed(OutgoingRequest::new(fields), scheme, authority, path);
        let m = match method {
            "TRACE" => Method::Trace,
            "CONNECT" => Method::Connect,
            other => Method::Other(other.to_string()),
        };
        let _ = req.set_method(&m);
        send(req)
    }

    /// `req` with its URL's scheme, authority and path set.
    fn aimed(req: OutgoingRequest, scheme: &str, authority: &str, path: &str) -> OutgoingRequest {
        let _ = req.set_scheme(Some(&if scheme == "https" {
            Scheme::Https
        } else {
            Scheme::Http
        }));
        let _ = req.set_authority(Some(authority));
        let _ = req.set_path_with_query(Some(path));
        req
    }

    pub fn resource_flood(count: usize) -> Result<usize> {
        let mut held = Vec::with_capacity(count);
        for _ in 0..count {
            held.push(Fields::new());
        }
        Ok(held.len())
    }

    pub fn http_flood(url: &str, count: usize) -> Result<serde_json::Value> {
        let (scheme, authority, path) = sluice_sdk::http::split_url(url)?;
        let mut pending = Vec::new();
        for _ in 0..count {
            let req = aimed(OutgoingRequest::new(Fields::new()), scheme, authority, path);
            pending.push(outgoing_handler::handle(req, None));
        }
        let (mut ok, mut refused) = (Vec::new(), Vec::new());
        for p in pending {
            match p {
                Err(e) => refused.push(format!("{e:?}")),
                Ok(f) => {
                    f.subscribe().block();
                    match f.get() {
                        // Keep the response: its body is what holds the request open.
                        Some(Ok(Ok(resp))) => ok.push(resp),
                        Some(Ok(Err(e))) => refused.push(format!("{e:?}")),
                        _ => refused.push("no response".into()),
                    }
                }
            }
        }
        Ok(serde_json::json!({"ok": ok.len(), "refused": refused}))
    }

    pub fn no_authority() -> Result<u16> {
        let req = OutgoingRequest::new(Fields::new());
        let _ = req.set_scheme(Some(&Scheme::Http));
        let _ = req.set_path_with_query(Some("/latest/meta-data/"));
        send(req)
    }

    fn send(req: OutgoingRequest) -> Result<u16> {
        let pending = outgoing_handler::handle(req, None)
            .map_err(|e| Error::fatal(format!("refused: {e:?}")))?;
        pending.subscribe().block();
        match pending.get() {
            Some(Ok(Ok(resp))) => Ok(resp.status()),
            Some(Ok(Err(e))) => Err(Error::fatal(format!("refused: {e:?}"))),
            _ => Err(Error::fatal("no response")),
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod raw {
    use sluice_sdk::{Error, Result};

    pub fn open(_: &str) -> Result<String> {
        Err(Error::fatal("only inside the sandbox"))
    }

    pub fn no_authority() -> Result<u16> {
        Err(Error::fatal("only inside the sandbox"))
    }

    pub fn request(
        _: &str,
        _: &str,
        _: &std::collections::BTreeMap<String, String>,
    ) -> Result<u16> {
        Err(Error::fatal("only inside the sandbox"))
    }

    pub fn resource_flood(_: usize) -> Result<usize> {
        Err(Error::fatal("only inside the sandbox"))
    }

    pub fn http_flood(_: &str, _: usize) -> Result<serde_json::Value> {
        Err(Error::fatal("only inside the sandbox"))
    }
}

sluice_sdk::export_source!(Hostile);
