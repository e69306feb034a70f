//! Well-known namespaces, labels and annotations shared with Submariner.

/// Namespace of the broker's objects on the broker cluster (default of `subctl deploy-broker`).
pub const BROKER_NAMESPACE: &str = "submariner-k8s-broker";
/// Namespace of the Submariner components in each joined cluster.
pub const OPERATOR_NAMESPACE: &str = "submariner-operator";
/// Label carrying the cluster that originated an object synced through the broker.
pub const CLUSTER_ID_LABEL: &str = "submariner-io/clusterID";
/// Label carrying the namespace an object was synced from.
pub const ORIGINATING_NAMESPACE_LABEL: &str = "submariner-io/originatingNamespace";
/// Node label that makes a node eligible to run the gateway.
pub const GATEWAY_NODE_LABEL: &str = "submariner.io/gateway";
/// Annotation on Gateway objects, refreshed with the unix time of the last status write.
pub const UPDATE_TIMESTAMP_ANNOTATION: &str = "update-timestamp";
