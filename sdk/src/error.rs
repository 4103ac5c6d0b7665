//! The typed errors a connector returns to the host.

use std::fmt;
use std::time::Duration;

/// Why a connector call failed. The variant tells the host and the operator what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The configuration is wrong: the operator must fix it.
    Config(String),
    /// Credentials were refused: the operator must fix them.
    Auth(String),
    /// A temporary failure: retrying may succeed.
    Transient(String),
    /// The remote side asked to slow down for `retry_after`.
    RateLimited {
        /// How long to wait before trying again.
        retry_after: Duration,
        /// What was limited.
        message: String,
    },
    /// Anything else: the run stops.
    Fatal(String),
}

impl Error {
    /// A configuration error.
    pub fn config(message: impl fmt::Display) -> Self {
        Error::Config(message.to_string())
    }
    /// An authentication error.
    pub fn auth(message: impl fmt::Display) -> Self {
        Error::Auth(message.to_string())
    }
    /// A transient error.
    pub fn transient(message: impl fmt::Display) -> Self {
        Error::Transient(message.to_string())
    }
    /// A fatal error.
    pub fn fatal(message: impl fmt::Display) -> Self {
        Error::Fatal(message.to_string())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) => write!(f, "config error: {m}"),
            Error::Auth(m) => write!(f, "auth error: {m}"),
            Error::Transient(m) => write!(f, "transient error: {m}"),
            Error::RateLimited {
                retry_after,
                message,
            } => write!(
                f,
                "rate limited (retry after {} ms): {message}",
                retry_after.as_millis()
            ),
            Error::Fatal(m) => write!(f, "fatal error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    /// I/O failures that may pass (interrupted, timed out, would block) are transient; the rest
    /// are fatal.
    fn from(e: std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        match e.kind() {
            Interrupted | TimedOut | WouldBlock | ConnectionReset | ConnectionAborted => {
                Error::Transient(e.to_string())
            }
            _ => Error::Fatal(e.to_string()),
        }
    }
}

/// The result type of connector calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;
