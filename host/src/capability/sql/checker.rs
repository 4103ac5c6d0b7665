//! The SQL policy off the async runtime's small stacks.
//!
//! [`sluice_sql_wall::check`] recurses over the statement it checks; the policy bounds how deep a
//! statement can be, and each check runs on a thread of its own with the stack that bound needs
//! ([`sluice_sql_wall::STACK_BYTES`], committed only as used), so no statement a connector sends
//! can overflow a runtime worker's stack and take the host down.

use sluice_sql_wall::{Checked, Dialect, Refusal, STACK_BYTES, Scope};
use tokio::sync::oneshot;

/// Run `f` on a fresh thread with the policy's stack.
async fn on_policy_stack<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Refusal> {
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("sluice-sql-policy".into())
        .stack_size(STACK_BYTES)
        .spawn(move || {
            let _ = tx.send(f());
        });
    let unavailable = |why: String| Refusal {
        rule: "unavailable",
        detail: format!("the statement could not be checked, so it is not run ({why})"),
    };
    spawned.map_err(|e| unavailable(e.to_string()))?;
    rx.await
        .map_err(|_| unavailable("the check stopped".into()))
}

/// [`sluice_sql_wall::check`], on the policy's stack.
pub async fn check(dialect: Dialect, scope: &Scope, sql: &str) -> Result<Checked, Refusal> {
    let (scope, sql) = (scope.clone(), sql.to_string());
    on_policy_stack(move || sluice_sql_wall::check(dialect, &scope, &sql)).await?
}

/// [`sluice_sql_wall::check_table`], on the policy's stack.
pub async fn check_table(dialect: Dialect, scope: &Scope, table: &str) -> Result<String, Refusal> {
    let (scope, table) = (scope.clone(), table.to_string());
    on_policy_stack(move || sluice_sql_wall::check_table(dialect, &scope, &table)).await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn the_deepest_statement_the_policy_allows_is_checked_off_the_runtime_stack() {
        let deep = format!("SELECT 1{}", "+1".repeat(sluice_sql_wall::MAX_CHAIN - 1));
        let c = check(
            Dialect::Postgres,
            &Scope::Write("raw".into()),
            &format!("INSERT INTO t {deep}"),
        )
        .await
        .unwrap();
        assert!(
            c.sql.starts_with("INSERT INTO \"raw\".\"t\""),
            "{}",
            &c.sql[..40]
        );
        let r = check(Dialect::Sqlite, &Scope::Read, &format!("{deep}+1+1")).await;
        assert_eq!(r.unwrap_err().rule, "too-deep");
    }
}
