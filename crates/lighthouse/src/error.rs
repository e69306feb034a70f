//! Why the agent or the DNS server stopped, or a pass failed.

/// A Lighthouse failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A client could not be built, the join settings are unusable, or an API request failed.
    #[error(transparent)]
    Runtime(#[from] subsea_runtime::Error),
    /// An object could not be encoded for the API.
    #[error("cannot encode an object: {0}")]
    Encode(#[from] serde_json::Error),
    /// A watch ended before its first list.
    #[error("{0}")]
    Watch(String),
    /// A socket could not be opened (`context` says which).
    #[error("{context}")]
    Listen {
        /// The address and protocol.
        context: String,
        /// The OS's answer.
        #[source]
        source: std::io::Error,
    },
    /// A fixture file could not be read or is not the expected JSON.
    #[error("{0}")]
    Fixture(String),
}

impl Error {
    /// The HTTP status of a failed API request.
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Runtime(e) => e.code(),
            _ => None,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
