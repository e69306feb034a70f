//! Server-side printing: `meta.k8s.io/v1` Table responses, with a CRD's
//! `additionalPrinterColumns` or the built-in kinds' usual columns, and `PartialObjectMetadata`.

use serde_json::{Value, json};

use crate::meta;
use crate::registry::ResourceInfo;

/// One column: its definition and the path (or rule) that fills it.
struct Column {
    name: String,
    kind: String,
    priority: i64,
    source: Source,
}

enum Source {
    Name,
    Path(String),
    Builtin(fn(&Value) -> String),
}

fn col(name: &str, kind: &str, priority: i64, source: Source) -> Column {
    Column {
        name: name.into(),
        kind: kind.into(),
        priority,
        source,
    }
}

fn count(v: &Value) -> String {
    v.as_object().map_or(0, |o| o.len()).to_string()
}

/// kubectl's EXTERNAL-IP: external IPs (plus load-balancer ingress), `<pending>` for a
/// load balancer without any, the name for ExternalName, else `<none>`.
fn svc_external_ip(o: &Value) -> String {
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(String::from))
            .collect()
    };
    let external = strs(&o["spec"]["externalIPs"]);
    match o["spec"]["type"].as_str().unwrap_or("ClusterIP") {
        "ExternalName" => o["spec"]["externalName"].as_str().unwrap_or("<none>").to_string(),
        "LoadBalancer" => {
            let mut ips: Vec<String> = o["status"]["loadBalancer"]["ingress"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|i| i["ip"].as_str().or(i["hostname"].as_str()).map(String::from))
                .collect();
            ips.extend(external);
            if ips.is_empty() {
                "<pending>".into()
            } else {
                ips.join(",")
            }
        }
        _ if external.is_empty() => "<none>".into(),
        _ => external.join(","),
    }
}

fn svc_ports(svc: &Value) -> String {
    let ports: Vec<String> = svc["spec"]["ports"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let proto = p["protocol"].as_str().unwrap_or("TCP");
                    match p["nodePort"].as_u64().filter(|n| *n != 0) {
                        Some(n) => format!("{}:{n}/{proto}", p["port"]),
                        None => format!("{}/{proto}", p["port"]),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    if ports.is_empty() {
        "<none>".into()
    } else {
        ports.join(",")
    }
}

fn node_roles(n: &Value) -> String {
    let roles: Vec<&str> = n["metadata"]["labels"]
        .as_object()
        .map(|l| {
            l.keys()
                .filter_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                .collect()
        })
        .unwrap_or_default();
    if roles.is_empty() {
        "<none>".into()
    } else {
        roles.join(",")
    }
}

fn int(v: &Value) -> String {
    v.as_i64().unwrap_or(0).to_string()
}

fn or_na(v: &Value) -> String {
    match v {
        Value::Null => "N/A".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `ready/desired` replicas, as kubectl prints them.
fn ratio(o: &Value, ready: &str) -> String {
    format!(
        "{}/{}",
        int(&o["status"][ready]),
        o["spec"]["replicas"].as_i64().unwrap_or(1)
    )
}

/// `k=v,k2=v2` of a string map, `<none>` when empty.
fn pairs(m: &Value) -> String {
    let list: Vec<String> = m
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    if list.is_empty() {
        "<none>".into()
    } else {
        list.join(",")
    }
}

fn containers(o: &Value) -> Vec<Value> {
    let spec = if o.pointer("/spec/jobTemplate").is_some() {
        &o["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    } else {
        &o["spec"]["template"]["spec"]
    };
    spec["containers"].as_array().cloned().unwrap_or_default()
}

/// The wide columns of a workload: its containers, images and selector.
fn pod_template_columns() -> Vec<Column> {
    let wide = |name: &str, f: fn(&Value) -> String| col(name, "string", 1, Source::Builtin(f));
    vec![
        wide("Containers", |o| {
            let c = containers(o);
            c.iter()
                .filter_map(|c| c["name"].as_str())
                .collect::<Vec<_>>()
                .join(",")
        }),
        wide("Images", |o| {
            let c = containers(o);
            c.iter()
                .filter_map(|c| c["image"].as_str())
                .collect::<Vec<_>>()
                .join(",")
        }),
        wide("Selector", |o| pairs(&o["spec"]["selector"]["matchLabels"])),
    ]
}

fn columns(info: &ResourceInfo) -> Vec<Column> {
    let age = || {
        col(
            "Age",
            "date",
            0,
            Source::Path(".metadata.creationTimestamp".into()),
        )
    };
    if info.custom {
        let mut cols = vec![col("Name", "string", 0, Source::Name)];
        if info.printer_columns.is_empty() {
            cols.push(age());
        }
        for c in &info.printer_columns {
            cols.push(Column {
                name: c["name"].as_str().unwrap_or_default().into(),
                kind: c["type"].as_str().unwrap_or("string").into(),
                priority: c["priority"].as_i64().unwrap_or(0),
                source: Source::Path(c["jsonPath"].as_str().unwrap_or_default().into()),
            });
        }
        return cols;
    }
    let b = |name: &str, f: fn(&Value) -> String| col(name, "string", 0, Source::Builtin(f));
    let p = |name: &str, path: &str| col(name, "string", 0, Source::Path(path.into()));
    let mut cols = vec![col("Name", "string", 0, Source::Name)];
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "namespaces") => cols.push(p("Status", ".status.phase")),
        ("", "configmaps") => cols.push(b("Data", |o| count(&o["data"]))),
        ("", "secrets") => {
            cols.push(p("Type", ".type"));
            cols.push(b("Data", |o| count(&o["data"])));
        }
        ("", "services") => {
            cols.push(p("Type", ".spec.type"));
            cols.push(p("Cluster-IP", ".spec.clusterIP"));
            cols.push(b("External-IP", svc_external_ip));
            cols.push(b("Port(s)", svc_ports));
        }
        ("", "nodes") => {
            cols.push(b("Status", |n| {
                let ready = n["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True");
                if ready { "Ready".into() } else { "NotReady".into() }
            }));
            cols.push(b("Roles", node_roles));
        }
        ("", "pods") => {
            cols.push(p("Status", ".status.phase"));
            cols.push(col("IP", "string", 1, Source::Path(".status.podIP".into())));
            cols.push(col("Node", "string", 1, Source::Path(".spec.nodeName".into())));
        }
        ("discovery.k8s.io", "endpointslices") => {
            cols.push(p("AddressType", ".addressType"));
            cols.push(b("Endpoints", |o| {
                let ips: Vec<String> = o["endpoints"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|e| e["addresses"].as_array().cloned().unwrap_or_default())
                    .filter_map(|a| a.as_str().map(String::from))
                    .collect();
                if ips.is_empty() {
                    "<unset>".into()
                } else {
                    ips.join(",")
                }
            }));
        }
        ("coordination.k8s.io", "leases") => cols.push(p("Holder", ".spec.holderIdentity")),
        ("apps", "deployments") => {
            cols.push(b("Ready", |o| ratio(o, "readyReplicas")));
            cols.push(b("Up-to-date", |o| int(&o["status"]["updatedReplicas"])));
            cols.push(b("Available", |o| int(&o["status"]["availableReplicas"])));
            cols.extend(pod_template_columns());
        }
        ("apps", "statefulsets") => {
            cols.push(b("Ready", |o| ratio(o, "readyReplicas")));
            cols.extend(pod_template_columns());
        }
        ("apps", "replicasets") => {
            cols.push(b("Desired", |o| int(&o["spec"]["replicas"])));
            cols.push(b("Current", |o| int(&o["status"]["replicas"])));
            cols.push(b("Ready", |o| int(&o["status"]["readyReplicas"])));
            cols.extend(pod_template_columns());
        }
        ("apps", "daemonsets") => {
            for (name, field) in [
                ("Desired", "desiredNumberScheduled"),
                ("Current", "currentNumberScheduled"),
                ("Ready", "numberReady"),
                ("Up-to-date", "updatedNumberScheduled"),
                ("Available", "numberAvailable"),
            ] {
                let c = col(name, "integer", 0, Source::Path(format!(".status.{field}")));
                cols.push(c);
            }
            cols.push(b("Node Selector", |o| {
                pairs(&o["spec"]["template"]["spec"]["nodeSelector"])
            }));
            cols.extend(pod_template_columns());
        }
        ("batch", "jobs") => {
            cols.push(b("Completions", |o| {
                let want = o["spec"]["completions"].as_i64().unwrap_or(1);
                format!("{}/{want}", o["status"]["succeeded"].as_i64().unwrap_or(0))
            }));
            cols.extend(pod_template_columns());
        }
        ("batch", "cronjobs") => {
            cols.push(p("Schedule", ".spec.schedule"));
            cols.push(b("Suspend", |o| {
                o["spec"]["suspend"]
                    .as_bool()
                    .unwrap_or(false)
                    .to_string()
                    .replace('f', "F")
                    .replace('t', "T")
            }));
            cols.push(b("Active", |o| {
                o["status"]["active"].as_array().map_or(0, Vec::len).to_string()
            }));
            cols.push(b("Last Schedule", |o| {
                o["status"]["lastScheduleTime"]
                    .as_str()
                    .unwrap_or("<none>")
                    .to_string()
            }));
        }
        ("policy", "poddisruptionbudgets") => {
            cols.push(b("Min Available", |o| or_na(&o["spec"]["minAvailable"])));
            cols.push(b("Max Unavailable", |o| or_na(&o["spec"]["maxUnavailable"])));
            cols.push(b("Allowed Disruptions", |o| {
                int(&o["status"]["disruptionsAllowed"])
            }));
        }
        ("scheduling.k8s.io", "priorityclasses") => {
            cols.push(b("Value", |o| int(&o["value"])));
            cols.push(b("Global-default", |o| {
                o["globalDefault"].as_bool().unwrap_or(false).to_string()
            }));
        }
        ("networking.k8s.io", "networkpolicies") => {
            cols.push(b("Pod-selector", |o| {
                let s = pairs(&o["spec"]["podSelector"]["matchLabels"]);
                if s == "<none>" { String::new() } else { s }
            }));
        }
        ("networking.k8s.io", "ingresses") => {
            cols.push(b("Class", |o| {
                o["spec"]["ingressClassName"]
                    .as_str()
                    .unwrap_or("<none>")
                    .to_string()
            }));
            cols.push(b("Hosts", |o| {
                let hosts: Vec<&str> = o["spec"]["rules"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|r| r["host"].as_str())
                    .collect();
                if hosts.is_empty() {
                    "*".into()
                } else {
                    hosts.join(",")
                }
            }));
            cols.push(b("Address", |_| String::new()));
            cols.push(b("Ports", |o| {
                if o["spec"]["tls"].as_array().is_some_and(|t| !t.is_empty()) {
                    "80, 443".into()
                } else {
                    "80".into()
                }
            }));
        }
        _ => {}
    }
    cols.push(age());
    cols
}

/// Evaluates the simple JSONPath forms printer columns use (`.a.b`, `.a[0].b`).
pub fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for part in path.trim_start_matches('.').split('.').filter(|p| !p.is_empty()) {
        let (key, idx) = match part.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        if !key.is_empty() {
            cur = cur.get(key)?;
        }
        if let Some(i) = idx {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

/// A duration the way kubectl prints ages (`45s`, `5m`, `3h`, `2d`).
pub fn age(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

fn cell(c: &Column, obj: &Value, now: i64) -> Value {
    match &c.source {
        Source::Name => obj["metadata"]["name"].clone(),
        Source::Builtin(f) => json!(f(obj)),
        Source::Path(p) => match json_path(obj, p) {
            None | Some(Value::Null) => json!(if c.kind == "string" { "" } else { "<none>" }),
            Some(Value::String(s)) if c.kind == "date" => {
                json!(
                    meta::parse_rfc3339(s)
                        .map(|t| age(now - t))
                        .unwrap_or_else(|| s.clone())
                )
            }
            Some(v @ (Value::Array(_) | Value::Object(_))) => json!(v.to_string()),
            Some(v) => v.clone(),
        },
    }
}

/// The metadata-only view of an object.
pub fn partial_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]})
}

/// A Table of `objects`, as of `now` (seconds) and list resourceVersion `rev`.
pub fn table(info: &ResourceInfo, objects: &[Value], rev: Option<u64>, now: i64) -> Value {
    let cols = columns(info);
    let defs: Vec<Value> = cols
        .iter()
        .map(|c| {
            let mut d = json!({"name": c.name, "type": c.kind, "format": "", "description": "", "priority": c.priority});
            if matches!(c.source, Source::Name) {
                d["format"] = json!("name");
            }
            d
        })
        .collect();
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| json!({"cells": cols.iter().map(|c| cell(c, o, now)).collect::<Vec<_>>(), "object": partial_metadata(o)}))
        .collect();
    let mut meta = json!({});
    if let Some(r) = rev {
        meta["resourceVersion"] = json!(r.to_string());
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "columnDefinitions": defs, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Registry, infos_from_crd};

    #[test]
    fn crd_printer_columns_fill_the_table() {
        let info = infos_from_crd(&json!({"metadata": {"name": "gateways.submariner.io"}, "spec": {"group": "submariner.io",
            "scope": "Namespaced", "names": {"plural": "gateways", "kind": "Gateway"}, "versions": [{"name": "v1", "served": true,
            "storage": true, "additionalPrinterColumns": [{"name": "HA Status", "type": "string", "jsonPath": ".status.haStatus"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]}]}}))
        .remove(0);
        let gw = json!({"metadata": {"name": "gw1", "creationTimestamp": "1970-01-01T00:00:00Z"}, "status": {"haStatus": "active"}});
        let t = table(&info, &[gw], Some(5), 300);
        let names: Vec<&str> = t["columnDefinitions"]
            .as_array()
            .expect("defs")
            .iter()
            .filter_map(|d| d["name"].as_str())
            .collect();
        assert_eq!(names, vec!["Name", "HA Status", "Age"]);
        assert_eq!(t["rows"][0]["cells"], json!(["gw1", "active", "5m"]));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["metadata"]["resourceVersion"], "5");
    }

    #[test]
    fn builtin_columns_and_paths() {
        let reg = Registry::with_built_ins();
        let svc = reg.find("", "v1", "services").expect("services");
        let s = json!({"metadata": {"name": "web", "creationTimestamp": "1970-01-01T00:00:00Z"},
            "spec": {"type": "ClusterIP", "clusterIP": "100.66.0.5", "ports": [{"port": 80, "protocol": "TCP"}]}});
        assert_eq!(
            table(svc, &[s], None, 10)["rows"][0]["cells"],
            json!(["web", "ClusterIP", "100.66.0.5", "<none>", "80/TCP", "10s"])
        );
        let v = json!({"spec": {"list": [{"a": 1}]}});
        assert_eq!(json_path(&v, ".spec.list[0].a"), Some(&json!(1)));
        assert_eq!(age(3 * 86_400), "3d");
    }
}
