//! The broker's rules as plain data, shared by `subctl deploy-broker`, `subctl join` and the
//! agents: the `broker-info.subm` format, cluster IDs, CIDR overlap checks, the objects written
//! on the broker and in each cluster, and the CoreDNS forwarding block. No I/O.
#![deny(missing_docs)]

pub mod cluster_id;
pub mod corefile;
pub mod discovery;
pub mod globalnet;
pub mod info;
pub mod objects;
pub mod validate;

pub use subsea_cidr::Cidr;

/// An input that cannot be used; the message names the input and the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// Default broker namespace.
pub const BROKER_NAMESPACE: &str = "submariner-k8s-broker";
/// Namespace of the components in each joined cluster.
pub const OPERATOR_NAMESPACE: &str = "submariner-operator";
/// Components a broker can enable.
pub const COMPONENTS: &[&str] = &["service-discovery", "connectivity"];
