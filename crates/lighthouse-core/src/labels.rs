//! Lighthouse's label and annotation names (`lighthouse:pkg/constants`), and the MCS ones.

/// Namespace of the exported Service.
pub const SOURCE_NAMESPACE: &str = "lighthouse.submariner.io/sourceNamespace";
/// Exporting cluster.
pub const SOURCE_CLUSTER: &str = "multicluster.kubernetes.io/source-cluster";
/// Service name.
pub const SERVICE_NAME: &str = "multicluster.kubernetes.io/service-name";
/// Whether the service is headless.
pub const IS_HEADLESS: &str = "lighthouse.submariner.io/is-headless";
/// Who manages an EndpointSlice.
pub const MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// Lighthouse's manager value.
pub const MANAGER: &str = "lighthouse-agent.submariner.io";
/// The Kubernetes EndpointSlice → Service label.
pub const K8S_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// Export time of each cluster, on imports.
pub const TIMESTAMP_PREFIX: &str = "timestamp.submariner.io/";
/// Cluster label of everything on the broker.
pub const CLUSTER_ID: &str = "submariner-io/clusterID";
/// On Lighthouse's imports and slices: the Service's `publishNotReadyAddresses`.
pub const PUBLISH_NOT_READY: &str = "lighthouse.submariner.io/publish-not-ready-addresses";
/// On a broker import: this cluster's export has another type than the service exported first
/// and is not served; published (without slices) so that the first exporter hears of the
/// conflict too.
pub const TYPE_CONFLICT: &str = "subsea.io/type-conflict";
