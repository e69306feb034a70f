//! The runtime every subsea daemon is built on, so that none of them carries its own copy of the
//! plumbing (and none depends on subctl's library):
//!
//! - [`client`]: the local cluster's client (kubeconfig or in-cluster service account) and the
//!   broker's (URL, CA, token from the join settings);
//! - [`join`]: the typed join settings (`Submariner`, `ServiceDiscovery`) and broker access;
//! - [`objects`]: untyped APIs by kind, create-or-merge [`objects::apply`], idempotent delete,
//!   the `Submariner` object `subctl join` writes;
//! - [`reflect`]: reflectors that wake a controller on every change and stop with it;
//! - [`controller`]: the one level-triggered loop (wake-ups + resync period + reconcile + error
//!   backoff + a tracing span + a failure counter);
//! - [`shutdown`]: the SIGTERM / Ctrl-C future.
#![deny(missing_docs)]

pub mod client;
pub mod controller;
pub mod join;
pub mod objects;
pub mod reflect;
pub mod shutdown;

/// What can go wrong in the runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A kubeconfig or client setting is unusable.
    #[error("{0}")]
    Config(String),
    /// An API request failed.
    #[error("{context}: {message}")]
    Api {
        /// What was being done.
        context: String,
        /// The API server's message (or the transport error).
        message: String,
        /// The HTTP status code, when the server answered.
        code: Option<u16>,
    },
    /// An object could not be read as the expected type.
    #[error("{0}")]
    Invalid(String),
}

/// Result with an [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An API failure with what was being done; the server's own message for API errors.
    pub fn api(context: impl Into<String>, e: kube::Error) -> Self {
        let (message, code) = match &e {
            kube::Error::Api(s) => (format!("{} ({})", s.message, s.reason), Some(s.code)),
            other => (other.to_string(), None),
        };
        Self::Api {
            context: context.into(),
            message,
            code,
        }
    }

    /// The HTTP status of an API failure.
    pub fn code(&self) -> Option<u16> {
        match self {
            Self::Api { code, .. } => *code,
            _ => None,
        }
    }
}
