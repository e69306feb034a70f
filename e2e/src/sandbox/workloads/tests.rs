//! The plan driven to convergence over an in-memory cluster: actions applied as the API server
//! would apply them, pods made ready as the kubelet stand-in would, and the end state checked
//! with kubectl's own rollout-status rules.

use serde_json::{Value, json};

use super::*;

#[derive(Default)]
struct Cluster {
    deployments: Vec<Value>,
    replicasets: Vec<Value>,
    statefulsets: Vec<Value>,
    daemonsets: Vec<Value>,
    pods: Vec<Value>,
    nodes: Vec<Value>,
    next: u64,
}

impl Cluster {
    fn list(&mut self, r: Resource) -> &mut Vec<Value> {
        match r {
            Resource::Pods => &mut self.pods,
            Resource::ReplicaSets => &mut self.replicasets,
            Resource::Deployments => &mut self.deployments,
            Resource::StatefulSets => &mut self.statefulsets,
            Resource::DaemonSets => &mut self.daemonsets,
        }
    }

    fn add(&mut self, r: Resource, mut o: Value) {
        self.next += 1;
        let n = self.next;
        if o["metadata"]["name"].is_null() {
            o["metadata"]["name"] = json!(format!("{}{n:05}", str_at(&o, "/metadata/generateName")));
        }
        o["metadata"]["uid"] = json!(format!("uid-{n}"));
        o["metadata"]["generation"] = json!(1);
        o["metadata"]["creationTimestamp"] = json!(format!("2026-01-01T00:{:02}:{:02}Z", n / 60, n % 60));
        self.list(r).push(o);
    }

    fn find(&mut self, r: Resource, name: &str) -> &mut Value {
        self.list(r)
            .iter_mut()
            .find(|o| str_at(o, "/metadata/name") == name)
            .expect("the object exists")
    }

    fn plan(&self) -> Vec<Action> {
        plan(&World {
            deployments: &self.deployments,
            replicasets: &self.replicasets,
            statefulsets: &self.statefulsets,
            daemonsets: &self.daemonsets,
            pods: &self.pods,
            nodes: &self.nodes,
            now: "2026-01-01T01:00:00Z",
        })
    }

    fn apply(&mut self, a: Action) {
        match a {
            Action::Create(r, o) => self.add(r, o),
            Action::Delete(r, _, name) => self.list(r).retain(|o| str_at(o, "/metadata/name") != name),
            Action::Scale(_, name, n) => {
                let rs = self.find(Resource::ReplicaSets, &name);
                rs["spec"]["replicas"] = json!(n);
                rs["metadata"]["generation"] = json!(int_at(rs, "/metadata/generation", 1) + 1);
            }
            Action::Status(r, _, name, patch) => {
                let o = self.find(r, &name);
                for (k, v) in patch.as_object().expect("an object") {
                    if v.is_null() {
                        o["status"].as_object_mut().map(|m| m.remove(k));
                    } else {
                        o["status"][k] = v.clone();
                    }
                }
            }
        }
    }

    /// Plans and applies until nothing is left to do, the kubelet making every pod ready.
    fn converge(&mut self) -> usize {
        for round in 0..100 {
            for p in &mut self.pods {
                p["status"] =
                    json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]});
            }
            let actions = self.plan();
            if actions.is_empty() {
                return round;
            }
            for a in actions {
                self.apply(a);
            }
        }
        panic!("no convergence in 100 rounds");
    }

    fn edit(&mut self, r: Resource, name: &str, f: impl FnOnce(&mut Value)) {
        let o = self.find(r, name);
        f(o);
        o["metadata"]["generation"] = json!(int_at(o, "/metadata/generation", 1) + 1);
    }
}

fn template(app: &str, image: &str) -> Value {
    json!({"metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": app, "image": image, "command": ["sleep", "3600"]}]}})
}

fn workload(kind: &str, name: &str, replicas: Option<i64>) -> Value {
    let mut o = json!({"apiVersion": "apps/v1", "kind": kind,
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": name}}, "template": template(name, "v1")}});
    if let Some(n) = replicas {
        o["spec"]["replicas"] = json!(n);
    }
    o
}

/// kubectl's DeploymentStatusViewer: the rollout is done.
fn deployment_rolled_out(d: &Value) -> bool {
    let s = &d["status"];
    int_at(d, "/metadata/generation", 0) <= int_at(s, "/observedGeneration", 0)
        && int_at(s, "/updatedReplicas", 0) >= int_at(d, "/spec/replicas", 1)
        && int_at(s, "/replicas", 0) <= int_at(s, "/updatedReplicas", 0)
        && int_at(s, "/availableReplicas", 0) >= int_at(s, "/updatedReplicas", 0)
}

fn images(c: &Cluster) -> Vec<String> {
    let mut v: Vec<String> = c
        .pods
        .iter()
        .map(|p| str_at(p, "/spec/containers/0/image").to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn a_deployment_rolls_out_scales_and_rolls_to_a_new_template() {
    let mut c = Cluster::default();
    c.add(Resource::Deployments, workload("Deployment", "web", Some(2)));
    c.converge();
    let d = c.deployments[0].clone();
    assert!(deployment_rolled_out(&d), "{d:#}");
    assert_eq!(c.replicasets.len(), 1);
    let rs = &c.replicasets[0];
    let hash = str_at(rs, "/metadata/labels/pod-template-hash").to_string();
    assert_eq!(str_at(rs, "/metadata/name"), format!("web-{hash}"));
    assert_eq!(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "1"
    );
    assert_eq!(c.pods.len(), 2);
    for p in &c.pods {
        assert_eq!(p["metadata"]["labels"]["pod-template-hash"], json!(hash));
        assert_eq!(p["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
        assert!(str_at(p, "/metadata/name").starts_with(&format!("web-{hash}-")));
    }
    let progressing = &d["status"]["conditions"][1];
    assert_eq!(progressing["reason"], "NewReplicaSetAvailable");
    assert_eq!(c.plan(), [], "a converged cluster needs no writes");

    c.edit(Resource::Deployments, "web", |d| d["spec"]["replicas"] = json!(3));
    c.converge();
    assert!(deployment_rolled_out(&c.deployments[0]));
    assert_eq!(c.pods.len(), 3);

    c.edit(Resource::Deployments, "web", |d| {
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("v2")
    });
    assert!(
        !deployment_rolled_out(&c.deployments[0]),
        "a new generation is not rolled out"
    );
    c.converge();
    assert!(deployment_rolled_out(&c.deployments[0]));
    assert_eq!(images(&c), ["v2", "v2", "v2"]);
    assert_eq!(c.replicasets.len(), 2, "the old set stays, at zero");
    let old = c
        .replicasets
        .iter()
        .find(|r| str_at(r, "/metadata/labels/pod-template-hash") == hash)
        .expect("old");
    assert_eq!(old["spec"]["replicas"], 0);
    let new = c
        .replicasets
        .iter()
        .find(|r| str_at(r, "/metadata/labels/pod-template-hash") != hash)
        .expect("new");
    assert_eq!(
        new["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
}

#[test]
fn a_deployment_waits_while_its_pods_are_not_ready() {
    let mut c = Cluster::default();
    c.add(Resource::Deployments, workload("Deployment", "web", None));
    for _ in 0..5 {
        for a in c.plan() {
            c.apply(a);
        }
    }
    let d = &c.deployments[0];
    assert_eq!(c.pods.len(), 1, "spec.replicas defaults to 1");
    assert!(!deployment_rolled_out(d), "{d:#}");
    assert_eq!(d["status"]["unavailableReplicas"], 1);
    assert_eq!(d["status"]["conditions"][0]["status"], "False");
    assert_eq!(
        d["status"]["conditions"][0]["reason"],
        "MinimumReplicasUnavailable"
    );
}

#[test]
fn a_replica_set_scales_down_unready_pods_first() {
    let mut c = Cluster::default();
    c.add(Resource::ReplicaSets, workload("ReplicaSet", "rs", Some(3)));
    c.converge();
    assert_eq!(c.pods.len(), 3);
    let unready = str_at(&c.pods[0], "/metadata/name").to_string();
    c.pods[0]["status"] = json!({"phase": "Failed"});
    c.edit(Resource::ReplicaSets, "rs", |r| r["spec"]["replicas"] = json!(2));
    let deleted: Vec<String> = c
        .plan()
        .into_iter()
        .filter_map(|a| match a {
            Action::Delete(Resource::Pods, _, name) => Some(name),
            _ => None,
        })
        .collect();
    assert_eq!(deleted, [unready]);
}

#[test]
fn a_stateful_set_starts_pods_in_order_and_updates_from_the_highest() {
    let mut c = Cluster::default();
    let mut s = workload("StatefulSet", "db", Some(3));
    s["spec"]["serviceName"] = json!("db");
    c.add(Resource::StatefulSets, s);
    let first = c.plan();
    let creates: Vec<&str> = first
        .iter()
        .filter_map(|a| match a {
            Action::Create(Resource::Pods, p) => Some(str_at(p, "/metadata/name")),
            _ => None,
        })
        .collect();
    assert_eq!(creates, ["db-0"], "OrderedReady: one at a time");
    c.converge();
    let mut names: Vec<&str> = c.pods.iter().map(|p| str_at(p, "/metadata/name")).collect();
    names.sort();
    assert_eq!(names, ["db-0", "db-1", "db-2"]);
    assert_eq!(c.pods[0]["spec"]["subdomain"], "db");
    let st = &c.statefulsets[0]["status"];
    assert_eq!(
        (st["readyReplicas"].clone(), st["currentRevision"].clone()),
        (json!(3), st["updateRevision"].clone())
    );

    c.edit(Resource::StatefulSets, "db", |s| {
        s["spec"]["template"]["spec"]["containers"][0]["image"] = json!("v2")
    });
    let deletes: Vec<String> = c
        .plan()
        .into_iter()
        .filter_map(|a| match a {
            Action::Delete(_, _, name) => Some(name),
            _ => None,
        })
        .collect();
    assert_eq!(deletes, ["db-2"]);
    c.converge();
    assert_eq!(images(&c), ["v2", "v2", "v2"]);
    let st = &c.statefulsets[0]["status"];
    assert_eq!(st["currentRevision"], st["updateRevision"]);
    assert_eq!(st["updatedReplicas"], 3);

    c.edit(Resource::StatefulSets, "db", |s| s["spec"]["replicas"] = json!(1));
    c.converge();
    let names: Vec<&str> = c.pods.iter().map(|p| str_at(p, "/metadata/name")).collect();
    assert_eq!(names, ["db-0"]);
}

#[test]
fn a_daemon_set_runs_on_every_node_it_tolerates() {
    let mut c = Cluster::default();
    c.nodes = vec![
        json!({"metadata": {"name": "cp", "labels": {}}, "spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}}),
        json!({"metadata": {"name": "gw", "labels": {"submariner.io/gateway": "true"}}, "spec": {}}),
        json!({"metadata": {"name": "worker", "labels": {}}, "spec": {}}),
    ];
    c.add(Resource::DaemonSets, workload("DaemonSet", "agent", None));
    c.converge();
    let mut on: Vec<&str> = c.pods.iter().map(|p| str_at(p, "/spec/nodeName")).collect();
    on.sort();
    assert_eq!(on, ["gw", "worker"]);
    let st = &c.daemonsets[0]["status"];
    assert_eq!(
        (
            st["desiredNumberScheduled"].clone(),
            st["numberAvailable"].clone()
        ),
        (json!(2), json!(2))
    );

    c.edit(Resource::DaemonSets, "agent", |d| {
        d["spec"]["template"]["spec"]["tolerations"] = json!([{"operator": "Exists"}]);
        d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("v2");
    });
    c.converge();
    let mut on: Vec<&str> = c.pods.iter().map(|p| str_at(p, "/spec/nodeName")).collect();
    on.sort();
    assert_eq!(on, ["cp", "gw", "worker"]);
    assert_eq!(images(&c), ["v2", "v2", "v2"]);

    c.edit(Resource::DaemonSets, "agent", |d| {
        d["spec"]["template"]["spec"]["nodeSelector"] = json!({"submariner.io/gateway": "true"})
    });
    c.converge();
    let on: Vec<&str> = c.pods.iter().map(|p| str_at(p, "/spec/nodeName")).collect();
    assert_eq!(on, ["gw"]);
    assert_eq!(c.daemonsets[0]["status"]["updatedNumberScheduled"], 1);
}

#[test]
fn the_sandboxs_own_components_are_left_alone() {
    let mut c = Cluster::default();
    let mut d = workload("Deployment", "submariner-lighthouse-agent", Some(1));
    d["metadata"]["namespace"] = json!(SANDBOX_RUN);
    c.add(Resource::Deployments, d);
    assert_eq!(c.plan(), []);
}

#[test]
fn template_hashes_are_stable_and_safe() {
    let a = template_hash(&template("web", "v1"));
    assert_eq!(a, template_hash(&template("web", "v1")));
    assert_ne!(a, template_hash(&template("web", "v2")));
    assert!(
        a.bytes().all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)),
        "{a}"
    );
}
