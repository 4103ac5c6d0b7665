//! PostgreSQL's half of the second wall: the role a session connects as must hold no more than
//! the grant, so that the database refuses whatever the policy might wrongly let through.
//!
//! [`inspect`] lists what a role can do beyond its grant (see there), and the host
//! refuses to hand such a session to a connector unless the grant says `allow_broad_role`.
//! [`setup_sql`] writes the role that passes: one that owns its schema and nothing else.

use sqlx::postgres::PgConnection;
use sqlx::{AssertSqlSafe, Row};

use super::Scope;

/// Predefined roles a read grant's role may be a member of: it reads every table, and nothing
/// else (not other sessions' queries, not server files).
pub const READ_ONLY_ROLES: &[&str] = &["pg_read_all_data"];

/// How many objects each finding names at most.
const SAMPLE: i64 = 3;

/// What the connected role can do beyond `scope`, one finding per line (empty: nothing).
///
/// Checked, for the role the session acts as and the role it logged in as (they must be one):
/// attributes; schemas it may create or create in; privileges on relations, sequences, large
/// objects, foreign servers and tablespaces outside the grant; future privileges granted by
/// default; restricted built-in functions granted to it; `SECURITY DEFINER` functions of other
/// roles it may run; everything it owns outside the grant (by PostgreSQL's own record of owners,
/// whatever the kind of object); every role it belongs to, directly or not; and, for a write
/// grant, objects of other roles inside the granted schema and tables outside it that inherit
/// from tables in it.
pub async fn inspect(conn: &mut PgConnection, scope: &Scope) -> Result<Vec<String>, sqlx::Error> {
    let (granted, write) = match scope {
        Scope::Read => ("", false),
        Scope::Write(s) => (s.as_str(), true),
    };
    // The database's own schemas: nobody's data is there, and every role may read them.
    let system = "n.nspname IN ('pg_catalog', 'information_schema') OR n.nspname LIKE 'pg\\_toast%' \
                  OR n.nspname LIKE 'pg\\_temp\\_%'";
    let sql = format!(
        "WITH me AS (SELECT * FROM pg_roles WHERE rolname = current_user),
              mine AS (SELECT oid FROM pg_roles r WHERE pg_has_role((SELECT oid FROM me), r.oid, 'USAGE')),
              granted AS (SELECT oid FROM pg_namespace WHERE nspname = $1)
         SELECT finding FROM (
           SELECT 'logs in as ' || quote_ident(session_user) || ' but acts as '
               || quote_ident(current_user) || ', which it could stop doing' AS finding
             WHERE session_user <> current_user
           UNION ALL SELECT 'is a superuser' FROM me WHERE rolsuper
           UNION ALL SELECT 'may create roles (CREATEROLE)' FROM me WHERE rolcreaterole
           UNION ALL SELECT 'may create databases (CREATEDB)' FROM me WHERE rolcreatedb
           UNION ALL SELECT 'bypasses row-level security (BYPASSRLS)' FROM me WHERE rolbypassrls
           UNION ALL SELECT 'may start replication (REPLICATION)' FROM me WHERE rolreplication
           UNION ALL SELECT 'may create schemas in database ' || quote_ident(current_database())
             WHERE has_database_privilege(current_database(), 'CREATE')
           UNION ALL (SELECT 'is a member of role ' || quote_ident(r.rolname)
             FROM pg_roles r, me
             WHERE r.oid <> me.oid AND pg_has_role(me.oid, r.oid, 'MEMBER')
               AND NOT ($2 AND r.rolname = ANY($3))
             ORDER BY 1 LIMIT {SAMPLE})
           UNION ALL (SELECT 'may grant role ' || quote_ident(r.rolname) || ' to others'
             FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid, me
             WHERE m.member = me.oid AND m.admin_option
             ORDER BY 1 LIMIT {SAMPLE})
           UNION ALL (SELECT 'may create objects in schema ' || quote_ident(n.nspname)
             FROM pg_namespace n
             WHERE n.nspname <> $1 AND has_schema_privilege(n.oid, 'CREATE')
               AND NOT (n.nspname LIKE 'pg\\_temp\\_%' OR n.nspname LIKE 'pg\\_toast\\_temp\\_%')
             ORDER BY 1 LIMIT {SAMPLE})
           UNION ALL (SELECT 'owns ' || o.type || ' ' || o.identity
             FROM pg_shdepend d, me,
               LATERAL pg_identify_object(d.classid, d.objid, d.objsubid) o
             WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = me.oid AND d.deptype = 'o'
               AND d.dbid IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
               AND NOT ($4 AND (o.schema = $1 OR (o.type = 'schema' AND o.identity = quote_ident($1))))
             ORDER BY 1 LIMIT {SAMPLE})
           UNION ALL (SELECT 'may ' || privs || ' '
               || quote_ident(n.nspname) || '.' || quote_ident(c.relname)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
               LATERAL (SELECT array_to_string(ARRAY[
                 CASE WHEN has_any_column_privilege(c.oid, 'INSERT') THEN 'INSERT' END,
                 CASE WHEN has_any_column_privilege(c.oid, 'UPDATE') THEN 'UPDATE' END,
                 CASE WHEN has_table_privilege(c.oid, 'DELETE') THEN 'DELETE' END,
                 CASE WHEN has_table_privilege(c.oid, 'TRUNCATE') THEN 'TRUNCATE' END,
                 CASE WHEN has_any_column_privilege(c.oid, 'REFERENCES') THEN 'REFERENCES' END,
                 CASE WHEN has_table_privilege(c.oid, 'TRIGGER') THEN 'TRIGGER' END,
                 CASE WHEN $4 AND has_any_column_privilege(c.oid, 'SELECT') THEN 'SELECT' END
               ], '/') AS privs) p
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND n.nspname <> $1
               AND NOT ({system}) AND p.privs <> ''
             ORDER BY 1 LIMIT {SAMPLE})
           UNION ALL (SELECT 'may use sequence ' || quote_ident(n.nspname) || '.' || quote_ident(c.relname)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'S' AND n.nspname <> $1 AND NOT ({system})
               AND CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid,
                     CASE WHEN $4 THEN 'USAGE,UPDATE,SELECT' ELSE 'USAGE,UPDATE' END) END
             ORDER BY 1 LIMIT {SAMPLE})
           UNION ALL (SELECT 'may run SECURITY DEFINER function '
               || (pg_identify_object('pg_proc'::regclass, p.oid, 0)).identity
               || ' (it runs with its owner''s rights)'
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace, me
             WHERE p.prosecdef AND p.proowner <> me.oid AND NOT ({system})
               AND has_function_privilege(p.oid, 'EXECUTE')
             ORDER BY 1 LIMIT {SAMPLE})
           UNION ALL (SELECT 'may run restricted function '
               || (pg_identify_object('pg_proc'::regclass, p.oid, 0)).identity
             FROM pg_proc p, me
             WHERE p.proacl IS NOT NULL AND p.proowner <> me.oid
               AND (NOT EXISTS (SELECT 1 FROM aclexplode(p.proacl) a
                                WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
                    -- a built-in restricted at install and granted to PUBLIC since
                    OR EXISTS (SELECT 1 FROM pg_init_privs ip
                               WHERE ip.classoid = 'pg_proc'::regclass AND ip.objoid = p.oid
                                 AND NOT EXISTS (SELECT 1 FROM aclexplode(ip.initprivs) a
                                                 WHERE a.grantee = 0
                                                   AND a.privilege_type = 'EXECUTE')))
               AND has_function_privilege(p.oid, 'EXECUTE')
             ORDER BY 1 LIMIT {SAMPLE})
           UNION ALL (SELECT 'may use foreign server ' || quote_ident(s.srvname)
             FROM pg_foreign_server s WHERE has_server_privilege(s.oid, 'USAGE')
             ORDER BY 1 LIMIT {SAMPLE})
           UNION ALL (SELECT 'may define servers of foreign-data wrapper ' || quote_ident(w.fdwname)
             FROM pg_foreign_data_wrapper w WHERE has_foreign_data_wrapper_privilege(w.oid, 'USAGE')
             ORDER BY 1 LIMIT {SAMPLE})
           UNION ALL (SELECT 'may create in tablespace ' || quote_ident(t.spcname)
             FROM pg_tablespace t WHERE has_tablespace_privilege(t.oid, 'CREATE')
             ORDER BY 1 LIMIT {SAMPLE})
           UNION ALL SELECT 'may read or write large objects of other roles'
             FROM me WHERE EXISTS (
               SELECT 1 FROM pg_largeobject_metadata l, aclexplode(l.lomacl) a
               WHERE l.lomowner <> me.oid AND a.privilege_type IN ('SELECT', 'UPDATE')
                 AND (a.grantee = 0 OR a.grantee IN (SELECT oid FROM mine)))
           UNION ALL SELECT 'may read and write every large object (lo_compat_privileges is on)'
             WHERE current_setting('lo_compat_privileges')::boolean
           UNION ALL (SELECT 'is given ' || a.privilege_type || ' on future objects '
               || coalesce('in schema ' || quote_ident(n.nspname), 'everywhere')
               || ' by default privileges of ' || quote_ident(r.rolname)
             FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
               JOIN pg_roles r ON r.oid = d.defaclrole, aclexplode(d.defaclacl) a, me
             WHERE (a.grantee = 0 OR a.grantee IN (SELECT oid FROM mine)) AND d.defaclrole <> me.oid
               AND (n.nspname IS DISTINCT FROM $1 OR NOT $4)
               AND ($4 OR a.privilege_type NOT IN ('SELECT', 'USAGE', 'EXECUTE'))
             ORDER BY 1 LIMIT {SAMPLE})
           UNION ALL (SELECT 'schema ' || quote_ident($1) || ' holds ' || o.type || ' '
               || o.identity || ' of another role'
             FROM (SELECT 'pg_class'::regclass AS k, c.oid, c.relowner AS owner FROM pg_class c
                     WHERE c.relnamespace = (SELECT oid FROM granted)
                       AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
                   UNION ALL SELECT 'pg_proc'::regclass, p.oid, p.proowner FROM pg_proc p
                     WHERE p.pronamespace = (SELECT oid FROM granted)
                   UNION ALL SELECT 'pg_type'::regclass, t.oid, t.typowner FROM pg_type t
                     WHERE t.typnamespace = (SELECT oid FROM granted) AND t.typrelid = 0
                       AND t.typcategory <> 'A') x,
               LATERAL pg_identify_object(x.k, x.oid, 0) o, me
             WHERE $4 AND x.owner <> me.oid
             ORDER BY 1 LIMIT {SAMPLE})
           UNION ALL (SELECT 'table ' || (pg_identify_object('pg_class'::regclass, ch.oid, 0)).identity
               || ' outside schema ' || quote_ident($1) || ' inherits from '
               || (pg_identify_object('pg_class'::regclass, pa.oid, 0)).identity
             FROM pg_inherits i JOIN pg_class pa ON pa.oid = i.inhparent
               JOIN pg_class ch ON ch.oid = i.inhrelid
             WHERE $4 AND pa.relnamespace = (SELECT oid FROM granted)
               AND ch.relnamespace <> (SELECT oid FROM granted)
             ORDER BY 1 LIMIT {SAMPLE})
           UNION ALL (SELECT 'foreign key ' || quote_ident(k.conname) || ' links '
               || (pg_identify_object('pg_class'::regclass, k.conrelid, 0)).identity || ' and '
               || (pg_identify_object('pg_class'::regclass, k.confrelid, 0)).identity
               || ' across schema ' || quote_ident($1) || ' (a cascade or a lock reaches out)'
             FROM pg_constraint k JOIN pg_class a ON a.oid = k.conrelid
               JOIN pg_class b ON b.oid = k.confrelid
             WHERE $4 AND k.contype = 'f'
               AND ((a.relnamespace = (SELECT oid FROM granted))
                    <> (b.relnamespace = (SELECT oid FROM granted)))
             ORDER BY 1 LIMIT {SAMPLE})
           UNION ALL (SELECT DISTINCT o.type || ' ' || o.identity || ' outside schema '
               || quote_ident($1) || ' depends on its tables (DROP … CASCADE would remove it)'
             FROM pg_depend d JOIN pg_class c ON c.oid = d.refobjid,
               LATERAL (SELECT CASE WHEN d.classid = 'pg_rewrite'::regclass
                                    THEN 'pg_class'::regclass ELSE d.classid END AS k,
                               CASE WHEN d.classid = 'pg_rewrite'::regclass
                                    THEN (SELECT ev_class FROM pg_rewrite WHERE oid = d.objid)
                                    ELSE d.objid END AS obj) x,
               LATERAL pg_identify_object(x.k, x.obj, 0) o
             WHERE $4 AND d.refclassid = 'pg_class'::regclass AND d.deptype = 'n'
               AND c.relnamespace = (SELECT oid FROM granted)
               AND o.schema IS DISTINCT FROM $1 AND o.schema IS NOT NULL
             ORDER BY 1 LIMIT {SAMPLE})
           UNION ALL (SELECT 'trigger ' || quote_ident(t.tgname) || ' on '
               || (pg_identify_object('pg_class'::regclass, t.tgrelid, 0)).identity
               || ' runs ' || (pg_identify_object('pg_proc'::regclass, p.oid, 0)).identity
               || ' of another role'
             FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
               JOIN pg_proc p ON p.oid = t.tgfoid, me
             WHERE $4 AND NOT t.tgisinternal AND c.relnamespace = (SELECT oid FROM granted)
               AND (p.proowner <> me.oid OR p.prosecdef)
             ORDER BY 1 LIMIT {SAMPLE})
         ) f"
    );
    let read_roles: Vec<String> = READ_ONLY_ROLES.iter().map(|s| s.to_string()).collect();
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(granted)
        .bind(!write)
        .bind(read_roles)
        .bind(write)
        .fetch_all(&mut *conn)
        .await?;
    let mut findings: Vec<String> = rows
        .iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<_, _>>()?;
    // PostgreSQL 15 grants server settings one by one (`GRANT ALTER SYSTEM ON PARAMETER …`).
    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(&mut *conn)
        .await?;
    if version >= 150000 {
        let params: Vec<String> = sqlx::query_scalar(
            "WITH me AS (SELECT oid FROM pg_roles WHERE rolname = current_user)
             SELECT DISTINCT 'may ' || a.privilege_type || ' server setting ' || p.parname
             FROM pg_parameter_acl p, aclexplode(p.paracl) a, me
             WHERE a.grantee = 0 OR pg_has_role(me.oid, a.grantee, 'USAGE')
             ORDER BY 1 LIMIT 3",
        )
        .fetch_all(&mut *conn)
        .await?;
        findings.extend(params);
    }
    Ok(findings)
}

/// Whether a name can go into SQL unquoted and mean itself: what sluice accepts for schemas and
/// roles it writes SQL for.
pub fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// What a role made by [`setup_sql`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A destination's write grant: owns the schema, nothing else.
    Write,
    /// A source's read grant: reads the schema's tables, writes nothing.
    Read,
}

/// The SQL that creates `role` for a grant on `schema` and gives it exactly that, for an
/// administrator to run (`sluice sql role`). Both names must be [`plain_name`]s. The password is
/// set separately (`\password` in psql, or `--apply`), so it is never in this text.
pub fn setup_sql(schema: &str, role: &str, purpose: Purpose) -> String {
    assert!(plain_name(schema) && plain_name(role), "plain names only");
    let attributes =
        "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT";
    match purpose {
        Purpose::Write => format!(
            "-- A role for a sluice destination granted `schema = \"{schema}\"`: it owns that schema and\n\
             -- nothing else, so the database refuses anything outside it whatever the connector sends.\n\
             CREATE ROLE {role} {attributes};\n\
             CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION {role};\n\
             ALTER SCHEMA {schema} OWNER TO {role};\n\
             -- Then set its password (psql: \\password {role}) and grant it in the connection file:\n\
             --   url = \"postgres://{role}:{{{{secret:NAME}}}}@HOST/DB\", schema = \"{schema}\"\n"
        ),
        Purpose::Read => format!(
            "-- A role for a sluice source reading schema `{schema}`: it may read its tables (and\n\
             -- those created later) and write nothing anywhere.\n\
             CREATE ROLE {role} {attributes};\n\
             GRANT USAGE ON SCHEMA {schema} TO {role};\n\
             GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role};\n\
             ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {role};\n\
             -- Then set its password (psql: \\password {role}) and grant it in the connection file:\n\
             --   url = \"postgres://{role}:{{{{secret:NAME}}}}@HOST/DB\"\n"
        ),
    }
}

/// A PostgreSQL SCRAM-SHA-256 verifier for `password` (RFC 5802/7677, as PostgreSQL stores it):
/// what `ALTER ROLE … PASSWORD` is given, so the password itself is never in a statement or a
/// server log. The salt is random.
pub fn scram_verifier(password: &str) -> Result<String, getrandom::Error> {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    use sha2::{Digest, Sha256};
    const ITERATIONS: u32 = 4096;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt)?;
    let salted = pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password.as_bytes(), &salt, ITERATIONS);
    let key = |label: &[u8]| {
        let mut m = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&salted)
            .expect("HMAC takes any key length");
        m.update(label);
        m.finalize().into_bytes()
    };
    let stored = Sha256::digest(key(b"Client Key"));
    let server = key(b"Server Key");
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(format!(
        "SCRAM-SHA-256${ITERATIONS}:{}${}:{}",
        b64.encode(salt),
        b64.encode(stored),
        b64.encode(server)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recommended_roles_hold_exactly_their_grant() {
        let w = setup_sql("raw", "sluice_raw", Purpose::Write);
        assert!(w.contains("CREATE ROLE sluice_raw LOGIN NOSUPERUSER"));
        assert!(w.contains("CREATE SCHEMA IF NOT EXISTS raw AUTHORIZATION sluice_raw;"));
        assert!(
            !w.to_ascii_uppercase().contains("PASSWORD '"),
            "no password in the text"
        );
        let r = setup_sql("public", "sluice_reader", Purpose::Read);
        assert!(r.contains("GRANT SELECT ON ALL TABLES IN SCHEMA public TO sluice_reader;"));
        assert!(!r.contains("INSERT") && !r.contains("CREATE SCHEMA"));
        assert!(plain_name("raw_1") && !plain_name("Raw") && !plain_name("a;b") && !plain_name(""));
    }

    #[test]
    fn verifiers_have_postgres_shape_and_fresh_salts() {
        let a = scram_verifier("pencil").unwrap();
        let b = scram_verifier("pencil").unwrap();
        assert_ne!(a, b, "a fresh salt each time");
        assert!(a.starts_with("SCRAM-SHA-256$4096:"));
        assert!(!a.contains("pencil") && !a.contains('\''));
        // salt (16 bytes) : stored key (32) : server key (32), base64.
        let rest = a.strip_prefix("SCRAM-SHA-256$4096:").unwrap();
        let (salt, keys) = rest.split_once('$').unwrap();
        let (stored, server) = keys.split_once(':').unwrap();
        assert_eq!((salt.len(), stored.len(), server.len()), (24, 44, 44));
    }
}
