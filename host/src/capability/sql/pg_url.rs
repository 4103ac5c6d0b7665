//! A grant's PostgreSQL URL, read strictly: everything the connection uses comes from the URL,
//! nothing from the sluice process's surroundings.
//!
//! sqlx's own URL parser fills what the URL leaves out from the environment (`PGPASSWORD`,
//! `PGUSER`, `PGHOST`, `PGSSLCERT`…), from `~/.pgpass`, and from a Unix socket when the host is a
//! path, where peer authentication logs in as the server's own user. A grant — and over the API,
//! its author is a workspace editor — must not borrow any of those. So a grant's URL names its
//! host (TCP only), user, password and database, takes only `sslmode` and `sslrootcert` as
//! parameters, and its address is checked by the network guard's rules before connecting.

use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use percent_encoding::percent_decode_str;
use secrecy::{ExposeSecret, SecretString};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::capability::net::{classify, only_by_address};

/// libpq variables sqlx reads that a grant's explicit settings cannot override: while one is
/// set, grants' connections are refused rather than silently using it.
const AMBIENT: [&str; 4] = ["PGSSLCERT", "PGSSLKEY", "PGSSLROOTCERT", "PGOPTIONS"];

/// A grant's PostgreSQL URL, taken apart. `Debug` never shows the password.
pub struct PgUrl {
    host: String,
    port: u16,
    user: String,
    password: SecretString,
    database: String,
    ssl_mode: PgSslMode,
    ssl_root_cert: Option<PathBuf>,
}

impl std::fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

/// Why a grant's PostgreSQL URL is refused. Names the part at fault, never a value; the
/// `Display` of the parse errors continues "the URL …".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgUrlError {
    /// Not a URL at all.
    #[error("is not a valid URL ({0})")]
    NotAUrl(String),
    /// Another scheme.
    #[error("must be a PostgreSQL URL (`postgres://…`)")]
    Scheme,
    /// No TCP host (a Unix socket, or nothing).
    #[error(
        "must name a host to reach over TCP (`postgres://user:…@HOST:5432/db`); Unix sockets \
         are refused, since peer authentication would log in as sluice's own user"
    )]
    NoTcpHost,
    /// A part is not UTF-8 once percent-decoded.
    #[error("its {0} is not UTF-8 once percent-decoded")]
    NotUtf8(&'static str),
    /// No user.
    #[error(
        "must name its user (`postgres://USER:…@host/db`); sluice never falls back to PGUSER \
         or the name of the user it runs as"
    )]
    NoUser,
    /// No password.
    #[error(
        "must carry its password, from a secret (`postgres://user:{{{{secret:NAME}}}}@host/db`); \
         sluice never falls back to PGPASSWORD or ~/.pgpass"
    )]
    NoPassword,
    /// No database (or a path that is not one name).
    #[error("must name its database (`postgres://user:…@host/DATABASE`)")]
    NoDatabase,
    /// An `sslmode` PostgreSQL does not know.
    #[error("`sslmode={0}` is not one of disable, allow, prefer, require, verify-ca, verify-full")]
    SslMode(String),
    /// A parameter other than `sslmode` and `sslrootcert`.
    #[error(
        "takes only `sslmode` and `sslrootcert` as parameters, not `{0}`: host, user, password \
         and database are written in the URL itself, and server options are set by sluice"
    )]
    Parameter(String),
    /// The host does not resolve.
    #[error("`{host}` does not resolve: {why}")]
    Unresolved {
        /// The host.
        host: String,
        /// The resolver's answer.
        why: String,
    },
    /// The host resolves to an address reachable only by literal (link-local, metadata).
    #[error(
        "`{host}` resolves to {ip}, {what}; such an address is reachable only when the URL \
         names it literally"
    )]
    OnlyByAddress {
        /// The host.
        host: String,
        /// The address.
        ip: IpAddr,
        /// What kind of address it is.
        what: &'static str,
    },
    /// An environment variable the connection would inherit is set.
    #[error(
        "sluice's environment sets {0}, which a grant's connection would inherit; unset it (a \
         grant's connection takes nothing from the environment: write `sslrootcert` in a \
         connection file's URL instead)"
    )]
    Ambient(&'static str),
}

/// Read `url` (its secrets substituted or still placeholders: the checks are the same). Errors
/// name the part at fault, never a value.
pub fn parse(url: &str) -> Result<PgUrl, PgUrlError> {
    let u = url::Url::parse(url).map_err(|e| PgUrlError::NotAUrl(e.to_string()))?;
    if !matches!(u.scheme(), "postgres" | "postgresql") {
        return Err(PgUrlError::Scheme);
    }
    let host = match u.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() && !d.contains(['%', '/']) => d.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err(PgUrlError::NoTcpHost),
    };
    let decode = |part: &str, what: &'static str| {
        percent_decode_str(part)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| PgUrlError::NotUtf8(what))
    };
    let user = decode(u.username(), "user")?;
    if user.is_empty() {
        return Err(PgUrlError::NoUser);
    }
    let password = match u.password() {
        Some(p) if !p.is_empty() => SecretString::from(decode(p, "password")?),
        _ => return Err(PgUrlError::NoPassword),
    };
    let database = decode(u.path().trim_start_matches('/'), "database")?;
    if database.is_empty() || database.contains('/') {
        return Err(PgUrlError::NoDatabase);
    }
    let mut ssl_mode = PgSslMode::Prefer;
    let mut ssl_root_cert = None;
    for (key, value) in u.query_pairs() {
        match &*key {
            "sslmode" => {
                ssl_mode = PgSslMode::from_str(&value)
                    .map_err(|_| PgUrlError::SslMode(value.to_string()))?;
            }
            "sslrootcert" => ssl_root_cert = Some(PathBuf::from(&*value)),
            other => return Err(PgUrlError::Parameter(other.to_string())),
        }
    }
    Ok(PgUrl {
        host,
        port: u.port().unwrap_or(5432),
        user,
        password,
        database,
        ssl_mode,
        ssl_root_cert,
    })
}

impl PgUrl {
    /// Whether the URL names a certificate file on the server (refused for grants made over
    /// the API: a file of the server's is not the caller's to name).
    pub fn names_a_file(&self) -> bool {
        self.ssl_root_cert.is_some()
    }

    /// Resolve the host once and judge every address as the network guard does: link-local and
    /// metadata addresses only when the URL is that address; the rest are reachable because
    /// the grant names its host exactly. The address to connect to.
    pub async fn resolve_checked(&self) -> Result<IpAddr, PgUrlError> {
        let literal = self.host.parse::<IpAddr>().ok();
        let ips: Vec<IpAddr> = match literal {
            Some(ip) => vec![ip],
            None => tokio::net::lookup_host((self.host.as_str(), self.port))
                .await
                .map_err(|e| PgUrlError::Unresolved {
                    host: self.host.clone(),
                    why: e.to_string(),
                })?
                .map(|a| a.ip())
                .collect(),
        };
        for ip in &ips {
            if let Some(special) = classify(*ip)
                && only_by_address(special)
                && literal != Some(*ip)
            {
                return Err(PgUrlError::OnlyByAddress {
                    host: self.host.clone(),
                    ip: *ip,
                    what: special.describe(),
                });
            }
        }
        ips.first().copied().ok_or_else(|| PgUrlError::Unresolved {
            host: self.host.clone(),
            why: "no addresses".into(),
        })
    }

    /// Connect options taking nothing from the environment or `~/.pgpass`, aimed at `ip` (the
    /// checked address) unless `verify-full` needs the name for the certificate.
    pub fn options(&self, ip: IpAddr) -> Result<PgConnectOptions, PgUrlError> {
        if let Some(var) = AMBIENT.iter().find(|v| std::env::var_os(v).is_some()) {
            return Err(PgUrlError::Ambient(var));
        }
        let host = if matches!(self.ssl_mode, PgSslMode::VerifyFull) {
            self.host.clone()
        } else {
            ip.to_string()
        };
        // Every field the environment could have filled is set again from the URL.
        let mut o = PgConnectOptions::new_without_pgpass()
            .host(&host)
            .port(self.port)
            .username(&self.user)
            .password(self.password.expose_secret())
            .database(&self.database)
            .ssl_mode(self.ssl_mode);
        if let Some(cert) = &self.ssl_root_cert {
            o = o.ssl_root_cert(cert);
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_url_names_everything_itself() {
        let u = parse("postgres://loader:p%40ss@db.example.com:6432/wh?sslmode=require").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("db.example.com", 6432));
        assert_eq!((u.user.as_str(), u.database.as_str()), ("loader", "wh"));
        assert_eq!(u.password.expose_secret(), "p@ss");
        assert!(!format!("{u:?}").contains("p@ss"));
        let u = parse("postgresql://u:{{secret:pw}}@[::1]/db").unwrap();
        assert_eq!(u.host, "::1");

        for (url, says) in [
            ("postgres://u:p@/db", "not a valid URL"),
            (
                "postgres://u:p@%2Fvar%2Frun%2Fpostgresql/db",
                "Unix sockets",
            ),
            ("postgres://u:p@h/db?host=/var/run/postgresql", "not `host`"),
            ("postgres://u:p@h/db?hostaddr=10.0.0.1", "not `hostaddr`"),
            ("postgres://u:p@h/db?options=-c%20x%3Dy", "not `options`"),
            ("postgres://u:p@h/db?sslkey=/etc/key", "not `sslkey`"),
            ("postgres://u:p@h/db?password=x", "not `password`"),
            ("postgres://u@h/db", "PGPASSWORD"),
            ("postgres://:p@h/db", "PGUSER"),
            ("postgres://u:p@h", "its database"),
            ("postgres://u:p@h/db?sslmode=sometimes", "is not one of"),
            ("mysql://u:p@h/db", "PostgreSQL URL"),
        ] {
            let e = parse(url).unwrap_err().to_string();
            assert!(e.contains(says), "{url}: {e}");
            assert!(!e.contains(":p@"), "no secret in the error: {e}");
        }
    }

    #[tokio::test]
    async fn the_address_is_judged_like_any_outbound_connection() {
        let u = parse("postgres://u:p@169.254.169.254/db").unwrap();
        assert!(u.resolve_checked().await.is_ok(), "named literally");
        let u = parse("postgres://u:p@127.0.0.1/db").unwrap();
        assert_eq!(
            u.resolve_checked().await.unwrap(),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        // Loopback through a name: the grant names its host exactly, as a network grant would.
        let u = parse("postgres://u:p@localhost/db").unwrap();
        assert!(u.resolve_checked().await.is_ok());
    }
}
