//! Lighthouse: service discovery across the cluster set. The agent turns ServiceExports into
//! per-cluster ServiceImports and EndpointSlices on the broker and aggregates everyone's into
//! local imports; the DNS server answers `clusterset.local` from them. The decisions live in
//! `subsea-lighthouse-core` (pure, re-exported here); this crate is the I/O around them:
//! [`agent`] and [`dns`].

pub mod agent;
pub mod dns;
pub mod error;

pub use error::{Error, Result};

/// A reflector's state as the borrowed lists the pure functions take.
fn refs<K>(v: &[std::sync::Arc<K>]) -> Vec<&K> {
    v.iter().map(|a| a.as_ref()).collect()
}

pub use subsea_lighthouse_core::{export, labels, resolve, snapshot};
