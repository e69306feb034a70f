//! What can go wrong in the publisher.

/// A publisher failure, worded for the operator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting or the key file is unusable.
    #[error("{0}")]
    Config(String),
    /// The DNS server is unreachable or answered with an error.
    #[error("{0}")]
    Server(String),
    /// The DNS server refused our key or our permission.
    #[error("{0}")]
    Refused(String),
    /// A prerequisite failed: the zone changed under us (retried on the next pass).
    #[error("{0}")]
    Raced(String),
    /// The broker.
    #[error(transparent)]
    Runtime(#[from] subsea_runtime::Error),
}

/// Result with an [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
