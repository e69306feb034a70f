use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn snap(local: &str) -> Snapshot {
    let mut s = Snapshot {
        local: local.into(),
        ..Default::default()
    };
    s.services.insert(
        ("shop".into(), "web".into()),
        std::sync::Arc::new(Service {
            clusters: vec![
                ClusterAddrs {
                    cluster: "c1".into(),
                    ips: vec![ip("100.65.0.5"), ip("fd00:65::5")],
                    ready: true,
                },
                ClusterAddrs {
                    cluster: "c2".into(),
                    ips: vec![ip("100.66.0.5")],
                    ready: true,
                },
                ClusterAddrs {
                    cluster: "c3".into(),
                    ips: vec![ip("100.67.0.5")],
                    ready: false,
                },
            ],
            ports: vec![Port {
                name: "http".into(),
                protocol: "tcp".into(),
                port: 80,
            }],
            ..Default::default()
        }),
    );
    s.services.insert(
        ("shop".into(), "db".into()),
        std::sync::Arc::new(Service {
            headless: true,
            backends: vec![
                Backend {
                    cluster: "c1".into(),
                    hostname: Some("db-0".into()),
                    ips: vec![ip("10.129.4.11")],
                    ready: true,
                },
                Backend {
                    cluster: "c2".into(),
                    hostname: Some("db-0".into()),
                    ips: vec![ip("10.130.4.11")],
                    ready: true,
                },
                Backend {
                    cluster: "c2".into(),
                    hostname: Some("db-1".into()),
                    ips: vec![ip("10.130.4.12")],
                    ready: false,
                },
            ],
            ..Default::default()
        }),
    );
    s
}

fn a(s: &Snapshot, name: &str) -> Answer {
    resolve(s, &name.split('.').collect::<Vec<_>>(), Qtype::A)
}

#[test]
fn the_local_export_wins_when_ready() {
    assert_eq!(
        a(&snap("c1"), "web.shop.svc"),
        Answer::Addrs(vec![ip("100.65.0.5")])
    );
}

#[test]
fn remote_exports_take_turns_and_unready_or_disconnected_clusters_are_skipped() {
    let mut s = snap("c9");
    let got: Vec<Answer> = (0..4).map(|_| a(&s, "web.shop.svc")).collect();
    assert_eq!(got[0], Answer::Addrs(vec![ip("100.65.0.5")]));
    assert_eq!(got[1], Answer::Addrs(vec![ip("100.66.0.5")]));
    assert_eq!(got[2], got[0], "c3 is not ready");
    s.connected = Some(["c2".to_string()].into_iter().collect());
    for _ in 0..3 {
        assert_eq!(
            a(&s, "web.shop.svc"),
            Answer::Addrs(vec![ip("100.66.0.5")]),
            "c1's tunnel is down"
        );
    }
    s.connected = Some(HashSet::new());
    assert_eq!(a(&s, "web.shop.svc"), Answer::NoData);
}

#[test]
fn a_named_cluster_answers_whatever_its_health() {
    let mut s = snap("c9");
    s.connected = Some(HashSet::new());
    assert_eq!(a(&s, "c3.web.shop.svc"), Answer::Addrs(vec![ip("100.67.0.5")]));
    assert_eq!(a(&s, "c7.web.shop.svc"), Answer::NxDomain);
}

#[test]
fn nearest_first_orders_by_rtt() {
    let mut s = snap("c9");
    s.prefer_nearest = true;
    s.rtt_us = [("c1".to_string(), 900), ("c2".to_string(), 300)]
        .into_iter()
        .collect();
    for _ in 0..3 {
        assert_eq!(a(&s, "web.shop.svc"), Answer::Addrs(vec![ip("100.66.0.5")]));
    }
}

#[test]
fn aaaa_answers_v6_addresses_and_nodata_without_them() {
    let s = snap("c1");
    assert_eq!(
        resolve(&s, &["web", "shop", "svc"], Qtype::Aaaa),
        Answer::Addrs(vec![ip("fd00:65::5")])
    );
    assert_eq!(
        resolve(&s, &["c2", "web", "shop", "svc"], Qtype::Aaaa),
        Answer::NoData
    );
}

#[test]
fn headless_names_list_ready_backends_and_hostnames_resolve_per_cluster() {
    let s = snap("c1");
    assert_eq!(
        a(&s, "db.shop.svc"),
        Answer::Addrs(vec![ip("10.129.4.11"), ip("10.130.4.11")])
    );
    assert_eq!(a(&s, "c2.db.shop.svc"), Answer::Addrs(vec![ip("10.130.4.11")]));
    assert_eq!(
        a(&s, "db-0.c2.db.shop.svc"),
        Answer::Addrs(vec![ip("10.130.4.11")])
    );
    assert_eq!(
        a(&s, "db-1.c2.db.shop.svc"),
        Answer::NoData,
        "known but not ready"
    );
    assert_eq!(a(&s, "db-7.c2.db.shop.svc"), Answer::NxDomain);
}

#[test]
fn srv_names_list_ports_with_targets() {
    let s = snap("c1");
    let target = |c: Option<&str>| {
        let mut t: Vec<String> = vec!["web".into(), "shop".into(), "svc".into()];
        if let Some(c) = c {
            t.insert(0, c.into());
        }
        t
    };
    assert_eq!(
        resolve(&s, &["_http", "_tcp", "web", "shop", "svc"], Qtype::Srv),
        Answer::Srv(vec![(80, target(None))])
    );
    assert_eq!(
        resolve(&s, &["_http", "_tcp", "c2", "web", "shop", "svc"], Qtype::Srv),
        Answer::Srv(vec![(80, target(Some("c2")))])
    );
    assert_eq!(
        resolve(&s, &["web", "shop", "svc"], Qtype::Srv),
        Answer::Srv(vec![(80, target(None))])
    );
    assert_eq!(
        resolve(&s, &["_grpc", "_tcp", "web", "shop", "svc"], Qtype::Srv),
        Answer::NoData
    );
}

#[test]
fn empty_non_terminals_are_nodata_and_unknown_names_nxdomain() {
    let s = snap("c1");
    assert_eq!(a(&s, "shop.svc"), Answer::NoData);
    assert_eq!(a(&s, "svc"), Answer::NoData);
    assert_eq!(resolve(&s, &[], Qtype::A), Answer::NoData);
    assert_eq!(a(&s, "nope.svc"), Answer::NxDomain);
    assert_eq!(a(&s, "web.nope.svc"), Answer::NxDomain);
    assert_eq!(a(&s, "web.shop.pod"), Answer::NxDomain);
    assert_eq!(a(&s, "a.b.c.d.web.shop.svc"), Answer::NxDomain);
    assert_eq!(
        resolve(&s, &["dns-version"], Qtype::Txt),
        Answer::Txt(vec!["1.0.0".into()])
    );
    assert_eq!(resolve(&s, &["web", "shop", "svc"], Qtype::Other), Answer::NoData);
}

#[test]
fn reverse_names_parse_to_one_address_each() {
    let p = |n: &str| reverse_name(&n.split('.').collect::<Vec<_>>());
    assert_eq!(p("11.4.129.10.in-addr.arpa"), Some(ip("10.129.4.11")));
    assert_eq!(p("0.0.0.0.in-addr.arpa"), Some(ip("0.0.0.0")));
    let v6: String = "20010db8000000000000000000000001"
        .chars()
        .rev()
        .map(|c| format!("{c}."))
        .collect();
    assert_eq!(p(&format!("{v6}ip6.arpa")), Some(ip("2001:db8::1")));
    for bad in [
        "011.4.129.10.in-addr.arpa",
        "256.4.129.10.in-addr.arpa",
        "4.129.10.in-addr.arpa",
        "x.4.129.10.in-addr.arpa",
        "1.2.ip6.arpa",
        "web.shop.svc",
    ] {
        assert_eq!(p(bad), None, "{bad}");
    }
    assert_eq!(p(&format!("g{}ip6.arpa", &v6[1..])), None, "not a nibble");
}

#[test]
fn strict_mode_serves_no_cluster_specific_service_names() {
    let mut s = snap("c1");
    s.cluster_names = ClusterNames::Never;
    assert_eq!(
        a(&s, "c2.web.shop.svc"),
        Answer::NxDomain,
        "forbidden by the MCS DNS spec"
    );
    assert_eq!(
        resolve(&s, &["_http", "_tcp", "c2", "web", "shop", "svc"], Qtype::Srv),
        Answer::NxDomain
    );
    assert_eq!(
        a(&s, "c2.db.shop.svc"),
        Answer::NoData,
        "an empty non-terminal of the backends'"
    );
    assert_eq!(
        a(&s, "db-0.c2.db.shop.svc"),
        Answer::Addrs(vec![ip("10.130.4.11")]),
        "per-backend names stay"
    );
    assert_eq!(a(&s, "web.shop.svc"), Answer::Addrs(vec![ip("100.65.0.5")]));
    s.cluster_names = ClusterNames::WithoutVip;
    assert_eq!(
        a(&s, "c2.web.shop.svc"),
        Answer::Addrs(vec![ip("100.66.0.5")]),
        "Lighthouse's names for a service without a VIP"
    );
}

#[test]
fn a_service_with_a_clusterset_ip_has_cluster_names_only_in_lighthouse_mode() {
    let mut s = snap("c1");
    let key = ("shop".to_string(), "web".to_string());
    let old = s.services.remove(&key).expect("web");
    let mut web = std::sync::Arc::into_inner(old).expect("not shared");
    web.vips = vec![ip("243.0.0.9")];
    s.services.insert(key, std::sync::Arc::new(web));
    assert_eq!(a(&s, "web.shop.svc"), Answer::Addrs(vec![ip("243.0.0.9")]));
    assert_eq!(a(&s, "c2.web.shop.svc"), Answer::NxDomain, "the spec's default");
    s.cluster_names = ClusterNames::Always;
    assert_eq!(
        a(&s, "c2.web.shop.svc"),
        Answer::Addrs(vec![ip("100.66.0.5")]),
        "Submariner-compatible"
    );
}

#[test]
fn prefer_close_services_answer_the_nearest_cluster() {
    let mut s = snap("c9");
    s.rtt_us = [("c1".to_string(), 900), ("c2".to_string(), 300)]
        .into_iter()
        .collect();
    let key = ("shop".to_string(), "web".to_string());
    let mut web = Service {
        clusters: s.services[&key].clusters.clone(),
        ports: s.services[&key].ports.clone(),
        ..Default::default()
    };
    let round_robin: std::collections::BTreeSet<String> = (0..4)
        .map(|_| format!("{:?}", resolve(&s, &["web", "shop", "svc"], Qtype::A)))
        .collect();
    assert_eq!(
        round_robin.len(),
        2,
        "without PreferClose the exporters take turns"
    );
    web.prefer_close = true;
    s.services.insert(key, std::sync::Arc::new(web));
    for _ in 0..3 {
        assert_eq!(a(&s, "web.shop.svc"), Answer::Addrs(vec![ip("100.66.0.5")]));
    }
}
