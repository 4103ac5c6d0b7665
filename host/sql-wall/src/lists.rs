//! The closed lists the walls decide by: functions a write may call, functions a read may not,
//! built-in type names, and SQLite's own functions.

/// Functions a destination's statements may call (by their final name part, unqualified or in
/// `pg_catalog`): pure built-ins for conversions, comparisons, aggregates and JSON. Anything else
/// (every user-defined function included) is refused.
pub(crate) const WRITE_FUNCTIONS: &[&str] = &[
    "abs",
    "array_agg",
    "avg",
    "bool_and",
    "bool_or",
    "ceil",
    "ceiling",
    "char_length",
    "coalesce",
    "concat",
    "count",
    "current_date",
    "current_time",
    "current_timestamp",
    "date",
    "date_trunc",
    "datetime",
    "dense_rank",
    "first_value",
    "floor",
    "greatest",
    "ifnull",
    "iif",
    "json",
    "json_agg",
    "json_array",
    "json_build_array",
    "json_build_object",
    "json_extract",
    "json_object",
    "jsonb_agg",
    "jsonb_build_array",
    "jsonb_build_object",
    "lag",
    "last_value",
    "lead",
    "least",
    "left",
    "length",
    "localtime",
    "localtimestamp",
    "lower",
    "ltrim",
    "max",
    "md5",
    "min",
    "now",
    "nullif",
    "rank",
    "replace",
    "right",
    "round",
    "row_number",
    "rtrim",
    "strftime",
    "string_agg",
    "substr",
    "substring",
    "sum",
    "to_json",
    "to_jsonb",
    "trim",
    "trunc",
    "typeof",
    "unixepoch",
    "upper",
];

/// Prefixes of functions a source's queries may not call, even inside a read-only session: they
/// act outside the query (sessions, locks, files, replication, server state) or run SQL text the
/// parser never saw.
pub(crate) const READ_DENIED_PREFIXES: &[&str] = &[
    "binary_upgrade_",
    "dblink",
    "lo_",
    "pg_advisory",
    "pg_backup_",
    "pg_cancel_",
    "pg_copy_",
    "pg_create_",
    "pg_drop_",
    "pg_export_",
    "pg_file",
    "pg_import_",
    "pg_log_",
    "pg_logical_",
    "pg_ls_",
    "pg_promote",
    "pg_read_",
    "pg_reload_",
    "pg_replication_",
    "pg_rotate_",
    "pg_start_",
    "pg_stat_reset",
    "pg_stop_",
    "pg_switch_",
    "pg_terminate_",
    "pg_try_advisory",
    "pg_wal_",
];

/// Functions a source's queries may not call (by their final name part, whatever the
/// qualification), besides [`READ_DENIED_PREFIXES`].
pub(crate) const READ_DENIED: &[&str] = &[
    "currval",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "database_to_xml",
    "database_to_xml_and_xmlschema",
    "database_to_xmlschema",
    "edit",
    "fts3_tokenizer",
    "lastval",
    "load_extension",
    "nextval",
    "pg_current_xact_id",
    "pg_notify",
    "query_to_xml",
    "query_to_xml_and_xmlschema",
    "query_to_xmlschema",
    "readfile",
    "schema_to_xml",
    "schema_to_xml_and_xmlschema",
    "schema_to_xmlschema",
    "set_config",
    "setval",
    "table_to_xml",
    "table_to_xml_and_xmlschema",
    "table_to_xmlschema",
    "ts_stat",
    "txid_current",
    "writefile",
];

/// Whether a read may call the function named `f` (final part, lower case).
pub(crate) fn read_denied(f: &str) -> bool {
    READ_DENIED.contains(&f) || READ_DENIED_PREFIXES.iter().any(|p| f.starts_with(p))
}

/// PostgreSQL type names sqlparser keeps as custom names that are built in (and call no
/// function but the type's own): what a write may use besides the types sqlparser knows.
pub(crate) const PG_BUILTIN_TYPES: &[&str] = &[
    "bigserial",
    "bool",
    "bpchar",
    "cidr",
    "citext",
    "float4",
    "float8",
    "inet",
    "int2",
    "int4",
    "int8",
    "jsonb",
    "macaddr",
    "money",
    "serial",
    "serial2",
    "serial4",
    "serial8",
    "smallserial",
    "timestamptz",
    "timetz",
    "tsquery",
    "tsvector",
    "varbit",
    "xml",
];

/// Index access methods built into PostgreSQL.
pub(crate) const PG_INDEX_METHODS: &[&str] = &["btree", "hash", "gin", "gist", "brin", "spgist"];

/// SQLite's own functions (core, date and time, aggregate, window, math, JSON), the only ones
/// its authorizer lets a session call. Extension loading, the CLI's file functions and
/// application-defined functions (`regexp` included) are not among them.
pub(crate) const SQLITE_FUNCTIONS: &[&str] = &[
    // The JSON operators are functions to SQLite.
    "->",
    "->>",
    "abs",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atan2",
    "atanh",
    "avg",
    "ceil",
    "ceiling",
    "changes",
    "char",
    "coalesce",
    "concat",
    "concat_ws",
    "cos",
    "cosh",
    "count",
    "cume_dist",
    "date",
    "datetime",
    "degrees",
    "dense_rank",
    "exp",
    "first_value",
    "floor",
    "format",
    "glob",
    "group_concat",
    "hex",
    "ifnull",
    "iif",
    "instr",
    "json",
    "json_array",
    "json_array_length",
    "json_each",
    "json_error_position",
    "json_extract",
    "json_group_array",
    "json_group_object",
    "json_insert",
    "json_object",
    "json_patch",
    "json_pretty",
    "json_quote",
    "json_remove",
    "json_replace",
    "json_set",
    "json_tree",
    "json_type",
    "json_valid",
    "jsonb",
    "jsonb_array",
    "jsonb_extract",
    "jsonb_group_array",
    "jsonb_group_object",
    "jsonb_insert",
    "jsonb_object",
    "jsonb_patch",
    "jsonb_remove",
    "jsonb_replace",
    "jsonb_set",
    "julianday",
    "lag",
    "last_insert_rowid",
    "last_value",
    "lead",
    "length",
    "like",
    "likelihood",
    "likely",
    "ln",
    "log",
    "log10",
    "log2",
    "lower",
    "ltrim",
    "max",
    "min",
    "mod",
    "nth_value",
    "ntile",
    "nullif",
    "octet_length",
    "percent_rank",
    "pi",
    "pow",
    "power",
    "printf",
    "quote",
    "radians",
    "random",
    "randomblob",
    "rank",
    "replace",
    "round",
    "row_number",
    "rtrim",
    "sign",
    "sin",
    "sinh",
    "soundex",
    "sqlite_source_id",
    "sqlite_version",
    "sqrt",
    "strftime",
    "string_agg",
    "substr",
    "substring",
    "sum",
    "tan",
    "tanh",
    "time",
    "timediff",
    "total",
    "total_changes",
    "trim",
    "trunc",
    "typeof",
    "unhex",
    "unicode",
    "unistr",
    "unixepoch",
    "unlikely",
    "upper",
    "zeroblob",
];

/// Functions SQLite calls inside its own `ALTER TABLE` (users cannot call them): allowed while a
/// granted schema change is being compiled. `sqlite_rename_table` is not among them.
pub(crate) const SQLITE_DDL_FUNCTIONS: &[&str] = &[
    "sqlite_drop_column",
    "sqlite_rename_column",
    "sqlite_rename_quotefix",
    "sqlite_rename_test",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_sorted_lower_case_and_without_repeats() {
        for list in [
            WRITE_FUNCTIONS,
            READ_DENIED,
            READ_DENIED_PREFIXES,
            PG_BUILTIN_TYPES,
            SQLITE_FUNCTIONS,
            SQLITE_DDL_FUNCTIONS,
        ] {
            let mut sorted = list.to_vec();
            sorted.sort();
            sorted.dedup();
            assert_eq!(sorted, list, "keep the list sorted and unique");
            assert!(
                list.iter()
                    .all(|f| f.chars().all(|c| !c.is_ascii_uppercase()))
            );
        }
    }

    #[test]
    fn reads_deny_by_prefix_and_name() {
        assert!(read_denied("pg_advisory_xact_lock"));
        assert!(read_denied("set_config"));
        assert!(read_denied("lo_import"));
        assert!(!read_denied("lower"));
        assert!(!read_denied("pg_sleep"));
    }
}
