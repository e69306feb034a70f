//! The agent's decisions, as pure functions over plain JSON objects: whether an export is
//! valid, what this cluster publishes on the broker for it, and what every cluster imports.
//!
//! Broker layout (see `ARCHITECTURE.md`): each exporting cluster publishes its own
//! `ServiceImport` and Lighthouse `EndpointSlice`, both named `<svc>-<ns>-<cluster>` and
//! labelled with its cluster ID. Importing agents aggregate them locally into the
//! `ServiceImport` `<ns>/<svc>`. Submariner instead keeps one aggregate on the broker that every
//! cluster edits; with per-cluster authorization no cluster may edit another's object, and the
//! local aggregate has no write races.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::labels::*;

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

/// Why an export is not valid: `(reason, message)` as the `Valid` condition carries them.
pub fn validate(service: Option<&Value>) -> Result<(), (&'static str, String)> {
    let Some(svc) = service else {
        return Err((
            "ServiceUnavailable",
            "Service to be exported doesn't exist".into(),
        ));
    };
    match s(svc, "/spec/type") {
        "" | "ClusterIP" => Ok(()),
        other => Err((
            "UnsupportedServiceType",
            format!("Service of type {other} not supported"),
        )),
    }
}

/// Whether the service is headless.
pub fn headless(svc: &Value) -> bool {
    s(svc, "/spec/clusterIP") == "None"
}

fn ports(svc: &Value) -> Vec<Value> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let mut o = json!({"port": p["port"], "protocol": p.get("protocol").cloned().unwrap_or(json!("TCP"))});
                    if let Some(n) = p.get("name").filter(|n| n.as_str().is_some_and(|n| !n.is_empty())) {
                        o["name"] = n.clone();
                    }
                    if let Some(a) = p.get("appProtocol") {
                        o["appProtocol"] = a.clone();
                    }
                    o
                })
                .collect()
        })
        .unwrap_or_default()
}

fn cluster_ips(svc: &Value) -> Vec<Value> {
    let ips: Vec<Value> = svc
        .pointer("/spec/clusterIPs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if ips.is_empty() {
        svc.pointer("/spec/clusterIP").into_iter().cloned().collect()
    } else {
        ips
    }
}

/// The broker object name of a cluster's part of an export.
pub fn broker_name(svc: &str, ns: &str, cluster: &str) -> String {
    format!("{svc}-{ns}-{cluster}")
}

fn identity(svc: &Value, cluster: &str) -> Value {
    json!({
        SERVICE_NAME: s(svc, "/metadata/name"),
        SOURCE_NAMESPACE: s(svc, "/metadata/namespace"),
        SOURCE_CLUSTER: cluster,
        CLUSTER_ID: cluster,
    })
}

/// This cluster's ServiceImport for the broker. `exported_at` is the ServiceExport's
/// creationTimestamp: the oldest export wins conflicts.
pub fn cluster_import(cluster: &str, broker_ns: &str, svc: &Value, exported_at: &str) -> Value {
    let (name, ns) = (s(svc, "/metadata/name"), s(svc, "/metadata/namespace"));
    let headless = headless(svc);
    let mut spec = json!({"type": if headless { "Headless" } else { "ClusterSetIP" }, "ports": ports(svc)});
    if !headless {
        spec["ips"] = Value::Array(cluster_ips(svc));
    }
    for field in ["sessionAffinity", "sessionAffinityConfig"] {
        if let Some(a) = svc.pointer(&format!("/spec/{field}")) {
            spec[field] = a.clone();
        }
    }
    json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
        "metadata": {"name": broker_name(name, ns, cluster), "namespace": broker_ns,
            "labels": identity(svc, cluster),
            "annotations": {format!("{TIMESTAMP_PREFIX}{cluster}"): exported_at,
                PUBLISH_NOT_READY: publish_not_ready(svc).to_string()}},
        "spec": spec,
        "status": {"clusters": [{"cluster": cluster}]},
    })
}

/// The Service's `publishNotReadyAddresses`: its not-ready backends are to be published too.
pub fn publish_not_ready(svc: &Value) -> bool {
    svc.pointer("/spec/publishNotReadyAddresses")
        .and_then(Value::as_bool)
        == Some(true)
}

/// Whether any backend of the service is ready (a missing condition counts as ready).
pub fn backends_ready(slices: &[&Value]) -> bool {
    slices.iter().any(|sl| {
        sl.get("endpoints")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|e| e.pointer("/conditions/ready").and_then(Value::as_bool) != Some(false))
    })
}

/// Suffix of the broker object name of a cluster's IPv6 EndpointSlice.
const V6_SUFFIX: &str = "-ipv6";

/// This cluster's Lighthouse EndpointSlices for the broker, one per address family (an
/// EndpointSlice holds one family, as Kubernetes validates it). For a ClusterSetIP service each
/// holds one endpoint, the ClusterIP of its family, ready when any backend is; for a headless
/// service it holds the backends themselves (addresses, hostname, readiness). The IPv4 slice,
/// also the one for a service with no address yet, keeps the plain [`broker_name`]; the IPv6
/// one adds `-ipv6`.
pub fn cluster_slices(cluster: &str, broker_ns: &str, svc: &Value, k8s_slices: &[&Value]) -> Vec<Value> {
    let (name, ns) = (s(svc, "/metadata/name"), s(svc, "/metadata/namespace"));
    let headless = headless(svc);
    let mut labels = identity(svc, cluster);
    labels[MANAGED_BY] = json!(MANAGER);
    labels[IS_HEADLESS] = json!(headless.to_string());
    let (endpoints, slice_ports): (Vec<Value>, Vec<Value>) = if headless {
        let eps = k8s_slices
            .iter()
            .flat_map(|sl| sl.get("endpoints").and_then(Value::as_array).cloned().unwrap_or_default())
            .map(|e| {
                let mut o = json!({"addresses": e["addresses"], "conditions": {"ready": e.pointer("/conditions/ready").and_then(Value::as_bool).unwrap_or(true)}});
                let host = e
                    .get("hostname")
                    .and_then(Value::as_str)
                    .or_else(|| e.pointer("/targetRef/name").and_then(Value::as_str));
                if let Some(h) = host {
                    o["hostname"] = json!(h);
                }
                o
            })
            .collect();
        let ps = k8s_slices
            .first()
            .and_then(|sl| sl.get("ports"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        (eps, ps)
    } else {
        let any = k8s_slices.iter().any(|sl| {
            sl.get("endpoints")
                .and_then(Value::as_array)
                .is_some_and(|e| !e.is_empty())
        });
        let ready = backends_ready(k8s_slices) || (publish_not_ready(svc) && any);
        (
            vec![json!({"addresses": cluster_ips(svc), "conditions": {"ready": ready}})],
            ports(svc),
        )
    };
    let (v4, v6) = split_families(&endpoints);
    let mut out = Vec::new();
    for (family, eps, suffix) in [("IPv4", v4, ""), ("IPv6", v6, V6_SUFFIX)] {
        if eps.is_empty() && (family == "IPv6" || !out.is_empty()) {
            continue;
        }
        out.push(json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": format!("{}{suffix}", broker_name(name, ns, cluster)), "namespace": broker_ns,
                "labels": labels.clone(),
                "annotations": {PUBLISH_NOT_READY: publish_not_ready(svc).to_string()}},
            "addressType": family,
            "endpoints": eps,
            "ports": slice_ports.clone(),
        }));
    }
    // Only IPv6 addresses: the IPv6 slice alone.
    if out.len() == 2 && out[0]["endpoints"].as_array().is_some_and(Vec::is_empty) {
        out.remove(0);
    }
    out
}

/// Each endpoint's addresses split by family: the endpoints with their IPv4 and their IPv6
/// addresses (an endpoint without addresses of a family is left out of it).
fn split_families(endpoints: &[Value]) -> (Vec<Value>, Vec<Value>) {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for e in endpoints {
        let addrs: Vec<&str> = e["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for (want_v6, out) in [(false, &mut v4), (true, &mut v6)] {
            let mine: Vec<&str> = addrs
                .iter()
                .copied()
                .filter(|a| {
                    a.parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_ipv6() == want_v6)
                })
                .collect();
            if !mine.is_empty() {
                let mut copy = e.clone();
                copy["addresses"] = json!(mine);
                out.push(copy);
            }
        }
    }
    (v4, v6)
}

/// The `ServiceImport` a cluster holds for `<ns>/<svc>`, aggregated from every cluster's
/// import on the broker: type and session affinity of the oldest export, ports the union by
/// name in oldest-first order, `status.clusters` every exporter. `None` when nobody exports.
pub fn aggregate(ns: &str, svc: &str, imports: &[&Value]) -> Option<Value> {
    let mut mine: Vec<(&str, &str, &Value)> = imports
        .iter()
        .filter(|i| {
            s(
                i,
                &format!("/metadata/labels/{}", SOURCE_NAMESPACE.replace('/', "~1")),
            ) == ns
        })
        .filter(|i| {
            s(
                i,
                &format!("/metadata/labels/{}", SERVICE_NAME.replace('/', "~1")),
            ) == svc
        })
        .map(|i| {
            let cluster = s(
                i,
                &format!("/metadata/labels/{}", SOURCE_CLUSTER.replace('/', "~1")),
            );
            let ts = s(
                i,
                &format!(
                    "/metadata/annotations/{}",
                    format!("{TIMESTAMP_PREFIX}{cluster}").replace('/', "~1")
                ),
            );
            (ts, cluster, *i)
        })
        .collect();
    mine.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let (_, _, oldest) = mine.first()?;
    let mut ports: Vec<Value> = Vec::new();
    for (_, _, i) in &mine {
        for p in i
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
            if !ports
                .iter()
                .any(|q| q.get("name").and_then(Value::as_str).unwrap_or_default() == name)
            {
                ports.push(p.clone());
            }
        }
    }
    let mut spec = json!({"type": oldest["spec"]["type"], "ports": ports});
    for field in ["sessionAffinity", "sessionAffinityConfig"] {
        if let Some(a) = oldest.pointer(&format!("/spec/{field}")) {
            spec[field] = a.clone();
        }
    }
    let annotations: BTreeMap<String, Value> = mine
        .iter()
        .map(|(ts, c, _)| (format!("{TIMESTAMP_PREFIX}{c}"), json!(ts)))
        .collect();
    Some(json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceImport",
        "metadata": {"name": svc, "namespace": ns, "annotations": annotations},
        "spec": spec,
        "status": {"clusters": mine.iter().map(|(_, c, _)| json!({"cluster": c})).collect::<Vec<_>>()},
    }))
}

/// The local copy of a cluster's Lighthouse slice, in the service's namespace, named
/// `<svc>-<cluster>`; the DNS server reads these.
pub fn local_slice(broker_slice: &Value) -> Value {
    let labels = broker_slice
        .pointer("/metadata/labels")
        .cloned()
        .unwrap_or(json!({}));
    let ns = s(&labels, &format!("/{}", SOURCE_NAMESPACE.replace('/', "~1"))).to_string();
    let svc = s(&labels, &format!("/{}", SERVICE_NAME.replace('/', "~1"))).to_string();
    let cluster = s(&labels, &format!("/{}", SOURCE_CLUSTER.replace('/', "~1"))).to_string();
    let mut out = broker_slice.clone();
    let family = if broker_slice["addressType"] == "IPv6" {
        V6_SUFFIX
    } else {
        ""
    };
    let mut meta = json!({"name": format!("{svc}-{cluster}{family}"), "namespace": ns, "labels": labels});
    if let Some(a) = broker_slice.pointer("/metadata/annotations") {
        meta["annotations"] = a.clone();
    }
    out["metadata"] = meta;
    out
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

/// MCS conditions for an export; a condition keeps its `lastTransitionTime` while its status
/// stays the same.
pub fn conditions(
    old: &[Value],
    valid: &Result<(), (&'static str, String)>,
    exported: bool,
    conflict: Option<&Conflict>,
    now: &str,
) -> Vec<Value> {
    let cond = |t: &str, status: bool, reason: &str, message: &str| {
        let status = if status { "True" } else { "False" };
        let since = old
            .iter()
            .find(|c| c["type"] == t && c["status"] == status)
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or(json!(now));
        json!({"type": t, "status": status, "reason": reason, "message": message, "lastTransitionTime": since})
    };
    let mut out = Vec::new();
    match valid {
        Ok(()) => out.push(cond("Valid", true, "", "")),
        Err((reason, message)) => out.push(cond("Valid", false, reason, message)),
    }
    let ready = match (valid, exported) {
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
    };
    out.push(ready);
    out.push(match conflict {
        Some(c) => cond("Conflict", true, &c.reason, &c.message),
        None => cond("Conflict", false, "", ""),
    });
    out
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

fn port_set(v: &Value) -> BTreeMap<String, (u64, String)> {
    v.pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            (
                p.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                (
                    p.get("port").and_then(Value::as_u64).unwrap_or(0),
                    p.get("protocol")
                        .and_then(Value::as_str)
                        .unwrap_or("TCP")
                        .to_string(),
                ),
            )
        })
        .collect()
}

/// Every conflict of this cluster's import `mine` with the other clusters' imports of the same
/// service (among `imports`, everything on the broker): type (blocking), ports differing
/// between clusters (the aggregate serves the union by name, the oldest export's port on a
/// clash), session affinity and its config (the oldest export's are served).
pub fn conflict(cluster: &str, mine: &Value, imports: &[&Value]) -> Option<Conflict> {
    let (ns, svc) = (
        s(
            mine,
            &format!("/metadata/labels/{}", SOURCE_NAMESPACE.replace('/', "~1")),
        ),
        s(
            mine,
            &format!("/metadata/labels/{}", SERVICE_NAME.replace('/', "~1")),
        ),
    );
    let of_cluster = |i: &Value| {
        s(
            i,
            &format!("/metadata/labels/{}", SOURCE_CLUSTER.replace('/', "~1")),
        )
        .to_string()
    };
    let mut all: Vec<&Value> = imports
        .iter()
        .copied()
        .filter(|i| of_cluster(i) != cluster)
        .collect();
    all.push(mine);
    let aggregate = aggregate(ns, svc, &all);
    let aggregate = aggregate.as_ref();
    if let Some((reason, message)) = type_conflict(cluster, mine, aggregate) {
        return Some(Conflict {
            reason: reason.into(),
            message,
            blocking: true,
        });
    }
    let agg = aggregate?;
    let oldest = agg
        .pointer("/status/clusters/0/cluster")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut found: Vec<(&str, String)> = Vec::new();
    let others: Vec<&&Value> = all
        .iter()
        .filter(|i| of_cluster(i) != cluster)
        .filter(|i| {
            s(
                i,
                &format!("/metadata/labels/{}", SOURCE_NAMESPACE.replace('/', "~1")),
            ) == ns
                && s(
                    i,
                    &format!("/metadata/labels/{}", SERVICE_NAME.replace('/', "~1")),
                ) == svc
        })
        .collect();
    if s(mine, "/spec/type") == "ClusterSetIP" && others.iter().any(|o| port_set(o) != port_set(mine)) {
        found.push((
            "ConflictingPorts",
            "The service ports conflict between the constituent clusters: the ServiceImport exposes the union of the ports by name, the oldest export's definition winning on a clash".into(),
        ));
    }
    if oldest != cluster {
        for (field, reason) in [
            ("sessionAffinity", "ConflictingSessionAffinity"),
            ("sessionAffinityConfig", "ConflictingSessionAffinityConfig"),
        ] {
            let (m, a) = (
                mine.pointer(&format!("/spec/{field}")),
                agg.pointer(&format!("/spec/{field}")),
            );
            if m != a {
                found.push((
                    reason,
                    format!("The local service {field} does not match the one of the service exported first, by cluster {oldest:?}, which is used"),
                ));
            }
        }
    }
    (!found.is_empty()).then(|| Conflict {
        reason: found.iter().map(|f| f.0).collect::<Vec<_>>().join(","),
        message: found.iter().map(|f| f.1.as_str()).collect::<Vec<_>>().join("; "),
        blocking: false,
    })
}

/// A type conflict: this cluster's export when an older export of the same service has
/// another type (the older one wins).
fn type_conflict(cluster: &str, mine: &Value, aggregate: Option<&Value>) -> Option<(&'static str, String)> {
    let agg = aggregate?;
    let (a, m) = (s(agg, "/spec/type"), s(mine, "/spec/type"));
    let oldest = agg
        .pointer("/status/clusters/0/cluster")
        .and_then(Value::as_str)
        .unwrap_or_default();
    (a != m && oldest != cluster).then(|| {
        ("ConflictingType", format!("The local service type ({m:?}) does not match the type ({a:?}) of the service exported first, by cluster {oldest:?}"))
    })
}

#[cfg(test)]
mod tests;
