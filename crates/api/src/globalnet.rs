//! `submariner.io/v1` Globalnet kinds: GlobalEgressIP, ClusterGlobalEgressIP and
//! GlobalIngressIP, with Submariner's field names, short names and conditions.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::mcs::Condition;

/// The well-known ClusterGlobalEgressIP whose IPs every pod without a GlobalEgressIP uses.
pub const CLUSTER_EGRESS_NAME: &str = "cluster-egress.submariner.io";
/// Default size of the cluster egress pool (enough SNAT ports for a busy cluster).
pub const DEFAULT_CLUSTER_EGRESS_IPS: u32 = 8;
/// Most IPs one egress object may ask for.
pub const MAX_EGRESS_IPS: i64 = 20;
/// Node annotation holding the gateway node's global IP (used as the health-check IP).
pub const NODE_GLOBAL_IP_ANNOTATION: &str = "submariner.io/globalIp";
/// Label on a GlobalIngressIP naming its Service.
pub const SERVICE_REF_LABEL: &str = "submariner.io/serviceRef";
/// Condition type on all three kinds.
pub const ALLOCATED: &str = "Allocated";

/// A label selector (`metav1.LabelSelector`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels that must all match.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements, all of which must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
}

/// One set-based requirement of a selector.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct LabelSelectorRequirement {
    /// The label key.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// Values for `In` and `NotIn`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// Global IPs for the selected pods of one namespace.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "submariner.io",
    version = "v1",
    kind = "GlobalEgressIP",
    namespaced,
    status = "GlobalEgressIPStatus",
    shortname = "geip",
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct GlobalEgressIPSpec {
    /// How many contiguous global IPs to allocate (default 1, at most 20).
    #[serde(default, rename = "numberOfIPs", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 20))]
    pub number_of_ips: Option<i64>,
    /// The pods it applies to; all pods of the namespace when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
}

/// Status of an egress object.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GlobalEgressIPStatus {
    /// `Allocated` (and reasons when not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The allocated global IPs.
    #[serde(default, rename = "allocatedIPs", skip_serializing_if = "Vec::is_empty")]
    pub allocated_ips: Vec<String>,
}

/// Global IPs for every pod that no GlobalEgressIP covers.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "submariner.io",
    version = "v1",
    kind = "ClusterGlobalEgressIP",
    status = "GlobalEgressIPStatus",
    shortname = "cgeip",
    derive = "PartialEq"
)]
pub struct ClusterGlobalEgressIPSpec {
    /// How many contiguous global IPs to allocate (at most 20).
    #[serde(default, rename = "numGlobalIPs", skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 20))]
    pub num_global_ips: Option<i64>,
}

/// A global IP through which other clusters reach a Service or a headless Service's pod.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "submariner.io",
    version = "v1",
    kind = "GlobalIngressIP",
    namespaced,
    status = "GlobalIngressIPStatus",
    shortname = "giip",
    derive = "PartialEq",
    printcolumn(
        name = "IP",
        type_ = "string",
        json_path = ".status.allocatedIP",
        description = "Global IP Allocated"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct GlobalIngressIPSpec {
    /// `ClusterIPService` or `HeadlessServicePod`.
    pub target: String,
    /// The Service, for `ClusterIPService`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_ref: Option<LocalObjectReference>,
    /// The pod, for `HeadlessServicePod`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_ref: Option<LocalObjectReference>,
}

/// A reference to an object in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct LocalObjectReference {
    /// The object's name.
    pub name: String,
}

/// Status of an ingress object.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GlobalIngressIPStatus {
    /// `Allocated` (and reasons when not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The allocated global IP.
    #[serde(default, rename = "allocatedIP")]
    pub allocated_ip: String,
}

/// Target of a ClusterIP Service's ingress IP.
pub const TARGET_SERVICE: &str = "ClusterIPService";
/// Target of a headless Service pod's ingress IP.
pub const TARGET_HEADLESS_POD: &str = "HeadlessServicePod";
