//! Lighthouse: service discovery across the cluster set. The agent turns ServiceExports into
//! per-cluster ServiceImports and EndpointSlices on the broker and aggregates everyone's into
//! local imports; the DNS server answers `clusterset.local` from them. The decisions live in
//! `subsea-lighthouse-core` (pure, re-exported here); this crate is the I/O around them:
//! [`agent`] and [`dns`].

pub mod agent;
pub mod dns;
pub mod error;

pub use error::{Error, Result};

pub use subsea_lighthouse_core::{export, labels, resolve, snapshot};
