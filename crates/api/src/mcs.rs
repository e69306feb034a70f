//! `multicluster.x-k8s.io`: the Multi-Cluster Services API (KEP-1645), served as both `v1alpha1`
//! (what Submariner stores and speaks) and `v1beta1`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A condition on a ServiceExport or ServiceImport.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Valid`, `Ready` or `Conflict`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// RFC 3339 time of the last status change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// Machine-readable reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A port of an imported service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// Port name; unique within the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `TCP`, `UDP` or `SCTP`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Application protocol hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    /// Port number.
    pub port: i32,
}

/// A cluster exporting a service.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ClusterStatus {
    /// Cluster ID.
    pub cluster: String,
}

/// Client-IP session affinity settings.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionAffinityConfig {
    /// Settings of ClientIP affinity.
    #[serde(rename = "clientIP", default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<ClientIpConfig>,
}

/// ClientIP affinity timeout.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientIpConfig {
    /// Sticky time in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<i32>,
}

/// Status of a ServiceExport: its conditions.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct ServiceExportStatus {
    /// `Valid`, `Ready` and `Conflict` conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Status of a ServiceImport.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceImportStatus {
    /// Clusters that export the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<ClusterStatus>,
    /// `Present` once the service's EndpointSlices are in this cluster, else `Absent`
    /// (v1beta1's field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint_slice_objects: Option<String>,
    /// The `Ready` condition: reasons `Ready`, `Pending`, `IPFamilyNotSupported` (v1beta1's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// MCS `v1alpha1`, the version Submariner stores.
pub mod v1alpha1 {
    use super::*;
    use kube::CustomResource;

    /// Marks the Service of the same name and namespace as exported to the cluster set.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[kube(
        group = "multicluster.x-k8s.io",
        version = "v1alpha1",
        kind = "ServiceExport",
        namespaced,
        status = "ServiceExportStatus",
        shortname = "svcex",
        derive = "PartialEq"
    )]
    pub struct ServiceExportSpec {}

    /// A service imported from the cluster set.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[kube(
        group = "multicluster.x-k8s.io",
        version = "v1alpha1",
        kind = "ServiceImport",
        namespaced,
        status = "ServiceImportStatus",
        shortname = "svcim",
        printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
        printcolumn(name = "IP", type_ = "string", json_path = ".spec.ips"),
        printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
        derive = "PartialEq"
    )]
    #[serde(rename_all = "camelCase")]
    pub struct ServiceImportSpec {
        /// Ports of the service.
        #[serde(default)]
        pub ports: Vec<ServicePort>,
        /// ClusterSet IPs (at most one per family).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(length(max = 2))]
        pub ips: Vec<String>,
        /// `ClusterSetIP` or `Headless`.
        #[serde(rename = "type")]
        pub type_: String,
        /// `None` or `ClientIP`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub session_affinity: Option<String>,
        /// Session affinity settings.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub session_affinity_config: Option<SessionAffinityConfig>,
        /// `IPv4` and/or `IPv6` (v1beta1's field, kept here so that both versions carry it).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub ip_families: Vec<String>,
        /// `Cluster` or `Local` (v1beta1's field).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub internal_traffic_policy: Option<String>,
        /// Traffic distribution preference, e.g. `PreferClose` (v1beta1's field).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub traffic_distribution: Option<String>,
    }
}

/// MCS `v1beta1`.
pub mod v1beta1 {
    use super::*;
    use kube::CustomResource;
    use std::collections::BTreeMap;

    /// Marks the Service of the same name and namespace as exported to the cluster set.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[kube(
        group = "multicluster.x-k8s.io",
        version = "v1beta1",
        kind = "ServiceExport",
        namespaced,
        status = "ServiceExportStatus",
        shortname = "svcex",
        derive = "PartialEq"
    )]
    #[serde(rename_all = "camelCase")]
    pub struct ServiceExportSpec {
        /// Labels to copy onto the derived ServiceImport.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub exported_labels: BTreeMap<String, String>,
        /// Annotations to copy onto the derived ServiceImport.
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        pub exported_annotations: BTreeMap<String, String>,
    }

    /// A service imported from the cluster set.
    #[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
    #[kube(
        group = "multicluster.x-k8s.io",
        version = "v1beta1",
        kind = "ServiceImport",
        namespaced,
        status = "ServiceImportStatus",
        shortname = "svcim",
        printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
        printcolumn(name = "IP", type_ = "string", json_path = ".spec.ips"),
        printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp"),
        derive = "PartialEq"
    )]
    #[serde(rename_all = "camelCase")]
    pub struct ServiceImportSpec {
        /// Ports of the service.
        #[serde(default)]
        pub ports: Vec<ServicePort>,
        /// ClusterSet IPs (at most one per family).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        #[schemars(length(max = 2))]
        pub ips: Vec<String>,
        /// `ClusterSetIP` or `Headless`.
        #[serde(rename = "type")]
        pub type_: String,
        /// `None` or `ClientIP`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub session_affinity: Option<String>,
        /// Session affinity settings.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub session_affinity_config: Option<SessionAffinityConfig>,
        /// `IPv4` and/or `IPv6`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub ip_families: Vec<String>,
        /// `Cluster` or `Local`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub internal_traffic_policy: Option<String>,
        /// Traffic distribution preference.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub traffic_distribution: Option<String>,
    }
}
