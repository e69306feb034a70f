//! The objects `subctl deploy-broker` writes on the broker and `subctl join` writes on the broker
//! and in the joining cluster, as JSON manifests (Submariner's names, labels and RBAC rules).

use base64::Engine;
use serde_json::{Value, json};

use crate::globalnet;

/// Service account whose token goes into `broker-info.subm`.
pub const ADMIN_SA: &str = "submariner-k8s-broker-admin";
/// Role bound to the admin service account.
pub const ADMIN_ROLE: &str = "submariner-k8s-broker-admin";
/// Role bound to every joined cluster's service account.
pub const CLUSTER_ROLE: &str = "submariner-k8s-broker-cluster";
/// The Broker object's name.
pub const BROKER_NAME: &str = "submariner-broker";
/// Local Secret with the cluster's broker credentials.
pub const BROKER_SECRET: &str = "submariner-broker-secret";
/// Secret with the pre-shared key.
pub const PSK_SECRET: &str = "submariner-ipsec-psk";
/// Annotation naming a token Secret's service account.
pub const SA_NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
/// Annotation that confines a service account's writes on the broker to one cluster.
pub const CLUSTER_ID_ANNOTATION: &str = "subsea.io/cluster-id";
/// Annotation recording which cluster (kube-system namespace UID) joined with an ID.
pub const CLUSTER_UID_ANNOTATION: &str = "subsea.io/cluster-uid";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// A Namespace.
pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// A ServiceAccount.
pub fn service_account(ns: &str, name: &str, annotations: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns, "annotations": annotations}})
}

/// A token Secret for a service account (the server fills in the token).
pub fn token_secret(ns: &str, sa: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/service-account-token",
        "metadata": {"generateName": format!("{sa}-token-"), "namespace": ns,
            "annotations": {SA_NAME_ANNOTATION: sa, "kubernetes.io/created-by": "subctl"}}})
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

const CRUD: &[&str] = &["create", "get", "list", "watch", "update", "patch", "delete"];

/// Role of the broker administrator (deploy-broker and join use it).
pub fn admin_role(ns: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": ADMIN_ROLE, "namespace": ns},
    "rules": [
        rule(&["submariner.io"], &["clusters", "endpoints"], CRUD),
        rule(&["submariner.io"], &["brokers"], &["get", "list"]),
        rule(&[""], &["serviceaccounts", "secrets", "configmaps"], CRUD),
        rule(&["rbac.authorization.k8s.io"], &["rolebindings"], &["create", "get", "list", "delete"]),
        rule(&["multicluster.x-k8s.io"], &["serviceimports", "serviceimports/status"], CRUD),
        rule(&["discovery.k8s.io"], &["endpointslices", "endpointslices/restricted"], CRUD),
        rule(&["coordination.k8s.io"], &["leases"], CRUD),
    ]})
}

/// Role every joined cluster's service account is bound to. Unlike Submariner's, it grants no
/// access to Secrets: with it a cluster could read the broker admin token and escape the
/// per-cluster write rule.
pub fn cluster_role(ns: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": CLUSTER_ROLE, "namespace": ns},
    "rules": [
        rule(&["submariner.io"], &["clusters", "endpoints"], CRUD),
        rule(&["submariner.io"], &["brokers"], &["get", "list"]),
        rule(&["multicluster.x-k8s.io"], &["serviceimports", "serviceimports/status"], CRUD),
        rule(&["discovery.k8s.io"], &["endpointslices", "endpointslices/restricted"], CRUD),
        // The gateway heartbeat (`subsea_api::extdns`), confined to the cluster's own Lease by
        // the per-cluster rule.
        rule(&["coordination.k8s.io"], &["leases"], CRUD),
        // What the external DNS publisher reports (`subctl show service-discovery`).
        rule(&[""], &["configmaps"], &["get", "list"]),
        // delete: `subctl uninstall` revokes the cluster's own account with its own token (the
        // per-cluster rule confines it to the account labelled with its ID); the token Secret
        // and the binding are owned by the account and go with it.
        rule(&[""], &["serviceaccounts"], &["get", "list", "delete"]),
    ]})
}

/// A RoleBinding of `role` to a service account.
pub fn role_binding(ns: &str, name: &str, role: &str, sa: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name, "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": ns}]})
}

/// The Broker object.
pub fn broker(
    ns: &str,
    components: &[String],
    custom_domains: &[String],
    globalnet: Option<&globalnet::Settings>,
    clusterset_ip: Option<&str>,
) -> Value {
    let mut spec = json!({"components": components, "defaultCustomDomains": custom_domains, "globalnetEnabled": globalnet.is_some(),
        "clustersetIPEnabled": clusterset_ip.is_some(), "defaultGlobalnetClusterSize": globalnet.map_or(0, |g| g.cluster_size)});
    if let Some(g) = globalnet {
        spec["globalnetCIDRRange"] = json!(g.range.to_string());
    }
    if let Some(range) = clusterset_ip {
        spec["clustersetIPCIDRRange"] = json!(range);
    }
    json!({"apiVersion": "submariner.io/v1alpha1", "kind": "Broker", "metadata": {"name": BROKER_NAME, "namespace": ns},
        "spec": spec})
}

/// The Globalnet ConfigMap with `info`'s data.
pub fn globalnet_info(ns: &str, info: &globalnet::Info) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": globalnet::CONFIGMAP, "namespace": ns, "labels": {"component": "submariner-globalnet"}},
        "data": info.to_data()})
}

/// Per-cluster names on the broker.
pub fn cluster_sa_name(cluster_id: &str) -> String {
    format!("cluster-{cluster_id}")
}

/// The RoleBinding name of a cluster's service account.
pub fn cluster_binding_name(cluster_id: &str) -> String {
    format!("cluster-{cluster_id}-{CLUSTER_ROLE}")
}

/// An Opaque Secret with raw (unencoded) data.
pub fn opaque_secret(ns: &str, name: &str, data: &[(&str, &[u8])]) -> Value {
    let data: serde_json::Map<String, Value> =
        data.iter().map(|(k, v)| (k.to_string(), json!(b64(v)))).collect();
    json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": name, "namespace": ns}, "data": data})
}

/// What `join` configures, for the `Submariner` object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JoinSettings {
    /// The cluster ID.
    pub cluster_id: String,
    /// Broker URL.
    pub broker_url: String,
    /// URLs of further broker replicas.
    pub broker_replicas: Vec<String>,
    /// Broker namespace.
    pub broker_namespace: String,
    /// Per-cluster broker token.
    pub token: String,
    /// Broker CA (PEM).
    pub ca_crt: Vec<u8>,
    /// Skip broker certificate verification.
    pub insecure: bool,
    /// Pre-shared key.
    pub psk: Vec<u8>,
    /// Cable driver.
    pub cable_driver: String,
    /// NAT traversal.
    pub natt: bool,
    /// Dataplane UDP port.
    pub natt_port: u16,
    /// Service CIDRs.
    pub service_cidrs: Vec<String>,
    /// Pod CIDRs.
    pub cluster_cidrs: Vec<String>,
    /// Health check on.
    pub health_check: bool,
    /// Health check interval.
    pub health_check_interval: u64,
    /// Lost pings before error.
    pub health_check_max_loss: u64,
    /// Components enabled on the broker.
    pub components: Vec<String>,
    /// Extra DNS domains.
    pub custom_domains: Vec<String>,
    /// Custom CoreDNS ConfigMap, `(namespace, name)`.
    pub coredns_custom: Option<(String, String)>,
    /// The cluster's GlobalCIDR, when Globalnet is on.
    pub global_cidr: Option<String>,
    /// The ClusterSetIP range when exports get a VIP by default.
    pub clusterset_ip: Option<String>,
}

/// The broker connection and DNS settings the `Submariner` and `ServiceDiscovery` objects share.
fn common_spec(s: &JoinSettings) -> Value {
    let host_of = |url: &str| {
        url.trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    };
    let host = host_of(&s.broker_url);
    let mut spec = json!({
        "brokerK8sApiServer": host,
        "brokerK8sApiServerToken": s.token,
        "brokerK8sCA": b64(&s.ca_crt),
        "brokerK8sSecret": BROKER_SECRET,
        "brokerK8sRemoteNamespace": s.broker_namespace,
        "brokerK8sInsecure": s.insecure,
        "clusterID": s.cluster_id,
        "namespace": crate::OPERATOR_NAMESPACE,
        "version": env!("CARGO_PKG_VERSION"),
    });
    if !s.broker_replicas.is_empty() {
        spec["brokerK8sApiServerReplicas"] =
            json!(s.broker_replicas.iter().map(|u| host_of(u)).collect::<Vec<_>>());
    }
    if !s.custom_domains.is_empty() {
        spec["customDomains"] = json!(s.custom_domains);
    }
    if let Some((ns, name)) = &s.coredns_custom {
        spec["coreDNSCustomConfig"] = json!({"configMapName": name, "namespace": ns});
    }
    spec
}

/// The `Submariner` object join writes (`submariner-operator/submariner`).
pub fn submariner(s: &JoinSettings) -> Value {
    let mut spec = common_spec(s);
    let extra = json!({
        "broker": "k8s",
        "cableDriver": s.cable_driver,
        "ceIPSecPSK": b64(&s.psk),
        "ceIPSecPSKSecret": PSK_SECRET,
        "ceIPSecNATTPort": s.natt_port,
        "clusterCIDR": s.cluster_cidrs.join(","),
        "globalCIDR": s.global_cidr.clone().unwrap_or_default(),
        "serviceCIDR": s.service_cidrs.join(","),
        "natEnabled": s.natt,
        "serviceDiscoveryEnabled": s.components.iter().any(|c| c == "service-discovery"),
        "connectionHealthCheck": {"enabled": s.health_check, "intervalSeconds": s.health_check_interval,
            "maxPacketLossCount": s.health_check_max_loss},
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        spec[k.as_str()] = v.clone();
    }
    json!({"apiVersion": "submariner.io/v1alpha1", "kind": "Submariner",
        "metadata": {"name": "submariner", "namespace": crate::OPERATOR_NAMESPACE}, "spec": spec})
}

/// The `ServiceDiscovery` object (`submariner-operator/service-discovery`).
pub fn service_discovery(s: &JoinSettings) -> Value {
    let mut spec = common_spec(s);
    spec["globalnetEnabled"] = json!(s.global_cidr.is_some());
    spec["clustersetIPEnabled"] = json!(s.clusterset_ip.is_some());
    if let Some(range) = &s.clusterset_ip {
        spec["clustersetIPCIDR"] = json!(range);
    }
    json!({"apiVersion": "submariner.io/v1alpha1", "kind": "ServiceDiscovery",
        "metadata": {"name": "service-discovery", "namespace": crate::OPERATOR_NAMESPACE}, "spec": spec})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submariner_object_strips_the_scheme_and_encodes_secrets() {
        let s = JoinSettings {
            cluster_id: "c1".into(),
            broker_url: "https://10.0.0.1:6443".into(),
            broker_namespace: "submariner-k8s-broker".into(),
            token: "t".into(),
            ca_crt: b"ca".to_vec(),
            psk: vec![1, 2, 3],
            cable_driver: "wireguard".into(),
            natt: true,
            natt_port: 4500,
            service_cidrs: vec!["100.66.0.0/16".into()],
            cluster_cidrs: vec!["10.130.0.0/16".into()],
            components: vec!["connectivity".into(), "service-discovery".into()],
            ..Default::default()
        };
        let sub = submariner(&s);
        assert_eq!(sub["spec"]["brokerK8sApiServer"], "10.0.0.1:6443");
        assert_eq!(sub["spec"]["brokerK8sCA"], "Y2E=");
        assert_eq!(sub["spec"]["ceIPSecPSK"], "AQID");
        assert_eq!(sub["spec"]["serviceDiscoveryEnabled"], true);
        assert_eq!(sub["metadata"]["namespace"], "submariner-operator");
    }

    #[test]
    fn cluster_role_lets_clusters_sync_but_not_administer() {
        let r = cluster_role("b");
        let rules = r["rules"].as_array().expect("rules");
        assert!(
            rules
                .iter()
                .any(|r| r["resources"] == json!(["clusters", "endpoints"]))
        );
        assert!(!rules.iter().any(|r| {
            r["resources"]
                .as_array()
                .is_some_and(|a| a.contains(&json!("rolebindings")))
        }));
    }
}
