//! Submariner-compatible Kubernetes API types.
//!
//! Groups, kinds, scopes and JSON field names follow Submariner exactly (including its mix of
//! snake_case and camelCase field names), so objects written by subsea are readable by Submariner
//! and the other way round. This crate holds plain data and the CRD manifests generated from it;
//! it does no I/O.
#![deny(missing_docs)]

pub mod crds;
pub mod extdns;
pub mod globalnet;
pub mod labels;
pub mod mcs;
pub mod operator;
pub mod submariner;
