//! Lighthouse: service discovery across the cluster set. The agent turns ServiceExports into
//! per-cluster ServiceImports and EndpointSlices on the broker and aggregates everyone's into
//! local imports; the DNS server answers `clusterset.local` from them. Decisions are pure
//! ([`export`], [`resolve`]); I/O lives in [`agent`] and [`dns`].

pub mod agent;
pub mod dns;
pub mod export;
pub mod labels;
pub mod resolve;
pub mod snapshot;
