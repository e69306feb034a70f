//! The sync decision as a pure function over plain JSON objects.

use serde_json::{Map, Value, json};

/// Label naming the cluster an object comes from.
pub const CLUSTER_ID_LABEL: &str = "submariner-io/clusterID";
/// Label naming the namespace an object was synced from (all-namespace sources).
pub const ORIGINATING_NAMESPACE_LABEL: &str = "submariner-io/originatingNamespace";

/// Which way objects flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Local objects are published to the broker, labelled with our cluster ID.
    LocalToBroker,
    /// Other clusters' objects are copied from the broker into the local cluster.
    BrokerToLocal,
}

/// One syncer's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Our cluster ID.
    pub cluster_id: String,
    /// Direction.
    pub direction: Direction,
    /// Namespace watched on the source side; `None` for all namespaces.
    pub source_namespace: Option<String>,
    /// Namespace written on the target side.
    pub target_namespace: String,
}

/// A change to make on the target side.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create this object.
    Create(Value),
    /// Replace the existing object's content with this one.
    Update(Value),
    /// Delete this object (name).
    Delete(String),
}

fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
}

fn name(obj: &Value) -> &str {
    obj.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Loop prevention: which source objects this syncer publishes.
pub fn should_sync(cfg: &Config, obj: &Value) -> bool {
    if obj.pointer("/metadata/deletionTimestamp").is_some() {
        return false;
    }
    match cfg.direction {
        // Objects labelled with another cluster are copies of remote data: never re-publish
        // them. Our own label (or none) marks local data.
        Direction::LocalToBroker => label(obj, CLUSTER_ID_LABEL).is_none_or(|c| c == cfg.cluster_id),
        // Only other clusters' objects come back down.
        Direction::BrokerToLocal => label(obj, CLUSTER_ID_LABEL).is_some_and(|c| c != cfg.cluster_id),
    }
}

/// Target objects this syncer owns (and may delete as orphans).
pub fn owns(cfg: &Config, target: &Value) -> bool {
    match cfg.direction {
        Direction::LocalToBroker => label(target, CLUSTER_ID_LABEL) == Some(cfg.cluster_id.as_str()),
        Direction::BrokerToLocal => label(target, CLUSTER_ID_LABEL).is_some_and(|c| c != cfg.cluster_id),
    }
}

/// An object with metadata stripped to name, generateName, labels and annotations, the
/// namespace set to `ns`, and no status: the part of an object the syncer compares and copies.
fn stripped(obj: &Value, ns: &str) -> Value {
    let mut out = obj.clone();
    if let Some(o) = out.as_object_mut() {
        o.remove("status");
        let meta = obj
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut m = Map::new();
        for k in ["name", "generateName", "labels", "annotations"] {
            if let Some(v) = meta.get(k) {
                m.insert(k.to_string(), v.clone());
            }
        }
        m.insert("namespace".into(), json!(ns));
        o.insert("metadata".into(), Value::Object(m));
    }
    out
}

/// The target copy of a source object: stripped, namespace mapped, cluster labels added.
pub fn desired(cfg: &Config, src: &Value) -> Value {
    let mut out = stripped(src, &cfg.target_namespace);
    if cfg.direction == Direction::LocalToBroker && out.get("metadata").is_some() {
        let labels = &mut out["metadata"]["labels"];
        if !labels.is_object() {
            *labels = json!({});
        }
        labels[CLUSTER_ID_LABEL] = json!(cfg.cluster_id);
        if cfg.source_namespace.is_none() {
            if let Some(ns) = src.pointer("/metadata/namespace") {
                labels[ORIGINATING_NAMESPACE_LABEL] = ns.clone();
            }
        }
    }
    out
}

/// Everything to do so the target side matches the source side: creates and updates for
/// published objects, deletions for owned targets whose source is gone.
pub fn reconcile(cfg: &Config, sources: &[Value], targets: &[Value]) -> Vec<Action> {
    let wanted: Vec<Value> = sources
        .iter()
        .filter(|s| should_sync(cfg, s))
        .map(|s| desired(cfg, s))
        .collect();
    let mut actions = Vec::new();
    for want in &wanted {
        match targets.iter().find(|t| name(t) == name(want)) {
            None => actions.push(Action::Create(want.clone())),
            Some(t) if stripped(t, &cfg.target_namespace) != *want => {
                actions.push(Action::Update(want.clone()))
            }
            Some(_) => {}
        }
    }
    for t in targets.iter().filter(|t| owns(cfg, t)) {
        if !wanted.iter().any(|w| name(w) == name(t)) {
            actions.push(Action::Delete(name(t).to_string()));
        }
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(direction: Direction) -> Config {
        Config {
            cluster_id: "c1".into(),
            direction,
            source_namespace: Some("submariner-operator".into()),
            target_namespace: match direction {
                Direction::LocalToBroker => "broker".into(),
                Direction::BrokerToLocal => "submariner-operator".into(),
            },
        }
    }

    fn ep(name: &str, ns: &str, owner: Option<&str>, spec: Value) -> Value {
        let mut o = json!({"apiVersion": "submariner.io/v1", "kind": "Endpoint",
            "metadata": {"name": name, "namespace": ns, "uid": "u", "resourceVersion": "7", "creationTimestamp": "t",
                "managedFields": [], "labels": {}},
            "spec": spec, "status": {"x": 1}});
        if let Some(c) = owner {
            o["metadata"]["labels"][CLUSTER_ID_LABEL] = json!(c);
        }
        o
    }

    #[test]
    fn local_objects_are_published_labelled_and_stripped() {
        let c = cfg(Direction::LocalToBroker);
        let actions = reconcile(&c, &[ep("a", "submariner-operator", None, json!({"k": 1}))], &[]);
        let Action::Create(obj) = &actions[0] else {
            panic!("expected a create, got {actions:?}")
        };
        assert_eq!(
            obj["metadata"],
            json!({"name": "a", "namespace": "broker", "labels": {CLUSTER_ID_LABEL: "c1"}})
        );
        assert!(obj.get("status").is_none());
        assert_eq!(obj["spec"], json!({"k": 1}));
    }

    #[test]
    fn loops_are_prevented_both_ways() {
        let up = cfg(Direction::LocalToBroker);
        assert!(
            !should_sync(&up, &ep("remote", "submariner-operator", Some("c2"), json!({}))),
            "remote copies are not re-published"
        );
        assert!(
            should_sync(&up, &ep("own", "submariner-operator", Some("c1"), json!({}))),
            "objects labelled with our own cluster are local data"
        );
        let down = cfg(Direction::BrokerToLocal);
        assert!(
            !should_sync(&down, &ep("mine", "broker", Some("c1"), json!({}))),
            "our own objects do not come back"
        );
        assert!(!should_sync(&down, &ep("unlabelled", "broker", None, json!({}))));
        assert!(should_sync(&down, &ep("theirs", "broker", Some("c2"), json!({}))));
    }

    #[test]
    fn unchanged_objects_need_nothing_and_status_changes_are_ignored() {
        let c = cfg(Direction::LocalToBroker);
        let src = ep("a", "submariner-operator", None, json!({"k": 1}));
        let mut target = desired(&c, &src);
        target["metadata"]["uid"] = json!("other");
        target["metadata"]["resourceVersion"] = json!("99");
        target["status"] = json!({"y": 2});
        assert!(reconcile(&c, &[src.clone()], &[target.clone()]).is_empty());
        let mut changed = src;
        changed["spec"]["k"] = json!(2);
        assert!(matches!(
            reconcile(&c, &[changed], &[target])[0],
            Action::Update(_)
        ));
    }

    #[test]
    fn orphans_are_deleted_only_where_owned() {
        let up = cfg(Direction::LocalToBroker);
        let targets = [
            ep("gone", "broker", Some("c1"), json!({})),
            ep("other-cluster", "broker", Some("c2"), json!({})),
        ];
        assert_eq!(reconcile(&up, &[], &targets), vec![Action::Delete("gone".into())]);
        let down = cfg(Direction::BrokerToLocal);
        let local = [
            ep("stale-copy", "submariner-operator", Some("c2"), json!({})),
            ep("local-own", "submariner-operator", None, json!({})),
        ];
        assert_eq!(
            reconcile(&down, &[], &local),
            vec![Action::Delete("stale-copy".into())]
        );
    }

    #[test]
    fn all_namespace_sources_record_their_namespace() {
        let mut c = cfg(Direction::LocalToBroker);
        c.source_namespace = None;
        let out = desired(&c, &ep("s", "default", None, json!({})));
        assert_eq!(out["metadata"]["labels"][ORIGINATING_NAMESPACE_LABEL], "default");
    }
}
