//! A kubelet stand-in for one sandbox cluster: Pod objects created through the API (by
//! `subctl verify`, `subctl benchmark`, `subctl gather` or `kubectl`) become real pods: a
//! network namespace on the pod's node running the container's command, with the Pod's status
//! (IPs, Running, then Succeeded/Failed with the exit code and a termination message) written
//! back as a kubelet would. Images are not pulled: the command runs from the machine, with
//! `subsea`, `subctl` and `subsea-sandbox` taken from the sandbox's binaries. A container's
//! termination message is the tail of its output (FallbackToLogsOnError, on success too).
//!
//! Which pods to start, stop or schedule is [`plan`], a pure function of the Pod objects and
//! what runs; the rest is the I/O at the edges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Cluster, MAX_STATIC_PODS, Pod, Role, Sandbox, Topology, sys};

/// The image the sandbox gives pods it wires itself (`deploy`, `add-pod`): not the kubelet's.
pub const STATIC_IMAGE: &str = "sandbox";

use subsea_nettest::report::MESSAGE_LIMIT;

/// On a component pod the sandbox registered (it runs the component itself): the label of the
/// process the pod stands for, which this stand-in stops when the pod is deleted; also the
/// pod's finalizer, removed once the process stopped.
pub const PROCESS_ANNOTATION: &str = "sandbox.subsea.io/process";

/// The component pods present (by key, with their process label), and those of `seen` that are
/// gone or being deleted, whose processes are to stop: as a kubelet stops a deleted pod's
/// containers.
pub fn components(
    pods: &[Value],
    seen: &BTreeMap<Key, String>,
) -> (BTreeMap<Key, String>, Vec<(Key, String)>) {
    let now: BTreeMap<Key, String> = pods
        .iter()
        .filter(|p| s(p, "/spec/containers/0/image") == STATIC_IMAGE)
        .filter(|p| s(p, "/metadata/deletionTimestamp").is_empty())
        .filter_map(|p| {
            let label = p
                .pointer("/metadata/annotations")?
                .get(PROCESS_ANNOTATION)?
                .as_str()?;
            Some((key(p), label.to_string()))
        })
        .collect();
    let gone = seen
        .iter()
        .filter(|(k, l)| now.get(*k) != Some(*l))
        .map(|(k, l)| (k.clone(), l.clone()))
        .collect();
    (now, gone)
}

/// A pod, by namespace and name.
pub type Key = (String, String);

/// What the stand-in should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Run a pod on its node.
    Start(Spec),
    /// Stop a pod whose object is gone (or was replaced by a new one of the same name).
    Stop(Key),
    /// Put a pod without `spec.nodeName` on a node.
    Schedule(Key, String),
    /// Refuse a pod, with the reason written into its status.
    Reject(Key, String),
}

/// What running one pod takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub key: Key,
    pub uid: String,
    pub node: String,
    pub host_network: bool,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
}

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

fn key(p: &Value) -> Key {
    (
        s(p, "/metadata/namespace").to_string(),
        s(p, "/metadata/name").to_string(),
    )
}

/// The container's argv (`command` then `args`) and literal environment.
fn container(p: &Value) -> Result<(Vec<String>, Vec<(String, String)>), String> {
    let c = p
        .pointer("/spec/containers/0")
        .ok_or("the pod has no container")?;
    let strings = |f: &str| -> Vec<String> {
        c.get(f)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str().map(String::from))
            .collect()
    };
    let mut argv = strings("command");
    argv.extend(strings("args"));
    if argv.is_empty() {
        return Err(
            "the sandbox pulls no images: give the container a command (e.g. [\"subsea\", \"nettest\", …])"
                .into(),
        );
    }
    let env = c
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| Some((e["name"].as_str()?.to_string(), e["value"].as_str()?.to_string())))
        .collect();
    Ok((argv, env))
}

/// The decisions for one cluster: `pods` are its Pod objects, `running` the uid of every pod
/// this stand-in runs or ran, `nodes` the cluster's nodes and `worker` where unscheduled pods go.
pub fn plan(pods: &[Value], running: &BTreeMap<Key, String>, nodes: &[String], worker: &str) -> Vec<Action> {
    let mut out = Vec::new();
    let mut present = BTreeSet::new();
    for p in pods {
        let k = key(p);
        let uid = s(p, "/metadata/uid").to_string();
        if s(p, "/spec/containers/0/image") == STATIC_IMAGE {
            continue;
        }
        match running.get(&k) {
            Some(u) if *u == uid => {
                present.insert(k);
                continue;
            }
            // A new object under a running pod's name: the old pod stops this round (below),
            // the new one starts the next, never both in one slot.
            Some(_) => continue,
            None => {}
        }
        let phase = s(p, "/status/phase");
        if !(phase.is_empty() || phase == "Pending") || !s(p, "/metadata/deletionTimestamp").is_empty() {
            continue;
        }
        let node = s(p, "/spec/nodeName");
        if node.is_empty() {
            out.push(Action::Schedule(k, worker.to_string()));
            continue;
        }
        if !nodes.iter().any(|n| n == node) {
            out.push(Action::Reject(k, format!("no node {node:?} in this cluster")));
            continue;
        }
        match container(p) {
            Ok((argv, env)) => out.push(Action::Start(Spec {
                key: k,
                uid,
                node: node.to_string(),
                host_network: p.pointer("/spec/hostNetwork") == Some(&Value::Bool(true)),
                argv,
                env,
            })),
            Err(why) => out.push(Action::Reject(k, why)),
        }
    }
    for k in running.keys() {
        if !present.contains(k) {
            out.push(Action::Stop(k.clone()));
        }
    }
    out
}

fn now() -> String {
    format!("{:.0}", jiff::Timestamp::now())
}

/// The status of a pod that started: addresses, Running and Ready.
pub fn running_status(ips: &[String], host_ip: &str, container_name: &str) -> Value {
    let at = now();
    let cond = |t: &str| json!({"type": t, "status": "True", "lastTransitionTime": at});
    json!({"status": {"phase": "Running", "podIP": ips.first(), "podIPs": ips.iter().map(|i| json!({"ip": i})).collect::<Vec<_>>(),
        "hostIP": host_ip, "startTime": at,
        "conditions": [cond("PodScheduled"), cond("Initialized"), cond("ContainersReady"), cond("Ready")],
        "containerStatuses": [{"name": container_name, "ready": true, "started": true, "restartCount": 0,
            "image": STATIC_IMAGE, "imageID": "", "state": {"running": {"startedAt": at}}}]}})
}

/// The status of a pod whose container exited.
pub fn terminated_status(code: i32, message: &str, container_name: &str) -> Value {
    let at = now();
    let cond =
        |t: &str| json!({"type": t, "status": "False", "reason": "PodCompleted", "lastTransitionTime": at});
    json!({"status": {"phase": if code == 0 { "Succeeded" } else { "Failed" },
        "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": at}, cond("ContainersReady"), cond("Ready")],
        "containerStatuses": [{"name": container_name, "ready": false, "started": false, "restartCount": 0,
            "image": STATIC_IMAGE, "imageID": "",
            "state": {"terminated": {"exitCode": code, "reason": if code == 0 { "Completed" } else { "Error" },
                "message": message, "finishedAt": at}}}]}})
}

/// The last `MESSAGE_LIMIT` bytes of `output`, starting on a line when it was cut.
pub fn tail(output: &str) -> &str {
    if output.len() <= MESSAGE_LIMIT {
        return output;
    }
    let mut start = output.len() - MESSAGE_LIMIT;
    while !output.is_char_boundary(start) {
        start += 1;
    }
    let cut = &output[start..];
    cut.find('\n').map(|i| &cut[i + 1..]).unwrap_or(cut)
}

/// A pod this stand-in runs, as recorded for `subsea-sandbox down` and `exec`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    pub pod: Pod,
    pub pid: u32,
    /// Whether the namespace is the node's own (hostNetwork): never deleted.
    pub host_network: bool,
}

/// The file where a cluster's stand-in records its pods.
pub fn records_path(dir: &Path, cluster: &str) -> PathBuf {
    dir.join(format!("kubelet-{cluster}.json"))
}

/// Every pod recorded by any cluster's stand-in in the sandbox at `dir`.
pub fn records(dir: &Path) -> Vec<Record> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    entries
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("kubelet-") && n.ends_with(".json")
        })
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|t| serde_json::from_str::<Vec<Record>>(&t).ok())
        .flatten()
        .collect()
}

struct Live {
    record: Record,
    uid: String,
    child: Option<Child>,
    log: PathBuf,
    container: String,
}

/// The stand-in of one cluster.
pub struct Kubelet {
    dir: PathBuf,
    bin_dir: PathBuf,
    topology: Topology,
    cluster: Cluster,
    live: BTreeMap<Key, Live>,
    last_slot: BTreeMap<String, u8>,
    /// The component pods of the last pass ([`components`]).
    components: BTreeMap<Key, String>,
}

impl Kubelet {
    /// Reads the sandbox at `dir` for `cluster`.
    pub fn new(dir: &Path, cluster: &str) -> Result<Self> {
        let sb = Sandbox::load(dir)?;
        let topology = sb.topology()?.clone();
        let cluster = topology
            .cluster(cluster)
            .ok_or_else(|| anyhow!("no cluster {cluster:?} in the sandbox"))?
            .clone();
        Ok(Self {
            dir: dir.to_path_buf(),
            bin_dir: sb.state.bin_dir.clone(),
            topology,
            cluster,
            live: BTreeMap::new(),
            last_slot: BTreeMap::new(),
            components: BTreeMap::new(),
        })
    }

    /// Stops the sandbox's processes `labels` as a kubelet stops containers: SIGTERM to all,
    /// then SIGKILL to those still running after a 5 s grace period.
    fn stop_components(&self, labels: &[&str]) -> Result<()> {
        let sb = Sandbox::load(&self.dir)?;
        let pids: Vec<u32> = labels
            .iter()
            .filter_map(|l| sb.proc(l).ok().map(|p| p.pid))
            .collect();
        for &pid in &pids {
            sys::signal_group(pid, "TERM");
        }
        for _ in 0..50 {
            if pids.iter().all(|&p| !sys::alive(p)) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for &pid in pids.iter().filter(|&&p| sys::alive(p)) {
            sys::signal_group(pid, "KILL");
        }
        Ok(())
    }

    fn save(&self) -> Result<()> {
        let recs: Vec<&Record> = self.live.values().map(|l| &l.record).collect();
        let path = records_path(&self.dir, &self.cluster.id);
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_string_pretty(&recs)?)?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }

    fn free_slot(&self, node: &str) -> Result<u8> {
        let used: BTreeSet<String> = self
            .live
            .values()
            .filter(|l| l.record.pod.node == node && !l.record.host_network)
            .map(|l| l.record.pod.netns.clone())
            .collect();
        let n = self.node(node)?;
        // Round robin from the last slot handed out: a namespace just deleted may take the
        // kernel a moment to dismantle, so its slot is not reused at once.
        let first = MAX_STATIC_PODS + 1;
        let span = 240 - first + 1;
        let last = self.last_slot.get(node).copied().unwrap_or(240);
        (1..=span)
            .map(|i| first + (last - first + i) % span)
            .find(|k| !used.contains(&super::pod_netns(&self.topology, &self.cluster, n, *k)))
            .ok_or_else(|| anyhow!("node {node} has no free pod slot"))
    }

    fn node(&self, name: &str) -> Result<&super::Node> {
        self.cluster
            .nodes
            .iter()
            .find(|n| n.name == name)
            .ok_or_else(|| anyhow!("no node {name}"))
    }

    fn resolve(&self, argv0: &str) -> String {
        let ours = self.bin_dir.join(argv0);
        if !argv0.contains('/') && ours.exists() {
            ours.to_string_lossy().into_owned()
        } else {
            argv0.to_string()
        }
    }

    fn start(&mut self, spec: &Spec) -> Result<Vec<String>> {
        if self.live.contains_key(&spec.key) {
            self.stop(&spec.key)?;
        }
        let node = self.node(&spec.node)?.clone();
        let (netns, ips) = if spec.host_network {
            (node.netns.clone(), vec![node.ip.to_string()])
        } else {
            let k = self.free_slot(&node.name)?;
            self.last_slot.insert(node.name.clone(), k);
            let netns = super::pod_netns(&self.topology, &self.cluster, &node, k);
            sys::delete_netns(&netns);
            // The bridge end of a previous pod in this slot, should it linger.
            let _ = sys::ip_in(&node.netns, &["link", "del", &format!("p{k}")]);
            sys::ip(&["netns", "add", &netns])?;
            let wired = sys::ip_in(&netns, &["link", "set", "lo", "up"])
                .and_then(|_| super::plumb_pod(&self.cluster, &node, k, &netns, &spec.key.0));
            match wired {
                Ok(ips) => (netns, ips),
                Err(e) => {
                    sys::delete_netns(&netns);
                    return Err(e);
                }
            }
        };
        let mut argv = spec.argv.clone();
        argv[0] = self.resolve(&argv[0]);
        if spec.host_network {
            // A host-network pod on a gateway node sees that node's WireGuard device.
            let sb = Sandbox::load(&self.dir)?;
            argv = sb.on_node(&node, &argv)?;
        }
        let log = super::logs::log_path(&self.dir, &self.cluster.id, &spec.key.0, &spec.key.1);
        if let Some(d) = log.parent() {
            std::fs::create_dir_all(d)?;
        }
        let mut env: Vec<(&str, &str)> = spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        env.push(("POD_NAME", &spec.key.1));
        env.push(("POD_NAMESPACE", &spec.key.0));
        let child = match sys::spawn_child(Some(&netns), &argv, &log, &env, false) {
            Ok(c) => c,
            Err(e) => {
                if !spec.host_network {
                    sys::delete_netns(&netns);
                }
                return Err(e);
            }
        };
        let pod = Pod {
            name: spec.key.1.clone(),
            namespace: spec.key.0.clone(),
            cluster: self.cluster.id.clone(),
            node: node.name.clone(),
            netns,
            ips: ips.clone(),
        };
        self.live.insert(
            spec.key.clone(),
            Live {
                record: Record {
                    pod,
                    pid: child.id(),
                    host_network: spec.host_network,
                },
                uid: spec.uid.clone(),
                child: Some(child),
                log,
                container: String::new(),
            },
        );
        self.save()?;
        Ok(ips)
    }

    /// Kills a pod's processes and removes its namespace.
    fn teardown(record: &Record) {
        sys::signal_group(record.pid, "KILL");
        if !record.host_network {
            sys::delete_netns(&record.pod.netns);
        }
    }

    fn stop(&mut self, k: &Key) -> Result<()> {
        if let Some(mut l) = self.live.remove(k) {
            Self::teardown(&l.record);
            if let Some(c) = l.child.as_mut() {
                let _ = c.wait();
            }
        }
        self.save()
    }

    /// Pods whose container has exited since the last call: (key, exit code, message).
    fn exited(&mut self) -> Vec<(Key, i32, String, String)> {
        let mut out = Vec::new();
        for (k, l) in self.live.iter_mut() {
            let Some(child) = l.child.as_mut() else { continue };
            if let Ok(Some(status)) = child.try_wait() {
                l.child = None;
                // The pod's other processes go with its main one; its namespace stays until
                // the Pod is deleted, as a real pod sandbox does.
                sys::signal_group(l.record.pid, "KILL");
                let output = std::fs::read_to_string(&l.log).unwrap_or_default();
                let code = status.code().unwrap_or(137);
                out.push((k.clone(), code, tail(&output).to_string(), l.container.clone()));
            }
        }
        out
    }

    /// Runs until killed, stopping every pod it started on the way out (SIGTERM).
    pub async fn run(self, kubeconfig: &Path, context: &str) -> Result<()> {
        use kube::api::{Api, DynamicObject, Patch, PatchParams};
        let client = subsea_runtime::client::local(Some(kubeconfig), Some(context)).await?;
        let ar = kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("", "v1", "Pod"),
            "pods",
        );
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let all: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let pods = subsea_runtime::reflect::reflect(all, &ar, tx);
        let nodes: Vec<String> = self.cluster.nodes.iter().map(|n| n.name.clone()).collect();
        let worker = self
            .cluster
            .nodes
            .iter()
            .find(|n| n.role == Role::Worker)
            .map(|n| n.name.clone())
            .unwrap_or_default();
        self.save()?;
        // The pass runs the pods' processes (`start`, `stop`, `exited` need the kubelet) and
        // writes their status; the resync reaps exited processes even without a wake-up.
        let me = std::cell::RefCell::new(self);
        subsea_runtime::controller::Loop::new("kubelet stand-in")
            .resync(Duration::from_millis(200))
            .settle(Duration::ZERO)
            .run(&mut rx, subsea_runtime::shutdown::signal(), |_| async {
                let objects = subsea_runtime::reflect::values(&pods);
                let running: BTreeMap<Key, String> = me
                    .borrow()
                    .live
                    .iter()
                    .map(|(k, l)| (k.clone(), l.uid.clone()))
                    .collect();
                let api = |ns: &str| -> Api<DynamicObject> { Api::namespaced_with(client.clone(), ns, &ar) };
                for action in plan(&objects, &running, &nodes, &worker) {
                    let merge = |v: Value| Patch::Merge(v);
                    let result: Result<()> = async {
                        match &action {
                            Action::Start(spec) => {
                                let name = objects
                                    .iter()
                                    .find(|p| key(p) == spec.key)
                                    .map(|p| s(p, "/spec/containers/0/name").to_string())
                                    .unwrap_or_default();
                                let status = {
                                    let mut k = me.borrow_mut();
                                    let host_ip = k.node(&spec.node)?.ip.to_string();
                                    match k.start(spec) {
                                        Ok(ips) => {
                                            if let Some(l) = k.live.get_mut(&spec.key) {
                                                l.container = name.clone();
                                            }
                                            running_status(&ips, &host_ip, &name)
                                        }
                                        Err(e) => terminated_status(128, &format!("the sandbox could not start the pod: {e:#}"), &name),
                                    }
                                };
                                api(&spec.key.0)
                                    .patch_status(&spec.key.1, &PatchParams::default(), &merge(status))
                                    .await?;
                            }
                            Action::Stop(k) => me.borrow_mut().stop(k)?,
                            Action::Schedule(k, node) => {
                                api(&k.0)
                                    .patch(&k.1, &PatchParams::default(), &merge(json!({"spec": {"nodeName": node}})))
                                    .await?;
                            }
                            Action::Reject((ns, name), why) => {
                                let status = json!({"status": {"phase": "Failed", "reason": "SandboxRejected", "message": why}});
                                api(ns).patch_status(name, &PatchParams::default(), &merge(status)).await?;
                            }
                        }
                        Ok(())
                    }
                    .await;
                    if let Err(e) = result {
                        eprintln!("kubelet stand-in: {action:?}: {e:#}");
                    }
                }
                let (present, gone) = components(&objects, &me.borrow().components);
                me.borrow_mut().components = present;
                if !gone.is_empty() {
                    let labels: Vec<&str> = gone.iter().map(|(_, l)| l.as_str()).collect();
                    if let Err(e) = me.borrow().stop_components(&labels) {
                        eprintln!("kubelet stand-in: stopping {labels:?}: {e:#}");
                    }
                    // Stopped: the pods may go.
                    for ((ns, name), _) in &gone {
                        let release = Patch::Merge(json!({"metadata": {"finalizers": null}}));
                        match api(ns).patch(name, &PatchParams::default(), &release).await {
                            Ok(_) => {}
                            Err(kube::Error::Api(e)) if e.code == 404 => {}
                            Err(e) => eprintln!("kubelet stand-in: releasing {ns}/{name}: {e:#}"),
                        }
                    }
                }
                let exited = me.borrow_mut().exited();
                for ((ns, name), code, message, container) in exited {
                    let status = terminated_status(code, &message, &container);
                    if let Err(e) = api(&ns)
                        .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
                        .await
                    {
                        eprintln!("kubelet stand-in: status of {ns}/{name}: {e:#}");
                    }
                }
                // Failures are per action and reported above; the next pass retries them.
                Ok::<(), std::convert::Infallible>(())
            })
            .await;
        let mut me = me.into_inner();
        let keys: Vec<Key> = me.live.keys().cloned().collect();
        for k in keys {
            me.stop(&k)?;
        }
        Ok(())
    }
}

/// Removes what the stand-ins of the sandbox at `dir` left (after they were killed).
pub fn clean(dir: &Path) {
    for r in records(dir) {
        Kubelet::teardown(&r);
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with("kubelet-") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// Finds a recorded pod.
pub fn find(dir: &Path, cluster: &str, name: &str) -> Result<Pod> {
    match records(dir)
        .into_iter()
        .find(|r| r.pod.cluster == cluster && r.pod.name == name)
    {
        Some(r) => Ok(r.pod),
        None => bail!("no pod {name:?} in {cluster} (see `subsea-sandbox status`)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_component_pod_stops_its_process() {
        let component = |name: &str, label: &str, deleting: bool| {
            let mut p = json!({"metadata": {"name": name, "namespace": "submariner-operator",
                "annotations": {PROCESS_ANNOTATION: label}},
                "spec": {"containers": [{"name": "c", "image": STATIC_IMAGE}]}});
            if deleting {
                p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
            }
            p
        };
        let gw = component("submariner-gateway-c1-gw", "c1-gw/gateway", false);
        let dns = component("submariner-lighthouse-coredns", "cluster1/lighthouse-dns", false);
        let plain = json!({"metadata": {"name": "client", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": STATIC_IMAGE}]}});
        let (seen, gone) = components(&[gw.clone(), dns.clone(), plain], &BTreeMap::new());
        assert_eq!(seen.len(), 2, "only annotated pods: {seen:?}");
        assert!(gone.is_empty());
        let (seen, gone) = components(&[gw.clone(), dns], &seen);
        assert!(gone.is_empty(), "nothing changed");
        let deleting = component("submariner-lighthouse-coredns", "cluster1/lighthouse-dns", true);
        let (seen, gone) = components(&[gw, deleting], &seen);
        let labels = |g: &[(Key, String)]| g.iter().map(|(_, l)| l.clone()).collect::<Vec<_>>();
        assert_eq!(labels(&gone), ["cluster1/lighthouse-dns"]);
        assert_eq!(
            gone[0].0,
            (
                "submariner-operator".into(),
                "submariner-lighthouse-coredns".into()
            )
        );
        let (_, gone) = components(&[], &seen);
        assert_eq!(
            labels(&gone),
            ["c1-gw/gateway"],
            "the gateway pod deleted outright"
        );
    }

    fn pod(name: &str, uid: &str, node: &str, phase: &str, command: Value) -> Value {
        json!({"metadata": {"name": name, "namespace": "t", "uid": uid},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "subsea", "command": command,
                "env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {}}]}]},
            "status": {"phase": phase}})
    }

    #[test]
    fn plans_starts_stops_schedules_and_rejections() {
        let nodes = vec!["c1-gw1".to_string(), "c1-worker".to_string()];
        let pods = vec![
            pod(
                "new",
                "u1",
                "c1-worker",
                "",
                json!(["subsea", "nettest", "echo-server"]),
            ),
            pod("mine", "u2", "c1-gw1", "Running", json!(["x"])),
            pod("nonode", "u3", "", "", json!(["x"])),
            pod("elsewhere", "u4", "c2-worker", "", json!(["x"])),
            pod("noimage-cmd", "u5", "c1-worker", "Pending", json!([])),
            pod("done", "u6", "c1-worker", "Succeeded", json!(["x"])),
            json!({"metadata": {"name": "static", "namespace": "t", "uid": "u7"},
                "spec": {"nodeName": "c1-worker", "containers": [{"name": "main", "image": STATIC_IMAGE}]}}),
        ];
        let mut running = BTreeMap::new();
        running.insert(("t".to_string(), "mine".to_string()), "u2".to_string());
        running.insert(("t".to_string(), "gone".to_string()), "u9".to_string());
        let k = |n: &str| ("t".to_string(), n.to_string());
        let actions = plan(&pods, &running, &nodes, "c1-worker");
        assert_eq!(
            actions[0],
            Action::Start(Spec {
                key: k("new"),
                uid: "u1".into(),
                node: "c1-worker".into(),
                host_network: false,
                argv: vec!["subsea".into(), "nettest".into(), "echo-server".into()],
                env: vec![("A".into(), "1".into())],
            })
        );
        assert_eq!(actions[1], Action::Schedule(k("nonode"), "c1-worker".into()));
        assert!(
            matches!(&actions[2], Action::Reject(key, why) if *key == k("elsewhere") && why.contains("c2-worker"))
        );
        assert!(
            matches!(&actions[3], Action::Reject(key, why) if *key == k("noimage-cmd") && why.contains("command"))
        );
        assert_eq!(actions[4], Action::Stop(k("gone")));
        assert_eq!(actions.len(), 5, "{actions:?}");
        // A pod replaced by a new object of the same name: the old one stops, the new one waits
        // for the next round (its key is no longer running).
        let replaced = vec![pod("mine", "u2-new", "c1-gw1", "", json!(["x"]))];
        let mut only_mine = BTreeMap::new();
        only_mine.insert(k("mine"), "u2".to_string());
        let a = plan(&replaced, &only_mine, &nodes, "c1-worker");
        assert_eq!(a, vec![Action::Stop(k("mine"))]);
        let a = plan(&replaced, &BTreeMap::new(), &nodes, "c1-worker");
        assert!(matches!(&a[..], [Action::Start(s)] if s.uid == "u2-new"), "{a:?}");
    }

    #[test]
    fn statuses_say_what_a_kubelet_says() {
        let r = running_status(&["10.1.0.5".into(), "fd00::5".into()], "172.30.1.11", "c");
        assert_eq!(r["status"]["phase"], "Running");
        assert_eq!(r["status"]["podIP"], "10.1.0.5");
        assert_eq!(r["status"]["podIPs"][1]["ip"], "fd00::5");
        assert!(
            r["status"]["conditions"]
                .as_array()
                .expect("conditions")
                .iter()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        );
        let t = terminated_status(3, "boom", "c");
        assert_eq!(t["status"]["phase"], "Failed");
        assert_eq!(
            t["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            3
        );
        assert_eq!(
            t["status"]["containerStatuses"][0]["state"]["terminated"]["message"],
            "boom"
        );
        assert_eq!(terminated_status(0, "", "c")["status"]["phase"], "Succeeded");
    }

    #[test]
    fn messages_keep_the_last_4096_bytes_from_a_line_start() {
        assert_eq!(tail("short\n"), "short\n");
        let long = format!("{}\nRESULT {{}}\n", "é".repeat(3000));
        let t = tail(&long);
        assert!(t.len() <= MESSAGE_LIMIT);
        assert!(t.ends_with("RESULT {}\n"), "{t}");
    }
}
