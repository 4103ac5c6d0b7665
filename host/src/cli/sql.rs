//! `sluice sql role`: the least-privilege PostgreSQL role a grant should connect as.

use std::process::ExitCode;
use std::str::FromStr;

use anyhow::{Context, bail};
use sluice::capability::sql::Scope;
use sluice::capability::sql::role::{self, Purpose};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection};

#[derive(Debug, clap::Subcommand)]
pub enum SqlCommand {
    /// Print the SQL that creates a PostgreSQL role holding exactly one grant (a write grant
    /// owns its schema and nothing else; with --read, a source reads one schema and writes
    /// nothing), or create it with --apply.
    Role(RoleArgs),
}

#[derive(Debug, clap::Args)]
pub struct RoleArgs {
    /// The schema: a destination's `schema`, or (with --read) the schema a source reads.
    schema: String,
    /// The role's name (default: `sluice_SCHEMA`, or `sluice_SCHEMA_reader` with --read).
    #[arg(long)]
    role: Option<String>,
    /// A role for a source's read grant.
    #[arg(long)]
    read: bool,
    /// Create the role now, connected as an administrator with this URL; a random password is
    /// set (sent as a SCRAM verifier, so it is in no statement or server log) and printed once.
    #[arg(long, value_name = "URL")]
    apply: Option<String>,
}

pub async fn run(cmd: SqlCommand) -> anyhow::Result<ExitCode> {
    let SqlCommand::Role(a) = cmd;
    if !role::plain_name(&a.schema) {
        bail!(
            "schema `{}`: use lower-case letters, digits and `_` (as grants do)",
            a.schema
        );
    }
    let purpose = if a.read {
        Purpose::Read
    } else {
        Purpose::Write
    };
    let name = a.role.clone().unwrap_or_else(|| match purpose {
        Purpose::Write => format!("sluice_{}", a.schema),
        Purpose::Read => format!("sluice_{}_reader", a.schema),
    });
    if !role::plain_name(&name) {
        bail!("role `{name}`: use lower-case letters, digits and `_`");
    }
    let sql = role::setup_sql(&a.schema, &name, purpose);
    let Some(url) = a.apply else {
        print!("{sql}");
        return Ok(ExitCode::SUCCESS);
    };
    let admin_opts = PgConnectOptions::from_str(&url).context("--apply: not a PostgreSQL URL")?;
    let mut admin = PgConnection::connect_with(&admin_opts)
        .await
        .context("--apply: cannot connect as the administrator")?;
    // The host's own SQL, from checked names.
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(&mut admin)
        .await
        .with_context(|| format!("creating role `{name}`"))?;
    let password = {
        use base64::Engine;
        let mut bytes = [0u8; 24];
        getrandom::fill(&mut bytes).context("no randomness for the password")?;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    let verifier = role::scram_verifier(&password).context("no randomness for the salt")?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "ALTER ROLE {name} PASSWORD '{verifier}'"
    )))
    .execute(&mut admin)
    .await
    .with_context(|| format!("setting the password of `{name}`"))?;
    admin.close().await.ok();

    // Prove it: connect as the new role and inspect it as a session would.
    let mut me =
        PgConnection::connect_with(&admin_opts.clone().username(&name).password(&password))
            .await
            .with_context(|| format!("connecting as the new role `{name}`"))?;
    let scope = match purpose {
        Purpose::Write => Scope::Write(a.schema.clone()),
        Purpose::Read => Scope::Read,
    };
    let findings = role::inspect(&mut me, &scope).await?;
    me.close().await.ok();
    println!("created role `{name}`; its password (shown once):\n\n  {password}\n");
    if findings.is_empty() {
        println!("checked: it holds no more than the grant.");
    } else {
        println!(
            "warning: it still holds more than the grant (from privileges given to PUBLIC or \
             defaults of this server): {}",
            findings.join("; ")
        );
    }
    let host = admin_opts.get_host();
    let port = admin_opts.get_port();
    let db = admin_opts.get_database().unwrap_or("postgres");
    let (side, extra) = match purpose {
        Purpose::Write => ("destination", format!("schema = \"{}\"\n", a.schema)),
        Purpose::Read => ("source", String::new()),
    };
    println!(
        "\nGrant it in the connection file (the password in SLUICE_PG_PASSWORD, or a file):\n\n\
         [[{side}.grant.sql]]\nname = \"…\"\nurl = \"postgres://{name}:{{{{secret:pg_password}}}}@{host}:{port}/{db}\"\n{extra}\
         [[{side}.grant.secrets]]\nname = \"pg_password\"\nenv = \"SLUICE_PG_PASSWORD\""
    );
    Ok(if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
