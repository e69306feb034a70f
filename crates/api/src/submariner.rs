//! `submariner.io/v1`: Cluster, Endpoint and Gateway.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A cluster taking part in the cluster set, as published by its active gateway.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "submariner.io",
    version = "v1",
    kind = "Cluster",
    namespaced,
    printcolumn(name = "Cluster ID", type_ = "string", json_path = ".spec.cluster_id"),
    printcolumn(name = "Service CIDR", type_ = "string", json_path = ".spec.service_cidr"),
    printcolumn(name = "Cluster CIDR", type_ = "string", json_path = ".spec.cluster_cidr"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
pub struct ClusterSpec {
    /// The cluster ID (a DNS-1123 label).
    #[schemars(length(min = 1, max = 63))]
    pub cluster_id: String,
    /// Legacy colour codes; Submariner always writes `["blue"]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub color_codes: Vec<String>,
    /// Service CIDRs of the cluster.
    pub service_cidr: Vec<String>,
    /// Pod CIDRs of the cluster.
    pub cluster_cidr: Vec<String>,
    /// Globalnet CIDRs; empty when Globalnet is off.
    pub global_cidr: Vec<String>,
}

/// The tunnel endpoint (active gateway) of a cluster.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "submariner.io",
    version = "v1",
    kind = "Endpoint",
    namespaced,
    printcolumn(name = "Cluster ID", type_ = "string", json_path = ".spec.cluster_id"),
    printcolumn(name = "Hostname", type_ = "string", json_path = ".spec.hostname"),
    printcolumn(name = "Backend", type_ = "string", json_path = ".spec.backend"),
    printcolumn(name = "Private IP", type_ = "string", json_path = ".spec.private_ip"),
    printcolumn(name = "Public IP", type_ = "string", json_path = ".spec.public_ip"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
pub struct EndpointSpec {
    /// The cluster ID of the endpoint's cluster.
    #[schemars(length(min = 1, max = 63))]
    pub cluster_id: String,
    /// `submariner-cable-<clusterID>-<private IPv4 with dashes>`.
    pub cable_name: String,
    /// Address inside the cluster CIDR that health checks ping (IPv4; kept for older peers).
    #[serde(rename = "healthCheckIP", default, skip_serializing_if = "String::is_empty")]
    pub health_check_ip: String,
    /// Dual-stack health-check addresses (newer Submariner; at most one per family).
    #[serde(rename = "healthCheckIPs", default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2))]
    pub health_check_ips: Vec<String>,
    /// Host name of the gateway node.
    pub hostname: String,
    /// Service CIDRs followed by pod CIDRs (or the Globalnet CIDR).
    pub subnets: Vec<String>,
    /// Private IPv4 address of the gateway (kept for older peers).
    pub private_ip: String,
    /// Dual-stack private addresses (newer Submariner).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2))]
    pub private_ips: Vec<String>,
    /// Public IPv4 address of the gateway; may be empty.
    pub public_ip: String,
    /// Dual-stack public addresses (newer Submariner).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2))]
    pub public_ips: Vec<String>,
    /// Whether NAT traversal is enabled.
    pub nat_enabled: bool,
    /// Cable driver: `wireguard`, `libreswan` or `vxlan`.
    pub backend: String,
    /// Driver parameters such as `udp-port` and `publicKey`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub backend_config: BTreeMap<String, String>,
}

/// Round-trip time statistics as Go `time.Duration` strings (e.g. `"1.234ms"`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct LatencyRtt {
    /// Last measured RTT.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last: String,
    /// Minimum RTT.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub min: String,
    /// Mean RTT.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub average: String,
    /// Maximum RTT.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub max: String,
    /// Standard deviation of the RTT.
    #[serde(rename = "stdDev", default, skip_serializing_if = "String::is_empty")]
    pub std_dev: String,
}

/// The state of the tunnel to one remote endpoint.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct Connection {
    /// `connected`, `connecting`, `error` or `none`.
    pub status: String,
    /// Human-readable detail of the status.
    #[serde(rename = "statusMessage", default)]
    pub status_message: String,
    /// Copy of the remote endpoint.
    pub endpoint: EndpointSpec,
    /// The remote address actually used.
    #[serde(rename = "usingIP", default, skip_serializing_if = "String::is_empty")]
    pub using_ip: String,
    /// Whether the connection goes through NAT.
    #[serde(rename = "usingNAT", default, skip_serializing_if = "std::ops::Not::not")]
    pub using_nat: bool,
    /// Health-check round-trip times.
    #[serde(rename = "latencyRTT", default, skip_serializing_if = "Option::is_none")]
    pub latency_rtt: Option<LatencyRtt>,
}

/// Status of one gateway node: everything a Gateway object carries.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct GatewayStatus {
    /// Version of the gateway software.
    #[serde(default)]
    pub version: String,
    /// `active` or `passive`.
    #[serde(rename = "haStatus")]
    pub ha_status: String,
    /// The endpoint this gateway publishes.
    #[serde(rename = "localEndpoint")]
    pub local_endpoint: EndpointSpec,
    /// Set when the cable engine or listing connections failed.
    #[serde(rename = "statusFailure", default)]
    pub status_failure: String,
    /// One entry per remote endpoint.
    #[serde(default)]
    pub connections: Vec<Connection>,
}

/// A gateway node and its connections. Submariner's Gateway has no spec, only status, so this
/// type is written by hand rather than derived.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
pub struct Gateway {
    /// Always `submariner.io/v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Always `Gateway`.
    pub kind: String,
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// The gateway's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<GatewayStatus>,
}

impl Gateway {
    /// A Gateway object with the given name and status.
    pub fn new(name: &str, status: GatewayStatus) -> Self {
        Self {
            api_version: "submariner.io/v1".into(),
            kind: "Gateway".into(),
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            status: Some(status),
        }
    }
}

impl kube::Resource for Gateway {
    type DynamicType = ();
    type Scope = kube::core::NamespaceResourceScope;

    fn kind(_: &()) -> std::borrow::Cow<'_, str> {
        "Gateway".into()
    }
    fn group(_: &()) -> std::borrow::Cow<'_, str> {
        "submariner.io".into()
    }
    fn version(_: &()) -> std::borrow::Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> std::borrow::Cow<'_, str> {
        "gateways".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}
