//! The agent's decisions, as pure functions over the typed objects: whether an export is valid,
//! what this cluster publishes on the broker for it, and what every cluster imports.
//!
//! Broker layout (see `ARCHITECTURE.md`): each exporting cluster publishes its own
//! `ServiceImport` and Lighthouse `EndpointSlice`, both named `<svc>-<ns>-<cluster>` and
//! labelled with its cluster ID. Importing agents aggregate them locally into the
//! `ServiceImport` `<ns>/<svc>`. Submariner instead keeps one aggregate on the broker that every
//! cluster edits; with per-cluster authorization no cluster may edit another's object, and the
//! local aggregate has no write races.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;
use subsea_api::mcs::v1alpha1::{ServiceImport, ServiceImportSpec};
use subsea_api::mcs::{
    ClientIpConfig, ClusterStatus, Condition, ServiceImportStatus, ServicePort, SessionAffinityConfig,
};

use crate::labels::*;

/// The value of label `key`, empty when absent.
pub fn label<'a>(meta: &'a ObjectMeta, key: &str) -> &'a str {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map_or("", String::as_str)
}

/// The value of annotation `key`, empty when absent.
pub fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> &'a str {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map_or("", String::as_str)
}

/// An object's `(namespace, name)`.
pub fn key(meta: &ObjectMeta) -> (&str, &str) {
    (
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default(),
    )
}

/// Why an export is not valid: `(reason, message)` as the `Valid` condition carries them.
pub type Invalid = (&'static str, String);

/// Whether the Service can be exported. Every type with a cluster IP can (the MCS API only
/// rules out ExternalName): NodePort and LoadBalancer Services are imported by their cluster
/// IP like ClusterIP ones, and a LoadBalancer's external addresses also go to the external DNS
/// publisher. Lighthouse accepts only ClusterIP; its words are kept, and its reason for types
/// other than ExternalName.
pub fn validate(service: Option<&Service>) -> Result<(), Invalid> {
    let Some(svc) = service else {
        return Err((
            "ServiceUnavailable",
            "Service to be exported doesn't exist".into(),
        ));
    };
    match svc
        .spec
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .unwrap_or_default()
    {
        "" | "ClusterIP" | "NodePort" | "LoadBalancer" => Ok(()),
        // The MCS API's own reason (v1beta1 `ServiceExportReasonInvalidServiceType`), which
        // its conformance suite checks; Lighthouse's words.
        "ExternalName" => Err((
            "InvalidServiceType",
            "Service of type ExternalName not supported".into(),
        )),
        other => Err((
            "UnsupportedServiceType",
            format!("Service of type {other} not supported"),
        )),
    }
}

/// Whether the service is headless.
pub fn headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

/// The Service's address families as `(IPv4, IPv6)`: its `ipFamilies`, else those of its
/// cluster IPs, else IPv4 alone (a Service without either is an IPv4 one).
pub fn families(svc: &Service) -> (bool, bool) {
    let spec = svc.spec.as_ref();
    let named: Vec<&str> = spec
        .and_then(|s| s.ip_families.as_ref())
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    let (v4, v6) = if named.is_empty() {
        let ips: Vec<std::net::IpAddr> = spec
            .and_then(|s| s.cluster_ips.as_ref())
            .into_iter()
            .flatten()
            .filter_map(|ip| ip.parse().ok())
            .collect();
        (
            ips.iter().any(|ip| ip.is_ipv4()),
            ips.iter().any(|ip| ip.is_ipv6()),
        )
    } else {
        (named.contains(&"IPv4"), named.contains(&"IPv6"))
    };
    if v4 || v6 { (v4, v6) } else { (true, false) }
}

fn ports(svc: &Service) -> Vec<ServicePort> {
    let ports = svc.spec.as_ref().and_then(|s| s.ports.as_ref());
    ports
        .into_iter()
        .flatten()
        .map(|p| ServicePort {
            name: p.name.clone().filter(|n| !n.is_empty()),
            protocol: Some(p.protocol.clone().unwrap_or_else(|| "TCP".into())),
            app_protocol: p.app_protocol.clone(),
            port: p.port,
        })
        .collect()
}

fn cluster_ips(svc: &Service) -> Vec<String> {
    let Some(spec) = svc.spec.as_ref() else {
        return Vec::new();
    };
    match spec.cluster_ips.as_ref().filter(|ips| !ips.is_empty()) {
        Some(ips) => ips.clone(),
        None => spec.cluster_ip.iter().cloned().collect(),
    }
}

fn session_affinity(svc: &Service) -> (Option<String>, Option<SessionAffinityConfig>) {
    let spec = svc.spec.as_ref();
    let config = spec
        .and_then(|s| s.session_affinity_config.as_ref())
        .map(|c| SessionAffinityConfig {
            client_ip: c.client_ip.as_ref().map(|ip| ClientIpConfig {
                timeout_seconds: ip.timeout_seconds,
            }),
        });
    (spec.and_then(|s| s.session_affinity.clone()), config)
}

/// The broker object name of a cluster's part of an export.
pub fn broker_name(svc: &str, ns: &str, cluster: &str) -> String {
    format!("{svc}-{ns}-{cluster}")
}

fn identity(svc: &Service, cluster: &str) -> BTreeMap<String, String> {
    let (ns, name) = key(&svc.metadata);
    [
        (SERVICE_NAME, name),
        (SOURCE_NAMESPACE, ns),
        (SOURCE_CLUSTER, cluster),
        (CLUSTER_ID, cluster),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn meta(
    name: String,
    namespace: &str,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
) -> ObjectMeta {
    ObjectMeta {
        name: Some(name),
        namespace: Some(namespace.into()),
        labels: Some(labels),
        annotations: Some(annotations),
        ..Default::default()
    }
}

/// This cluster's ServiceImport for the broker. `exported_at` is the ServiceExport's
/// creationTimestamp: the oldest export wins conflicts.
pub fn cluster_import(cluster: &str, broker_ns: &str, svc: &Service, exported_at: &str) -> ServiceImport {
    let (ns, name) = key(&svc.metadata);
    let headless = headless(svc);
    let (session_affinity, session_affinity_config) = session_affinity(svc);
    let s = svc.spec.as_ref();
    let spec = ServiceImportSpec {
        type_: if headless { "Headless" } else { "ClusterSetIP" }.into(),
        ports: ports(svc),
        ips: if headless { Vec::new() } else { cluster_ips(svc) },
        session_affinity,
        session_affinity_config,
        ip_families: s.and_then(|s| s.ip_families.clone()).unwrap_or_default(),
        internal_traffic_policy: s.and_then(|s| s.internal_traffic_policy.clone()),
        traffic_distribution: s.and_then(|s| s.traffic_distribution.clone()),
    };
    let annotations = BTreeMap::from([
        (format!("{TIMESTAMP_PREFIX}{cluster}"), exported_at.to_string()),
        (PUBLISH_NOT_READY.to_string(), publish_not_ready(svc).to_string()),
        (
            subsea_api::extdns::EXTERNAL_ANNOTATION.to_string(),
            crate::external::annotation_value(svc),
        ),
    ]);
    let mut si = ServiceImport::new(&broker_name(name, ns, cluster), spec);
    si.metadata = meta(
        broker_name(name, ns, cluster),
        broker_ns,
        identity(svc, cluster),
        annotations,
    );
    si.status = Some(ServiceImportStatus {
        clusters: vec![ClusterStatus {
            cluster: cluster.into(),
        }],
        ..Default::default()
    });
    si
}

/// The Service's `publishNotReadyAddresses`: its not-ready backends are to be published too.
pub fn publish_not_ready(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.publish_not_ready_addresses) == Some(true)
}

fn ready(e: &Endpoint) -> bool {
    e.conditions.as_ref().and_then(|c| c.ready) != Some(false)
}

fn endpoint(addresses: Vec<String>, ready: bool, hostname: Option<String>) -> Endpoint {
    Endpoint {
        addresses,
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            ..Default::default()
        }),
        hostname,
        ..Default::default()
    }
}

/// Whether any backend of the service is ready (a missing condition counts as ready).
pub fn backends_ready(slices: &[&EndpointSlice]) -> bool {
    slices.iter().any(|sl| sl.endpoints.iter().any(ready))
}

/// Suffix of the broker object name of a cluster's IPv6 EndpointSlice.
const V6_SUFFIX: &str = "-ipv6";

/// This cluster's Lighthouse EndpointSlices for the broker, one per address family (an
/// EndpointSlice holds one family, as Kubernetes validates it). For a ClusterSetIP service each
/// holds one endpoint, the ClusterIP of its family, ready when any backend is; for a headless
/// service it holds the backends themselves (addresses, hostname, readiness). The IPv4 slice,
/// also the one for a service with no address yet, keeps the plain [`broker_name`]; the IPv6
/// one adds `-ipv6`.
pub fn cluster_slices(
    cluster: &str,
    broker_ns: &str,
    svc: &Service,
    k8s_slices: &[&EndpointSlice],
) -> Vec<EndpointSlice> {
    let (ns, name) = key(&svc.metadata);
    let headless = headless(svc);
    let mut labels = identity(svc, cluster);
    labels.insert(MANAGED_BY.into(), MANAGER.into());
    labels.insert(IS_HEADLESS.into(), headless.to_string());
    let (endpoints, slice_ports): (Vec<Endpoint>, Vec<EndpointPort>) = if headless {
        let eps = k8s_slices
            .iter()
            .flat_map(|sl| &sl.endpoints)
            .map(|e| {
                let host = e
                    .hostname
                    .clone()
                    .or_else(|| e.target_ref.as_ref().and_then(|t| t.name.clone()));
                endpoint(e.addresses.clone(), ready(e), host)
            })
            .collect();
        let ps = k8s_slices
            .first()
            .and_then(|sl| sl.ports.clone())
            .unwrap_or_default();
        (eps, ps)
    } else {
        let any = k8s_slices.iter().any(|sl| !sl.endpoints.is_empty());
        let ready = backends_ready(k8s_slices) || (publish_not_ready(svc) && any);
        let ports = ports(svc)
            .into_iter()
            .map(|p| EndpointPort {
                name: p.name,
                port: Some(p.port),
                protocol: p.protocol,
                app_protocol: p.app_protocol,
            })
            .collect();
        (vec![endpoint(cluster_ips(svc), ready, None)], ports)
    };
    let (v4, v6) = split_families(&endpoints);
    let annotations = BTreeMap::from([(PUBLISH_NOT_READY.to_string(), publish_not_ready(svc).to_string())]);
    let slice = |family: &str, eps: Vec<Endpoint>, suffix: &str| EndpointSlice {
        metadata: meta(
            format!("{}{suffix}", broker_name(name, ns, cluster)),
            broker_ns,
            labels.clone(),
            annotations.clone(),
        ),
        address_type: family.into(),
        endpoints: eps,
        ports: Some(slice_ports.clone()),
    };
    // The IPv4 slice also stands for a service with no address yet; IPv6 only when it has some.
    match (v4.is_empty(), v6.is_empty()) {
        (_, true) => vec![slice("IPv4", v4, "")],
        (true, false) => vec![slice("IPv6", v6, V6_SUFFIX)],
        (false, false) => vec![slice("IPv4", v4, ""), slice("IPv6", v6, V6_SUFFIX)],
    }
}

/// Each endpoint's addresses split by family: the endpoints with their IPv4 and their IPv6
/// addresses (an endpoint without addresses of a family is left out of it).
fn split_families(endpoints: &[Endpoint]) -> (Vec<Endpoint>, Vec<Endpoint>) {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for e in endpoints {
        for (want_v6, out) in [(false, &mut v4), (true, &mut v6)] {
            let mine: Vec<String> = e
                .addresses
                .iter()
                .filter(|a| {
                    a.parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_ipv6() == want_v6)
                })
                .cloned()
                .collect();
            if !mine.is_empty() {
                out.push(Endpoint {
                    addresses: mine,
                    ..e.clone()
                });
            }
        }
    }
    (v4, v6)
}

/// Whether a broker import is one of `<ns>/<svc>`.
fn of_service(i: &ServiceImport, ns: &str, svc: &str) -> bool {
    label(&i.metadata, SOURCE_NAMESPACE) == ns && label(&i.metadata, SERVICE_NAME) == svc
}

/// Whether a broker import is an export held back by a type conflict (not served).
pub fn type_conflicted(i: &ServiceImport) -> bool {
    !annotation(&i.metadata, TYPE_CONFLICT).is_empty()
}

/// The exports of `<ns>/<svc>` among `imports`, oldest first: `(exported at, cluster, import)`.
fn exports_of<'a>(
    ns: &str,
    svc: &str,
    imports: &[&'a ServiceImport],
) -> Vec<(&'a str, &'a str, &'a ServiceImport)> {
    let mut mine: Vec<(&str, &str, &ServiceImport)> = imports
        .iter()
        .filter(|i| of_service(i, ns, svc) && !type_conflicted(i))
        .map(|i| {
            let cluster = label(&i.metadata, SOURCE_CLUSTER);
            let ts = i
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(&format!("{TIMESTAMP_PREFIX}{cluster}")))
                .map_or("", String::as_str);
            (ts, cluster, *i)
        })
        .collect();
    mine.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    mine
}

/// The `ServiceImport` a cluster holds for `<ns>/<svc>`, aggregated from every cluster's
/// import on the broker: type, session affinity, exported labels and annotations of the oldest
/// export, ports the union by name in oldest-first order, `status.clusters` every exporter.
/// `None` when nobody exports.
pub fn aggregate(ns: &str, svc: &str, imports: &[&ServiceImport]) -> Option<ServiceImport> {
    let mine = exports_of(ns, svc, imports);
    let (_, _, oldest) = mine.first()?;
    let mut ports: Vec<ServicePort> = Vec::new();
    for p in mine.iter().flat_map(|(_, _, i)| &i.spec.ports) {
        if !ports.iter().any(|q| q.name == p.name) {
            ports.push(p.clone());
        }
    }
    let spec = ServiceImportSpec {
        type_: oldest.spec.type_.clone(),
        ports,
        ips: Vec::new(),
        session_affinity: oldest.spec.session_affinity.clone(),
        session_affinity_config: oldest.spec.session_affinity_config.clone(),
        ip_families: oldest.spec.ip_families.clone(),
        internal_traffic_policy: oldest.spec.internal_traffic_policy.clone(),
        traffic_distribution: oldest.spec.traffic_distribution.clone(),
    };
    let (labels, mut annotations) = crate::exported::read(&oldest.metadata);
    annotations.extend(
        mine.iter()
            .map(|(ts, c, _)| (format!("{TIMESTAMP_PREFIX}{c}"), ts.to_string())),
    );
    let mut agg = ServiceImport::new(svc, spec);
    agg.metadata.namespace = Some(ns.into());
    agg.metadata.labels = Some(labels);
    agg.metadata.annotations = Some(annotations);
    agg.status = Some(ServiceImportStatus {
        clusters: mine
            .iter()
            .map(|(_, c, _)| ClusterStatus {
                cluster: c.to_string(),
            })
            .collect(),
        ..Default::default()
    });
    Some(agg)
}

/// The local copy of a cluster's Lighthouse slice, in the service's namespace, named
/// `<svc>-<cluster>`; the DNS server reads these.
pub fn local_slice(broker_slice: &EndpointSlice) -> EndpointSlice {
    let m = &broker_slice.metadata;
    let (ns, name) = local_slice_key(broker_slice);
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(ns.into()),
            labels: Some(m.labels.clone().unwrap_or_default()),
            annotations: m.annotations.clone(),
            ..Default::default()
        },
        ..broker_slice.clone()
    }
}

/// Namespace and name of [`local_slice`]'s copy of `broker_slice`.
pub fn local_slice_key(broker_slice: &EndpointSlice) -> (&str, String) {
    let m = &broker_slice.metadata;
    let (ns, svc, cluster) = (
        label(m, SOURCE_NAMESPACE),
        label(m, SERVICE_NAME),
        label(m, SOURCE_CLUSTER),
    );
    let family = if broker_slice.address_type == "IPv6" {
        V6_SUFFIX
    } else {
        ""
    };
    (ns, format!("{svc}-{cluster}{family}"))
}

/// Whether `existing` already holds everything `desired` says (objects field by field, arrays
/// and scalars exactly): then writing `desired` would change nothing and is skipped.
pub fn covers(existing: &Value, desired: &Value) -> bool {
    match (existing, desired) {
        (Value::Object(e), Value::Object(d)) => {
            d.iter().all(|(k, dv)| e.get(k).is_some_and(|ev| covers(ev, dv)))
        }
        (e, d) => e == d,
    }
}

/// A condition of type `t`, keeping the `lastTransitionTime` of the one in `old` while its
/// status stays the same.
pub(crate) fn condition(
    old: &[Condition],
    now: &str,
    t: &str,
    status: bool,
    reason: &str,
    message: &str,
) -> Condition {
    let status = if status { "True" } else { "False" };
    let since = old
        .iter()
        .find(|c| c.type_ == t && c.status == status)
        .and_then(|c| c.last_transition_time.clone())
        .unwrap_or_else(|| now.to_string());
    Condition {
        type_: t.into(),
        status: status.into(),
        last_transition_time: Some(since),
        reason: Some(reason.into()),
        message: Some(message.into()),
    }
}

/// MCS conditions for an export; a condition keeps its `lastTransitionTime` while its status
/// stays the same.
pub fn conditions(
    old: &[Condition],
    valid: &Result<(), Invalid>,
    exported: bool,
    conflict: Option<&Conflict>,
    now: &str,
) -> Vec<Condition> {
    let cond =
        |t: &str, status: bool, reason: &str, message: &str| condition(old, now, t, status, reason, message);
    let mut out = Vec::new();
    match valid {
        Ok(()) => out.push(cond("Valid", true, "", "")),
        Err((reason, message)) => out.push(cond("Valid", false, reason, message)),
    }
    out.push(match (valid, exported) {
        (Ok(()), true) => cond(
            "Ready",
            true,
            "",
            "Service was successfully exported to the broker",
        ),
        (Ok(()), false) => cond(
            "Ready",
            false,
            "AwaitingExport",
            "ServiceImport created - awaiting aggregation on the broker",
        ),
        (Err(_), _) => cond("Ready", false, "NoServiceImport", "ServiceImport was deleted"),
    });
    out.push(match conflict {
        Some(c) => cond("Conflict", true, &c.reason, &c.message),
        None => cond("Conflict", false, "", ""),
    });
    out
}

/// `conds` in the MCS API's words (v1beta1's condition reasons, which its conformance suite
/// reads) instead of Lighthouse's: `Valid`/`NoService`/`InvalidServiceType`,
/// `Exported`/`Pending`/`Failed`, `NoConflicts` and the `…Conflict` reasons.
pub fn mcs_reasons(conds: Vec<Condition>) -> Vec<Condition> {
    let word = |t: &str, status: &str, reason: &str| -> String {
        let mapped = match (t, status, reason) {
            ("Valid", "True", _) => "Valid",
            ("Valid", _, "ServiceUnavailable") => "NoService",
            ("Valid", _, "UnsupportedServiceType") => "InvalidServiceType",
            ("Ready", "True", _) => "Exported",
            ("Ready", _, "AwaitingExport") => "Pending",
            ("Ready", _, _) => "Failed",
            ("Conflict", "False", _) => "NoConflicts",
            (_, _, "ConflictingType") => "TypeConflict",
            (_, _, "ConflictingPorts") => "PortConflict",
            (_, _, "ConflictingSessionAffinity") => "SessionAffinityConflict",
            (_, _, "ConflictingSessionAffinityConfig") => "SessionAffinityConfigConflict",
            (_, _, other) => other,
        };
        mapped.to_string()
    };
    conds
        .into_iter()
        .map(|c| {
            let status = c.status.clone();
            let reason = c
                .reason
                .as_deref()
                .unwrap_or_default()
                .split(',')
                .map(|r| word(&c.type_, &status, r))
                .collect::<Vec<_>>();
            let mut reason = reason;
            reason.dedup();
            Condition {
                reason: Some(reason.join(",")),
                ..c
            }
        })
        .collect()
}

/// Whether two condition lists say the same, transition times aside.
pub fn same_conditions(a: &[Condition], b: &[Condition]) -> bool {
    let strip = |v: &[Condition]| -> Vec<Condition> {
        v.iter()
            .map(|c| Condition {
                last_transition_time: None,
                ..c.clone()
            })
            .collect()
    };
    strip(a) == strip(b)
}

/// Why this cluster's export disagrees with the service exported by the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// Lighthouse's reasons, comma-joined when several apply.
    pub reason: String,
    /// What differs, for the condition's message.
    pub message: String,
    /// The export cannot be published at all (a type conflict); other conflicts are reported
    /// while the oldest export's values are served.
    pub blocking: bool,
}

fn port_set(i: &ServiceImport) -> BTreeMap<&str, (i32, &str)> {
    i.spec
        .ports
        .iter()
        .map(|p| {
            (
                p.name.as_deref().unwrap_or_default(),
                (p.port, p.protocol.as_deref().unwrap_or("TCP")),
            )
        })
        .collect()
}

/// The families as a set: `[IPv4, IPv6]` and `[IPv6, IPv4]` serve the same (only the primary
/// differs, which the oldest export decides without a conflict).
fn family_set(i: &ServiceImport) -> BTreeSet<&str> {
    i.spec.ip_families.iter().map(String::as_str).collect()
}

fn oldest_cluster(agg: &ServiceImport) -> &str {
    let clusters = agg
        .status
        .as_ref()
        .map(|s| s.clusters.as_slice())
        .unwrap_or_default();
    clusters.first().map_or("", |c| c.cluster.as_str())
}

/// Every conflict of this cluster's import `mine` with the other clusters' imports of the same
/// service (among `imports`, everything on the broker): type, ports differing between clusters
/// (the aggregate serves the union by name, the oldest export's port on a clash), session
/// affinity and its config, traffic policies, IP families, exported labels and annotations. The
/// oldest export's values are served, and every export involved reports the conflict (the MCS
/// API puts a `Conflict` condition on each): a later one because it differs from the oldest,
/// the oldest because some later one differs from it. Only a later export of another type is
/// blocked (not published).
pub fn conflict(cluster: &str, mine: &ServiceImport, imports: &[&ServiceImport]) -> Option<Conflict> {
    let (ns, svc) = (
        label(&mine.metadata, SOURCE_NAMESPACE),
        label(&mine.metadata, SERVICE_NAME),
    );
    let mut all: Vec<&ServiceImport> = imports
        .iter()
        .copied()
        .filter(|i| label(&i.metadata, SOURCE_CLUSTER) != cluster)
        .collect();
    all.push(mine);
    let agg = aggregate(ns, svc, &all)?;
    let oldest = oldest_cluster(&agg);
    let ordered = exports_of(ns, svc, &all);
    let others: Vec<(&str, &ServiceImport)> = ordered
        .iter()
        .filter(|(_, c, _)| *c != cluster)
        .map(|(_, c, i)| (*c, *i))
        .collect();
    // Which clusters `mine` disagrees with on a property: the oldest when this one is later,
    // every differing later one when this one is the oldest.
    let against = |differs: &dyn Fn(&ServiceImport) -> bool| -> Vec<&str> {
        others
            .iter()
            .filter(|(c, i)| (oldest == cluster || *c == oldest) && differs(i))
            .map(|(c, _)| *c)
            .collect()
    };
    let describe = |field: &str, with: &[&str]| {
        if oldest == cluster {
            format!(
                "The service {field} of cluster(s) {with:?} differs from this cluster's, exported first, which is used"
            )
        } else {
            format!(
                "The local service {field} does not match the one of the service exported first, by cluster {oldest:?}, which is used"
            )
        }
    };
    let mut type_with = against(&|o| o.spec.type_ != mine.spec.type_);
    // Later exports of another type are held back, so they are not among the served ones.
    if oldest == cluster {
        type_with.extend(
            imports
                .iter()
                .filter(|i| of_service(i, ns, svc) && type_conflicted(i))
                .filter(|i| label(&i.metadata, SOURCE_CLUSTER) != cluster)
                .map(|i| label(&i.metadata, SOURCE_CLUSTER)),
        );
    }
    if !type_with.is_empty() && oldest != cluster {
        return Some(Conflict {
            reason: "ConflictingType".into(),
            message: format!(
                "The local service type ({:?}) does not match the type ({:?}) of the service exported first, by cluster {oldest:?}",
                mine.spec.type_, agg.spec.type_
            ),
            blocking: true,
        });
    }
    let mut found: Vec<(&str, String)> = Vec::new();
    if !type_with.is_empty() {
        found.push(("ConflictingType", describe("type", &type_with)));
    }
    if mine.spec.type_ == "ClusterSetIP" && others.iter().any(|(_, o)| port_set(o) != port_set(mine)) {
        found.push((
            "ConflictingPorts",
            "The service ports conflict between the constituent clusters: the ServiceImport exposes the union of the ports by name, the oldest export's definition winning on a clash".into(),
        ));
    }
    let (my_labels, my_annotations) = crate::exported::read(&mine.metadata);
    let checks: [(&str, &str, &dyn Fn(&ServiceImport) -> bool); 7] = [
        ("sessionAffinity", "ConflictingSessionAffinity", &|o| {
            o.spec.session_affinity != mine.spec.session_affinity
        }),
        (
            "sessionAffinityConfig",
            "ConflictingSessionAffinityConfig",
            &|o| o.spec.session_affinity_config != mine.spec.session_affinity_config,
        ),
        // Lighthouse has no words for these; they are the MCS API's.
        ("internalTrafficPolicy", "InternalTrafficPolicyConflict", &|o| {
            o.spec.internal_traffic_policy != mine.spec.internal_traffic_policy
        }),
        ("trafficDistribution", "TrafficDistributionConflict", &|o| {
            o.spec.traffic_distribution != mine.spec.traffic_distribution
        }),
        // [IPv4, IPv6] and [IPv6, IPv4] serve the same; only the primary differs.
        ("ipFamilies", "IPFamilyConflict", &|o| {
            family_set(o) != family_set(mine)
        }),
        ("exportedLabels", "LabelsConflict", &|o| {
            crate::exported::read(&o.metadata).0 != my_labels
        }),
        ("exportedAnnotations", "AnnotationsConflict", &|o| {
            crate::exported::read(&o.metadata).1 != my_annotations
        }),
    ];
    for (field, reason, differs) in checks {
        let with = against(differs);
        if !with.is_empty() {
            found.push((reason, describe(field, &with)));
        }
    }
    (!found.is_empty()).then(|| Conflict {
        reason: found.iter().map(|f| f.0).collect::<Vec<_>>().join(","),
        message: found.iter().map(|f| f.1.as_str()).collect::<Vec<_>>().join("; "),
        blocking: false,
    })
}

#[cfg(test)]
mod tests;
