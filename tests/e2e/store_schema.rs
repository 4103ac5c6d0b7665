//! The store's two back ends have one schema: the SQLite migrations (`host/migrations/sqlite/`)
//! and the PostgreSQL ones (`host/migrations/postgres/`) give the same tables, columns (by type
//! family and nullability), primary keys, indexes and foreign keys, read back from each
//! database's own catalog after the migrations ran, on a real PostgreSQL.

use std::collections::BTreeSet;
use std::str::FromStr;

use serde_json::Value;
use sluice_tests::pg::pg;
use sqlx::{Connection, Row, SqliteConnection};

/// The one name PostgreSQL adds: SQLite's implicit `rowid`, made an identity column where the
/// store orders by insertion.
const ROWID: &str = "rowid";

fn family(declared: &str) -> &'static str {
    match declared.to_ascii_lowercase().as_str() {
        "integer" | "bigint" => "integer",
        "text" => "text",
        "blob" | "bytea" => "bytes",
        other => panic!("a column type the test does not know: {other}"),
    }
}

/// `describe` sorted, as lines: `column t.c integer not null`, `primary key t (a, b)`,
/// `index i on t (a, b)`, `foreign key t (a) -> u (b) on delete cascade`.
type Schema = BTreeSet<String>;

async fn sqlite_schema(file: &std::path::Path) -> Schema {
    let mut c = SqliteConnection::connect(&format!("sqlite://{}?mode=ro", file.display()))
        .await
        .unwrap();
    let mut out = Schema::new();
    let tables: Vec<String> = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' \
         AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_sqlx%' ESCAPE '\\'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect();
    for t in &tables {
        let mut pk: Vec<(i64, String)> = Vec::new();
        for r in sqlx::query("SELECT name, type, \"notnull\", pk FROM pragma_table_info($1)")
            .bind(t)
            .fetch_all(&mut c)
            .await
            .unwrap()
        {
            let (name, ty, notnull, key): (String, String, i64, i64) =
                (r.get(0), r.get(1), r.get(2), r.get(3));
            // A key column is never NULL in PostgreSQL; SQLite lets a non-integer one be.
            let null = if notnull == 1 || key > 0 {
                "not null"
            } else {
                "null"
            };
            out.insert(format!("column {t}.{name} {} {null}", family(&ty)));
            if key > 0 {
                pk.push((key, name));
            }
        }
        pk.sort();
        let cols: Vec<String> = pk.into_iter().map(|(_, n)| n).collect();
        out.insert(format!("primary key {t} ({})", cols.join(", ")));
        let mut fks: std::collections::BTreeMap<i64, (String, Vec<String>, Vec<String>, String)> =
            Default::default();
        for r in sqlx::query(
            "SELECT id, \"table\", \"from\", \"to\", on_delete FROM pragma_foreign_key_list($1) \
             ORDER BY id, seq",
        )
        .bind(t)
        .fetch_all(&mut c)
        .await
        .unwrap()
        {
            let e = fks
                .entry(r.get(0))
                .or_insert_with(|| (r.get(1), Vec::new(), Vec::new(), r.get::<String, _>(4)));
            e.1.push(r.get(2));
            e.2.push(r.get(3));
        }
        for (to, from, cols, on_delete) in fks.into_values() {
            out.insert(format!(
                "foreign key {t} ({}) -> {to} ({}) on delete {}",
                from.join(", "),
                cols.join(", "),
                on_delete.to_ascii_lowercase()
            ));
        }
    }
    for r in sqlx::query(
        "SELECT name, tbl_name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL",
    )
    .fetch_all(&mut c)
    .await
    .unwrap()
    {
        let (index, table): (String, String) = (r.get(0), r.get(1));
        let cols: Vec<String> =
            sqlx::query("SELECT name FROM pragma_index_info($1) ORDER BY seqno")
                .bind(&index)
                .fetch_all(&mut c)
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
        out.insert(format!("index {index} on {table} ({})", cols.join(", ")));
    }
    out
}

fn text(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_default().to_string()
}

async fn postgres_schema(db: &sluice_tests::pg::TestDb) -> (Schema, Vec<String>) {
    let mut out = Schema::new();
    let mut rowids = Vec::new();
    for r in db
        .rows(
            "SELECT table_name AS t, column_name AS c, data_type AS ty, is_nullable AS n, \
             is_identity AS id FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name NOT LIKE '\\_sqlx%'",
        )
        .await
    {
        let (t, c) = (text(&r, "t"), text(&r, "c"));
        if c == ROWID {
            assert_eq!(text(&r, "id"), "YES", "{t}.rowid is an identity column");
            rowids.push(t);
            continue;
        }
        let null = if text(&r, "n") == "NO" {
            "not null"
        } else {
            "null"
        };
        out.insert(format!("column {t}.{c} {} {null}", family(&text(&r, "ty"))));
    }
    // Keys and indexes from the catalog, columns in key order.
    let key_columns = |rel: &str, keys: &str| {
        format!(
            "(SELECT string_agg(a.attname, ', ' ORDER BY k.n) FROM unnest({keys}) \
             WITH ORDINALITY AS k(attnum, n) JOIN pg_attribute a \
             ON a.attrelid = {rel} AND a.attnum = k.attnum)"
        )
    };
    for r in db
        .rows(&format!(
            "SELECT c.contype AS kind, c.conrelid::regclass::text AS t, \
             c.confrelid::regclass::text AS r, {} AS cols, {} AS refs, c.confdeltype AS del \
             FROM pg_constraint c JOIN pg_namespace ns ON ns.oid = c.connamespace \
             WHERE ns.nspname = 'public' AND c.contype IN ('p', 'f') \
             AND c.conrelid::regclass::text NOT LIKE '\\_sqlx%'",
            key_columns("c.conrelid", "c.conkey"),
            key_columns("c.confrelid", "c.confkey"),
        ))
        .await
    {
        let (t, cols) = (text(&r, "t"), text(&r, "cols"));
        if text(&r, "kind") == "p" {
            out.insert(format!("primary key {t} ({cols})"));
        } else {
            let del = match text(&r, "del").as_str() {
                "c" => "cascade",
                "a" => "no action",
                other => panic!("an ON DELETE the test does not know: {other}"),
            };
            out.insert(format!(
                "foreign key {t} ({cols}) -> {} ({}) on delete {del}",
                text(&r, "r"),
                text(&r, "refs")
            ));
        }
    }
    for r in db
        .rows(&format!(
            "SELECT i.relname AS i, t.relname AS t, {} AS cols FROM pg_index x \
             JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid \
             JOIN pg_namespace ns ON ns.oid = t.relnamespace \
             WHERE ns.nspname = 'public' AND NOT x.indisprimary AND t.relname NOT LIKE '\\_sqlx%'",
            key_columns("t.oid", "x.indkey"),
        ))
        .await
    {
        out.insert(format!(
            "index {} on {} ({})",
            text(&r, "i"),
            text(&r, "t"),
            text(&r, "cols")
        ));
    }
    (out, rowids)
}

#[tokio::test]
async fn sqlite_and_postgresql_stores_have_the_same_schema() {
    let dir = tempfile::tempdir().unwrap();
    drop(sluice::store::Store::open(dir.path()).await.unwrap());
    let lite = sqlite_schema(&dir.path().join("sluice.db")).await;

    let db = pg().database().await;
    let options = sqlx::postgres::PgConnectOptions::from_str(&format!(
        "postgres://{}@{}/{}",
        db.user, db.authority, db.name
    ))
    .unwrap()
    .password(&db.password);
    let pool = sqlx::PgPool::connect_with(options).await.unwrap();
    let migrator = sluice::store::migrations::postgres();
    migrator.run(&pool).await.unwrap();
    // Applied once: a second run (another process starting) finds them all done.
    migrator.run(&pool).await.unwrap();
    let (post, rowids) = postgres_schema(&db).await;

    assert!(
        lite.len() > 100,
        "{} lines: the catalog reads found the schema",
        lite.len()
    );
    let only_lite: Vec<_> = lite.difference(&post).collect();
    let only_post: Vec<_> = post.difference(&lite).collect();
    assert!(
        only_lite.is_empty() && only_post.is_empty(),
        "the schemas differ\nonly in SQLite:\n  {}\nonly in PostgreSQL:\n  {}",
        only_lite
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  "),
        only_post
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
    // The tables whose rows the store reads back in insertion order (`ORDER BY rowid`).
    let mut rowids = rowids;
    rowids.sort();
    assert_eq!(rowids, ["run_streams", "webhook_deliveries"]);
}
