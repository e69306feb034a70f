//! The object rules of a Kubernetes API server, without any I/O.
//!
//! This crate decides what a request does to the stored objects: metadata defaults and
//! validation, resourceVersions, optimistic concurrency, finalizers, label and field selectors,
//! merge and JSON patches, CRD structural schemas (validation, pruning, defaults) and the
//! registry of served resources. It has no sockets, no files, no clock (`now` is an argument)
//! and no async runtime; `subsea-apiserver` puts HTTP, durability and watch fan-out around it.
#![deny(missing_docs)]

pub mod admit;
pub mod body;
pub mod builtin;
pub mod crd;
pub mod defaults;
pub mod error;
pub mod history;
pub mod layout;
pub mod managed;
pub mod meta;
pub mod openapi;
pub mod patch;
pub mod protobuf;
pub mod record;
pub mod registry;
pub mod schema;
pub mod selector;
pub mod services;
pub mod store;
pub mod table;

#[cfg(test)]
mod fuzz;

pub use error::{ApiError, Result};
pub use history::History;
pub use registry::{Registry, ResourceInfo};
pub use store::{Event, EventType, ObjectKey, Store, WalRecord};
