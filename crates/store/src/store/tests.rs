use super::*;
use crate::registry::Registry;
use crate::registry::ResourceInfo;

fn reg() -> Registry {
    let mut r = Registry::with_built_ins();
    r.set_crd(&json!({"metadata": {"name": "widgets.example.com"}, "spec": {
        "group": "example.com", "scope": "Namespaced",
        "names": {"plural": "widgets", "kind": "Widget"},
        "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}}]}}));
    r
}

fn info<'a>(r: &'a Registry, g: &str, p: &str) -> &'a ResourceInfo {
    r.all()
        .iter()
        .find(|i| i.group == g && i.plural == p)
        .expect("type")
}

fn store_with_default_ns(r: &Registry) -> Store {
    let mut s = Store::new();
    s.create(
        info(r, "", "namespaces"),
        "",
        json!({"metadata": {"name": "default"}}),
        0,
        false,
    )
    .expect("ns");
    s
}

#[test]
fn create_sets_server_metadata_and_rejects_duplicates() {
    let r = reg();
    let mut s = store_with_default_ns(&r);
    let cm = info(&r, "", "configmaps");
    let (obj, evs) = s
        .create(
            cm,
            "default",
            json!({"metadata": {"name": "a"}, "data": {"k": "v"}}),
            100,
            false,
        )
        .expect("create");
    assert_eq!(evs.len(), 1);
    assert_eq!(obj["metadata"]["resourceVersion"], "2");
    assert_eq!(obj["metadata"]["namespace"], "default");
    assert_eq!(obj["metadata"]["creationTimestamp"], "1970-01-01T00:01:40Z");
    assert!(obj["metadata"]["uid"].as_str().is_some_and(|u| u.len() == 36));
    let err = s
        .create(cm, "default", json!({"metadata": {"name": "a"}}), 0, false)
        .expect_err("dup");
    assert_eq!((err.code, err.reason), (409, "AlreadyExists"));
    assert_eq!(err.message, "configmaps \"a\" already exists");
}

#[test]
fn create_in_missing_or_terminating_namespace_fails() {
    let r = reg();
    let mut s = store_with_default_ns(&r);
    let cm = info(&r, "", "configmaps");
    let err = s
        .create(cm, "nope", json!({"metadata": {"name": "a"}}), 0, false)
        .expect_err("missing ns");
    assert_eq!(
        (err.code, err.message.as_str()),
        (404, "namespaces \"nope\" not found")
    );
    let ns = info(&r, "", "namespaces");
    s.create(ns, "", json!({"metadata": {"name": "t"}}), 0, false)
        .expect("ns");
    s.create(
        cm,
        "t",
        json!({"metadata": {"name": "keep", "finalizers": ["x"]}}),
        0,
        false,
    )
    .expect("cm");
    s.delete(ns, "", "t", &Preconditions::default(), 0, false)
        .expect("delete ns");
    let err = s
        .create(cm, "t", json!({"metadata": {"name": "b"}}), 0, false)
        .expect_err("terminating");
    assert_eq!(err.code, 403);
    // The finalizer holds the ConfigMap, so the namespace stays until it is released.
    let infos: Vec<&ResourceInfo> = r.all().iter().collect();
    s.finalize_namespaces(&infos, 0);
    assert!(s.get("/namespaces", "", "t").is_some());
    s.update(
        cm,
        "t",
        "keep",
        json!({"metadata": {"name": "keep", "finalizers": []}}),
        Part::Main,
        false,
    )
    .expect("release");
    s.finalize_namespaces(&infos, 0);
    assert!(s.get("/namespaces", "", "t").is_none());
}

#[test]
fn invalid_names_are_422_with_causes() {
    let r = reg();
    let mut s = store_with_default_ns(&r);
    let err = s
        .create(
            info(&r, "", "configmaps"),
            "default",
            json!({"metadata": {"name": "Bad_Name"}}),
            0,
            false,
        )
        .expect_err("bad");
    assert_eq!((err.code, err.reason), (422, "Invalid"));
    assert_eq!(err.causes[0].field, "metadata.name");
    assert!(
        err.message
            .starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\"")
    );
    let err = s
        .create(
            info(&r, "", "configmaps"),
            "default",
            json!({"metadata": {}}),
            0,
            false,
        )
        .expect_err("no name");
    assert_eq!(err.code, 422);
}

#[test]
fn generate_name_picks_a_fresh_name() {
    let r = reg();
    let mut s = store_with_default_ns(&r);
    let (obj, _) = s
        .create(
            info(&r, "", "configmaps"),
            "default",
            json!({"metadata": {"generateName": "x-"}}),
            0,
            false,
        )
        .expect("create");
    assert!(
        obj["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("x-") && n.len() == 7)
    );
}

#[test]
fn stale_resource_version_conflicts_and_crs_need_one() {
    let r = reg();
    let mut s = store_with_default_ns(&r);
    let w = info(&r, "example.com", "widgets");
    let (obj, _) = s.create(w, "default", json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"a": 1}}), 0, false).expect("create");
    let mut stale = (*obj).clone();
    stale["spec"]["a"] = json!(2);
    s.update(w, "default", "w", stale.clone(), Part::Main, false)
        .expect("first update");
    let err = s
        .update(w, "default", "w", stale.clone(), Part::Main, false)
        .expect_err("stale");
    assert_eq!((err.code, err.reason), (409, "Conflict"));
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on widgets.example.com \"w\": the object has been modified; please apply your changes to the latest version and try again"
    );
    remove_meta(&mut stale, "resourceVersion");
    let err = s
        .update(w, "default", "w", stale, Part::Main, false)
        .expect_err("no rv");
    assert_eq!(err.code, 422);
    assert!(err.message.contains("must be specified for an update"));
}

#[test]
fn generation_follows_spec_and_status_is_isolated() {
    let r = reg();
    let mut s = store_with_default_ns(&r);
    let w = info(&r, "example.com", "widgets");
    let (obj, _) = s
        .create(
            w,
            "default",
            json!({"metadata": {"name": "w"}, "spec": {"a": 1}, "status": {"x": 1}}),
            0,
            false,
        )
        .expect("create");
    assert_eq!(obj["metadata"]["generation"], 1);
    assert!(
        obj.get("status").is_none(),
        "status is dropped on create with a status subresource"
    );
    let mut st = (*obj).clone();
    st["status"] = json!({"ready": true});
    st["spec"] = json!({"a": 99});
    let (after, _) = s
        .update(w, "default", "w", st, Part::Status, false)
        .expect("status");
    assert_eq!(after["status"]["ready"], true);
    assert_eq!(after["spec"]["a"], 1, "status writes ignore spec");
    assert_eq!(after["metadata"]["generation"], 1);
    let mut main = (*after).clone();
    main["spec"] = json!({"a": 2});
    main["status"] = json!({"ready": false});
    let (after, _) = s
        .update(w, "default", "w", main, Part::Main, false)
        .expect("main");
    assert_eq!(after["metadata"]["generation"], 2);
    assert_eq!(after["status"]["ready"], true, "main writes keep status");
    // A no-op update takes no new resourceVersion.
    let rv = s.rev();
    let (same, evs) = s
        .update(w, "default", "w", (*after).clone(), Part::Main, false)
        .expect("noop");
    assert!(evs.is_empty());
    assert_eq!(s.rev(), rv);
    assert_eq!(same, after);
}

#[test]
fn finalizers_hold_deletion_until_removed() {
    let r = reg();
    let mut s = store_with_default_ns(&r);
    let cm = info(&r, "", "configmaps");
    s.create(
        cm,
        "default",
        json!({"metadata": {"name": "f", "finalizers": ["a"]}}),
        0,
        false,
    )
    .expect("create");
    let (d, evs) = s
        .delete(cm, "default", "f", &Preconditions::default(), 5, false)
        .expect("delete");
    assert!(matches!(d, Deleted::Pending(_)));
    assert_eq!(evs[0].kind, EventType::Modified);
    let cur = s.get("/configmaps", "default", "f").expect("still there");
    assert_eq!(cur["metadata"]["deletionTimestamp"], "1970-01-01T00:00:05Z");
    let mut add = (*cur).clone();
    add["metadata"]["finalizers"] = json!(["a", "b"]);
    let err = s
        .update(cm, "default", "f", add, Part::Main, false)
        .expect_err("no new finalizers");
    assert!(err.message.contains("no new finalizers can be added"));
    let mut rm = (*cur).clone();
    rm["metadata"]["finalizers"] = json!([]);
    let (_, evs) = s
        .update(cm, "default", "f", rm, Part::Main, false)
        .expect("release");
    assert_eq!(evs[0].kind, EventType::Deleted);
    assert!(s.get("/configmaps", "default", "f").is_none());
}

#[test]
fn delete_preconditions_and_dry_run() {
    let r = reg();
    let mut s = store_with_default_ns(&r);
    let cm = info(&r, "", "configmaps");
    s.create(cm, "default", json!({"metadata": {"name": "p"}}), 0, false)
        .expect("create");
    let rev = s.rev();
    let (_, evs) = s
        .create(cm, "default", json!({"metadata": {"name": "dry"}}), 0, true)
        .expect("dry");
    assert!(evs.is_empty() && s.get("/configmaps", "default", "dry").is_none() && s.rev() == rev);
    let pre = Preconditions {
        uid: Some("nope".into()),
        resource_version: None,
    };
    let err = s
        .delete(cm, "default", "p", &pre, 0, false)
        .expect_err("uid mismatch");
    assert_eq!(err.code, 409);
    let (d, evs) = s
        .delete(cm, "default", "p", &Preconditions::default(), 0, false)
        .expect("delete");
    assert!(matches!(d, Deleted::Gone(_)));
    assert_eq!(evs[0].rev, rev + 1);
    assert_eq!(
        evs[0].object["metadata"]["resourceVersion"],
        (rev + 1).to_string()
    );
}

#[test]
fn list_filters_by_labels_and_fields() {
    let r = reg();
    let mut s = store_with_default_ns(&r);
    let cm = info(&r, "", "configmaps");
    for i in 0..5 {
        let labels = if i % 2 == 0 {
            json!({"even": "yes"})
        } else {
            json!({})
        };
        s.create(
            cm,
            "default",
            json!({"metadata": {"name": format!("c{i}"), "labels": labels}}),
            0,
            false,
        )
        .expect("create");
    }
    let opts = ListOptions {
        labels: LabelSelector::parse("even=yes").expect("sel"),
        ..Default::default()
    };
    assert_eq!(s.list("/configmaps", &opts).len(), 3);
    let opts = ListOptions {
        fields: FieldSelector::parse("metadata.name=c1", &["metadata.name"]).expect("sel"),
        ..Default::default()
    };
    let names: Vec<String> = s
        .list("/configmaps", &opts)
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(names, vec!["c1"]);
    let other_ns = ListOptions {
        namespace: Some("nope".into()),
        ..Default::default()
    };
    assert!(s.list("/configmaps", &other_ns).is_empty());
}

#[test]
fn replaying_events_rebuilds_the_store() {
    let r = reg();
    let mut s = Store::new();
    let mut log = Vec::new();
    let ns = info(&r, "", "namespaces");
    let cm = info(&r, "", "configmaps");
    log.extend(
        s.create(ns, "", json!({"metadata": {"name": "default"}}), 0, false)
            .expect("ns")
            .1,
    );
    log.extend(
        s.create(cm, "default", json!({"metadata": {"name": "a"}}), 0, false)
            .expect("a")
            .1,
    );
    log.extend(
        s.create(cm, "default", json!({"metadata": {"name": "b"}}), 0, false)
            .expect("b")
            .1,
    );
    log.extend(
        s.delete(cm, "default", "a", &Preconditions::default(), 0, false)
            .expect("del")
            .1,
    );
    let mut t = Store::new();
    log.iter().for_each(|e| t.replay(e));
    assert_eq!(t.rev(), s.rev());
    assert!(t.get("/configmaps", "default", "a").is_none());
    assert_eq!(
        t.get("/configmaps", "default", "b"),
        s.get("/configmaps", "default", "b")
    );
}

#[test]
fn garbage_collector_follows_owner_references() {
    let r = reg();
    let mut s = store_with_default_ns(&r);
    let cm = info(&r, "", "configmaps");
    let (owner, _) = s
        .create(cm, "default", json!({"metadata": {"name": "owner"}}), 0, false)
        .expect("owner");
    let uid = owner["metadata"]["uid"].as_str().expect("uid").to_string();
    let child = |name: &str| json!({"metadata": {"name": name, "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}});
    s.create(cm, "default", child("child"), 0, false).expect("child");
    s.create(cm, "default", json!({"metadata": {"name": "two-owners", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid},
        {"apiVersion": "v1", "kind": "Namespace", "name": "default", "uid": s.get("/namespaces", "", "default").expect("ns")["metadata"]["uid"]}]}}), 0, false).expect("two");
    let infos: Vec<&ResourceInfo> = r.all().iter().collect();
    assert!(
        s.collect_garbage(&infos, 0).is_empty(),
        "owners alive: nothing collected"
    );
    s.delete(cm, "default", "owner", &Preconditions::default(), 0, false)
        .expect("delete owner");
    let evs = s.collect_garbage(&infos, 0);
    assert_eq!(evs.len(), 1);
    assert!(s.get("/configmaps", "default", "child").is_none());
    assert!(
        s.get("/configmaps", "default", "two-owners").is_some(),
        "another owner is alive"
    );

    let (o2, _) = s
        .create(cm, "default", json!({"metadata": {"name": "owner2"}}), 0, false)
        .expect("owner2");
    let uid2 = o2["metadata"]["uid"].as_str().expect("uid").to_string();
    s.create(cm, "default", json!({"metadata": {"name": "kept", "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner2", "uid": uid2}]}}), 0, false).expect("kept");
    s.delete(cm, "default", "owner2", &Preconditions::default(), 0, false)
        .expect("delete");
    s.orphan_dependents(&uid2);
    s.collect_garbage(&infos, 0);
    assert!(
        s.get("/configmaps", "default", "kept").is_some(),
        "orphaned, not collected"
    );
}

#[test]
fn rollback_takes_back_a_tentative_write_and_the_revision() {
    let r = reg();
    let mut s = store_with_default_ns(&r);
    let cm = info(&r, "", "configmaps");
    s.create(cm, "default", json!({"metadata": {"name": "kept"}}), 0, false)
        .expect("create");
    let before = s.rev();
    s.begin();
    s.create(cm, "default", json!({"metadata": {"name": "new"}}), 0, false)
        .expect("create");
    let mut kept = (*s.get("/configmaps", "default", "kept").expect("kept")).clone();
    kept["data"] = json!({"k": "v"});
    s.update(cm, "default", "kept", kept, Part::Main, false)
        .expect("update");
    s.delete(cm, "default", "kept", &Preconditions::default(), 0, false)
        .expect("delete");
    assert!(s.get("/configmaps", "default", "kept").is_none());
    s.rollback();
    assert_eq!(s.rev(), before);
    assert!(s.get("/configmaps", "default", "new").is_none());
    let kept = s.get("/configmaps", "default", "kept").expect("restored");
    assert!(kept.get("data").is_none());
    // Nothing to take back outside a tentative change.
    s.rollback();
    assert!(s.get("/configmaps", "default", "kept").is_some());
}
