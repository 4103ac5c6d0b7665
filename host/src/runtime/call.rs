//! The bracket around every call into a connector: arm the deadline, run, disarm, classify.

use std::time::Duration;

use wasmtime::Store;

use super::bindings::types as w;
use super::classify;
use super::convert;
use super::sandbox::{ConnectorState, DeadlineExceeded};
use crate::protocol::{ConnectorError, Failure};

/// A store plus what the host remembers about its health.
pub struct Guarded {
    pub store: Store<ConnectorState>,
    /// Set once a call trapped or hit a limit: the instance must not be entered again.
    dead: Option<Failure>,
}

impl Guarded {
    pub fn new(store: Store<ConnectorState>) -> Self {
        Guarded { store, dead: None }
    }

    pub fn name(&self) -> &str {
        self.store.data().name()
    }

    /// The per-call time limit.
    pub fn limit(&self) -> Duration {
        self.store.data().limits().call_timeout
    }

    /// Refuse to enter an instance that already failed.
    pub fn enter(&mut self, call: &'static str) -> Result<(), ConnectorError> {
        if let Some(f) = &self.dead {
            return Err(ConnectorError::new(
                self.name(),
                call,
                Failure::Start {
                    message: format!("the instance already failed earlier ({f}) and was shut down"),
                },
            ));
        }
        self.store.data_mut().arm_deadline();
        self.store.set_epoch_deadline(1);
        Ok(())
    }

    /// Close the bracket: disarm, then turn the two error layers into one.
    pub fn leave<T>(
        &mut self,
        call: &'static str,
        result: wasmtime::Result<Result<T, w::Error>>,
    ) -> Result<T, ConnectorError> {
        self.store.data_mut().disarm_deadline();
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(ConnectorError::new(
                self.name(),
                call,
                Failure::Reported(convert::reported(e)),
            )),
            Err(e) => {
                let err = classify::trap(self.name(), call, &self.store, e);
                self.dead = Some(err.failure.clone());
                Err(err)
            }
        }
    }

    /// A failure found by the host in what the call returned.
    pub fn protocol(&self, call: &'static str, failure: Failure) -> ConnectorError {
        ConnectorError::new(self.name(), call, failure)
    }
}

/// Bound a call by wall-clock time even while the connector waits inside a host call (a sleep, a
/// blocked read), where the epoch deadline cannot fire. Dropping the call's future cancels it;
/// the instance is then treated as dead.
pub async fn timed<T>(
    limit: Duration,
    call: impl Future<Output = wasmtime::Result<T>>,
) -> wasmtime::Result<T> {
    match tokio::time::timeout(limit, call).await {
        Ok(r) => r,
        Err(_) => Err(DeadlineExceeded(limit).into()),
    }
}
