//! Why a gateway or route agent stopped: its settings, the API, the kernel, the data path.

/// A failure that ends the gateway engine or the route agent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `Submariner` object cannot be run from (names the field and the fix).
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    /// A client could not be built or an API request failed.
    #[error(transparent)]
    Runtime(#[from] subsea_runtime::Error),
    /// An API request failed.
    #[error(transparent)]
    Api(#[from] kube::Error),
    /// Routes, rules or addresses could not be read or programmed.
    #[error(transparent)]
    Netlink(#[from] subsea_netlink::Error),
    /// The node's addresses could not be found (`context` says which).
    #[error("{context}")]
    Discovery {
        /// What was being looked up.
        context: String,
        /// The OS's answer.
        #[source]
        source: std::io::Error,
    },
    /// The WireGuard data path (TUN device, UDP socket) could not start.
    #[error("cannot start the WireGuard data path")]
    Datapath(#[source] std::io::Error),
    /// Something the engine relies on is gone or never arrived.
    #[error("{0}")]
    Missing(String),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
