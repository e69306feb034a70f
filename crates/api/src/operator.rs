//! `submariner.io/v1alpha1`: the operator-level objects Submariner, ServiceDiscovery and Broker.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How the gateway health-checks its connections.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct HealthCheckSpec {
    /// Whether health checks run.
    #[serde(default)]
    pub enabled: bool,
    /// Seconds between pings.
    #[serde(rename = "intervalSeconds", default)]
    pub interval_seconds: u64,
    /// Lost pings before a connection is marked `error`.
    #[serde(rename = "maxPacketLossCount", default)]
    pub max_packet_loss_count: u64,
}

/// A CoreDNS ConfigMap other than `kube-system/coredns` to write the forwarding block into.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct CoreDnsCustomConfig {
    /// Name of the ConfigMap.
    #[serde(rename = "configMapName", default)]
    pub config_map_name: String,
    /// Namespace of the ConfigMap.
    #[serde(default)]
    pub namespace: String,
}

/// The per-cluster deployment written by `subctl join` (object `submariner-operator/submariner`).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "submariner.io",
    version = "v1alpha1",
    kind = "Submariner",
    namespaced,
    status = "SubmarinerStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct SubmarinerSpec {
    /// Broker type; "k8s".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub broker: String,
    /// Broker API server, host:port without scheme.
    pub broker_k8s_api_server: String,
    /// Further replicas of the broker API server, host:port, tried in turn when one cannot be
    /// reached (subsea; Submariner names one broker).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub broker_k8s_api_server_replicas: Vec<String>,
    /// Token of the cluster's broker service account.
    #[serde(default)]
    pub broker_k8s_api_server_token: String,
    /// std-base64 of the broker CA certificate.
    #[serde(rename = "brokerK8sCA", default)]
    pub broker_k8s_ca: String,
    /// Name of the local secret holding the broker credentials.
    #[serde(default)]
    pub broker_k8s_secret: String,
    /// Broker namespace.
    pub broker_k8s_remote_namespace: String,
    /// Skip broker certificate verification.
    #[serde(default)]
    pub broker_k8s_insecure: bool,
    /// Cable driver name.
    #[serde(default)]
    pub cable_driver: String,
    /// std-base64 of the pre-shared key.
    #[serde(rename = "ceIPSecPSK", default)]
    pub ce_ipsec_psk: String,
    /// Secret holding the pre-shared key.
    #[serde(rename = "ceIPSecPSKSecret", default)]
    pub ce_ipsec_psk_secret: String,
    /// NAT-T / WireGuard UDP port.
    #[serde(rename = "ceIPSecNATTPort", default)]
    pub ce_ipsec_natt_port: u16,
    /// IKE port (libreswan only).
    #[serde(rename = "ceIPSecIKEPort", default)]
    pub ce_ipsec_ike_port: u16,
    /// Cable driver debug logging.
    #[serde(rename = "ceIPSecDebug", default)]
    pub ce_ipsec_debug: bool,
    /// Prefer this side as server (libreswan only).
    #[serde(rename = "ceIPSecPreferredServer", default)]
    pub ce_ipsec_preferred_server: bool,
    /// Force UDP encapsulation (libreswan only).
    #[serde(rename = "ceIPSecForceUDPEncaps", default)]
    pub ce_ipsec_force_udp_encaps: bool,
    /// Pod CIDR.
    #[serde(rename = "clusterCIDR", default)]
    pub cluster_cidr: String,
    /// Service CIDR.
    #[serde(rename = "serviceCIDR", default)]
    pub service_cidr: String,
    /// Globalnet CIDR.
    #[serde(rename = "globalCIDR", default)]
    pub global_cidr: String,
    /// ClusterSet IP CIDR.
    #[serde(rename = "clustersetIPCIDR", default)]
    pub clusterset_ip_cidr: String,
    /// Whether ClusterSet IPs are allocated.
    #[serde(rename = "clustersetIPEnabled", default)]
    pub clusterset_ip_enabled: bool,
    /// The cluster ID.
    #[serde(rename = "clusterID")]
    pub cluster_id: String,
    /// Legacy colour codes.
    #[serde(default)]
    pub color_codes: String,
    /// Namespace the components run in.
    pub namespace: String,
    /// Image repository.
    #[serde(default)]
    pub repository: String,
    /// Component version.
    #[serde(default)]
    pub version: String,
    /// Debug logging.
    #[serde(default)]
    pub debug: bool,
    /// NAT traversal.
    #[serde(default)]
    pub nat_enabled: bool,
    /// Air-gapped deployment (no public IP lookup).
    #[serde(default)]
    pub air_gapped_deployment: bool,
    /// Expose the gateway through a LoadBalancer service.
    #[serde(default)]
    pub load_balancer_enabled: bool,
    /// Deploy Lighthouse.
    #[serde(default)]
    pub service_discovery_enabled: bool,
    /// Stop on certificate errors instead of retrying.
    #[serde(default)]
    pub halt_on_certificate_error: bool,
    /// A custom CoreDNS ConfigMap to configure.
    #[serde(
        rename = "coreDNSCustomConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub core_dns_custom_config: Option<CoreDnsCustomConfig>,
    /// Extra DNS zones answered besides `clusterset.local`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_domains: Vec<String>,
    /// Image overrides per component.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub image_overrides: BTreeMap<String, String>,
    /// Health checking of connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_health_check: Option<HealthCheckSpec>,
}

/// What the operator discovered and deployed.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubmarinerStatus {
    /// Effective NAT setting.
    #[serde(default)]
    pub nat_enabled: bool,
    /// The cluster ID.
    #[serde(rename = "clusterID", default)]
    pub cluster_id: String,
    /// Effective service CIDRs.
    #[serde(rename = "serviceCIDR", default)]
    pub service_cidr: String,
    /// Effective pod CIDRs.
    #[serde(rename = "clusterCIDR", default)]
    pub cluster_cidr: String,
    /// Globalnet CIDR.
    #[serde(rename = "globalCIDR", default)]
    pub global_cidr: String,
    /// Network plugin detected.
    #[serde(default)]
    pub network_plugin: String,
    /// Deployed version.
    #[serde(default)]
    pub version: String,
}

/// Lighthouse deployment settings (object `service-discovery`).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "submariner.io",
    version = "v1alpha1",
    kind = "ServiceDiscovery",
    namespaced
)]
#[serde(rename_all = "camelCase")]
pub struct ServiceDiscoverySpec {
    /// Broker type.
    #[serde(default)]
    pub broker: String,
    /// Broker API server, host:port without scheme.
    pub broker_k8s_api_server: String,
    /// Further replicas of the broker API server, host:port, tried in turn when one cannot be
    /// reached (subsea; Submariner names one broker).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub broker_k8s_api_server_replicas: Vec<String>,
    /// Token of the cluster's broker service account.
    #[serde(default)]
    pub broker_k8s_api_server_token: String,
    /// std-base64 of the broker CA certificate.
    #[serde(rename = "brokerK8sCA", default)]
    pub broker_k8s_ca: String,
    /// Name of the local secret holding the broker credentials.
    #[serde(default)]
    pub broker_k8s_secret: String,
    /// Broker namespace.
    pub broker_k8s_remote_namespace: String,
    /// Skip broker certificate verification.
    #[serde(default)]
    pub broker_k8s_insecure: bool,
    /// The cluster ID.
    #[serde(rename = "clusterID")]
    pub cluster_id: String,
    /// Namespace the components run in.
    pub namespace: String,
    /// Image repository.
    #[serde(default)]
    pub repository: String,
    /// Component version.
    #[serde(default)]
    pub version: String,
    /// ClusterSet IP CIDR.
    #[serde(rename = "clustersetIPCIDR", default)]
    pub clusterset_ip_cidr: String,
    /// Debug logging.
    #[serde(default)]
    pub debug: bool,
    /// Globalnet on.
    #[serde(default)]
    pub globalnet_enabled: bool,
    /// Stop on certificate errors.
    #[serde(default)]
    pub halt_on_certificate_error: bool,
    /// ClusterSet IPs on.
    #[serde(rename = "clustersetIPEnabled", default)]
    pub clusterset_ip_enabled: bool,
    /// A custom CoreDNS ConfigMap to configure.
    #[serde(
        rename = "coreDNSCustomConfig",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub core_dns_custom_config: Option<CoreDnsCustomConfig>,
    /// Extra DNS zones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_domains: Vec<String>,
    /// Image overrides per component.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub image_overrides: BTreeMap<String, String>,
}

/// Broker settings (object `submariner-broker` in the broker namespace).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(group = "submariner.io", version = "v1alpha1", kind = "Broker", namespaced)]
#[serde(rename_all = "camelCase")]
pub struct BrokerSpec {
    /// Enabled components: `service-discovery`, `connectivity`.
    #[serde(default)]
    pub components: Vec<String>,
    /// Default custom DNS domains for joining clusters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_custom_domains: Vec<String>,
    /// Globalnet CIDR range.
    #[serde(
        rename = "globalnetCIDRRange",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub globalnet_cidr_range: String,
    /// ClusterSet IP CIDR range.
    #[serde(
        rename = "clustersetIPCIDRRange",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub clusterset_ip_cidr_range: String,
    /// Default Globalnet cluster size.
    #[serde(default)]
    pub default_globalnet_cluster_size: u32,
    /// Globalnet on.
    #[serde(default)]
    pub globalnet_enabled: bool,
    /// ClusterSet IPs on.
    #[serde(rename = "clustersetIPEnabled", default)]
    pub clusterset_ip_enabled: bool,
}
