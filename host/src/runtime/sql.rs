//! The `sql` interface: the connector's handles on the sessions of its granted databases.
//! Every check lives in [`crate::capability::sql`]; this module only converts at the wall.

use wasmtime::component::Resource;

use super::bindings::sql;
use super::sandbox::ConnectorState;
use crate::capability::sql::{Dialect, Rows, Session, SqlError, Value};

fn to_wit(e: SqlError) -> sql::SqlError {
    match e {
        SqlError::Refused(m) => sql::SqlError::Refused(m),
        SqlError::Database { code, message } => {
            sql::SqlError::Database(sql::DatabaseError { code, message })
        }
        SqlError::Timeout(m) => sql::SqlError::Timeout(m),
        SqlError::Unavailable(m) => sql::SqlError::Unavailable(m),
        SqlError::Invalid(m) => sql::SqlError::Invalid(m),
    }
}

fn from_wit(v: sql::Value) -> Value {
    match v {
        sql::Value::Null => Value::Null,
        sql::Value::Boolean(b) => Value::Bool(b),
        sql::Value::Integer(i) => Value::Int(i),
        sql::Value::Float(f) => Value::Float(f),
        sql::Value::Text(s) => Value::Text(s),
        sql::Value::Json(s) => Value::Json(s),
        sql::Value::Bytes(b) => Value::Bytes(b),
    }
}

fn gone() -> sql::SqlError {
    sql::SqlError::Invalid("the handle is no longer valid".into())
}

impl ConnectorState {
    /// Record the refusal to open `name` and say why to the connector.
    fn refuse_open(&self, name: &str, msg: String) -> sql::SqlError {
        self.events().refused(
            self.name(),
            crate::boundary::events::Capability::Sql,
            &format!("open {name}"),
            &msg,
        );
        sql::SqlError::Refused(msg)
    }
}

impl sql::Host for ConnectorState {
    async fn open(&mut self, name: String) -> Result<Resource<Session>, sql::SqlError> {
        let Some(db) = self.database(&name) else {
            return Err(self.refuse_open(
                &name,
                format!(
                    "database `{name}` is not granted to this connector (add it to the \
                     connection's `grant.sql`)"
                ),
            ));
        };
        let limit = crate::boundary::limits::SQL_SESSIONS;
        if self.sql_open >= limit {
            return Err(self.refuse_open(
                &name,
                format!(
                    "{limit} SQL sessions are open already, the most one connector may hold; \
                     close one (drop its handle) before opening another"
                ),
            ));
        }
        let session = Session::open(db, self.name().into(), self.events().clone())
            .await
            .map_err(to_wit)?;
        let handle = self
            .table()
            .push(session)
            .map_err(|e| sql::SqlError::Invalid(e.to_string()))?;
        self.sql_open += 1;
        Ok(handle)
    }
}

impl sql::HostConnection for ConnectorState {
    async fn dialect(&mut self, this: Resource<Session>) -> sql::Dialect {
        match self.table().get(&this).map(|s| s.dialect()) {
            Ok(Dialect::Sqlite) => sql::Dialect::Sqlite,
            _ => sql::Dialect::Postgres,
        }
    }

    async fn scope(&mut self, this: Resource<Session>) -> Option<String> {
        self.table()
            .get(&this)
            .ok()
            .and_then(|s| s.scope().map(str::to_string))
    }

    async fn query(
        &mut self,
        this: Resource<Session>,
        statement: String,
        params: Vec<sql::Value>,
    ) -> Result<Resource<Rows>, sql::SqlError> {
        let session = self.table().get_mut(&this).map_err(|_| gone())?;
        let rows = session
            .query(&statement, params.into_iter().map(from_wit).collect())
            .await
            .map_err(to_wit)?;
        self.table()
            .push(rows)
            .map_err(|e| sql::SqlError::Invalid(e.to_string()))
    }

    async fn execute(
        &mut self,
        this: Resource<Session>,
        statement: String,
        params: Vec<sql::Value>,
    ) -> Result<u64, sql::SqlError> {
        let session = self.table().get_mut(&this).map_err(|_| gone())?;
        session
            .execute(&statement, params.into_iter().map(from_wit).collect())
            .await
            .map_err(to_wit)
    }

    async fn load(
        &mut self,
        this: Resource<Session>,
        table: String,
        columns: Vec<String>,
        records: Vec<u8>,
    ) -> Result<u64, sql::SqlError> {
        let session = self.table().get_mut(&this).map_err(|_| gone())?;
        session
            .load(&table, &columns, &records)
            .await
            .map_err(to_wit)
    }

    async fn begin(&mut self, this: Resource<Session>) -> Result<(), sql::SqlError> {
        let session = self.table().get_mut(&this).map_err(|_| gone())?;
        session.begin().await.map_err(to_wit)
    }

    async fn commit(&mut self, this: Resource<Session>) -> Result<(), sql::SqlError> {
        let session = self.table().get_mut(&this).map_err(|_| gone())?;
        session.commit().await.map_err(to_wit)
    }

    async fn rollback(&mut self, this: Resource<Session>) -> Result<(), sql::SqlError> {
        let session = self.table().get_mut(&this).map_err(|_| gone())?;
        session.rollback().await.map_err(to_wit)
    }

    async fn drop(&mut self, this: Resource<Session>) -> wasmtime::Result<()> {
        self.table().delete(this)?;
        self.sql_open = self.sql_open.saturating_sub(1);
        Ok(())
    }
}

impl sql::HostRows for ConnectorState {
    async fn next(
        &mut self,
        this: Resource<Rows>,
        max_rows: u32,
    ) -> Result<Option<Vec<u8>>, sql::SqlError> {
        let rows = self.table().get_mut(&this).map_err(|_| gone())?;
        rows.next(max_rows).await.map_err(to_wit)
    }

    async fn drop(&mut self, this: Resource<Rows>) -> wasmtime::Result<()> {
        self.table().delete(this)?;
        Ok(())
    }
}
