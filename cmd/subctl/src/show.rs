//! `subctl show brokers|networks|endpoints|versions` across the contexts of a kubeconfig.

use anyhow::Result;
use kube::api::ListParams;
use serde_json::{Value, json};

use crate::cluster::{Target, api};
use crate::table::{Output, render};

/// What to show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    /// Broker objects.
    Brokers,
    /// Service and pod CIDRs.
    Networks,
    /// Local and remote endpoints.
    Endpoints,
    /// Component versions.
    Versions,
    /// Gateways and their HA status.
    Gateways,
    /// Connections of the active gateway.
    Connections,
    /// Service exports of this cluster and the imports it sees.
    ServiceDiscovery,
}

/// One word for an export's state, from its conditions.
fn export_state(e: &Value) -> String {
    let conds = e["status"]["conditions"].as_array().cloned().unwrap_or_default();
    let find = |t: &str| conds.iter().find(|c| c["type"] == t).cloned();
    if let Some(c) = find("Conflict").filter(|c| c["status"] == "True") {
        return format!("conflict: {}", s(&c["reason"]));
    }
    match (find("Valid"), find("Ready")) {
        (Some(v), _) if v["status"] == "False" => format!("invalid: {}", s(&v["reason"])),
        (_, Some(r)) if r["status"] == "True" => "exported".into(),
        (_, Some(r)) => format!("pending: {}", s(&r["reason"])),
        _ => "pending".into(),
    }
}

/// Submariner's gateway summary line.
fn gateway_summary(status: &Value) -> String {
    if let Some(f) = status["statusFailure"].as_str().filter(|f| !f.is_empty()) {
        return f.to_string();
    }
    let conns = status["connections"].as_array().cloned().unwrap_or_default();
    let up = conns.iter().filter(|c| c["status"] == "connected").count();
    match conns.len() {
        0 => "There are no connections".into(),
        n if up == n => format!("All connections ({n}) are established"),
        n => format!("{up} connections out of {n} are established"),
    }
}

/// Every object of a kind; empty when the cluster lacks the kind or the list fails.
pub(crate) async fn list(t: &Target, av: &str, kind: &str, ns: Option<&str>) -> Vec<Value> {
    let Ok(api) = api(&t.client, av, kind, ns) else {
        return Vec::new();
    };
    // A cluster without the CRD has nothing to show.
    api.list(&ListParams::default())
        .await
        .map(|l| {
            l.items
                .into_iter()
                .filter_map(|o| serde_json::to_value(o).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// What the external DNS publishers report on the cluster's broker (`subsea dns-publisher`):
/// a row per publisher (where, failing or not, which clusters are withdrawn) and per record.
async fn published(t: &Target) -> Vec<Value> {
    let lp = ListParams::default().labels("app.kubernetes.io/name=subsea-dns-publisher");
    let sub = crate::cluster::submariner_object(&t.client)
        .await
        .ok()
        .flatten()
        .and_then(|s| serde_json::to_value(s).ok());
    // A joined cluster asks its broker; the broker's own context is read directly.
    let (client, ns) = match sub {
        Some(sub) => {
            let b = crate::cluster::broker_access(&sub["spec"]);
            let Ok(c) = b.client() else {
                return Vec::new();
            };
            (c, b.namespace)
        }
        None => (t.client.clone(), subsea_broker::BROKER_NAMESPACE.to_string()),
    };
    let Ok(api) = api(&client, "v1", "ConfigMap", Some(&ns)) else {
        return Vec::new();
    };
    let Ok(list) = api.list(&lp).await else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    for cm in list.items {
        let doc: Value = cm.data["data"]["status.json"]
            .as_str()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default();
        let withdrawn: Vec<String> = doc["unreachableClusters"]
            .as_object()
            .map(|m| m.iter().map(|(c, why)| format!("{c} ({})", s(why))).collect())
            .unwrap_or_default();
        let state = match doc["lastError"].as_str() {
            Some(e) if doc["published"] == false => format!("failing: {e}"),
            _ => format!("publishing to {}", s(&doc["server"])),
        };
        rows.push(json!({"NAMESPACE": ns, "NAME": format!("owner {}", s(&doc["owner"])), "ROLE": "dns-publisher",
            "TYPE": "", "CLUSTERS": if withdrawn.is_empty() { String::new() } else { format!("withdrawn: {}", withdrawn.join(", ")) },
            "STATUS": state}));
        for r in doc["records"].as_array().into_iter().flatten() {
            let service = s(&r["service"]);
            let mut parts = service.splitn(3, '/').skip(1);
            let (ns, name) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
            let targets: Vec<String> = r["targets"].as_array().into_iter().flatten().map(s).collect();
            let clusters: Vec<String> = r["clusters"].as_array().into_iter().flatten().map(s).collect();
            rows.push(json!({"NAMESPACE": ns, "NAME": name, "ROLE": "published", "TYPE": r["type"],
                "CLUSTERS": clusters.join(","), "STATUS": format!("{} {}", s(&r["name"]), targets.join(","))}));
        }
    }
    rows
}

/// Rows and columns of one cluster.
pub async fn rows(t: &Target, what: What) -> Result<(Vec<&'static str>, Vec<Value>)> {
    let submariner = list(
        t,
        "submariner.io/v1alpha1",
        "Submariner",
        Some(subsea_broker::OPERATOR_NAMESPACE),
    )
    .await;
    let local_id = submariner
        .first()
        .map(|s| s["spec"]["clusterID"].clone())
        .unwrap_or(Value::Null);
    let globalnet = submariner
        .first()
        .and_then(|s| s["spec"]["globalCIDR"].as_str())
        .is_some_and(|g| !g.is_empty());
    Ok(match what {
        What::Brokers => {
            let cols = vec![
                "NAMESPACE",
                "NAME",
                "COMPONENTS",
                "GLOBALNET",
                "GLOBALNET CIDR",
                "DEFAULT GLOBALNET SIZE",
                "DEFAULT DOMAINS",
            ];
            let rows = list(t, "submariner.io/v1alpha1", "Broker", None)
                .await
                .iter()
                .map(|b| {
                    let spec = &b["spec"];
                    json!({"NAMESPACE": b["metadata"]["namespace"], "NAME": b["metadata"]["name"], "COMPONENTS": spec["components"],
                        "GLOBALNET": if spec["globalnetEnabled"] == true { "yes" } else { "no" },
                        "GLOBALNET CIDR": spec["globalnetCIDRRange"], "DEFAULT GLOBALNET SIZE": spec["defaultGlobalnetClusterSize"],
                        "DEFAULT DOMAINS": spec["defaultCustomDomains"]})
                })
                .collect();
            (cols, rows)
        }
        What::Networks => {
            let mut cols = vec!["CLUSTER", "NETWORK PLUGIN", "SERVICE CIDRS", "CLUSTER CIDRS"];
            if globalnet {
                cols.push("GLOBAL CIDR");
            }
            let rows = submariner
                .iter()
                .map(|s| {
                    let spec = &s["spec"];
                    let plugin = s["status"]["networkPlugin"].as_str().filter(|p| !p.is_empty()).unwrap_or("generic");
                    json!({"CLUSTER": spec["clusterID"], "NETWORK PLUGIN": plugin,
                        "SERVICE CIDRS": spec["serviceCIDR"].as_str().unwrap_or_default().split(',').collect::<Vec<_>>(),
                        "CLUSTER CIDRS": spec["clusterCIDR"].as_str().unwrap_or_default().split(',').collect::<Vec<_>>(),
                        "GLOBAL CIDR": spec["globalCIDR"]})
                })
                .collect();
            (cols, rows)
        }
        What::Endpoints => {
            let mut cols = vec!["CLUSTER", "ENDPOINT IP", "PUBLIC IP", "CABLE DRIVER", "TYPE"];
            if globalnet {
                // With Globalnet an Endpoint's subnets are its cluster's GlobalCIDR.
                cols.push("GLOBAL CIDR");
            }
            let rows = list(t, "submariner.io/v1", "Endpoint", Some(subsea_broker::OPERATOR_NAMESPACE))
                .await
                .iter()
                .map(|e| {
                    let spec = &e["spec"];
                    let kind = if spec["cluster_id"] == local_id { "local" } else { "remote" };
                    json!({"CLUSTER": spec["cluster_id"], "ENDPOINT IP": spec["private_ip"], "PUBLIC IP": spec["public_ip"],
                        "CABLE DRIVER": spec["backend"], "TYPE": kind, "GLOBAL CIDR": spec["subnets"]})
                })
                .collect();
            (cols, rows)
        }
        What::Gateways => {
            let cols = vec!["NODE", "HA STATUS", "SUMMARY"];
            let rows = list(
                t,
                "submariner.io/v1",
                "Gateway",
                Some(subsea_broker::OPERATOR_NAMESPACE),
            )
            .await
            .iter()
            .map(|g| {
                let st = &g["status"];
                let node = st["localEndpoint"]["hostname"]
                    .as_str()
                    .filter(|h| !h.is_empty())
                    .map(String::from)
                    .unwrap_or_else(|| s(&g["metadata"]["name"]));
                json!({"NODE": node, "HA STATUS": st["haStatus"], "SUMMARY": gateway_summary(st)})
            })
            .collect();
            (cols, rows)
        }
        What::Connections => {
            let cols = vec![
                "GATEWAY",
                "CLUSTER",
                "REMOTE IP",
                "NAT",
                "CABLE DRIVER",
                "SUBNETS",
                "STATUS",
                "RTT avg.",
            ];
            let gateways = list(
                t,
                "submariner.io/v1",
                "Gateway",
                Some(subsea_broker::OPERATOR_NAMESPACE),
            )
            .await;
            let rows = gateways
                .iter()
                .filter(|g| g["status"]["haStatus"] == "active")
                .flat_map(|g| g["status"]["connections"].as_array().cloned().unwrap_or_default())
                .map(|c| {
                    let ep = &c["endpoint"];
                    let ip = c["usingIP"].as_str().filter(|i| !i.is_empty()).map(String::from).unwrap_or_else(|| s(&ep["private_ip"]));
                    json!({"GATEWAY": ep["hostname"], "CLUSTER": ep["cluster_id"], "REMOTE IP": ip,
                        "NAT": if c["usingNAT"] == true { "yes" } else { "no" }, "CABLE DRIVER": ep["backend"],
                        "SUBNETS": ep["subnets"], "STATUS": c["status"], "RTT avg.": c["latencyRTT"]["average"]})
                })
                .collect();
            (cols, rows)
        }
        What::ServiceDiscovery => {
            let cols = vec!["NAMESPACE", "NAME", "ROLE", "TYPE", "CLUSTERS", "STATUS"];
            let exports = list(t, "multicluster.x-k8s.io/v1alpha1", "ServiceExport", None).await;
            let imports = list(t, "multicluster.x-k8s.io/v1alpha1", "ServiceImport", None).await;
            let mut rows: Vec<Value> = exports
                .iter()
                .map(|e| {
                    json!({"NAMESPACE": e["metadata"]["namespace"], "NAME": e["metadata"]["name"], "ROLE": "export",
                        "TYPE": "", "CLUSTERS": "", "STATUS": export_state(e)})
                })
                .collect();
            // Aggregated imports only: per-cluster ones carry the service-name label.
            rows.extend(
                imports
                    .iter()
                    .filter(|i| i["metadata"]["labels"]["multicluster.kubernetes.io/service-name"].is_null())
                    .map(|i| {
                        let clusters: Vec<String> = i["status"]["clusters"].as_array().into_iter().flatten().map(|c| s(&c["cluster"])).collect();
                        json!({"NAMESPACE": i["metadata"]["namespace"], "NAME": i["metadata"]["name"], "ROLE": "import",
                            "TYPE": i["spec"]["type"], "CLUSTERS": clusters.join(","), "STATUS": "imported"})
                    }),
            );
            rows.extend(published(t).await);
            (cols, rows)
        }
        What::Versions => {
            let cols = vec!["COMPONENT", "REPOSITORY", "CONFIGURED", "RUNNING", "ARCH"];
            let gateways = list(
                t,
                "submariner.io/v1",
                "Gateway",
                Some(subsea_broker::OPERATOR_NAMESPACE),
            )
            .await;
            let running = gateways.iter().find_map(|g| {
                g["status"]["version"]
                    .as_str()
                    .filter(|v| !v.is_empty())
                    .map(String::from)
            });
            let rows = submariner
                .iter()
                .flat_map(|sub| {
                    let configured = s(&sub["spec"]["version"]);
                    let repo = sub["spec"]["repository"].as_str().filter(|r| !r.is_empty()).unwrap_or("subsea").to_string();
                    let running = running.clone().unwrap_or_else(|| "not running".into());
                    ["submariner-gateway", "submariner-routeagent", "submariner-lighthouse-agent", "submariner-lighthouse-coredns"]
                        .into_iter()
                        .map(move |c| json!({"COMPONENT": c, "REPOSITORY": repo, "CONFIGURED": configured, "RUNNING": running, "ARCH": std::env::consts::ARCH}))
                })
                .collect();
            (cols, rows)
        }
    })
}

/// Shows `what` for every target, with a `Cluster "<context>"` header per target in table output.
pub async fn run(targets: &[Target], what: What, output: Output) -> Result<String> {
    let mut out = String::new();
    let mut all = Vec::new();
    let mut columns = Vec::new();
    for t in targets {
        let (cols, rows) = rows(t, what).await?;
        columns = cols;
        if output == Output::Table {
            out.push_str(&format!("Cluster \"{}\"\n", t.context));
            if rows.is_empty() {
                out.push_str(&format!(
                    "No {} found\n\n",
                    match what {
                        What::Brokers => "brokers",
                        What::Networks => "Submariner configuration",
                        What::Endpoints => "endpoints",
                        What::Versions => "Submariner components",
                        What::Gateways => "gateways",
                        What::Connections => "connections",
                        What::ServiceDiscovery => "exported or imported services",
                    }
                ));
            } else {
                out.push_str(&render(&columns, &rows, output));
                out.push('\n');
            }
        } else {
            all.extend(rows.into_iter().map(|mut r| {
                r["CONTEXT"] = json!(t.context);
                r
            }));
        }
    }
    if output != Output::Table {
        columns.insert(0, "CONTEXT");
        out = render(&columns, &all, output);
    }
    Ok(out)
}
