//! Why the Globalnet daemon stopped.

/// A failure that ends the daemon (a pass's failures are retried by the loop instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A client could not be built or an API request failed.
    #[error(transparent)]
    Runtime(#[from] subsea_runtime::Error),
    /// An API request failed.
    #[error(transparent)]
    Api(#[from] kube::Error),
    /// The node's addresses could not be read.
    #[error(transparent)]
    Netlink(#[from] subsea_netlink::Error),
    /// The NAT rules could not be programmed or removed.
    #[error("cannot program the nftables table {table}: {source}; is nftables (the nft command) installed?")]
    Nft {
        /// The table.
        table: &'static str,
        /// What nft said.
        #[source]
        source: nftables::helper::NftablesError,
    },
    /// The cluster's settings do not allow Globalnet (names the field and the fix).
    #[error("{0}")]
    Settings(String),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
