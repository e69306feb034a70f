//! The gateway engine: on gateway-labelled nodes, one process per node; the one holding the
//! Lease `submariner-gateway-lock` is active. The active gateway publishes the local Endpoint
//! and Cluster (synced to the broker), builds a userspace WireGuard tunnel to every remote
//! cluster's active gateway, and routes remote CIDRs into it (table 150). Every gateway writes
//! its own `Gateway` status object. See `ARCHITECTURE.md`.
#![deny(missing_docs)]

pub mod engine;
pub mod error;
pub mod health;
pub mod local;
pub mod metrics;
pub mod route_agent;
pub mod settings;
pub mod status;

pub use engine::{Options, run};
pub use error::{Error, Result};
