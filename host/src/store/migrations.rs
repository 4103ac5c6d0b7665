//! The store's schema, one migration list per back end, embedded in the binary
//! (`host/migrations/sqlite/`, `host/migrations/postgres/`, one list naming each file once; a
//! test holds it to both folders). Both back ends get the same tables, columns, keys
//! and indexes, each in its own dialect: sluice-tests' `store_schema` compares them on a real
//! PostgreSQL. sqlx applies each migration once and checks the checksums of those applied
//! before. Built by hand rather than by `sqlx::migrate!`, so the build needs no sqlx proc-macro
//! (which compiles sqlx and SQLite a second time).

use sqlx::migrate::{Migration, MigrationType, Migrator};

/// One migration: its version, its description (the file name's rest) and its SQL.
type Step = (i64, &'static str, &'static str);

/// Both lists from one: each migration named once, its SQLite and PostgreSQL forms found under
/// the same file name in each back end's folder.
macro_rules! migrations {
    ($($version:literal $file:literal $description:literal,)*) => {
        /// SQLite's migrations, in order.
        pub const SQLITE: &[Step] = &[$((
            $version,
            $description,
            include_str!(concat!("../../migrations/sqlite/", $file)),
        ),)*];
        /// PostgreSQL's migrations, in order: the same versions as [`SQLITE`].
        pub const POSTGRES: &[Step] = &[$((
            $version,
            $description,
            include_str!(concat!("../../migrations/postgres/", $file)),
        ),)*];
    };
}

migrations! {
    1 "0001_runs_and_state.sql" "runs and state",
    2 "0002_run_events.sql" "run events",
    3 "0003_boundary.sql" "boundary",
    4 "0004_installed_connectors.sql" "installed connectors",
    5 "0005_api_keys.sql" "api keys",
    6 "0006_workspaces.sql" "workspaces",
    7 "0007_access_policies.sql" "access policies",
    8 "0008_webhooks.sql" "webhooks",
    9 "0009_run_queue.sql" "run queue",
}

fn migrator(steps: &[Step]) -> Migrator {
    use sqlx::SqlSafeStr;
    Migrator::with_migrations(
        steps
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    (*description).into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    sql.starts_with("-- no-transaction"),
                )
            })
            .collect(),
    )
}

/// The migrator of the SQLite store.
pub fn sqlite() -> Migrator {
    migrator(SQLITE)
}

/// The migrator of the PostgreSQL store.
pub fn postgres() -> Migrator {
    migrator(POSTGRES)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file in a back end's folder is embedded, in order, as it is on disk (its version
    /// and description as sqlx reads them from the name), so none is forgotten.
    #[test]
    fn the_embedded_migrations_are_the_migrations_folders() {
        for (folder, steps) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(folder);
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            files.sort();
            assert_eq!(files.len(), steps.len(), "{folder}: {files:?}");
            for (file, (version, description, sql)) in files.iter().zip(steps) {
                let (v, rest) = file.split_once('_').unwrap();
                assert_eq!(v.parse::<i64>().unwrap(), *version, "{folder}/{file}");
                assert_eq!(
                    rest.trim_end_matches(".sql").replace('_', " "),
                    *description
                );
                assert_eq!(
                    std::fs::read_to_string(dir.join(file)).unwrap(),
                    *sql,
                    "{folder}/{file}"
                );
            }
        }
    }
}
