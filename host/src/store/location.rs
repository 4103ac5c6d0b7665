//! Where a store keeps its tables, as an operator names it (`--store`, `SLUICE_STORE`): the
//! embedded SQLite file in the data dir, or a PostgreSQL database a fleet shares.
//!
//! Two rules hold at this edge, before anything connects. A password never rides in a
//! command line (every user of the machine can read one with `ps`): it comes from
//! `PGPASSWORD`, `~/.pgpass`, a password file, or a `SLUICE_STORE` set in the environment. And
//! a store off this machine is reached over verified TLS only (`sslmode=verify-full` or
//! `verify-ca`): PostgreSQL's default, `prefer`, falls back to plain text without a word.

use std::net::IpAddr;

use url::Url;

use super::without_password;

/// Where the store's tables live.
#[derive(Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// The SQLite file in the data dir (the default: nothing to install).
    Embedded,
    /// A PostgreSQL database, by its URL (which may hold a password: show it with
    /// [`StoreLocation::shown`] only).
    Postgres(String),
}

impl std::fmt::Debug for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

/// Why a `--store` was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreLocationError {
    /// Not a PostgreSQL URL.
    #[error(
        "--store {0} is not a PostgreSQL URL: give postgres://USER@HOST/DATABASE, or leave \
         --store out for the SQLite file in the data dir"
    )]
    NotPostgres(String),
    /// A query parameter the driver does not know (it would log its value).
    #[error(
        "--store has a parameter `{0}` PostgreSQL's driver does not know (it would be ignored, \
         and its value logged): use sslmode, sslrootcert, sslcert, sslkey, host, hostaddr, \
         port, dbname, user, application_name or options"
    )]
    UnknownParameter(String),
    /// A password given in the command line.
    #[error(
        "--store {0} carries a password in the command line, where every user of this machine \
         can read it: set PGPASSWORD, use ~/.pgpass or SLUICE_STORE_PASSWORD_FILE, or put the \
         URL in SLUICE_STORE"
    )]
    PasswordInArgs(String),
    /// A store on another machine without verified TLS.
    #[error(
        "the store at {host} is not on this machine and would be reached with sslmode={mode}: \
         add ?sslmode=verify-full to the URL (with &sslrootcert=CA.pem unless the system trusts \
         the server's CA) so the connection is encrypted and the server is who it says"
    )]
    Plaintext {
        /// The store's host.
        host: String,
        /// The TLS mode it would have used.
        mode: String,
    },
}

/// What of the environment shapes a PostgreSQL connection (the variables libpq and sqlx
/// read), passed in so the rules can be tested without touching the process's environment.
#[derive(Debug, Default, Clone)]
pub struct PgEnv {
    /// `PGHOSTADDR` or `PGHOST`.
    pub host: Option<String>,
    /// `PGSSLMODE`.
    pub sslmode: Option<String>,
}

impl PgEnv {
    /// The process's own.
    pub fn current() -> PgEnv {
        PgEnv {
            host: std::env::var("PGHOSTADDR")
                .or_else(|_| std::env::var("PGHOST"))
                .ok(),
            sslmode: std::env::var("PGSSLMODE").ok(),
        }
    }
}

impl StoreLocation {
    /// The location named by `store` (none: the embedded file). `from_args` says whether it
    /// came from the command line (where a password is refused); `password`, from a password
    /// file, fills in a URL that has none.
    pub fn parse(
        store: Option<&str>,
        from_args: bool,
        password: Option<&str>,
        env: &PgEnv,
    ) -> Result<StoreLocation, StoreLocationError> {
        let Some(text) = store.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(StoreLocation::Embedded);
        };
        // A value that does not parse as a URL is never repeated: it may be a libpq keyword
        // string (`host=… password=…`) or a URL whose password broke it.
        let mut url = Url::parse(text)
            .map_err(|_| StoreLocationError::NotPostgres("(the value given)".into()))?;
        let shown = without_password(text);
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(StoreLocationError::NotPostgres(shown));
        }
        // Only the parameters the driver knows: it logs any other with its value, and a
        // mistyped `pasword=` would print the password.
        if let Some((key, _)) = url
            .query_pairs()
            .find(|(k, _)| !KNOWN_PARAMETERS.contains(&&**k))
        {
            return Err(StoreLocationError::UnknownParameter(
                key.escape_debug().to_string(),
            ));
        }
        let query_password = url.query_pairs().any(|(k, _)| k == "password");
        if from_args && (url.password().is_some() || query_password) {
            return Err(StoreLocationError::PasswordInArgs(shown));
        }
        // Where it connects and how, as the driver reads them: the URL's host, then each
        // parameter in order, the last one winning (`?sslmode=verify-full&sslmode=disable` is
        // `disable`), then the environment for what the URL leaves out.
        let mut host = url.host_str().filter(|h| !h.is_empty()).map(percent_decode);
        let mut mode = None;
        for (key, value) in url.query_pairs() {
            match &*key {
                "host" | "hostaddr" => host = Some(value.into_owned()),
                "sslmode" | "ssl-mode" => mode = Some(value.to_ascii_lowercase()),
                _ => {}
            }
        }
        let host = host.or_else(|| env.host.clone());
        let mode = mode
            .or_else(|| env.sslmode.clone().map(|m| m.to_ascii_lowercase()))
            .unwrap_or_else(|| "prefer".into());
        if let Some(host) = host.filter(|h| !is_local(h))
            && !matches!(mode.as_str(), "verify-full" | "verify-ca")
        {
            return Err(StoreLocationError::Plaintext { host, mode });
        }
        // And as the driver itself reads the URL (with this process's environment): the same
        // answer, or refused.
        if let Ok(options) = text.parse::<sqlx::postgres::PgConnectOptions>()
            && options.get_socket().is_none()
            && !is_local(options.get_host())
            && !matches!(
                options.get_ssl_mode(),
                sqlx::postgres::PgSslMode::VerifyFull | sqlx::postgres::PgSslMode::VerifyCa
            )
        {
            return Err(StoreLocationError::Plaintext {
                host: options.get_host().to_string(),
                mode: format!("{:?}", options.get_ssl_mode()).to_ascii_lowercase(),
            });
        }
        if let Some(password) = password
            && url.password().is_none()
            && !query_password
        {
            // `set_password` fails only for URLs without a host, which PostgreSQL's are not
            // here (a host-less URL falls back to the environment's, and keeps its own).
            let _ = url.set_password(Some(password));
        }
        Ok(StoreLocation::Postgres(url.into()))
    }

    /// How the location may be shown: the URL without its password.
    pub fn shown(&self) -> String {
        match self {
            StoreLocation::Embedded => "the SQLite file in the data dir".into(),
            StoreLocation::Postgres(url) => without_password(url),
        }
    }
}

/// The query parameters sqlx's PostgreSQL driver reads (sqlx-postgres 0.9, options/parse.rs).
pub(super) const KNOWN_PARAMETERS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "ssl-ca",
    "sslcert",
    "ssl-cert",
    "sslkey",
    "ssl-key",
    "statement-cache-capacity",
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "application_name",
    "options",
];

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

/// A host on this machine: a Unix socket directory, `localhost`, or a loopback address.
fn is_local(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(
        store: &str,
        from_args: bool,
        env: &PgEnv,
    ) -> Result<StoreLocation, StoreLocationError> {
        StoreLocation::parse(Some(store), from_args, None, env)
    }

    #[test]
    fn no_store_is_the_embedded_file() {
        let env = PgEnv::default();
        assert_eq!(
            StoreLocation::parse(None, true, None, &env),
            Ok(StoreLocation::Embedded)
        );
        assert_eq!(
            StoreLocation::parse(Some("  "), true, None, &env),
            Ok(StoreLocation::Embedded)
        );
    }

    #[test]
    fn only_postgres_urls_are_stores() {
        let env = PgEnv::default();
        for bad in ["sqlite://x.db", "mysql://h/db", "/var/lib/db", "postgres"] {
            assert!(
                matches!(
                    parse(bad, false, &env),
                    Err(StoreLocationError::NotPostgres(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_password_in_the_command_line_is_refused_and_not_repeated() {
        let env = PgEnv::default();
        for url in [
            "postgres://u:hunter2@127.0.0.1/db",
            "postgres://u@127.0.0.1/db?password=hunter2",
        ] {
            let err = parse(url, true, &env).unwrap_err();
            assert!(
                matches!(err, StoreLocationError::PasswordInArgs(_)),
                "{url}"
            );
            assert!(!err.to_string().contains("hunter2"), "{err}");
            // The same URL from the environment is fine.
            assert!(parse(url, false, &env).is_ok(), "{url}");
        }
    }

    /// Found in review: a value that is not a URL was repeated whole in the error (a libpq
    /// keyword string holds its password in plain words), a password with `/` cut the user
    /// info short, and a parameter the driver does not know was logged by it with its value.
    #[test]
    fn no_spelling_of_a_password_is_repeated() {
        let env = PgEnv::default();
        for (store, secret) in [
            (
                "host=db user=u password=hunter2 sslmode=verify-full",
                "hunter2",
            ),
            (
                "postgres://u:ab/cd@db.internal/s?sslmode=verify-full",
                "ab/cd",
            ),
            (
                "postgres://u:1234/abc@db.internal/s?sslmode=verify-full",
                "1234/abc",
            ),
            (
                "postgres://u:p@ss:w/rd@db.internal/s?sslmode=verify-full",
                "ss:w",
            ),
            ("postgres://u@127.0.0.1/s?pass%77ord=hunter2", "hunter2"),
            ("postgres://u@127.0.0.1/s?Password=hunter2", "hunter2"),
            ("postgres://u@127.0.0.1/s?pasword=hunter2", "hunter2"),
        ] {
            match parse(store, false, &env) {
                Err(e) => assert!(!e.to_string().contains(secret), "{store}: {e}"),
                Ok(l) => assert!(!l.shown().contains(secret), "{store}: {}", l.shown()),
            }
            assert!(!without_password(store).contains(secret), "{store}");
        }
        let err = parse("postgres://u@127.0.0.1/s?pasword=x", false, &env).unwrap_err();
        assert!(
            matches!(&err, StoreLocationError::UnknownParameter(k) if k == "pasword"),
            "{err}"
        );
    }

    #[test]
    fn a_store_off_this_machine_needs_verified_tls() {
        let env = PgEnv::default();
        for url in [
            "postgres://u@db.internal/s",
            "postgres://u@db.internal/s?sslmode=require",
            "postgres://u@db.internal/s?sslmode=prefer",
            "postgres://u@10.0.0.5:5432/s?sslmode=disable",
            "postgres://u@127.0.0.1/s?host=db.internal",
            "postgres://u@[2001:db8::1]/s",
            // Found in review: the driver applies every parameter in order, the last winning.
            "postgres://u@db.internal/s?sslmode=verify-full&sslmode=disable",
            "postgres://u@db.internal/s?sslmode=verify-full&ssl-mode=prefer",
            "postgres://u@127.0.0.1/s?host=127.0.0.1&host=db.internal",
            "postgres://u@db.internal/s?hostaddr=127.0.0.1&host=db.internal&sslmode=require",
            "postgres://u@127.0.0.1/s?host=db.internal&hostaddr=10.0.0.5",
        ] {
            let err = parse(url, false, &env).unwrap_err();
            assert!(matches!(err, StoreLocationError::Plaintext { .. }), "{url}");
            assert!(err.to_string().contains("verify-full"), "{err}");
        }
        for url in [
            "postgres://u@db.internal/s?sslmode=verify-full",
            "postgres://u@db.internal/s?sslmode=verify-ca&sslrootcert=ca.pem",
            "postgres://u@127.0.0.1:5433/s",
            "postgres://u@localhost/s",
            "postgres://u@[::1]/s",
            "postgres://u@127.0.0.1/s?host=/var/run/postgresql",
        ] {
            assert!(parse(url, false, &env).is_ok(), "{url}");
        }
        // The environment counts too: a host-less URL goes where PGHOST says, and PGSSLMODE
        // sets the mode a URL does not.
        let remote = PgEnv {
            host: Some("db.internal".into()),
            sslmode: None,
        };
        assert!(parse("postgres:///s", false, &remote).is_err());
        let verified = PgEnv {
            host: Some("db.internal".into()),
            sslmode: Some("verify-full".into()),
        };
        assert!(parse("postgres:///s", false, &verified).is_ok());
        assert!(parse("postgres:///s", false, &PgEnv::default()).is_ok());
    }

    #[test]
    fn a_password_file_fills_in_a_url_without_one() {
        let env = PgEnv::default();
        let StoreLocation::Postgres(url) =
            StoreLocation::parse(Some("postgres://u@127.0.0.1/db"), true, Some("p@ss"), &env)
                .unwrap()
        else {
            panic!("not postgres")
        };
        assert_eq!(url, "postgres://u:p%40ss@127.0.0.1/db");
        let shown = StoreLocation::Postgres(url).shown();
        assert!(!shown.contains("p%40ss"), "{shown}");
        // A URL's own password (from the environment) wins.
        let StoreLocation::Postgres(url) = StoreLocation::parse(
            Some("postgres://u:own@127.0.0.1/db"),
            false,
            Some("f"),
            &env,
        )
        .unwrap() else {
            panic!("not postgres")
        };
        assert_eq!(url, "postgres://u:own@127.0.0.1/db");
    }
}
