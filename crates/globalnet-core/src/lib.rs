//! Globalnet's decisions as pure functions over plain data, so they are tested without a cluster
//! or a kernel:
//!
//! - [`pool`]: the cluster's global IPs, first-fit, rebuilt from what the objects hold;
//! - [`plan()`]: given the cluster's Globalnet objects, exported Services, pods and the gateway,
//!   which object holds which IPs (keeping what each already holds, so allocations survive
//!   restarts and never collide), which GlobalIngressIPs must exist, and the SNAT/DNAT rules the
//!   active gateway programs;
//! - [`select`]: label selectors.
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use subsea_api::globalnet::LabelSelector;
use subsea_cidr::Cidr;

pub mod plan;
pub mod pool;
pub mod select;

pub use plan::plan;

/// A pod, as far as Globalnet cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Its IPv4 address, once it has one.
    pub ip: Option<Ipv4Addr>,
}

/// Which pods an egress object covers.
#[derive(Clone, Debug, PartialEq)]
pub enum Scope {
    /// Every pod no other object covers (`ClusterGlobalEgressIP`).
    Cluster,
    /// Pods of one namespace, all or those the selector picks (`GlobalEgressIP`).
    Namespace(Option<LabelSelector>),
}

/// An object that holds global IPs: its identity and what its status holds now.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    /// Kind name (`GlobalEgressIP`, `ClusterGlobalEgressIP`, `GlobalIngressIP`).
    pub kind: &'static str,
    /// Namespace; empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// A GlobalEgressIP or ClusterGlobalEgressIP.
#[derive(Clone, Debug, PartialEq)]
pub struct Egress {
    /// Identity.
    pub key: Key,
    /// Which pods.
    pub scope: Scope,
    /// `numberOfIPs` / `numGlobalIPs` as written (validated by the plan).
    pub requested: i64,
    /// `status.allocatedIPs` now.
    pub held: Vec<String>,
    /// Creation time (RFC 3339): older objects win a contested address.
    pub created: String,
}

/// What a GlobalIngressIP points at.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Target {
    /// A ClusterIP Service (by name).
    Service(String),
    /// One pod of a headless Service.
    HeadlessPod {
        /// The Service.
        service: String,
        /// The pod.
        pod: String,
    },
}

/// A GlobalIngressIP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ingress {
    /// Identity.
    pub key: Key,
    /// What it targets.
    pub target: Target,
    /// `status.allocatedIP` now (may be empty).
    pub held: String,
    /// Creation time (RFC 3339).
    pub created: String,
}

/// An exported Service of this cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Export {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Headless (no ClusterIP): each ready pod gets its own global IP.
    pub headless: bool,
    /// For headless Services, the ready pods behind it (from its EndpointSlices).
    pub ready_pods: Vec<String>,
}

/// The active gateway node, whose own global IP is the health-check address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gateway {
    /// Node name.
    pub node: String,
    /// The node's address on the pod network (its health-check source).
    pub cni_ip: Ipv4Addr,
    /// The `submariner.io/globalIp` annotation now.
    pub held: Option<String>,
}

/// Everything a Globalnet pass decides from.
#[derive(Clone, Debug, PartialEq)]
pub struct World {
    /// The cluster's GlobalCIDR.
    pub global_cidr: Cidr,
    /// The cluster's pod CIDRs (the default egress sources).
    pub pod_cidrs: Vec<Cidr>,
    /// Other clusters' GlobalCIDRs: traffic to them is SNATed.
    pub remote_cidrs: Vec<Cidr>,
    /// The active gateway, when this node is it.
    pub gateway: Option<Gateway>,
    /// Egress objects.
    pub egress: Vec<Egress>,
    /// Ingress objects.
    pub ingress: Vec<Ingress>,
    /// Exported Services.
    pub exports: Vec<Export>,
    /// Pods.
    pub pods: Vec<Pod>,
}
