//! The checks' errors: a local operation that failed (with what was being done), or a peer
//! that answered, but not as a test server does.

/// What went wrong in a check or a test server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A socket, file or process operation failed while doing `context`.
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A socket option or read failed without more to say than the OS.
    #[error(transparent)]
    Os(#[from] std::io::Error),
    /// The peer (or a tool's report) said something a test server does not.
    #[error("{0}")]
    Peer(String),
    /// An argument is malformed (a URL, a port).
    #[error("{0}")]
    Invalid(String),
    /// A result could not be encoded or decoded.
    #[error("{context}")]
    Json {
        context: String,
        #[source]
        source: serde_json::Error,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Names what an I/O operation was doing when it failed.
pub(crate) trait IoContext<T> {
    fn doing(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn doing(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: context(),
            source,
        })
    }
}

/// `Error::Peer` from a format string.
macro_rules! peer {
    ($($t:tt)*) => { $crate::error::Error::Peer(format!($($t)*)) };
}
pub(crate) use peer;
