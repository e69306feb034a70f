use super::*;

fn key() -> String {
    subsea_wg::keys::to_base64(&subsea_wg::keys::public_of(&subsea_wg::keys::generate_private()))
}

fn remote(cluster: &str, subnets: &[&str], created: &str) -> Remote {
    Remote {
        spec: EndpointSpec {
            cluster_id: cluster.into(),
            cable_name: format!("submariner-cable-{cluster}-172-18-0-4"),
            hostname: "gw".into(),
            subnets: subnets.iter().map(|s| s.to_string()).collect(),
            private_ip: "172.18.0.4".into(),
            public_ip: "203.0.113.4".into(),
            nat_enabled: false,
            backend: "wireguard".into(),
            backend_config: [("publicKey".to_string(), key())].into(),
            ..Default::default()
        },
        created: created.into(),
        label: Some(cluster.into()),
    }
}

fn local() -> Local {
    Local {
        cluster_id: "cluster1".into(),
        subnets: vec![
            Cidr::parse("100.66.0.0/16").expect("cidr"),
            Cidr::parse("10.130.0.0/16").expect("cidr"),
        ],
    }
}

#[test]
fn remote_clusters_become_peers_with_their_subnets() {
    let mut r2 = remote(
        "cluster2",
        &["100.67.0.0/16", "10.131.0.0/16"],
        "2026-01-01T00:00:00Z",
    );
    r2.spec.backend_config.insert("udp-port".into(), "4501".into());
    let p = plan(&local(), &[r2, remote("cluster1", &["100.66.0.0/16"], "t")]);
    assert_eq!(p.peers.len(), 1, "our own endpoint is not a peer");
    let peer = &p.peers[0];
    assert_eq!(peer.endpoint, "172.18.0.4:4501".parse().expect("addr"));
    assert!(!peer.using_nat);
    assert_eq!(
        p.routes().iter().map(ToString::to_string).collect::<Vec<_>>(),
        vec!["10.131.0.0/16", "100.67.0.0/16"]
    );
    assert_eq!(p.wg_peers()[0].keepalive, Some(10));
}

#[test]
fn nat_enabled_remotes_are_reached_on_their_public_ip() {
    let mut r = remote("cluster2", &["10.131.0.0/16"], "t");
    r.spec.nat_enabled = true;
    let p = plan(&local(), &[r]);
    assert_eq!(p.peers[0].endpoint, "203.0.113.4:4500".parse().expect("addr"));
    assert!(p.peers[0].using_nat);
}

#[test]
fn the_newest_endpoint_of_a_cluster_wins() {
    let old = remote("cluster2", &["10.131.0.0/16"], "2026-01-01T00:00:00Z");
    let mut new = remote("cluster2", &["10.131.0.0/16"], "2026-01-01T00:00:05Z");
    new.spec.private_ip = "172.18.0.9".into();
    let p = plan(&local(), &[new.clone(), old]);
    assert_eq!(p.peers.len(), 1);
    assert_eq!(p.peers[0].endpoint.ip().to_string(), "172.18.0.9");
}

#[test]
fn unusable_endpoints_are_skipped_with_a_reason() {
    let overlapping = remote("cluster2", &["10.130.128.0/17"], "t");
    let mut libreswan = remote("cluster3", &["10.133.0.0/16"], "t");
    libreswan.spec.backend = "libreswan".into();
    let mut keyless = remote("cluster4", &["10.134.0.0/16"], "t");
    keyless.spec.backend_config.clear();
    let clash_a = remote("cluster5", &["10.135.0.0/16"], "t");
    let clash_b = remote("cluster6", &["10.135.128.0/17"], "t");
    let p = plan(&local(), &[overlapping, libreswan, keyless, clash_a, clash_b]);
    assert_eq!(
        p.peers.iter().map(|p| p.cluster_id.as_str()).collect::<Vec<_>>(),
        vec!["cluster5"]
    );
    let reasons: BTreeMap<&str, &str> = p
        .skipped
        .iter()
        .map(|s| (s.cluster_id.as_str(), s.reason.as_str()))
        .collect();
    assert!(
        reasons["cluster2"].contains("overlaps local subnet 10.130.0.0/16"),
        "{reasons:?}"
    );
    assert!(reasons["cluster3"].contains("libreswan"));
    assert!(reasons["cluster4"].contains("publicKey"));
    assert!(reasons["cluster6"].contains("of cluster \"cluster5\""));
}

#[test]
fn route_changes_are_a_diff() {
    let c = |s: &str| Cidr::parse(s).expect("cidr");
    let (add, remove) = route_changes(
        &[c("10.131.0.0/16"), c("10.132.0.0/16")],
        &[c("10.132.0.0/16"), c("fd00:131::/64")],
    );
    assert_eq!(add, vec![c("fd00:131::/64")]);
    assert_eq!(remove, vec![c("10.131.0.0/16")]);
}

#[test]
fn an_endpoint_whose_spec_disagrees_with_its_label_is_ignored() {
    let real = remote("cluster2", &["10.131.0.0/16"], "2024-01-01T00:00:00Z");
    let mut impostor = remote("cluster2", &["10.200.0.0/16"], "2024-06-01T00:00:00Z");
    impostor.label = Some("cluster3".into());
    let p = plan(&local(), &[real.clone(), impostor]);
    assert_eq!(
        p.peers.len(),
        1,
        "the newer impostor does not displace the real endpoint"
    );
    assert_eq!(
        p.peers[0].allowed_ips,
        vec![Cidr::parse("10.131.0.0/16").expect("cidr")]
    );
    assert_eq!(p.skipped.len(), 1);
    assert!(
        p.skipped[0]
            .reason
            .contains("labelled submariner-io/clusterID=cluster3"),
        "{}",
        p.skipped[0].reason
    );
    let mut unlabelled = real;
    unlabelled.label = None;
    assert_eq!(
        plan(&local(), &[unlabelled]).peers.len(),
        1,
        "objects without the label still count"
    );
}

#[test]
fn a_misbehaving_cluster_cannot_take_an_older_clusters_subnets_or_flood_routes() {
    // "aaa" sorts first, but cluster2 published first: cluster2 keeps its subnet.
    let honest = remote("cluster2", &["10.131.0.0/16"], "2026-01-01T00:00:00Z");
    let thief = remote("aaa", &["10.131.0.0/24"], "2026-06-01T00:00:00Z");
    let many: Vec<String> = (0..=MAX_SUBNETS)
        .map(|i| format!("10.{}.{}.0/24", 140 + i / 256, i % 256))
        .collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    let flood = remote("cluster9", &refs, "2026-01-02T00:00:00Z");
    let mut garbage = remote("cluster8", &["10.138.0.0/16"], "t");
    garbage
        .spec
        .backend_config
        .insert("publicKey".into(), "not a key".into());
    garbage.spec.private_ip = "nonsense".into();
    let p = plan(&local(), &[thief, honest, flood, garbage]);
    assert_eq!(
        p.peers.iter().map(|p| p.cluster_id.as_str()).collect::<Vec<_>>(),
        vec!["cluster2"]
    );
    let reasons: BTreeMap<&str, &str> = p
        .skipped
        .iter()
        .map(|s| (s.cluster_id.as_str(), s.reason.as_str()))
        .collect();
    assert!(reasons["aaa"].contains("of cluster \"cluster2\""), "{reasons:?}");
    assert!(reasons["cluster9"].contains("257 subnets"), "{reasons:?}");
    assert!(reasons["cluster8"].contains("publicKey"), "{reasons:?}");
}
