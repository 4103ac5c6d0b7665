//! Databases a connector reaches through the host (`sluice:connector/sql`), never by itself.
//!
//! A connector's manifest requests databases by name and access (`read` or `write`); the
//! connection's grant binds each name to a database — a PostgreSQL URL (its password from a
//! secret) or a SQLite file under the data dir — and, for writes, to the one schema (PostgreSQL)
//! or table prefix (SQLite) the connector may touch. Sources only ever read.
//!
//! Two walls stand between a connector's SQL and the database, and each holds alone:
//!
//! - [`policy`] (the `sluice-sql-wall` crate): which statements a grant allows — parsed, checked,
//!   rendered, and run only as the rendering proven to parse back to what was checked; run on a
//!   stack of its own by [`checker`];
//! - the database: SQLite's authorizer on every session (also in `sluice-sql-wall`), and for
//!   PostgreSQL a role no broader than the grant, inspected before a session is handed out
//!   ([`role`]);
//! - [`session`]: the sessions themselves (sqlx): read-only or scoped at the database too,
//!   deadlines, streamed rows, bulk loads.

pub mod checker;
pub mod pg_url;
pub mod role;
pub mod session;

/// The policy: parse, check, render (the `sluice-sql-wall` crate).
pub use sluice_sql_wall as policy;

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

pub use policy::{Dialect, Refusal, Scope};
pub use session::{Rows, Session, SqlError, Value, Walls};

use super::manifest::Manifest;
use super::secrets::{self, Secret};
use crate::protocol::ConnectorKind;

pub use super::request::{SqlAccess, SqlRequest};

/// A database as the connection file binds it (`grant.sql`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlGrant {
    /// The name the connector opens.
    pub name: String,
    /// A PostgreSQL URL (`postgres://user:{{secret:pg_password}}@host:5432/db?sslmode=require`);
    /// placeholders name secrets of the same grant.
    #[serde(default)]
    pub url: Option<String>,
    /// …or a SQLite file, relative to the warehouse folder (created on first use):
    /// `DATA_DIR/warehouse/` for connection files, the workspace's own for its connections.
    #[serde(default)]
    pub sqlite: Option<PathBuf>,
    /// For a write grant on PostgreSQL: the one schema the connector may create and write in.
    #[serde(default)]
    pub schema: Option<String>,
    /// For a write grant on SQLite: the prefix every table it touches must carry.
    #[serde(default)]
    pub table_prefix: Option<String>,
    /// Narrow a `write` request to `read`.
    #[serde(default)]
    pub access: Option<SqlAccess>,
    /// How long one statement may run before the host cancels it (default: half the call
    /// timeout; must be shorter than it).
    #[serde(default)]
    pub statement_timeout_secs: Option<f64>,
    /// PostgreSQL: connect even though the role holds more than the grant (superuser, other
    /// schemas, …). Off by default: the host refuses such a role, because the database is the
    /// second wall only if the role is least-privilege. Shown when the session opens, and
    /// recorded.
    #[serde(default)]
    pub allow_broad_role: bool,
}

/// Where a granted database is.
#[derive(Clone)]
pub enum Target {
    /// A PostgreSQL URL, secrets substituted: never printed.
    Postgres(SecretString),
    /// A SQLite file.
    Sqlite(PathBuf),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Postgres(_) => f.write_str("Postgres([redacted url])"),
            Target::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
        }
    }
}

/// A granted database, checked against the manifest: what a sandbox may open.
#[derive(Debug, Clone)]
pub struct Database {
    /// The name the connector opens.
    pub name: String,
    /// Where it is.
    pub target: Target,
    /// Read, or write inside a schema / table prefix.
    pub scope: Scope,
    /// The longest one statement may run.
    pub statement_timeout: Duration,
    /// PostgreSQL: the grant accepts a role broader than itself (`allow_broad_role`).
    pub allow_broad_role: bool,
}

impl Database {
    /// The dialect of the target.
    pub fn dialect(&self) -> Dialect {
        match self.target {
            Target::Postgres(_) => Dialect::Postgres,
            Target::Sqlite(_) => Dialect::Sqlite,
        }
    }
}

/// A schema name or table prefix sluice accepts: lower-case letters, digits and `_`, so it
/// means the same quoted or not and needs no escaping anywhere.
fn valid_scope_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Names the databases keep for themselves: a scope there would reach their catalogs.
fn reserved_scope(s: &str) -> bool {
    s.starts_with("pg_") || s.starts_with("sqlite") || s == "information_schema"
}

/// The secrets a grant's database URLs refer to: they count as bound (to the database).
pub fn url_secrets(grants: &[SqlGrant]) -> Vec<String> {
    grants
        .iter()
        .filter_map(|g| g.url.as_deref())
        .flat_map(|u| secrets::placeholders(u).into_iter().map(str::to_string))
        .collect()
}

impl SqlGrant {
    /// Check this grant (`field` names it in messages) against what `manifest` requests; a
    /// source's sessions are read-only whatever it asks. `loaded` are the grant's secrets.
    pub fn check(
        &self,
        field: &str,
        manifest: &Manifest,
        loaded: &[Secret],
        warehouse: &Path,
        call_timeout: Duration,
    ) -> Result<Database, (String, String)> {
        let connector = manifest.name.as_str();
        let requests = manifest.capabilities.sql.as_slice();
        let read_only = manifest.kind == ConnectorKind::Source;
        let fail = |f: &str, why: String| Err((format!("{field}{f}"), why));
        let Some(req) = requests.iter().find(|r| r.name == self.name) else {
            let asked: Vec<_> = requests.iter().map(|r| r.name.as_str()).collect();
            return fail(
                "",
                format!(
                    "`{connector}` does not ask for a database named `{}` (it asks for {})",
                    self.name,
                    if asked.is_empty() {
                        "none".to_string()
                    } else {
                        asked.join(", ")
                    }
                ),
            );
        };
        let write = match (req.access, self.access) {
            _ if read_only => false,
            (SqlAccess::Write, None | Some(SqlAccess::Write)) => true,
            (SqlAccess::Read, Some(SqlAccess::Write)) => {
                return fail(
                    ".access",
                    format!(
                        "`{connector}` asks to read `{}` only; write cannot be granted",
                        self.name
                    ),
                );
            }
            _ => false,
        };
        let target = match (&self.url, &self.sqlite) {
            (Some(url), None) => {
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    return fail(
                        ".url",
                        "must be a PostgreSQL URL (`postgres://…`); SQLite files are granted \
                         with `sqlite = \"NAME.db\"`"
                            .into(),
                    );
                }
                if let Err(why) = pg_url::parse(url) {
                    return fail(".url", why.to_string());
                }
                let value = secrets::substitute(url, |name| {
                    match loaded.iter().find(|s| s.name == name) {
                        Some(s) => Ok(percent_encoding::utf8_percent_encode(
                            s.expose(),
                            percent_encoding::NON_ALPHANUMERIC,
                        )
                        .to_string()),
                        None => Err(name.to_string()),
                    }
                })
                .map_err(|name| {
                    (
                        format!("{field}.url"),
                        format!(
                            "refers to secret `{name}`, which this grant's `secrets` does not bind"
                        ),
                    )
                })?;
                Target::Postgres(SecretString::from(value))
            }
            (None, Some(file)) => {
                let ok = file.is_relative()
                    && file
                        .components()
                        .all(|c| matches!(c, std::path::Component::Normal(_)));
                if !ok {
                    return fail(
                        ".sqlite",
                        format!(
                            "`{}` must be a relative path inside the warehouse folder (no \
                             `..`, not absolute)",
                            file.display()
                        ),
                    );
                }
                Target::Sqlite(warehouse.join(file))
            }
            _ => {
                return fail(
                    "",
                    "needs exactly one of `url` (PostgreSQL) or `sqlite` (a file under the data \
                     dir)"
                        .into(),
                );
            }
        };
        let scope = if write {
            let (key, value, other) = match target {
                Target::Postgres(_) => ("schema", &self.schema, &self.table_prefix),
                Target::Sqlite(_) => ("table_prefix", &self.table_prefix, &self.schema),
            };
            if other.is_some() {
                return fail(
                    "",
                    format!("a write grant on this database is scoped by `{key}` only"),
                );
            }
            match value {
                Some(v) if valid_scope_name(v) && !reserved_scope(v) => Scope::Write(v.clone()),
                Some(v) => {
                    return fail(
                        &format!(".{key}"),
                        format!(
                            "`{v}` must be lower-case letters, digits and `_`, and not a name the \
                             database reserves (`pg_…`, `information_schema`, `sqlite…`)"
                        ),
                    );
                }
                None => {
                    return fail(
                        "",
                        format!(
                            "`{connector}` writes to `{}`: say where with `{key}` (the only \
                             place it may create and write tables)",
                            self.name
                        ),
                    );
                }
            }
        } else {
            if self.schema.is_some() || self.table_prefix.is_some() {
                return fail(
                    "",
                    "`schema`/`table_prefix` scope writes; this grant is read-only".into(),
                );
            }
            Scope::Read
        };
        let statement_timeout = match self.statement_timeout_secs {
            None => call_timeout / 2,
            Some(v) if crate::boundary::limits::seconds(v).is_some_and(|d| d < call_timeout) => {
                Duration::from_secs_f64(v)
            }
            Some(_) => {
                return fail(
                    ".statement_timeout_secs",
                    format!(
                        "must be positive and shorter than `limits.call_timeout_secs` ({}s): \
                         the connector waits for the statement inside one call",
                        call_timeout.as_secs_f64()
                    ),
                );
            }
        };
        if self.allow_broad_role && !matches!(target, Target::Postgres(_)) {
            return fail(
                ".allow_broad_role",
                "only means something for PostgreSQL (a SQLite session is held to the grant by \
                 its authorizer)"
                    .into(),
            );
        }
        Ok(Database {
            name: self.name.clone(),
            target,
            scope,
            statement_timeout,
            allow_broad_role: self.allow_broad_role,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(text: &str) -> SqlGrant {
        toml::from_str(text).unwrap()
    }

    fn req(name: &str, access: SqlAccess) -> Vec<SqlRequest> {
        vec![SqlRequest {
            name: name.into(),
            access,
        }]
    }

    fn check(
        g: &SqlGrant,
        r: &[SqlRequest],
        read_only: bool,
    ) -> Result<Database, (String, String)> {
        let secret = Secret::new("pw", "p@ss/word", vec![], false);
        let kind = if read_only { "source" } else { "destination" };
        let mut m =
            Manifest::parse(&format!("name = \"c\"\nversion = \"1\"\nkind = \"{kind}\"")).unwrap();
        m.capabilities.sql = r.to_vec();
        g.check(
            "destination.grant.sql[0]",
            &m,
            &[secret],
            Path::new("/data/warehouse"),
            Duration::from_secs(60),
        )
    }

    #[test]
    fn write_grants_need_a_scope_and_sources_only_read() {
        let w = req("wh", SqlAccess::Write);
        let g = grant(
            "name = \"wh\"\nurl = \"postgres://u:{{secret:pw}}@127.0.0.1/db\"\nschema = \"raw\"",
        );
        let db = check(&g, &w, false).unwrap();
        assert_eq!(db.scope, Scope::Write("raw".into()));
        assert_eq!(db.statement_timeout, Duration::from_secs(30));
        let Target::Postgres(url) = &db.target else {
            panic!()
        };
        use secrecy::ExposeSecret;
        assert_eq!(
            url.expose_secret(),
            "postgres://u:p%40ss%2Fword@127.0.0.1/db"
        );
        assert!(!format!("{db:?}").contains("ss"), "the URL never prints");

        let e = check(
            &grant("name = \"wh\"\nurl = \"postgres://u:{{secret:pw}}@x/db\""),
            &w,
            false,
        )
        .unwrap_err();
        assert!(e.1.contains("`schema`"), "{e:?}");
        let e = check(
            &grant(
                "name = \"wh\"\nurl = \"postgres://u:{{secret:pw}}@x/db\"\nschema = \"Raw; drop\"",
            ),
            &w,
            false,
        )
        .unwrap_err();
        assert_eq!(e.0, "destination.grant.sql[0].schema");
        // A source: read-only whatever it asks, and a scope makes no sense.
        let db = check(
            &grant("name = \"wh\"\nurl = \"postgres://u:{{secret:pw}}@x/db\""),
            &w,
            true,
        )
        .unwrap();
        assert_eq!(db.scope, Scope::Read);
        let e = check(
            &grant("name = \"wh\"\nurl = \"postgres://u:{{secret:pw}}@x/db\"\naccess = \"write\""),
            &req("wh", SqlAccess::Read),
            false,
        )
        .unwrap_err();
        assert!(e.1.contains("read `wh` only"), "{e:?}");
    }

    #[test]
    fn sqlite_files_live_under_the_data_dir() {
        let w = req("wh", SqlAccess::Write);
        let db = check(
            &grant("name = \"wh\"\nsqlite = \"main.db\"\ntable_prefix = \"raw_\""),
            &w,
            false,
        )
        .unwrap();
        assert!(
            matches!(&db.target, Target::Sqlite(p) if p == Path::new("/data/warehouse/main.db"))
        );
        for bad in ["../x.db", "/etc/x.db"] {
            let e = check(
                &grant(&format!(
                    "name = \"wh\"\nsqlite = \"{bad}\"\ntable_prefix = \"raw_\""
                )),
                &w,
                false,
            )
            .unwrap_err();
            assert_eq!(e.0, "destination.grant.sql[0].sqlite");
        }
        let e = check(&grant("name = \"other\"\nsqlite = \"x.db\""), &w, false).unwrap_err();
        assert!(e.1.contains("asks for wh"), "{e:?}");
        let e = check(
            &grant("name = \"wh\"\nurl = \"postgres://u:{{secret:nope}}@h/db\"\nschema = \"raw\""),
            &w,
            false,
        )
        .unwrap_err();
        assert!(e.1.contains("`nope`"), "{e:?}");
        let e = check(&grant("name = \"wh\"\nsqlite = \"x.db\"\ntable_prefix = \"raw_\"\nstatement_timeout_secs = 90"), &w, false).unwrap_err();
        assert_eq!(e.0, "destination.grant.sql[0].statement_timeout_secs");
    }
}
