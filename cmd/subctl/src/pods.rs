//! Short-lived pods for `subctl verify` and `subctl benchmark`: a server pod pinned to a node, a
//! client pod that runs one `subsea nettest` check and ends. The client's result comes back in
//! its container's termination message (`RESULT <json>`), so subctl needs neither exec nor log
//! streaming, on a real cluster as in the sandbox.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use kube::Client;
use kube::api::{ListParams, PostParams};
use serde_json::{Value, json};

use crate::cluster;

/// Label on everything subctl creates for a check, so cleanup finds it.
pub const LABEL: &str = "subctl.submariner.io/check";

/// A pod to run.
#[derive(Clone, Debug)]
pub struct Workload {
    pub name: String,
    pub namespace: String,
    /// The node it must run on.
    pub node: String,
    pub image: String,
    pub command: Vec<String>,
    /// Extra labels (the check label is always set).
    pub labels: Vec<(String, String)>,
    pub host_network: bool,
}

/// The Pod manifest: pinned to its node, never restarted, its output as termination message.
pub fn manifest(w: &Workload) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert(LABEL.into(), json!("true"));
    for (k, v) in &w.labels {
        labels.insert(k.clone(), json!(v));
    }
    let mut pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": w.name, "namespace": w.namespace, "labels": labels},
        "spec": {"nodeName": w.node, "restartPolicy": "Never", "hostNetwork": w.host_network,
            "terminationGracePeriodSeconds": 1,
            // Gateway nodes may be tainted; a check must run there anyway.
            "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "nettest", "image": w.image, "command": w.command,
                "terminationMessagePolicy": "FallbackToLogsOnError"}]}});
    if w.host_network {
        // A node-level pod sees the node's routes and rules, and, through the directory the
        // gateway DaemonSet shares, the userspace WireGuard device's UAPI socket (`wg show`).
        pod["spec"]["volumes"] = json!([{"name": "wireguard", "hostPath": {"path": "/var/run/wireguard", "type": "DirectoryOrCreate"}}]);
        pod["spec"]["containers"][0]["volumeMounts"] =
            json!([{"name": "wireguard", "mountPath": "/var/run/wireguard"}]);
    }
    pod
}

/// Where a pod is, read from its object.
#[derive(Clone, Debug, PartialEq)]
pub enum State {
    /// Not started yet.
    Pending,
    /// Running, with its addresses (IPv4 first when it has one).
    Running(Vec<String>),
    /// Its container ended.
    Finished { code: i64, message: String },
    /// It could not run at all.
    Broken(String),
}

/// Reads a Pod object's state.
pub fn state(pod: &Value) -> State {
    let st = &pod["status"];
    let terminated = st.pointer("/containerStatuses/0/state/terminated");
    if let Some(t) = terminated {
        return State::Finished {
            code: t["exitCode"].as_i64().unwrap_or(-1),
            message: t["message"].as_str().unwrap_or_default().to_string(),
        };
    }
    if let Some(waiting) = st.pointer("/containerStatuses/0/state/waiting") {
        let reason = waiting["reason"].as_str().unwrap_or_default();
        if matches!(
            reason,
            "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "CreateContainerError"
        ) {
            let msg = waiting["message"].as_str().unwrap_or_default();
            return State::Broken(format!("{reason}: {msg}"));
        }
    }
    match st["phase"].as_str().unwrap_or_default() {
        "Running" => State::Running(ips(pod)),
        "Failed" => State::Broken(format!(
            "{}: {}",
            st["reason"].as_str().unwrap_or("Failed"),
            st["message"].as_str().unwrap_or_default()
        )),
        _ => State::Pending,
    }
}

/// A pod's addresses, IPv4 first.
pub fn ips(pod: &Value) -> Vec<String> {
    let st = &pod["status"];
    let mut ips: Vec<String> = st["podIPs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["ip"].as_str().map(String::from))
        .collect();
    if ips.is_empty()
        && let Some(ip) = st["podIP"].as_str()
    {
        ips.push(ip.to_string());
    }
    ips.sort_by_key(|ip| ip.contains(':'));
    ips
}

/// Schedulable nodes, gateway or not: (name, is gateway). Control-plane nodes and nodes
/// tainted NoSchedule are left out unless they are gateways.
pub fn nodes(list: &[Value]) -> Vec<(String, bool)> {
    list.iter()
        .filter_map(|n| {
            let name = n["metadata"]["name"].as_str()?.to_string();
            let labels = &n["metadata"]["labels"];
            let gateway = labels["submariner.io/gateway"] == "true";
            let control = labels.get("node-role.kubernetes.io/control-plane").is_some()
                || labels.get("node-role.kubernetes.io/master").is_some();
            let tainted = n["spec"]["taints"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t["effect"] == "NoSchedule"));
            (gateway || !(control || tainted)).then_some((name, gateway))
        })
        .collect()
}

/// The node for a check: the active gateway's node when `gateway`, else a non-gateway node.
pub fn pick_node(nodes: &[(String, bool)], active_gateway: Option<&str>, gateway: bool) -> Option<String> {
    if gateway {
        if let Some(a) = active_gateway.filter(|a| nodes.iter().any(|(n, g)| n == a && *g)) {
            return Some(a.to_string());
        }
        return nodes.iter().find(|(_, g)| *g).map(|(n, _)| n.clone());
    }
    nodes.iter().find(|(_, g)| !*g).map(|(n, _)| n.clone())
}

/// The cluster's nodes and the active gateway's name (from the Gateway objects).
pub async fn placement(client: &Client) -> Result<(Vec<(String, bool)>, Option<String>)> {
    let node_api = cluster::api(client, "v1", "Node", None)?;
    let list = node_api
        .list(&ListParams::default())
        .await
        .map_err(cluster::readable)
        .context("listing nodes")?;
    let values: Vec<Value> = list
        .items
        .iter()
        .filter_map(|o| serde_json::to_value(o).ok())
        .collect();
    let gw_api = cluster::api(client, "submariner.io/v1", "Gateway", Some("submariner-operator"))?;
    let active = match gw_api.list(&ListParams::default()).await {
        Ok(l) => l.items.iter().find_map(|g| {
            let v = serde_json::to_value(g).ok()?;
            (v["status"]["haStatus"] == "active").then(|| v["metadata"]["name"].as_str().map(String::from))?
        }),
        Err(_) => None,
    };
    Ok((nodes(&values), active))
}

/// One cluster of a check.
pub struct Side {
    pub client: Client,
    /// Its cluster ID (from the Submariner object `subctl join` made).
    pub id: String,
    /// Its GlobalCIDR, when it joined with Globalnet.
    pub global_cidr: Option<String>,
    nodes: Vec<(String, bool)>,
    active: Option<String>,
}

impl Side {
    /// Reads a joined cluster's ID and where checks can run.
    pub async fn new(t: &cluster::Target) -> Result<Self> {
        let spec = cluster::submariner_object(&t.client)
            .await
            .ok()
            .flatten()
            .and_then(|s| serde_json::to_value(s).ok())
            .map(|v| v["spec"].clone());
        let global_cidr = spec
            .as_ref()
            .and_then(|s| s["globalCIDR"].as_str())
            .filter(|g| !g.is_empty())
            .map(String::from);
        let id = spec
            .as_ref()
            .and_then(|s| s["clusterID"].as_str().map(String::from))
            .with_context(|| {
                format!(
                    "context {} is not joined (no Submariner object): run `subctl join` first",
                    t.context
                )
            })?;
        let (nodes, active) = placement(&t.client).await?;
        Ok(Self {
            client: t.client.clone(),
            id,
            global_cidr,
            nodes,
            active,
        })
    }

    /// The node for a check on a gateway node or not.
    pub fn node(&self, gateway: bool) -> Result<String> {
        pick_node(&self.nodes, self.active.as_deref(), gateway).with_context(|| {
            format!(
                "cluster {} has no schedulable {} node",
                self.id,
                if gateway { "gateway" } else { "non-gateway" }
            )
        })
    }
}

/// `subsea nettest ARGS`.
pub fn nettest(args: &[&str]) -> Vec<String> {
    ["subsea", "nettest"]
        .iter()
        .chain(args)
        .map(|s| s.to_string())
        .collect()
}

/// Makes sure the namespace exists.
pub async fn namespace(client: &Client, ns: &str) -> Result<()> {
    cluster::apply(
        client,
        &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
    )
    .await
    .with_context(|| format!("creating namespace {ns}"))?;
    Ok(())
}

/// Creates the pod, replacing a leftover one of the same name.
pub async fn start(client: &Client, w: &Workload) -> Result<()> {
    let api = cluster::api(client, "v1", "Pod", Some(&w.namespace))?;
    let _ = cluster::delete(&api, &w.name).await;
    let obj: kube::api::DynamicObject = serde_json::from_value(manifest(w))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => return Ok(()),
            // The old pod may still be terminating.
            Err(kube::Error::Api(e)) if e.code == 409 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => {
                return Err(cluster::readable(e))
                    .with_context(|| format!("creating pod {}/{}", w.namespace, w.name));
            }
        }
    }
}

/// The Pod object.
pub async fn get(client: &Client, ns: &str, name: &str) -> Result<Value> {
    let api = cluster::api(client, "v1", "Pod", Some(ns))?;
    let pod = api
        .get(name)
        .await
        .map_err(cluster::readable)
        .with_context(|| format!("reading pod {ns}/{name}"))?;
    Ok(serde_json::to_value(pod)?)
}

async fn poll(client: &Client, ns: &str, name: &str) -> Result<State> {
    Ok(state(&get(client, ns, name).await?))
}

/// Waits until the pod runs; returns its addresses.
pub async fn wait_running(client: &Client, ns: &str, name: &str, timeout: Duration) -> Result<Vec<String>> {
    let start = Instant::now();
    loop {
        match poll(client, ns, name).await? {
            State::Running(ips) if !ips.is_empty() => return Ok(ips),
            State::Finished { code, message } => {
                bail!(
                    "pod {ns}/{name} exited ({code}) instead of running: {}",
                    message.trim()
                )
            }
            State::Broken(why) => bail!("pod {ns}/{name} cannot run: {why}"),
            _ if start.elapsed() > timeout => bail!(
                "pod {ns}/{name} is not running after {timeout:?} (is the image pullable? `kubectl describe pod -n {ns} {name}`)"
            ),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Waits until the pod's container ends; returns its exit code and termination message.
pub async fn wait_finished(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
) -> Result<(i64, String)> {
    wait_finished_ticking(client, ns, name, timeout, &mut |_| {}).await
}

/// [`wait_finished`], calling `tick` with the time waited every [`TICK`], so a long
/// measurement shows it is alive.
pub async fn wait_finished_ticking(
    client: &Client,
    ns: &str,
    name: &str,
    timeout: Duration,
    tick: &mut dyn FnMut(Duration),
) -> Result<(i64, String)> {
    let start = Instant::now();
    let mut next_tick = TICK;
    loop {
        if start.elapsed() >= next_tick {
            tick(start.elapsed());
            next_tick += TICK;
        }
        match poll(client, ns, name).await? {
            State::Finished { code, message } => return Ok((code, message)),
            State::Broken(why) => bail!("pod {ns}/{name} cannot run: {why}"),
            _ if start.elapsed() > timeout => bail!("pod {ns}/{name} did not finish within {timeout:?}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// How often a long wait reports progress.
pub const TICK: Duration = Duration::from_secs(5);

/// Runs a client pod to completion and returns its result, or an error with its output.
pub async fn run<T: serde::de::DeserializeOwned>(
    client: &Client,
    w: &Workload,
    timeout: Duration,
) -> Result<T> {
    run_ticking(client, w, timeout, &mut |_| {}).await
}

/// [`run`], with `tick` called every [`TICK`] while the pod runs.
pub async fn run_ticking<T: serde::de::DeserializeOwned>(
    client: &Client,
    w: &Workload,
    timeout: Duration,
    tick: &mut dyn FnMut(Duration),
) -> Result<T> {
    start(client, w).await?;
    let (code, message) = wait_finished_ticking(client, &w.namespace, &w.name, timeout, tick).await?;
    let last = message.trim().lines().last().unwrap_or("(no output)").to_string();
    if code != 0 {
        match subsea_nettest::report::find::<Value>(&message) {
            Some(v) if v["error"].is_string() => bail!("{}", v["error"].as_str().unwrap_or_default()),
            _ => bail!("the check pod exited with {code}: {last}"),
        }
    }
    subsea_nettest::report::find(&message).with_context(|| format!("the check printed no result: {last}"))
}

/// Deletes everything labelled for checks in `ns` (pods, services, service exports).
pub async fn cleanup(client: &Client, ns: &str) {
    let lp = ListParams::default().labels(&format!("{LABEL}=true"));
    for (av, kind) in [
        ("multicluster.x-k8s.io/v1alpha1", "ServiceExport"),
        ("v1", "Service"),
        ("v1", "Pod"),
    ] {
        let Ok(api) = cluster::api(client, av, kind, Some(ns)) else {
            continue;
        };
        if let Ok(list) = api.list(&lp).await {
            for o in list.items {
                if let Some(name) = o.metadata.name.as_deref() {
                    let _ = cluster::delete(&api, name).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_states_follow_the_kubelet_status() {
        assert_eq!(state(&json!({})), State::Pending);
        assert_eq!(
            state(&json!({"status": {"phase": "Running", "podIP": "10.1.0.5",
                "podIPs": [{"ip": "fd00::5"}, {"ip": "10.1.0.5"}]}})),
            State::Running(vec!["10.1.0.5".into(), "fd00::5".into()])
        );
        assert_eq!(
            state(
                &json!({"status": {"phase": "Failed", "containerStatuses": [{"state":
                {"terminated": {"exitCode": 1, "message": "RESULT {}"}}}]}})
            ),
            State::Finished {
                code: 1,
                message: "RESULT {}".into()
            }
        );
        assert!(matches!(
            state(&json!({"status": {"phase": "Pending", "containerStatuses": [{"state":
                {"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}}}]}})),
            State::Broken(m) if m.contains("no such image")
        ));
    }

    #[test]
    fn checks_run_on_the_active_gateway_or_a_schedulable_worker() {
        let node = |name: &str, labels: Value, taints: Value| json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}});
        let list = vec![
            node(
                "cp",
                json!({"node-role.kubernetes.io/control-plane": ""}),
                json!([]),
            ),
            node("gw1", json!({"submariner.io/gateway": "true"}), json!([])),
            node(
                "gw2",
                json!({"submariner.io/gateway": "true"}),
                json!([{"effect": "NoSchedule"}]),
            ),
            node("tainted", json!({}), json!([{"effect": "NoSchedule"}])),
            node("worker", json!({}), json!(null)),
        ];
        let n = nodes(&list);
        assert_eq!(
            n,
            vec![
                ("gw1".to_string(), true),
                ("gw2".to_string(), true),
                ("worker".to_string(), false)
            ]
        );
        assert_eq!(pick_node(&n, Some("gw2"), true).as_deref(), Some("gw2"));
        assert_eq!(pick_node(&n, Some("worker"), true).as_deref(), Some("gw1"));
        assert_eq!(pick_node(&n, None, false).as_deref(), Some("worker"));
        assert_eq!(pick_node(&n[..2], None, false), None);
    }

    #[test]
    fn manifests_pin_the_node_and_never_restart() {
        let w = Workload {
            name: "c".into(),
            namespace: "subctl-verify".into(),
            node: "gw1".into(),
            image: "img".into(),
            command: vec!["subsea".into(), "nettest".into()],
            labels: vec![("app".into(), "x".into())],
            host_network: false,
        };
        let m = manifest(&w);
        assert_eq!(m["spec"]["nodeName"], "gw1");
        assert_eq!(m["spec"]["restartPolicy"], "Never");
        assert_eq!(m["metadata"]["labels"][LABEL], "true");
        assert_eq!(m["metadata"]["labels"]["app"], "x");
        assert_eq!(m["spec"]["containers"][0]["command"][1], "nettest");
        assert!(m["spec"]["volumes"].is_null());
        let node = manifest(&Workload {
            host_network: true,
            ..w
        });
        assert_eq!(node["spec"]["hostNetwork"], true);
        assert_eq!(
            node["spec"]["volumes"][0]["hostPath"]["path"],
            "/var/run/wireguard"
        );
        assert_eq!(
            node["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
            "/var/run/wireguard"
        );
    }
}
