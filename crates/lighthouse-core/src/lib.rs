//! Lighthouse's decisions as pure functions over plain data, so that they are tested and fuzzed
//! without a cluster, a socket or an async runtime: what a ServiceExport publishes and its
//! conditions ([`export`]), the resolver's snapshot built from the imported objects
//! ([`snapshot`], [`resolve`]), and the DNS answer to request bytes ([`respond`]). The agent and
//! the DNS server in `subsea-lighthouse` are the adapters around them.
#![deny(missing_docs)]

pub mod agent;
pub mod export;
pub mod exported;
pub mod external;
pub mod fixtures;
pub mod globalnet;
pub mod import_status;
pub mod labels;
pub mod resolve;
pub mod respond;
pub mod snapshot;
pub mod vip;
pub mod vip_route;
