use super::*;

/// A database file with a table of ours, a table outside the prefix, a view and a trigger that
/// reach outside, made before the wall goes up (as another writer of the file would).
struct Db(NonNull<ffi::sqlite3>, std::path::PathBuf, bool);

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Db {
    fn open(path: &std::path::Path) -> Db {
        let mut db = null_mut();
        let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
        // SAFETY: opening a database file.
        let rc = unsafe { ffi::sqlite3_open(c.as_ptr(), &mut db) };
        assert_eq!(rc, ffi::SQLITE_OK);
        Db(NonNull::new(db).unwrap(), path.to_path_buf(), false)
    }

    fn new() -> Db {
        let path = std::env::temp_dir().join(format!(
            "sluice-wall-{}-{}.db",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        let mut db = Db::open(&path);
        db.2 = true;
        db.exec(
            "CREATE TABLE victims (x UNIQUE);
             INSERT INTO victims VALUES (1);
             CREATE TABLE raw_a (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT UNIQUE);
             CREATE TABLE raw_trap (x);
             CREATE VIEW raw_view AS SELECT * FROM victims;
             CREATE TRIGGER raw_tr AFTER INSERT ON raw_trap BEGIN DELETE FROM victims; END;
             CREATE TABLE other_seq (id INTEGER PRIMARY KEY AUTOINCREMENT);
             INSERT INTO other_seq VALUES (NULL);
             ANALYZE;",
        )
        .unwrap();
        db
    }

    fn exec(&self, sql: &str) -> Result<(), String> {
        let c = std::ffi::CString::new(sql).unwrap();
        let mut err = null_mut();
        // SAFETY: a valid connection and statement text.
        let rc =
            unsafe { ffi::sqlite3_exec(self.0.as_ptr(), c.as_ptr(), None, null_mut(), &mut err) };
        if rc == ffi::SQLITE_OK {
            return Ok(());
        }
        // SAFETY: SQLite's message, freed after copying.
        let msg = unsafe { text(err) }.unwrap_or_default().to_string();
        unsafe { ffi::sqlite3_free(err as *mut c_void) };
        Err(msg)
    }

    /// Rows in `table`, read on a connection of its own (without the wall).
    fn count(&self, table: &str) -> i64 {
        let other = Db::open(&self.1);
        other.count_here(table)
    }

    fn count_here(&self, table: &str) -> i64 {
        let sql = std::ffi::CString::new(format!("SELECT count(*) FROM {table}")).unwrap();
        let mut stmt = null_mut();
        // SAFETY: as above; reads one integer.
        unsafe {
            assert_eq!(
                ffi::sqlite3_prepare_v2(self.0.as_ptr(), sql.as_ptr(), -1, &mut stmt, null_mut()),
                ffi::SQLITE_OK
            );
            assert_eq!(ffi::sqlite3_step(stmt), ffi::SQLITE_ROW);
            let n = ffi::sqlite3_column_int64(stmt, 0);
            ffi::sqlite3_finalize(stmt);
            n
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        // SAFETY: closing what `open` opened.
        unsafe { ffi::sqlite3_close(self.0.as_ptr()) };
        if self.2 {
            let _ = std::fs::remove_file(&self.1);
        }
    }
}

fn walled(scope: Scope) -> (Db, Wall) {
    let db = Db::new();
    // SAFETY: a valid connection used by this thread only.
    let wall = unsafe { install(db.0, scope) }.unwrap();
    (db, wall)
}

fn one(db: &Db, wall: &Wall, sql: &str) -> Result<(), NotOne> {
    wall.begin_statement(std::time::Duration::from_secs(5));
    // SAFETY: as above.
    unsafe { prepare_one(db.0, sql, Some(wall)) }
}

#[track_caller]
fn refused(db: &Db, wall: &Wall, sql: &str) -> String {
    match one(db, wall, sql) {
        Err(NotOne::Refused(why)) => why,
        other => panic!("{sql}: expected the authorizer to refuse, got {other:?}"),
    }
}

#[test]
fn a_write_session_changes_only_its_own_tables() {
    let (db, wall) = walled(Scope::Write("raw_".into()));
    for ok in [
        "CREATE TABLE IF NOT EXISTS raw_b (id INTEGER PRIMARY KEY, t TEXT, j TEXT)",
        "CREATE INDEX raw_b_t ON raw_b (t)",
        "INSERT INTO raw_b (id, t) VALUES (1, 'a')",
        "INSERT OR REPLACE INTO raw_b (id, t) SELECT id, t FROM raw_b ORDER BY rowid",
        "UPDATE raw_b SET t = upper(t) WHERE id IN (SELECT id FROM raw_b)",
        "SELECT count(*), json_extract(j, '$.a') FROM raw_b",
        "ALTER TABLE raw_b ADD COLUMN z TEXT",
        "ALTER TABLE raw_b DROP COLUMN z",
        "DELETE FROM raw_b",
        "DROP INDEX raw_b_t",
        "DROP TABLE raw_b",
        "INSERT INTO raw_a (v) VALUES ('x')",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3) SELECT * FROM c",
        "BEGIN IMMEDIATE",
        "COMMIT",
    ] {
        // Compiled and run: DDL must really work under the wall.
        assert_eq!(one(&db, &wall, ok), Ok(()), "{ok}");
        db.exec(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for (bad, says) in [
        ("SELECT count(*) FROM victims", "victims"),
        ("DELETE FROM victims", "victims"),
        ("SELECT * FROM raw_view", "victims"),
        ("INSERT INTO raw_trap VALUES (1)", "raw_tr"),
        ("ATTACH DATABASE '/tmp/x.db' AS x", "ATTACH"),
        ("PRAGMA writable_schema = 1", "PRAGMA"),
        ("SELECT * FROM pragma_database_list", "pragma_database_list"),
        ("SELECT load_extension('x')", "load_extension"),
        ("CREATE TEMP TABLE raw_t (x)", "temp"),
        ("CREATE VIEW raw_v AS SELECT 1", "VIEW"),
        (
            "CREATE TRIGGER raw_t2 AFTER INSERT ON raw_a BEGIN SELECT 1; END",
            "TRIGGER",
        ),
        ("CREATE TABLE victims2 (x)", "victims2"),
        ("ALTER TABLE raw_a RENAME TO victims3", "renaming"),
        ("ALTER TABLE raw_a RENAME COLUMN v TO w", "renaming"),
        ("UPDATE sqlite_sequence SET seq = 0", "sqlite_sequence"),
        ("SELECT sql FROM sqlite_master", "sqlite_master"),
        ("CREATE VIRTUAL TABLE raw_f USING fts5(x)", "VIRTUAL"),
        ("ANALYZE", "ANALYZE"),
        ("SAVEPOINT s", "SAVEPOINT"),
    ] {
        let why = refused(&db, &wall, bad);
        assert!(why.contains(says), "{bad}: {why}");
    }
    // Some actions are only asked for when the statement runs: VACUUM INTO attaches its target.
    let copy = std::env::temp_dir().join(format!("sluice-wall-vacuum-{}.db", std::process::id()));
    let e = db
        .exec(&format!("VACUUM INTO '{}'", copy.display()))
        .unwrap_err();
    assert!(
        e.contains("authoriz") || e.contains("too many attached"),
        "{e}"
    );
    assert!(!copy.exists());
    assert_eq!(db.count("victims"), 1);
}

#[test]
fn a_read_session_only_reads_the_granted_file() {
    let (db, wall) = walled(Scope::Read);
    for ok in [
        "SELECT * FROM victims",
        "SELECT count(*) FROM raw_view",
        "SELECT * FROM json_each('[1,2]')",
        "SELECT lower(v), length(v) FROM raw_a",
        "BEGIN DEFERRED",
        "COMMIT",
    ] {
        assert_eq!(one(&db, &wall, ok), Ok(()), "{ok}");
    }
    for (bad, says) in [
        ("DELETE FROM victims", "DELETE"),
        ("INSERT INTO raw_a (v) VALUES ('x')", "INSERT"),
        ("CREATE TABLE t (x)", "allows queries only"),
        ("ATTACH DATABASE '/tmp/x.db' AS x", "ATTACH"),
        ("SELECT * FROM dbstat", "dbstat"),
        ("SELECT * FROM pragma_database_list", "pragma"),
        ("PRAGMA database_list", "PRAGMA"),
        ("SELECT load_extension('x')", "load_extension"),
        ("SELECT fts3_tokenizer('simple')", "fts3_tokenizer"),
    ] {
        let why = refused(&db, &wall, bad);
        assert!(why.contains(says), "{bad}: {why}");
    }
}

#[test]
fn only_one_statement_is_ever_compiled() {
    let (db, wall) = walled(Scope::Write("raw_".into()));
    assert_eq!(one(&db, &wall, "SELECT 1; -- done\n /* really */ "), Ok(()));
    assert_eq!(one(&db, &wall, "SELECT 1; SELECT 2"), Err(NotOne::Several));
    assert_eq!(
        one(&db, &wall, "SELECT X'00'; ATTACH DATABASE 'x.db' AS s"),
        Err(NotOne::Several)
    );
    assert_eq!(one(&db, &wall, "  -- nothing\n"), Err(NotOne::Empty));
    assert!(matches!(one(&db, &wall, "SELEC 1"), Err(NotOne::Error(_))));
}

#[test]
fn the_connection_is_hardened() {
    let (db, _wall) = walled(Scope::Write("raw_".into()));
    // No attached database can exist, whatever the authorizer says: the limit is 0.
    // SAFETY: reading a limit.
    let attached = unsafe { ffi::sqlite3_limit(db.0.as_ptr(), ffi::SQLITE_LIMIT_ATTACHED, -1) };
    assert_eq!(attached, 0);
    // Double-quoted strings are identifiers only: no silent fallback to a string literal.
    assert!(db.exec("SELECT \"no_such_column\" FROM raw_a").is_err());
}

#[test]
fn the_wall_outlives_nothing_it_guards() {
    // The state is released by the connection's close: run many to let a leak show in tools.
    for _ in 0..100 {
        let (db, wall) = walled(Scope::Read);
        drop(db);
        // The host's handle still works after the connection is gone.
        assert_eq!(wall.take_refusal(), None);
    }
}

#[test]
fn what_reviewers_found_is_held() {
    let (db, wall) = walled(Scope::Write("raw_".into()));
    // A NUL ends the text for SQLite, not for the driver (which would spin on it).
    assert_eq!(
        one(&db, &wall, "CREATE TABLE raw_n (x)\0"),
        Err(NotOne::Nul)
    );
    assert_eq!(
        one(&db, &wall, "SELECT 1;\0DELETE FROM victims"),
        Err(NotOne::Nul)
    );
    // A CREATE TABLE … AS SELECT reads nothing of SQLite's own through the change's allowance.
    for bad in [
        "CREATE TABLE raw_leak AS SELECT type, name, sql FROM sqlite_master",
        "CREATE TABLE raw_leak2 AS SELECT * FROM sqlite_sequence",
        "SELECT * FROM temp.sqlite_master",
        "REINDEX sqlite_autoindex_victims_1",
    ] {
        refused(&db, &wall, bad);
    }
    // Granted changes still work where SQLite keeps statistics and sequences.
    for ok in [
        "CREATE TABLE raw_s (id INTEGER PRIMARY KEY AUTOINCREMENT, v UNIQUE)",
        "REINDEX sqlite_autoindex_raw_s_1",
        "DROP TABLE raw_s",
        "DROP TABLE raw_a",
    ] {
        assert_eq!(one(&db, &wall, ok), Ok(()), "{ok}");
        db.exec(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn a_schema_change_names_its_tables_and_their_defaults_are_judged_by_sqlite() {
    let (db, wall) = walled(Scope::Write("raw_".into()));
    let crash =
        "CREATE TABLE raw_crash (x, y DEFAULT (sqlite_drop_column(0, 'CREATE TABLE t(a,b)', -1)))";
    // SQLite never asks the authorizer about a default: the statement compiles…
    assert_eq!(one(&db, &wall, crash), Ok(()));
    // …but it says which table it creates, so the host can judge the defaults it would hold.
    assert_eq!(wall.touched_tables(), vec!["raw_crash".to_string()]);
    assert_eq!(
        one(&db, &wall, "ALTER TABLE raw_trap ADD COLUMN z DEFAULT 1"),
        Ok(())
    );
    assert_eq!(wall.touched_tables(), vec!["raw_trap".to_string()]);
    // The trigger on it reaches outside: refused, and no table is touched.
    assert!(one(&db, &wall, "INSERT INTO raw_trap VALUES (1)").is_err());
    assert!(wall.touched_tables().is_empty());
    for bad in [
        "sqlite_drop_column(0, 'CREATE TABLE t(a,b)', -1)",
        "sqlite_rename_test('x', 'y', 'z', 0, 0)",
        "load_extension('/tmp/x')",
        "(SELECT count(*) FROM victims)",
        "1); ATTACH 'x.db' AS x; SELECT (1",
        "fts3_tokenizer('simple')",
    ] {
        // SAFETY: a valid connection, on this thread.
        let r = unsafe { check_default(db.0, &wall, bad) };
        assert!(r.is_err(), "{bad} passed as a default");
    }
    for good in [
        "0",
        "'x'",
        "NULL",
        "CURRENT_TIMESTAMP",
        "datetime('now')",
        "-1.5",
        "X'00'",
        "(1 + 2)",
    ] {
        // SAFETY: as above.
        let r = unsafe { check_default(db.0, &wall, good) };
        assert_eq!(r, Ok(()), "{good}");
    }
    // The wall is back to the connector's rules afterwards.
    refused(&db, &wall, "DELETE FROM victims");
}

#[test]
fn a_statement_past_its_deadline_is_interrupted() {
    let (db, wall) = walled(Scope::Read);
    let forever =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c";
    wall.begin_statement(std::time::Duration::from_millis(100));
    let started = std::time::Instant::now();
    let e = db.exec(forever).unwrap_err();
    assert!(e.contains("interrupt"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn a_tables_definitions_are_judged_by_replaying_them() {
    let ok = [
        "CREATE TABLE raw_t (id INTEGER PRIMARY KEY, x TEXT CHECK (length(x) < 10), y AS (upper(x)))".to_string(),
        "CREATE INDEX raw_t_x ON raw_t (lower(x)) WHERE id > 0".to_string(),
    ];
    assert_eq!(judge_definitions(&ok), Ok(()));
    for bad in [
        "CREATE TABLE raw_t (x, g AS (sqlite_drop_column(100000000, 'CREATE TABLE t(x)', 0)))",
        "CREATE TABLE raw_t (x CHECK (sqlite_rename_test('a', 'b', 'c', 0, 0)))",
        "CREATE TABLE raw_t (x CHECK (load_extension('/tmp/x') IS NULL))",
        "CREATE VIRTUAL TABLE raw_t USING fts5(x)",
        "CREATE TABLE raw_t (x); ATTACH 'x.db' AS x",
    ] {
        assert!(judge_definitions(&[bad.to_string()]).is_err(), "{bad}");
    }
    assert!(
        judge_definitions(&[
            "CREATE TABLE raw_t (x)".into(),
            "CREATE INDEX raw_i ON raw_t (sqlite_rename_test('a', 'b', 'c', 0, 0))".into(),
        ])
        .is_err()
    );
    // What `ALTER TABLE … ADD COLUMN … AS` leaves behind (SQLite resolved it without its
    // authorizer) is judged on the table's text as SQLite keeps it.
    let (db, wall) = walled(Scope::Write("raw_".into()));
    let alter = "ALTER TABLE raw_a ADD COLUMN g AS (sqlite_drop_column(100000000, 'CREATE TABLE raw_a(x)', 0))";
    assert_eq!(one(&db, &wall, alter), Ok(()));
    assert_eq!(wall.touched_tables(), vec!["raw_a".to_string()]);
}
