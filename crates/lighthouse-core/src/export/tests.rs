use super::*;
use serde_json::json;

fn typed<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("a valid object")
}

/// The object as the API would hold it, for assertions by JSON path.
fn v<T: serde::Serialize>(x: &T) -> Value {
    serde_json::to_value(x).expect("serializes")
}

fn svc_json(kind: &str, ip: &str) -> Value {
    json!({"metadata": {"name": "web", "namespace": "shop"},
        "spec": {"type": kind, "clusterIP": ip, "clusterIPs": [ip],
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}})
}

fn svc(kind: &str, ip: &str) -> Service {
    typed(svc_json(kind, ip))
}

fn k8s_slice(ready: bool) -> EndpointSlice {
    typed(json!({"metadata": {}, "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.129.4.11"], "conditions": {"ready": ready}, "targetRef": {"kind": "Pod", "name": "web-0"}}],
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}))
}

fn import_with(mut si: ServiceImport, ports: Value) -> ServiceImport {
    si.spec.ports = typed(ports);
    si
}

#[test]
fn missing_and_externalname_services_are_invalid_with_the_mcs_reasons() {
    assert_eq!(validate(None).unwrap_err().0, "ServiceUnavailable");
    let e = validate(Some(&svc("ExternalName", ""))).unwrap_err();
    assert_eq!(
        e,
        (
            "InvalidServiceType",
            "Service of type ExternalName not supported".to_string()
        )
    );
    assert!(validate(Some(&svc("ClusterIP", "100.65.0.5"))).is_ok());
    assert!(validate(Some(&svc("LoadBalancer", "100.65.0.6"))).is_ok());
    assert!(validate(Some(&svc("NodePort", "100.65.0.7"))).is_ok());
    assert_eq!(
        validate(Some(&svc("Bogus", "100.65.0.8"))).unwrap_err().0,
        "UnsupportedServiceType"
    );
}

#[test]
fn a_clusterset_ip_export_publishes_its_cluster_ip_as_one_endpoint() {
    let s = svc("ClusterIP", "100.65.0.5");
    let si = v(&cluster_import("c1", "broker", &s, "2026-01-01T00:00:00Z"));
    assert_eq!(si["metadata"]["name"], "web-shop-c1");
    assert_eq!(si["metadata"]["labels"][CLUSTER_ID], "c1");
    assert_eq!(si["spec"]["type"], "ClusterSetIP");
    assert_eq!(si["spec"]["ips"], json!(["100.65.0.5"]));
    let not_ready = k8s_slice(false);
    let sl = v(&cluster_slice("c1", "broker", &s, &[&not_ready]));
    assert_eq!(sl["addressType"], "IPv4");
    assert_eq!(
        sl["endpoints"],
        json!([{"addresses": ["100.65.0.5"], "conditions": {"ready": false}}])
    );
    assert_eq!(sl["metadata"]["labels"][MANAGED_BY], MANAGER);
    let ready = k8s_slice(true);
    assert_eq!(
        v(&cluster_slice("c1", "broker", &s, &[&ready]))["endpoints"][0]["conditions"]["ready"],
        true
    );
}

fn cluster_slice(cluster: &str, ns: &str, svc: &Service, k8s: &[&EndpointSlice]) -> EndpointSlice {
    let mut all = cluster_slices(cluster, ns, svc, k8s);
    assert_eq!(all.len(), 1, "one family: {all:?}");
    all.remove(0)
}

#[test]
fn a_dual_stack_export_publishes_one_slice_per_family() {
    let mut s = svc_json("ClusterIP", "100.65.0.5");
    s["spec"]["clusterIPs"] = json!(["100.65.0.5", "fd00:65::5"]);
    let all = cluster_slices("c1", "broker", &typed(s), &[&k8s_slice(true)]);
    let local6 = v(&local_slice(&all[1]));
    let all: Vec<Value> = all.iter().map(v).collect();
    assert_eq!(all.len(), 2);
    assert_eq!(
        (all[0]["addressType"].as_str(), all[1]["addressType"].as_str()),
        (Some("IPv4"), Some("IPv6"))
    );
    assert_eq!(all[0]["metadata"]["name"], "web-shop-c1");
    assert_eq!(all[1]["metadata"]["name"], "web-shop-c1-ipv6");
    assert_eq!(all[0]["endpoints"][0]["addresses"], json!(["100.65.0.5"]));
    assert_eq!(all[1]["endpoints"][0]["addresses"], json!(["fd00:65::5"]));
    assert_eq!(local6["metadata"]["name"], "web-c1-ipv6");
    let only = cluster_slices("c1", "broker", &svc("ClusterIP", "fd00:65::5"), &[]);
    assert_eq!(only.len(), 1);
    assert_eq!(only[0].address_type, "IPv6");
}

#[test]
fn a_headless_export_publishes_its_backends_with_hostnames() {
    let s = svc("ClusterIP", "None");
    let sl = v(&cluster_slice("c1", "broker", &s, &[&k8s_slice(true)]));
    assert_eq!(sl["metadata"]["labels"][IS_HEADLESS], "true");
    assert_eq!(sl["endpoints"][0]["hostname"], "web-0");
    assert_eq!(sl["endpoints"][0]["addresses"], json!(["10.129.4.11"]));
    assert_eq!(cluster_import("c1", "b", &s, "t").spec.type_, "Headless");
}

#[test]
fn the_aggregate_takes_the_oldest_type_and_the_union_of_ports_by_name() {
    let old = import_with(
        cluster_import("c2", "b", &svc("ClusterIP", "100.66.0.5"), "2026-01-01T00:00:00Z"),
        json!([{"name": "http", "port": 80, "protocol": "TCP"}]),
    );
    let new = import_with(
        cluster_import("c1", "b", &svc("ClusterIP", "100.65.0.5"), "2026-01-02T00:00:00Z"),
        json!([{"name": "http", "port": 8080, "protocol": "TCP"}, {"name": "grpc", "port": 9000, "protocol": "TCP"}]),
    );
    let agg = v(&aggregate("shop", "web", &[&new, &old]).expect("aggregate"));
    assert_eq!(agg["metadata"]["name"], "web");
    assert_eq!(agg["metadata"]["namespace"], "shop");
    assert_eq!(
        agg["status"]["clusters"],
        json!([{"cluster": "c2"}, {"cluster": "c1"}])
    );
    assert_eq!(
        agg["spec"]["ports"],
        json!([{"name": "http", "port": 80, "protocol": "TCP"}, {"name": "grpc", "port": 9000, "protocol": "TCP"}])
    );
    assert!(aggregate("other", "web", &[&new]).is_none());
    // A later export of another type conflicts and is blocked; the first exporter hears of it
    // and stays published.
    let headless = cluster_import("c1", "b", &svc("ClusterIP", "None"), "2026-01-03T00:00:00Z");
    assert_eq!(
        conflict("c1", &headless, &[&old, &new]).map(|c| (c.reason, c.blocking)),
        Some(("ConflictingType".to_string(), true))
    );
    let first = conflict("c2", &old, &[&old, &headless]).expect("the first hears of it");
    assert_eq!(
        (first.reason.as_str(), first.blocking),
        ("ConflictingType", false)
    );
    assert_eq!(
        conflict("c2", &old, &[&old, &new]).map(|c| (c.reason, c.blocking)),
        Some(("ConflictingPorts".to_string(), false)),
        "ports differ"
    );
}

#[test]
fn conditions_keep_their_transition_time_while_unchanged() {
    let first = conditions(&[], &Ok(()), false, None, "t1");
    assert_eq!(first[1].reason.as_deref(), Some("AwaitingExport"));
    let second = conditions(&first, &Ok(()), true, None, "t2");
    assert_eq!(
        second[0].last_transition_time.as_deref(),
        Some("t1"),
        "Valid stayed True"
    );
    assert_eq!(second[1].status, "True");
    assert_eq!(
        second[1].last_transition_time.as_deref(),
        Some("t2"),
        "Ready changed"
    );
    assert!(!same_conditions(&first, &second));
    let third = conditions(&second, &Ok(()), true, None, "t3");
    assert!(same_conditions(&second, &third));
}

#[test]
fn local_slice_copies_land_in_the_service_namespace() {
    let s = svc("ClusterIP", "100.65.0.5");
    let local = v(&local_slice(&cluster_slice("c1", "broker", &s, &[])));
    assert_eq!(local["metadata"]["name"], "web-c1");
    assert_eq!(local["metadata"]["namespace"], "shop");
    assert_eq!(local["metadata"]["labels"][SOURCE_CLUSTER], "c1");
}

#[test]
fn covers_means_a_write_would_change_nothing() {
    let existing = json!({"metadata": {"name": "a", "uid": "u", "labels": {"x": "1", "y": "2"}}, "endpoints": [{"addresses": ["1.2.3.4"]}]});
    assert!(covers(
        &existing,
        &json!({"metadata": {"name": "a", "labels": {"x": "1"}}})
    ));
    assert!(!covers(&existing, &json!({"metadata": {"labels": {"x": "2"}}})));
    assert!(!covers(
        &existing,
        &json!({"endpoints": [{"addresses": ["1.2.3.5"]}]})
    ));
    assert!(!covers(&existing, &json!({"status": {}})));
}

#[test]
fn port_and_session_affinity_differences_conflict_without_blocking() {
    let mut first = svc_json("ClusterIP", "100.66.0.5");
    first["spec"]["sessionAffinity"] = json!("ClientIP");
    let first: Service = typed(first);
    let old = cluster_import("c2", "b", &first, "2026-01-01T00:00:00Z");
    let same = cluster_import("c1", "b", &first, "2026-01-02T00:00:00Z");
    assert_eq!(
        conflict("c1", &same, &[&old, &same]),
        None,
        "identical exports agree"
    );
    let mut other = svc_json("ClusterIP", "100.65.0.5");
    other["spec"]["ports"] = json!([{"name": "http", "port": 8080, "protocol": "TCP"}]);
    let new = cluster_import("c1", "b", &typed(other), "2026-01-02T00:00:00Z");
    let c = conflict("c1", &new, &[&old]).expect("conflicts");
    assert_eq!(c.reason, "ConflictingPorts,ConflictingSessionAffinity");
    assert!(!c.blocking);
    assert!(
        c.message.contains("union") && c.message.contains("\"c2\""),
        "{}",
        c.message
    );
    // The oldest exporter is told too (the MCS API puts a Conflict on each export), with the
    // later cluster named and its own values kept.
    let theirs = conflict("c2", &old, &[&old, &new]).expect("the oldest hears of it");
    assert_eq!(theirs.reason, "ConflictingPorts,ConflictingSessionAffinity");
    assert!(!theirs.blocking);
    assert!(
        theirs.message.contains("[\"c1\"]") && theirs.message.contains("exported first"),
        "{}",
        theirs.message
    );
    let elsewhere = cluster_import("c3", "b", &svc("ClusterIP", "None"), "2026-01-01T00:00:00Z");
    let mut moved = elsewhere.clone();
    if let Some(l) = moved.metadata.labels.as_mut() {
        l.insert(SOURCE_NAMESPACE.into(), "other".into());
    }
    assert_eq!(
        conflict("c1", &same, &[&old, &moved]),
        None,
        "another namespace's service is not this one"
    );
    let conds = conditions(&[], &Ok(()), true, Some(&c), "t");
    assert_eq!(conds[1].status, "True", "a non-blocking conflict stays exported");
    assert_eq!(
        conds[2].reason.as_deref(),
        Some("ConflictingPorts,ConflictingSessionAffinity")
    );
}

#[test]
fn publish_not_ready_addresses_travel_with_the_export() {
    let mut s = svc_json("ClusterIP", "100.65.0.5");
    s["spec"]["publishNotReadyAddresses"] = json!(true);
    let s: Service = typed(s);
    assert_eq!(
        v(&cluster_import("c1", "b", &s, "t"))["metadata"]["annotations"][PUBLISH_NOT_READY],
        "true"
    );
    let not_ready = k8s_slice(false);
    let sl = cluster_slice("c1", "b", &s, &[&not_ready]);
    assert_eq!(
        v(&sl)["endpoints"][0]["conditions"]["ready"],
        true,
        "published although not ready"
    );
    assert_eq!(
        v(&local_slice(&sl))["metadata"]["annotations"][PUBLISH_NOT_READY],
        "true"
    );
    let plain = v(&cluster_slice(
        "c1",
        "b",
        &svc("ClusterIP", "100.65.0.5"),
        &[&not_ready],
    ));
    assert_eq!(plain["metadata"]["annotations"][PUBLISH_NOT_READY], "false");
}
