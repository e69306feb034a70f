//! `subctl gather`: everything needed to debug a cluster set, from every context, into one
//! directory: subsea's resources (Submariner, Cluster, Endpoint, Gateway, ServiceExport,
//! ServiceImport, Lighthouse EndpointSlices, Globalnet's objects and Services, workloads,
//! CoreDNS configuration), the `show`
//! tables, component logs where the API server serves them, and each node's rules, routes,
//! Globalnet NAT table and WireGuard state (from a host-network pod per node). Secrets and credentials are redacted
//! unless asked for.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use kube::api::{ListParams, LogParams};
use serde_json::Value;

use crate::cluster::{self, Target};
use crate::pods::{self, Workload, nettest};
use crate::progress::Progress;
use crate::show::{self, What};
use crate::table::Output;

/// What replaces a redacted value.
pub const REDACTED: &str = "REDACTED";

/// How to gather.
#[derive(Clone, Debug)]
pub struct Options {
    pub dir: PathBuf,
    pub include_sensitive: bool,
    /// Image for the node pods.
    pub image: String,
    /// Namespace for the node pods.
    pub namespace: String,
    pub timeout: Duration,
}

/// The resources gathered: (file stem, apiVersion, kind, namespace, label selector).
const RESOURCES: &[(&str, &str, &str, Option<&str>, &str)] = &[
    ("submariners", "submariner.io/v1alpha1", "Submariner", None, ""),
    (
        "servicediscoveries",
        "submariner.io/v1alpha1",
        "ServiceDiscovery",
        None,
        "",
    ),
    ("brokers", "submariner.io/v1alpha1", "Broker", None, ""),
    ("clusters", "submariner.io/v1", "Cluster", None, ""),
    ("endpoints", "submariner.io/v1", "Endpoint", None, ""),
    ("gateways", "submariner.io/v1", "Gateway", None, ""),
    ("globalegressips", "submariner.io/v1", "GlobalEgressIP", None, ""),
    (
        "clusterglobalegressips",
        "submariner.io/v1",
        "ClusterGlobalEgressIP",
        None,
        "",
    ),
    (
        "globalingressips",
        "submariner.io/v1",
        "GlobalIngressIP",
        None,
        "",
    ),
    (
        "services-globalnet",
        "v1",
        "Service",
        None,
        "app.kubernetes.io/managed-by=subsea-globalnet",
    ),
    (
        "serviceexports",
        "multicluster.x-k8s.io/v1alpha1",
        "ServiceExport",
        None,
        "",
    ),
    (
        "serviceimports",
        "multicluster.x-k8s.io/v1alpha1",
        "ServiceImport",
        None,
        "",
    ),
    (
        "endpointslices",
        "discovery.k8s.io/v1",
        "EndpointSlice",
        None,
        "endpointslice.kubernetes.io/managed-by=lighthouse-agent.submariner.io",
    ),
    ("nodes", "v1", "Node", None, ""),
    ("pods", "v1", "Pod", Some("submariner-operator"), ""),
    (
        "daemonsets",
        "apps/v1",
        "DaemonSet",
        Some("submariner-operator"),
        "",
    ),
    (
        "deployments",
        "apps/v1",
        "Deployment",
        Some("submariner-operator"),
        "",
    ),
    ("services", "v1", "Service", Some("submariner-operator"), ""),
    ("secrets", "v1", "Secret", Some("submariner-operator"), ""),
    (
        "configmaps-kube-system",
        "v1",
        "ConfigMap",
        Some("kube-system"),
        "",
    ),
];

fn sensitive_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["token", "psk", "password", "privatekey", "private_key"]
        .iter()
        .any(|w| k.contains(w))
        // Names of secrets are references, not secrets.
        && !k.ends_with("name")
        && !k.ends_with("ref")
}

/// Removes credentials from an object: a Secret's data, and any string field whose name says
/// it is a token, PSK, password or private key.
pub fn redact(obj: &mut Value) {
    if obj["kind"] == "Secret" {
        for field in ["data", "stringData"] {
            if let Some(m) = obj.get_mut(field).and_then(Value::as_object_mut) {
                for v in m.values_mut() {
                    *v = Value::String(REDACTED.into());
                }
            }
        }
    }
    fn walk(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for (k, v) in m.iter_mut() {
                    if v.is_string() && sensitive_key(k) {
                        *v = Value::String(REDACTED.into());
                    } else {
                        walk(v);
                    }
                }
            }
            Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(obj);
    // kubectl's last-applied annotation repeats the whole object, secrets included.
    if let Some(a) = obj
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
}

/// A file name safe on any filesystem.
fn file_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Writes one file of the bundle. Everything is owner-only (directories 0700, files 0600): with
/// `--include-sensitive-data` the bundle holds tokens and keys, and logs may quote them anyway.
fn write(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        private_dir(parent)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// Gathers from every target into `opts.dir/<cluster>/`; returns the directory.
pub async fn run(targets: &[Target], opts: &Options, p: &mut Progress<'_>) -> Result<PathBuf> {
    private_dir(&opts.dir)?;
    if !opts.include_sensitive {
        p.info("secrets, tokens and keys are redacted (--include-sensitive-data keeps them)");
    }
    for t in targets {
        let id = pods::Side::new(t)
            .await
            .map(|s| s.id)
            .unwrap_or_else(|_| t.context.clone());
        let dir = opts.dir.join(file_name(&id));
        p.info(format!(
            "gathering {id} (context {}) into {}",
            t.context,
            dir.display()
        ));
        let n = resources(t, &dir, opts.include_sensitive).await?;
        p.done(format!("{id}: {n} resource kinds"));
        let mut shown = String::new();
        for what in [
            What::Brokers,
            What::Networks,
            What::Endpoints,
            What::Connections,
            What::Gateways,
            What::ServiceDiscovery,
            What::Versions,
        ] {
            match show::run(std::slice::from_ref(t), what, Output::Table).await {
                Ok(text) => shown.push_str(&text),
                Err(e) => shown.push_str(&format!("({e:#})\n")),
            }
            shown.push('\n');
        }
        write(&dir.join("show.txt"), &shown)?;
        match logs(t, &dir).await {
            Ok((0, _)) => p.info(format!("{id}: no component pods, so no logs")),
            Ok((pods, got)) if got == pods => p.done(format!("{id}: logs of {got} pod(s)")),
            Ok((pods, got)) => p.warn(format!(
                "{id}: logs of {got} of {pods} pod(s); the API server did not serve the others (pods/log)"
            )),
            Err(e) => p.warn(format!("{id}: logs: {e:#}")),
        }
        match nodes(t, &dir, opts).await {
            Ok(n) => p.done(format!("{id}: rules, routes and WireGuard state of {n} node(s)")),
            Err(e) => p.warn(format!("{id}: node state: {e:#}")),
        }
    }
    Ok(opts.dir.clone())
}

async fn resources(t: &Target, dir: &Path, include_sensitive: bool) -> Result<usize> {
    let mut n = 0;
    for (stem, av, kind, ns, selector) in RESOURCES {
        let api = cluster::api(&t.client, av, kind, *ns)?;
        let lp = ListParams::default().labels(selector);
        let items = match api.list(&lp).await {
            Ok(l) => l.items,
            // A kind this cluster does not have (not joined yet, or no MCS CRDs).
            Err(kube::Error::Api(e)) if e.code == 404 => continue,
            Err(e) => return Err(cluster::readable(e)).with_context(|| format!("listing {stem}")),
        };
        let mut values = Vec::new();
        for o in items {
            let mut v = serde_json::to_value(o)?;
            v["apiVersion"] = Value::String(av.to_string());
            v["kind"] = Value::String(kind.to_string());
            if !include_sensitive {
                redact(&mut v);
            }
            values.push(v);
        }
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": values});
        write(&dir.join(format!("{stem}.yaml")), &serde_yaml::to_string(&list)?)?;
        n += 1;
    }
    Ok(n)
}

/// Saves the component pods' logs: (pods, logs saved).
async fn logs(t: &Target, dir: &Path) -> Result<(usize, usize)> {
    let api = cluster::api(&t.client, "v1", "Pod", Some("submariner-operator"))?;
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(cluster::readable)?;
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(t.client.clone(), "submariner-operator");
    let (mut n, total) = (0, list.items.len());
    for o in list.items {
        let Some(name) = o.metadata.name.as_deref() else {
            continue;
        };
        let lp = LogParams {
            tail_lines: Some(5000),
            ..Default::default()
        };
        if let Ok(text) = pods.logs(name, &lp).await {
            write(&dir.join("logs").join(format!("{}.log", file_name(name))), &text)?;
            n += 1;
        }
    }
    Ok((total, n))
}

async fn nodes(t: &Target, dir: &Path, opts: &Options) -> Result<usize> {
    let (all, _) = pods::placement(&t.client).await?;
    pods::namespace(&t.client, &opts.namespace).await?;
    let mut started = Vec::new();
    for (i, (node, _)) in all.iter().enumerate() {
        let w = Workload {
            name: format!("gather-node-{i}"),
            namespace: opts.namespace.clone(),
            node: node.clone(),
            image: opts.image.clone(),
            command: nettest(&["node-info"]),
            labels: vec![],
            host_network: true,
        };
        pods::start(&t.client, &w).await?;
        started.push((node.clone(), w));
    }
    let mut n = 0;
    for (node, w) in &started {
        let text = match pods::wait_finished(&t.client, &w.namespace, &w.name, opts.timeout).await {
            Ok((0, message)) => {
                n += 1;
                message
            }
            Ok((code, message)) => format!("(node-info exited {code})\n{message}"),
            Err(e) => format!("({e:#})\n"),
        };
        write(&dir.join("nodes").join(format!("{}.txt", file_name(node))), &text)?;
    }
    pods::cleanup(&t.client, &opts.namespace).await;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_and_credential_fields_are_redacted() {
        let mut secret = json!({"kind": "Secret", "metadata": {"name": "broker-secret",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"token\":\"abc\"}}"}},
            "data": {"token": "c2VjcmV0", "ca.crt": "Q0E="}});
        redact(&mut secret);
        assert_eq!(secret["data"]["token"], REDACTED);
        assert_eq!(secret["data"]["ca.crt"], REDACTED);
        assert!(!secret.to_string().contains("abc"));
        let mut sm = json!({"kind": "Submariner", "spec": {"ceIPSecPSK": "psk-bytes", "brokerK8sApiServerToken": "tok",
            "brokerK8sSecret": "broker-secret-name", "brokerK8sApiServer": "https://b:6443",
            "clusterID": "cluster1", "nested": [{"privateKey": "k"}]}});
        redact(&mut sm);
        assert_eq!(sm["spec"]["ceIPSecPSK"], REDACTED);
        assert_eq!(sm["spec"]["brokerK8sApiServerToken"], REDACTED);
        assert_eq!(sm["spec"]["nested"][0]["privateKey"], REDACTED);
        assert_eq!(sm["spec"]["brokerK8sApiServer"], "https://b:6443");
        assert_eq!(sm["spec"]["clusterID"], "cluster1");
        assert_eq!(
            sm["spec"]["brokerK8sSecret"], "broker-secret-name",
            "a reference, not a secret"
        );
        let mut reference =
            json!({"kind": "Deployment", "spec": {"tokenSecretName": "x", "passwordRef": "y"}});
        redact(&mut reference);
        assert_eq!(reference["spec"]["tokenSecretName"], "x");
        assert_eq!(reference["spec"]["passwordRef"], "y");
    }

    #[test]
    fn file_names_are_plain() {
        assert_eq!(file_name("cluster1"), "cluster1");
        assert_eq!(file_name("a/b c"), "a_b_c");
    }
}
