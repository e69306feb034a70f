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

fn svc_ports(svc: &Value) -> String {
    let ports: Vec<String> = svc["spec"]["ports"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| format!("{}/{}", p["port"], p["protocol"].as_str().unwrap_or("TCP")))
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
            cols.push(b("External-IP", |_| "<none>".into()));
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
