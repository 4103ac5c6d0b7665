//! Databases through the host: `sluice:connector/sql`.
//!
//! A connector opens a database by the name its manifest requests (`capabilities.sql`); the
//! operator's grant says which database that is and what the connector may do there. The
//! connector never holds a socket or a password: the host runs each statement after checking it
//! against the grant, and a refused statement comes back as [`SqlError::Refused`].
//!
//! ```text
//! let db = sluice_sdk::sql::Connection::open("db")?;
//! let mut rows = db.query("SELECT id, name FROM users WHERE id > $1", &[Value::Int(0)])?;
//! while let Some(jsonl) = rows.next(1000)? { … }
//! ```
//!
//! Only inside the sandbox: natively every call fails with [`SqlError::Unavailable`].

use std::fmt;

/// Which SQL the database speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL: parameters `$1`, `$2`…
    Postgres,
    /// SQLite: parameters `?1`, `?2`…
    Sqlite,
}

/// A parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `NULL`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A double.
    Float(f64),
    /// Text (PostgreSQL: cast it, `$1::timestamptz`, where the type cannot be inferred).
    Text(String),
    /// JSON text.
    Json(String),
    /// Bytes.
    Bytes(Vec<u8>),
}

/// Why a statement did not run, or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlError {
    /// The grant does not allow it (nothing reached the database); the text names the rule.
    Refused(String),
    /// The database returned an error.
    Database {
        /// SQLSTATE (PostgreSQL) or result code (SQLite).
        code: String,
        /// The database's message.
        message: String,
    },
    /// The statement ran past its deadline and was cancelled.
    Timeout(String),
    /// The database cannot be reached.
    Unavailable(String),
    /// The call itself was wrong.
    Invalid(String),
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SqlError::Refused(m) => write!(f, "refused by the host: {m}"),
            SqlError::Database { code, message } => write!(f, "database error {code}: {message}"),
            SqlError::Timeout(m) => write!(f, "timeout: {m}"),
            SqlError::Unavailable(m) => write!(f, "database unavailable: {m}"),
            SqlError::Invalid(m) => write!(f, "invalid call: {m}"),
        }
    }
}

impl std::error::Error for SqlError {}

impl From<SqlError> for crate::Error {
    /// Unreachable databases and timeouts may pass; a refusal, a database error or a wrong call
    /// will not go away by retrying. Authentication failures (SQLSTATE 28…) are the operator's.
    fn from(e: SqlError) -> Self {
        match &e {
            SqlError::Unavailable(m) if m.contains("password") || m.contains("authentication") => {
                crate::Error::Auth(e.to_string())
            }
            SqlError::Unavailable(_) | SqlError::Timeout(_) => {
                crate::Error::Transient(e.to_string())
            }
            SqlError::Database { code, .. } if code.starts_with("28") => {
                crate::Error::Auth(e.to_string())
            }
            SqlError::Database { code, .. } if code.starts_with("40") || code.starts_with("08") => {
                crate::Error::Transient(e.to_string())
            }
            _ => crate::Error::Fatal(e.to_string()),
        }
    }
}

/// Quote `name` as an identifier (both dialects): `users` → `"users"`, `a"b` → `"a""b"`.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quote `text` as a string literal: `it's` → `'it''s'`.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::{Dialect, SqlError, Value};
    use crate::glue::source_world::sluice::connector::sql as w;

    fn from_wit(e: w::SqlError) -> SqlError {
        match e {
            w::SqlError::Refused(m) => SqlError::Refused(m),
            w::SqlError::Database(d) => SqlError::Database {
                code: d.code,
                message: d.message,
            },
            w::SqlError::Timeout(m) => SqlError::Timeout(m),
            w::SqlError::Unavailable(m) => SqlError::Unavailable(m),
            w::SqlError::Invalid(m) => SqlError::Invalid(m),
        }
    }

    fn to_wit(v: &Value) -> w::Value {
        match v {
            Value::Null => w::Value::Null,
            Value::Bool(b) => w::Value::Boolean(*b),
            Value::Int(i) => w::Value::Integer(*i),
            Value::Float(f) => w::Value::Float(*f),
            Value::Text(s) => w::Value::Text(s.clone()),
            Value::Json(s) => w::Value::Json(s.clone()),
            Value::Bytes(b) => w::Value::Bytes(b.clone()),
        }
    }

    pub struct Connection(w::Connection);
    pub struct Rows(w::Rows);

    impl Connection {
        pub fn open(name: &str) -> Result<Self, SqlError> {
            w::open(name).map(Connection).map_err(from_wit)
        }
        pub fn dialect(&self) -> Dialect {
            match self.0.dialect() {
                w::Dialect::Postgres => Dialect::Postgres,
                w::Dialect::Sqlite => Dialect::Sqlite,
            }
        }
        pub fn scope(&self) -> Option<String> {
            self.0.scope()
        }
        pub fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, SqlError> {
            let p: Vec<_> = params.iter().map(to_wit).collect();
            self.0.query(sql, &p).map(Rows).map_err(from_wit)
        }
        pub fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, SqlError> {
            let p: Vec<_> = params.iter().map(to_wit).collect();
            self.0.execute(sql, &p).map_err(from_wit)
        }
        pub fn load(
            &self,
            table: &str,
            columns: &[String],
            records: &[u8],
        ) -> Result<u64, SqlError> {
            self.0.load(table, columns, records).map_err(from_wit)
        }
        pub fn begin(&self) -> Result<(), SqlError> {
            self.0.begin().map_err(from_wit)
        }
        pub fn commit(&self) -> Result<(), SqlError> {
            self.0.commit().map_err(from_wit)
        }
        pub fn rollback(&self) -> Result<(), SqlError> {
            self.0.rollback().map_err(from_wit)
        }
    }

    impl Rows {
        pub fn next(&mut self, max: u32) -> Result<Option<Vec<u8>>, SqlError> {
            self.0.next(max).map_err(from_wit)
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::{Dialect, SqlError, Value};

    fn unavailable<T>() -> Result<T, SqlError> {
        Err(SqlError::Unavailable(
            "databases are reached through the sluice host; run the connector in sluice".into(),
        ))
    }

    pub struct Connection(());
    pub struct Rows(());

    impl Connection {
        pub fn open(_: &str) -> Result<Self, SqlError> {
            unavailable()
        }
        pub fn dialect(&self) -> Dialect {
            Dialect::Postgres
        }
        pub fn scope(&self) -> Option<String> {
            None
        }
        pub fn query(&self, _: &str, _: &[Value]) -> Result<Rows, SqlError> {
            unavailable()
        }
        pub fn execute(&self, _: &str, _: &[Value]) -> Result<u64, SqlError> {
            unavailable()
        }
        pub fn load(&self, _: &str, _: &[String], _: &[u8]) -> Result<u64, SqlError> {
            unavailable()
        }
        pub fn begin(&self) -> Result<(), SqlError> {
            unavailable()
        }
        pub fn commit(&self) -> Result<(), SqlError> {
            unavailable()
        }
        pub fn rollback(&self) -> Result<(), SqlError> {
            unavailable()
        }
    }

    impl Rows {
        pub fn next(&mut self, _: u32) -> Result<Option<Vec<u8>>, SqlError> {
            unavailable()
        }
    }
}

/// A session with one granted database.
pub struct Connection(imp::Connection);

/// The rows of a query, streamed in batches of newline-delimited JSON objects.
pub struct Rows(imp::Rows);

impl Connection {
    /// Open the database the grant binds to `name`.
    pub fn open(name: &str) -> Result<Self, SqlError> {
        imp::Connection::open(name).map(Connection)
    }

    /// Its dialect.
    pub fn dialect(&self) -> Dialect {
        self.0.dialect()
    }

    /// Where this session may write (schema or table prefix); `None` when read-only.
    pub fn scope(&self) -> Option<String> {
        self.0.scope()
    }

    /// Run a query; read its rows with [`Rows::next`].
    pub fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, SqlError> {
        self.0.query(sql, params).map(Rows)
    }

    /// Run a query and parse every row: for small results (catalog queries).
    pub fn query_all(
        &self,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, SqlError> {
        let mut rows = self.query(sql, params)?;
        let mut out = Vec::new();
        while let Some(batch) = rows.next(1000)? {
            for line in batch.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let v = serde_json::from_slice(line)
                    .map_err(|e| SqlError::Invalid(format!("a row is not a JSON object: {e}")))?;
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Run a statement that returns no rows; how many rows it affected.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<u64, SqlError> {
        self.0.execute(sql, params)
    }

    /// Bulk-load newline-delimited JSON records into `columns` of `table` (each column takes
    /// the record's top-level field of that name).
    pub fn load(&self, table: &str, columns: &[String], records: &[u8]) -> Result<u64, SqlError> {
        self.0.load(table, columns, records)
    }

    /// Start a transaction.
    pub fn begin(&self) -> Result<(), SqlError> {
        self.0.begin()
    }

    /// Commit it.
    pub fn commit(&self) -> Result<(), SqlError> {
        self.0.commit()
    }

    /// Roll it back.
    pub fn rollback(&self) -> Result<(), SqlError> {
        self.0.rollback()
    }
}

impl Rows {
    /// Up to `max` rows as newline-delimited JSON; `None` when every row was read.
    pub fn next(&mut self, max: u32) -> Result<Option<Vec<u8>>, SqlError> {
        self.0.next(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_doubles_the_quote_character() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn errors_map_to_what_the_operator_must_do() {
        let e: crate::Error = SqlError::Timeout("slow".into()).into();
        assert!(matches!(e, crate::Error::Transient(_)));
        let e: crate::Error = SqlError::Refused("no".into()).into();
        assert!(matches!(e, crate::Error::Fatal(_)));
        let e: crate::Error = SqlError::Database {
            code: "28P01".into(),
            message: "password authentication failed".into(),
        }
        .into();
        assert!(matches!(e, crate::Error::Auth(_)));
    }
}
