//! Why the server could not start: its data directory, its certificates, its listener. Requests
//! fail with [`crate::ApiError`] instead, as Kubernetes `Status` objects.

use std::path::PathBuf;

/// A start-up failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another `subsea apiserver` holds the data directory's lock.
    #[error("data directory {} is in use by another subsea apiserver", .0.display())]
    InUse(PathBuf),
    /// The data directory holds something that cannot be read back (a truncated snapshot).
    #[error("{0}")]
    Corrupt(String),
    /// A file or socket operation failed (the step is named by the caller's context).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A certificate or key could not be made.
    #[error(transparent)]
    Certificate(#[from] rcgen::Error),
    /// A snapshot line is not JSON.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// An operation failed; `context` says which.
    #[error("{context}")]
    Failed {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Names what a fallible step was doing.
pub(crate) trait Context<T> {
    fn with_context(self, context: impl FnOnce() -> String) -> Result<T>;

    fn context(self, context: &str) -> Result<T>
    where
        Self: Sized,
    {
        self.with_context(|| context.to_string())
    }
}

impl<T, E: std::error::Error + Send + Sync + 'static> Context<T> for std::result::Result<T, E> {
    fn with_context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error::Failed {
            context: context(),
            source: Box::new(e),
        })
    }
}

impl<T> Context<T> for Option<T> {
    fn with_context(self, context: impl FnOnce() -> String) -> Result<T> {
        self.ok_or_else(|| Error::Corrupt(context()))
    }
}
