//! Turning what wasmtime raises into a [`Failure`] that names the cause and the way out.

use wasmtime::{Store, Trap};

use super::sandbox::{ConnectorState, DeadlineExceeded, MemoryLimitExceeded};
use crate::protocol::{ConnectorError, Failure};

/// Classify an error raised by a call into `store`'s connector.
pub fn trap(
    connector: &str,
    call: &'static str,
    store: &Store<ConnectorState>,
    e: wasmtime::Error,
) -> ConnectorError {
    let state = store.data();
    let failure = if let Some(d) = e.downcast_ref::<DeadlineExceeded>() {
        Failure::Timeout { limit: d.0 }
    } else if let Some(m) = e.downcast_ref::<MemoryLimitExceeded>() {
        Failure::MemoryLimit {
            limit: m.limit,
            requested: m.requested,
        }
    } else if let Some(t) = e.downcast_ref::<Trap>() {
        match t {
            Trap::StackOverflow => Failure::StackOverflow,
            Trap::Interrupt => Failure::Timeout {
                limit: state.limits().call_timeout,
            },
            Trap::UnreachableCodeReached => match state.log().last_panic(connector) {
                Some(message) => Failure::Panic { message },
                None => Failure::Trap {
                    message: "it aborted (WebAssembly `unreachable` reached)".into(),
                },
            },
            Trap::MemoryOutOfBounds => Failure::Trap {
                message: "out-of-bounds memory access (memory corruption, or its own stack \
                          overflowing into its data)"
                    .into(),
            },
            other => Failure::Trap {
                message: other.to_string(),
            },
        }
    } else {
        Failure::Trap {
            message: format!("{e:#}"),
        }
    };
    ConnectorError::new(connector, call, failure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Limits, Sandbox};

    fn store() -> Store<ConnectorState> {
        let engine = wasmtime::Engine::default();
        let resolver: std::sync::Arc<dyn crate::capability::net::Resolve> =
            std::sync::Arc::new(crate::capability::net::SystemResolver);
        let state =
            ConnectorState::new("c", &Sandbox::default(), &resolver, Default::default()).unwrap();
        Store::new(&engine, state)
    }

    #[test]
    fn limits_are_named() {
        let s = store();
        let e = trap(
            "c",
            "next",
            &s,
            DeadlineExceeded(Limits::default().call_timeout).into(),
        );
        assert!(matches!(e.failure, Failure::Timeout { .. }));
        assert!(e.to_string().contains("call_timeout_secs"), "{e}");
        let e = trap(
            "c",
            "next",
            &s,
            MemoryLimitExceeded {
                limit: 1 << 20,
                requested: 4 << 30,
            }
            .into(),
        );
        assert!(e.to_string().contains("4096 MiB"), "{e}");
        assert!(e.to_string().contains("memory_mib"), "{e}");
    }

    #[test]
    fn an_abort_after_a_panic_quotes_the_panic() {
        let s = store();
        s.data().log().push(
            "c",
            crate::protocol::LogLevel::Error,
            "panicked at x.rs:1:1:\nboom",
        );
        let e = trap("c", "next", &s, Trap::UnreachableCodeReached.into());
        assert!(matches!(&e.failure, Failure::Panic { message } if message.contains("boom")));
        assert_eq!(e.connector, "c");
    }
}
