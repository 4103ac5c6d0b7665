//! Opening a session's connection in its dialect, with the database's own wall on it: SQLite's
//! authorizer (and the audit of what the file already holds), PostgreSQL's role check.

use super::*;

pub(super) async fn connect(db: &Database, connector: &str) -> Result<Conn, SqlError> {
    let timeout_ms = db.statement_timeout.as_millis().to_string();
    match &db.target {
        Target::Postgres(url) => {
            let unavailable =
                |why: String| SqlError::Unavailable(format!("database `{}`: {why}", db.name));
            let parsed = super::super::pg_url::parse(url.expose_secret())
                .map_err(|why| unavailable(format!("the granted URL {why}")))?;
            let ip = parsed
                .resolve_checked()
                .await
                .map_err(|e| unavailable(e.to_string()))?;
            let opts = parsed.options(ip).map_err(|e| unavailable(e.to_string()))?;
            let mut settings: Vec<(&str, String)> = vec![
                ("statement_timeout", timeout_ms.clone()),
                ("lock_timeout", timeout_ms.clone()),
                ("idle_in_transaction_session_timeout", "600000".into()),
                // The policy reads string literals the standard way; so must the server.
                ("standard_conforming_strings", "on".into()),
            ];
            match &db.scope {
                Scope::Read => settings.push(("default_transaction_read_only", "on".into())),
                // The policy qualifies every relation with the schema, so nothing else needs the
                // search path: functions, operators and types resolve in pg_catalog only, and
                // nothing in the schema (whoever put it there) can shadow a built-in.
                Scope::Write(_) => settings.push(("search_path", "pg_catalog,pg_temp".into())),
            }
            let opts = opts
                .application_name(&format!("sluice:{connector}"))
                .options(settings);
            let c = PgConnection::connect_with(&opts)
                .await
                .map_err(|e| match e {
                    sqlx::Error::Database(d) => SqlError::Unavailable(format!(
                        "cannot connect to `{}`: {}",
                        db.name,
                        d.message()
                    )),
                    other => {
                        SqlError::Unavailable(format!("cannot connect to `{}`: {other}", db.name))
                    }
                })?;
            Ok(Conn::Pg(c))
        }
        Target::Sqlite(path) => {
            let read = db.scope == Scope::Read;
            if !read && let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| {
                    SqlError::Unavailable(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            let mut opts = SqliteConnectOptions::new()
                .filename(path)
                .read_only(read)
                .create_if_missing(!read)
                .busy_timeout(db.statement_timeout);
            if read {
                // A read session changes nothing, its journal mode included: a file in
                // rollback-journal mode would refuse the switch to WAL as a write.
                opts = opts.pragma("query_only", "ON");
            } else {
                opts = opts
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal);
            }
            let c = SqliteConnection::connect_with(&opts)
                .await
                .map_err(|e| SqlError::Unavailable(format!("cannot open `{}`: {e}", db.name)))?;
            Ok(Conn::Lite(c))
        }
    }
}

/// SQLite: put the authorizer of the session's scope on the connection.
pub(super) async fn install_wall(
    c: &mut SqliteConnection,
    db: &Database,
) -> Result<Wall, SqlError> {
    let mut handle = c
        .lock_handle()
        .await
        .map_err(|e| SqlError::Unavailable(format!("cannot open `{}`: {e}", db.name)))?;
    // SAFETY: the handle is locked: sqlx's worker makes no call on it meanwhile.
    unsafe { lite_wall::install(handle.as_raw_handle(), db.scope.clone()) }
        .map_err(|e| SqlError::Unavailable(format!("cannot open `{}` safely: {e}", db.name)))
}

/// SQLite: the reason one of `tables` holds an expression SQLite would compile without asking
/// its authorizer, if one does: its definitions are replayed on a scratch database under a
/// judging authorizer (generated columns, CHECK, index expressions), and SQLite compiles each
/// default again under the wall's default mode.
pub(super) async fn lite_defaults(
    c: &mut SqliteConnection,
    wall: &Wall,
    tables: &[String],
) -> Result<Option<String>, sqlx::Error> {
    for table in tables {
        let definitions: Vec<(String,)> = {
            let _host = wall.host();
            sqlx::query_as(
                "SELECT sql FROM sqlite_master WHERE tbl_name = ?1 COLLATE NOCASE \
                 AND type IN ('table', 'index') AND sql IS NOT NULL ORDER BY type = 'index', rowid",
            )
            .bind(table)
            .persistent(false)
            .fetch_all(&mut *c)
            .await?
        };
        let definitions: Vec<String> = definitions.into_iter().map(|(d,)| d).collect();
        if let Err(why) = lite_wall::judge_definitions(&definitions) {
            return Ok(Some(format!(
                "the definition of `{table}` holds what SQLite would compute without its \
                 authorizer: {why}"
            )));
        }
        let defaults: Vec<(String, String)> = {
            let _host = wall.host();
            sqlx::query_as(
                "SELECT name, dflt_value FROM pragma_table_xinfo(?1) WHERE dflt_value IS NOT NULL",
            )
            .bind(table)
            .persistent(false)
            .fetch_all(&mut *c)
            .await?
        };
        for (column, default) in defaults {
            let mut handle = c.lock_handle().await?;
            // SAFETY: the handle is locked: sqlx's worker makes no call on it meanwhile.
            let r = unsafe { lite_wall::check_default(handle.as_raw_handle(), wall, &default) };
            if let Err(why) = r {
                return Ok(Some(format!(
                    "the default of `{table}`.`{column}` ({default}) would run unchecked on every \
                     insert: {why}"
                )));
            }
        }
    }
    Ok(None)
}

/// SQLite: refuse a session on a file where a table it can reach (a write grant: the prefix's;
/// a read grant: any) already holds an expression that would run what the authorizer never saw
/// (made by another writer of the file, or an `ALTER TABLE` before the host checked them).
pub(super) async fn audit_tables(
    c: &mut SqliteConnection,
    wall: &Wall,
    prefix: Option<&str>,
    db: &Database,
) -> Result<(), SqlError> {
    let unavailable =
        |e: sqlx::Error| SqlError::Unavailable(format!("cannot open `{}`: {e}", db.name));
    let tables: Vec<(String,)> = {
        let _host = wall.host();
        sqlx::query_as("SELECT name FROM sqlite_master WHERE type = 'table'")
            .persistent(false)
            .fetch_all(&mut *c)
            .await
            .map_err(unavailable)?
    };
    let ours: Vec<String> = tables
        .into_iter()
        .map(|(t,)| t)
        .filter(|t| prefix.is_none_or(|p| t.to_ascii_lowercase().starts_with(p)))
        .collect();
    match lite_defaults(c, wall, &ours).await.map_err(unavailable)? {
        None => Ok(()),
        Some(why) => Err(SqlError::Refused(format!(
            "`{}`: refused by the `database` rule: {why}; drop or fix that table first",
            db.name
        ))),
    }
}

/// SQLite, in the policy-alone tests: the deadline without the rules.
pub(super) async fn install_deadline_only(
    c: &mut SqliteConnection,
    db: &Database,
) -> Result<Wall, SqlError> {
    let mut handle = c
        .lock_handle()
        .await
        .map_err(|e| SqlError::Unavailable(format!("cannot open `{}`: {e}", db.name)))?;
    // SAFETY: the handle is locked: sqlx's worker makes no call on it meanwhile.
    unsafe { lite_wall::install_deadline_only(handle.as_raw_handle(), db.scope.clone()) }
        .map_err(|e| SqlError::Unavailable(format!("cannot open `{}`: {e}", db.name)))
}

/// PostgreSQL: refuse a role broader than the grant, unless the grant allows it (recorded).
pub(super) async fn check_role(
    c: &mut PgConnection,
    db: &Database,
    connector: &str,
    events: &EventLog,
    action: &str,
) -> Result<(), SqlError> {
    let findings = role::inspect(c, &db.scope).await.map_err(|e| {
        SqlError::Unavailable(format!("cannot inspect the role of `{}`: {e}", db.name))
    })?;
    if findings.is_empty() {
        return Ok(());
    }
    let grant = match &db.scope {
        Scope::Read => "a read grant".to_string(),
        Scope::Write(s) => format!("a write grant on schema `{s}`"),
    };
    let list = findings.join("; ");
    if db.allow_broad_role {
        events.record(
            connector,
            Capability::Sql,
            Outcome::Allowed,
            action,
            &format!("the role is broader than {grant}, allowed by `allow_broad_role`: {list}"),
        );
        return Ok(());
    }
    let msg = format!(
        "`{}`: refused by the `broad-role` rule: the role the grant connects as is broader than \
         {grant}, so the database would not hold the grant too: it {list}. Connect as a role \
         that holds only the grant (`sluice sql role` writes one), or set `allow_broad_role = \
         true` on the grant to accept it",
        db.name
    );
    events.record(connector, Capability::Sql, Outcome::Refused, action, &msg);
    Err(SqlError::Refused(msg))
}
