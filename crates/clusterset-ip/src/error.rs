//! Why the ClusterSetIP daemon stopped.

/// A ClusterSetIP daemon failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A client could not be built, the join settings are unusable, or an API request failed.
    #[error(transparent)]
    Runtime(#[from] subsea_runtime::Error),
    /// A watch ended before its first list.
    #[error("{0}")]
    Watch(String),
    /// nft refused the table.
    #[error("cannot program the nftables table {table}: {source}; is nftables (the nft command) installed?")]
    Nft {
        /// The table.
        table: &'static str,
        /// What nft said.
        #[source]
        source: nftables::helper::NftablesError,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
