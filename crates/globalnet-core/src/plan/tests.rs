use super::*;
use crate::{Gateway, Pod};
use subsea_api::globalnet::LabelSelector;

fn cidr(s: &str) -> Cidr {
    Cidr::parse(s).expect("cidr")
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("ip")
}

fn key(kind: &'static str, ns: &str, name: &str) -> Key {
    Key {
        kind,
        namespace: ns.into(),
        name: name.into(),
    }
}

fn cluster_egress(n: i64, held: &[&str]) -> Egress {
    Egress {
        key: key(CLUSTER_EGRESS, "", CLUSTER_EGRESS_NAME),
        scope: Scope::Cluster,
        requested: n,
        held: held.iter().map(|s| s.to_string()).collect(),
        created: "2026-01-01T00:00:00Z".into(),
    }
}

fn pod(ns: &str, name: &str, addr: &str, labels: &[(&str, &str)]) -> Pod {
    Pod {
        namespace: ns.into(),
        name: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ip: Some(ip(addr)),
    }
}

fn world() -> World {
    World {
        global_cidr: cidr("242.0.0.0/24"),
        pod_cidrs: vec![cidr("10.244.0.0/16")],
        remote_cidrs: vec![cidr("242.0.1.0/24")],
        gateway: Some(Gateway {
            node: "gw1".into(),
            cni_ip: ip("10.244.1.1"),
            held: None,
        }),
        egress: vec![cluster_egress(8, &[])],
        ingress: vec![],
        exports: vec![],
        pods: vec![
            pod("default", "web", "10.244.1.5", &[("app", "web")]),
            pod("default", "db", "10.244.2.5", &[("app", "db")]),
            pod("shop", "cart", "10.244.2.9", &[]),
        ],
    }
}

/// Feeds a plan's writes back into the world, as the executor's API calls would.
fn apply(w: &mut World, p: &Plan) {
    if let Some((_, gip)) = &p.gateway_ip {
        if let Some(g) = w.gateway.as_mut() {
            g.held = Some(gip.to_string());
        }
    }
    w.ingress.retain(|i| !p.delete.contains(&i.key));
    for n in &p.create {
        w.ingress.push(Ingress {
            key: n.key.clone(),
            target: n.target.clone(),
            held: String::new(),
            created: "2026-01-02T00:00:00Z".into(),
        });
    }
    for e in &mut w.egress {
        if let Some(o) = p.status.get(&e.key) {
            e.held = o.ips.iter().map(ToString::to_string).collect();
        }
    }
    for i in &mut w.ingress {
        if let Some(o) = p.status.get(&i.key) {
            i.held = o.ips.first().map(ToString::to_string).unwrap_or_default();
        }
    }
}

#[test]
fn gateway_then_cluster_egress_then_services_and_a_second_pass_changes_nothing() {
    let mut w = world();
    w.exports.push(Export {
        namespace: "default".into(),
        name: "payment-service".into(),
        headless: false,
        ready_pods: vec![],
    });
    let p = plan(&w);
    assert_eq!(p.gateway_ip, Some(("gw1".into(), ip("242.0.0.1"))));
    let egress = &p.status[&key(CLUSTER_EGRESS, "", CLUSTER_EGRESS_NAME)];
    assert_eq!(egress.ips.first(), Some(&ip("242.0.0.2")));
    assert_eq!(egress.ips.len(), 8);
    assert!(egress.condition.ok, "{:?}", egress.condition);
    assert_eq!(p.create.len(), 1);
    let giip = key(INGRESS, "default", "payment-service");
    assert_eq!(p.status[&giip].ips, vec![ip("242.0.0.10")]);
    assert_eq!(
        p.services,
        vec![("default".into(), "payment-service".into(), ip("242.0.0.10"))]
    );
    // Rules: the gateway both ways, then the cluster's pods to the egress range.
    assert_eq!(p.rules.dnat, vec![(ip("242.0.0.1"), ip("10.244.1.1"))]);
    assert_eq!(
        p.rules.snat.last().expect("cluster rule").sources,
        vec![cidr("10.244.0.0/16")]
    );
    assert_eq!(p.rules.remote, vec![cidr("242.0.1.0/24")]);

    apply(&mut w, &p);
    let again = plan(&w);
    assert!(again.create.is_empty() && again.delete.is_empty());
    assert_eq!(
        again.status, p.status,
        "held addresses are kept across passes (and restarts)"
    );
    assert_eq!(again.gateway_ip, p.gateway_ip);
}

#[test]
fn namespace_and_selector_egress_take_precedence_over_the_cluster_pool() {
    let mut w = world();
    let mut sel = LabelSelector::default();
    sel.match_labels.insert("app".into(), "web".into());
    w.egress.push(Egress {
        key: key(EGRESS, "default", "web-egress"),
        scope: Scope::Namespace(Some(sel)),
        requested: 1,
        held: vec![],
        created: "2026-01-03T00:00:00Z".into(),
    });
    w.egress.push(Egress {
        key: key(EGRESS, "default", "ns-egress"),
        scope: Scope::Namespace(None),
        requested: 2,
        held: vec![],
        created: "2026-01-02T00:00:00Z".into(),
    });
    let p = plan(&w);
    let web = &p.status[&key(EGRESS, "default", "web-egress")].ips;
    let ns = &p.status[&key(EGRESS, "default", "ns-egress")].ips;
    assert_eq!(ns.len(), 2);
    let to_of = |src: &str| {
        p.rules
            .snat
            .iter()
            .find(|s| s.sources.iter().any(|c| c.contains(ip(src).into())))
            .map(|s| s.to.clone())
    };
    assert_eq!(to_of("10.244.1.5").as_ref(), Some(web), "selector first");
    assert_eq!(to_of("10.244.2.5").as_ref(), Some(ns), "then the namespace");
    let cluster = p.status[&key(CLUSTER_EGRESS, "", CLUSTER_EGRESS_NAME)]
        .ips
        .clone();
    assert_eq!(
        to_of("10.244.2.9"),
        Some(cluster),
        "other namespaces use the cluster pool"
    );
}

#[test]
fn headless_pods_get_one_address_each_both_ways_and_unexport_releases() {
    let mut w = world();
    w.exports.push(Export {
        namespace: "default".into(),
        name: "nginx".into(),
        headless: true,
        ready_pods: vec!["web".into(), "db".into()],
    });
    let p = plan(&w);
    assert_eq!(p.create.len(), 2);
    assert!(
        p.services.is_empty(),
        "headless Services get no externalIPs Service"
    );
    let web = p.status[&key(INGRESS, "default", "pod-web")].ips[0];
    let db = p.status[&key(INGRESS, "default", "pod-db")].ips[0];
    assert_ne!(web, db);
    assert!(p.rules.dnat.contains(&(web, ip("10.244.1.5"))));
    assert!(p.rules.dnat.contains(&(db, ip("10.244.2.5"))));
    assert!(
        p.rules
            .snat
            .iter()
            .any(|s| s.sources == vec![host(ip("10.244.1.5"))] && s.to == vec![web])
    );
    apply(&mut w, &p);

    w.exports.clear();
    let p = plan(&w);
    let mut deleted: Vec<String> = p.delete.iter().map(|k| k.name.clone()).collect();
    deleted.sort();
    assert_eq!(deleted, ["pod-db", "pod-web"]);
    apply(&mut w, &p);
    assert!(w.ingress.is_empty());
    // A released address goes to the next claimant (first-fit: the lower of the two).
    w.exports.push(Export {
        namespace: "default".into(),
        name: "other".into(),
        headless: false,
        ready_pods: vec![],
    });
    let p = plan(&w);
    assert_eq!(p.status[&key(INGRESS, "default", "other")].ips, vec![web.min(db)]);
}

#[test]
fn a_contested_address_stays_with_the_older_holder() {
    let mut w = world();
    w.egress = vec![cluster_egress(1, &["242.0.0.2"])];
    w.ingress.push(Ingress {
        key: key(INGRESS, "default", "svc"),
        target: Target::Service("svc".into()),
        held: "242.0.0.2".into(),
        created: "2026-02-01T00:00:00Z".into(),
    });
    w.exports.push(Export {
        namespace: "default".into(),
        name: "svc".into(),
        headless: false,
        ready_pods: vec![],
    });
    w.gateway.as_mut().expect("gw").held = Some("242.0.0.1".into());
    let p = plan(&w);
    assert_eq!(
        p.status[&key(CLUSTER_EGRESS, "", CLUSTER_EGRESS_NAME)].ips,
        vec![ip("242.0.0.2")]
    );
    assert_eq!(
        p.status[&key(INGRESS, "default", "svc")].ips,
        vec![ip("242.0.0.3")]
    );
    let all: Vec<Ipv4Addr> = p.status.values().flat_map(|o| o.ips.clone()).collect();
    let unique: BTreeSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "never one address twice");
}

#[test]
fn bad_requests_and_exhaustion_are_conditions_and_allocate_nothing() {
    let mut w = world();
    w.global_cidr = cidr("242.0.0.0/28"); // 14 usable addresses
    for (name, n) in [
        ("too-many", 21),
        ("negative", -1),
        ("zero", 0),
        ("fits", 4),
        ("last", 2),
    ] {
        w.egress.push(Egress {
            key: key(EGRESS, "default", name),
            scope: Scope::Namespace(None),
            requested: n,
            held: vec![],
            created: format!("2026-01-0{}T00:00:00Z", 2 + w.egress.len()),
        });
    }
    let p = plan(&w);
    let cond = |name: &str| p.status[&key(EGRESS, "default", name)].clone();
    assert_eq!(cond("too-many").condition.reason, "InvalidInput");
    assert!(cond("too-many").condition.message.contains("0 to 20"));
    assert_eq!(cond("negative").condition.reason, "InvalidInput");
    assert_eq!(cond("zero").condition.reason, "ZeroInput");
    // 1 gateway + 8 cluster + 4 = 13 of 14: the last request for 2 cannot be met.
    assert_eq!(cond("fits").ips.len(), 4);
    let last = cond("last");
    assert!(!last.condition.ok);
    assert_eq!(last.condition.reason, "IPPoolAllocationFailed");
    assert!(
        last.condition.message.contains("1 free"),
        "{}",
        last.condition.message
    );
    assert!(last.ips.is_empty(), "nothing half-allocated");
}

#[test]
fn a_stale_gateway_address_held_by_an_object_is_replaced_not_shared() {
    let mut w = world();
    w.egress = vec![cluster_egress(1, &["242.0.0.1"])];
    w.gateway.as_mut().expect("gw").held = Some("242.0.0.1".into());
    let p = plan(&w);
    assert_eq!(
        p.status[&key(CLUSTER_EGRESS, "", CLUSTER_EGRESS_NAME)].ips,
        vec![ip("242.0.0.1")]
    );
    assert_eq!(p.gateway_ip, Some(("gw1".into(), ip("242.0.0.2"))));
}

#[test]
fn a_missing_cluster_egress_object_is_created() {
    let mut w = world();
    w.egress.clear();
    assert!(plan(&w).create_cluster_egress);
    assert!(!plan(&world()).create_cluster_egress);
}
