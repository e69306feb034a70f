//! `subctl diagnose`: checks over what a cluster's API shows, each a ✓, ⚠ or ✗ line with the
//! fix. The verdicts are pure functions of the gathered objects ([`Facts`]); gathering is thin.

use anyhow::Result;
use serde_json::Value;

use crate::cluster::{Target, api};
use crate::progress::Progress;

/// What to check (`subctl diagnose <check>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Check {
    /// Everything below.
    All,
    /// The active gateway's tunnels, with the fix for each one down.
    Connections,
    /// Joined, gateway node labelled, one gateway active.
    Deployment,
    /// The Kubernetes version.
    K8sVersion,
    /// CoreDNS forwarding and the state of every ServiceExport.
    ServiceDiscovery,
    /// With Globalnet: the gateway's global IP, the egress pools and every export's global IP.
    Globalnet,
    /// Path MTU between clusters with a Don't-Fragment probe from a pod in each cluster to a
    /// pod in the next: finds MTU black holes (large packets dropped without ICMP).
    Firewall,
}

/// What the pod-based checks (firewall) need.
#[derive(Clone, Debug)]
pub struct Options {
    /// Image holding `subsea`.
    pub image: String,
    /// Time a pod may take.
    pub timeout: std::time::Duration,
}

mod firewall;
mod globalnet;
pub use firewall::{pairs, verdict as firewall_verdict};

/// One verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// Fine.
    Ok(String),
    /// Worth a look.
    Warn(String),
    /// Broken, with the fix in the text.
    Fail(String),
}

/// The objects the checks read.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// `/version` `gitVersion`.
    pub version: Option<String>,
    /// The Submariner object, if joined.
    pub submariner: Option<Value>,
    /// Nodes.
    pub nodes: Vec<Value>,
    /// Gateway objects.
    pub gateways: Vec<Value>,
    /// Endpoints in the operator namespace (local and remote).
    pub endpoints: Vec<Value>,
    /// ServiceExports.
    pub exports: Vec<Value>,
    /// The `Corefile` of kube-system/coredns, if any.
    pub corefile: Option<String>,
    /// ClusterGlobalEgressIPs.
    pub cluster_egress: Vec<Value>,
    /// GlobalEgressIPs.
    pub egress: Vec<Value>,
    /// GlobalIngressIPs.
    pub ingress: Vec<Value>,
}

fn s(v: &Value, p: &str) -> String {
    v.pointer(p)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn minor(version: &str) -> Option<(u32, u32)> {
    let v = version.trim_start_matches('v');
    let mut it = v.split('.');
    let major = it.next()?.parse().ok()?;
    let minor = it
        .next()?
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .ok()?;
    Some((major, minor))
}

/// The verdicts for `check`.
pub fn evaluate(check: Check, f: &Facts) -> Vec<Line> {
    let mut out = Vec::new();
    let all = check == Check::All;
    if all || check == Check::K8sVersion {
        out.push(
            match f.version.as_deref().and_then(|v| minor(v).map(|m| (v, m))) {
                Some((v, m)) if m >= (1, 21) => Line::Ok(format!("Kubernetes version {v} is supported")),
                Some((v, _)) => Line::Fail(format!(
                    "Kubernetes version {v} is older than 1.21, the oldest supported: upgrade the cluster"
                )),
                None => Line::Warn("could not read the Kubernetes version (GET /version)".into()),
            },
        );
    }
    let Some(sub) = &f.submariner else {
        out.push(Line::Fail(
            "this cluster is not joined (no submariner-operator/submariner object): run `subctl join`".into(),
        ));
        return out;
    };
    let active: Vec<&Value> = f
        .gateways
        .iter()
        .filter(|g| s(g, "/status/haStatus") == "active")
        .collect();
    if all || check == Check::Deployment {
        let labelled: Vec<String> = f
            .nodes
            .iter()
            .filter(|n| s(n, "/metadata/labels/submariner.io~1gateway") == "true")
            .map(|n| s(n, "/metadata/name"))
            .collect();
        out.push(if labelled.is_empty() {
            Line::Fail("no node is labelled submariner.io/gateway=true: label one with `kubectl label node NAME submariner.io/gateway=true`".into())
        } else {
            Line::Ok(format!("gateway node(s) labelled: {}", labelled.join(", ")))
        });
        out.push(match active.len() {
            0 if f.gateways.is_empty() => Line::Fail("no gateway is running (no Gateway objects): check the submariner-gateway pods and their logs".into()),
            0 => Line::Fail("no gateway is active: the gateways cannot take the Lease submariner-gateway-lock; check their logs".into()),
            1 => Line::Ok(format!("gateway {} is active", s(active[0], "/metadata/name"))),
            n => Line::Fail(format!("{n} gateways claim to be active: check the Lease submariner-gateway-lock and clocks")),
        });
        if s(sub, "/spec/clusterID").is_empty() {
            out.push(Line::Fail(
                "the Submariner object has no clusterID: re-run `subctl join`".into(),
            ));
        }
    }
    if all || check == Check::Connections {
        let local = s(sub, "/spec/clusterID");
        let remotes = f
            .endpoints
            .iter()
            .filter(|e| s(e, "/spec/cluster_id") != local)
            .count();
        out.extend(overlapping(&local, &f.endpoints));
        let conns: Vec<&Value> = active
            .iter()
            .flat_map(|g| {
                g.pointer("/status/connections")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .collect();
        if conns.is_empty() {
            out.push(if remotes == 0 {
                Line::Warn("no other cluster has joined yet, so there are no connections".into())
            } else {
                Line::Fail(format!("{remotes} remote cluster(s) known but the active gateway reports no connection: check the gateway logs"))
            });
        }
        for c in conns {
            let who = format!("{} ({})", s(c, "/endpoint/cluster_id"), s(c, "/usingIP"));
            let rtt = s(c, "/latencyRTT/average");
            out.push(match s(c, "/status").as_str() {
                "connected" if rtt.is_empty() => Line::Ok(format!("connection to {who} is connected")),
                "connected" => Line::Ok(format!("connection to {who} is connected, RTT {rtt}")),
                "connecting" => Line::Warn(format!("connection to {who} is still connecting: {}", s(c, "/statusMessage"))),
                _ => Line::Fail(format!(
                    "connection to {who} is down: {}; check that UDP {} reaches that gateway (firewalls, security groups)",
                    s(c, "/statusMessage"),
                    c.pointer("/endpoint/backend_config/udp-port").and_then(Value::as_str).unwrap_or("4500")
                )),
            });
        }
    }
    if all || check == Check::Globalnet {
        let lines = globalnet::verdicts(f, sub);
        if lines.is_empty() && check == Check::Globalnet {
            out.push(Line::Warn(
                "this cluster did not join with Globalnet (no globalCIDR in its Submariner object): nothing to check".into(),
            ));
        }
        out.extend(lines);
    }
    if all || check == Check::ServiceDiscovery {
        out.push(match f.corefile.as_deref() {
            Some(c) if c.contains("#lighthouse-start") => Line::Ok("CoreDNS forwards clusterset.local to Lighthouse".into()),
            Some(_) => Line::Fail("kube-system/coredns does not forward clusterset.local: re-run `subctl join`, or add the stanza from the README".into()),
            None => Line::Warn("no kube-system/coredns: make sure the cluster DNS forwards clusterset.local to submariner-operator/submariner-lighthouse-coredns".into()),
        });
        for e in &f.exports {
            let name = format!("{}/{}", s(e, "/metadata/namespace"), s(e, "/metadata/name"));
            let conds = e
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let cond = |t: &str| conds.iter().find(|c| c["type"] == t).cloned();
            out.push(match (cond("Valid"), cond("Ready"), cond("Conflict")) {
                (Some(v), _, _) if v["status"] == "False" => {
                    Line::Fail(format!("export {name} is invalid: {}", s(&v, "/message")))
                }
                (_, _, Some(c)) if c["status"] == "True" => {
                    Line::Fail(format!("export {name} conflicts: {}", s(&c, "/message")))
                }
                (_, Some(r), _) if r["status"] == "True" => Line::Ok(format!("export {name} is exported")),
                _ => Line::Warn(format!(
                    "export {name} is not exported yet: is the Lighthouse agent running?"
                )),
            });
        }
    }
    out
}

fn subnets(e: &Value) -> Vec<subsea_cidr::Cidr> {
    e.pointer("/spec/subnets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| subsea_cidr::Cidr::parse(s.as_str()?).ok())
        .collect()
}

/// A failure for every remote cluster whose CIDRs overlap the local cluster's: routes to one
/// would capture the other's traffic.
fn overlapping(local: &str, endpoints: &[Value]) -> Vec<Line> {
    let mine: Vec<subsea_cidr::Cidr> = endpoints
        .iter()
        .filter(|e| s(e, "/spec/cluster_id") == local)
        .flat_map(subnets)
        .collect();
    endpoints
        .iter()
        .filter(|e| s(e, "/spec/cluster_id") != local)
        .filter_map(|e| {
            let theirs = subnets(e);
            let clash = subsea_cidr::overlaps(&mine, &theirs);
            let (a, b) = clash.first()?;
            Some(Line::Fail(format!(
                "cluster {}'s CIDR {b} overlaps this cluster's {a}: traffic for one would be routed to the other; re-join one of them with non-overlapping --clustercidr/--servicecidr, or use Globalnet (`subctl deploy-broker --globalnet`, then rejoin every cluster)",
                s(e, "/spec/cluster_id")
            )))
        })
        .collect()
}

/// Gathers the facts of one cluster.
pub async fn gather(t: &Target) -> Facts {
    use crate::show::list;
    let version = t.client.apiserver_version().await.ok().map(|v| v.git_version);
    let submariner = crate::cluster::submariner_object(&t.client)
        .await
        .ok()
        .flatten()
        .and_then(|o| serde_json::to_value(o).ok());
    let corefile = match api(&t.client, "v1", "ConfigMap", Some("kube-system")) {
        Ok(a) => a
            .get_opt("coredns")
            .await
            .ok()
            .flatten()
            .and_then(|cm| cm.data["data"]["Corefile"].as_str().map(String::from)),
        Err(_) => None,
    };
    Facts {
        version,
        submariner,
        nodes: list(t, "v1", "Node", None).await,
        gateways: list(
            t,
            "submariner.io/v1",
            "Gateway",
            Some(subsea_broker::OPERATOR_NAMESPACE),
        )
        .await,
        endpoints: list(
            t,
            "submariner.io/v1",
            "Endpoint",
            Some(subsea_broker::OPERATOR_NAMESPACE),
        )
        .await,
        exports: list(t, "multicluster.x-k8s.io/v1alpha1", "ServiceExport", None).await,
        corefile,
        cluster_egress: list(t, "submariner.io/v1", "ClusterGlobalEgressIP", None).await,
        egress: list(t, "submariner.io/v1", "GlobalEgressIP", None).await,
        ingress: list(t, "submariner.io/v1", "GlobalIngressIP", None).await,
    }
}

fn report(line: Line, p: &mut Progress<'_>) -> bool {
    match line {
        Line::Ok(m) => p.done(m),
        Line::Warn(m) => p.warn(m),
        Line::Fail(m) => {
            p.failed(m);
            return false;
        }
    }
    true
}

/// Runs `check` on every target; returns whether everything passed (warnings pass).
pub async fn run(targets: &[Target], check: Check, opts: &Options, p: &mut Progress<'_>) -> Result<bool> {
    let mut healthy = true;
    if check != Check::Firewall {
        for t in targets {
            p.info(format!("Cluster \"{}\"", t.context));
            for line in evaluate(check, &gather(t).await) {
                healthy &= report(line, p);
            }
        }
    }
    if matches!(check, Check::All | Check::Firewall) {
        let mut joined = Vec::new();
        for t in targets {
            if let Ok(side) = crate::pods::Side::new(t).await {
                joined.push(side);
            }
        }
        p.info("Firewall (path MTU between clusters, probed by pods)");
        if joined.len() < 2 {
            healthy &= report(
                Line::Warn(
                    "the firewall checks need two joined clusters: give a kubeconfig with both contexts (or --context and --remotecontext)".into(),
                ),
                p,
            );
        }
        for (i, j) in pairs(joined.len()) {
            let (a, b) = (&joined[i], &joined[j]);
            let line = match firewall::probe(a, b, &opts.image, "subctl-diagnose", opts.timeout).await {
                Ok(f) => firewall_verdict(&a.id, &b.id, &f),
                Err(e) => Line::Fail(format!("probe from {} to {}: {e:#}", a.id, b.id)),
            };
            healthy &= report(line, p);
        }
    }
    Ok(healthy)
}

#[cfg(test)]
mod tests;
