use super::*;
use serde_json::json;

fn joined() -> Facts {
    Facts {
        version: Some("v1.32.0".into()),
        submariner: Some(json!({"spec": {"clusterID": "c1"}})),
        nodes: vec![json!({"metadata": {"name": "gw1", "labels": {"submariner.io/gateway": "true"}}})],
        gateways: vec![
            json!({"metadata": {"name": "gw1"}, "status": {"haStatus": "active", "connections": [
            {"status": "connected", "usingIP": "172.30.2.12", "endpoint": {"cluster_id": "c2"}, "latencyRTT": {"average": "1ms"}},
            {"status": "error", "statusMessage": "no handshake for 200 seconds", "usingIP": "172.30.3.12",
             "endpoint": {"cluster_id": "c3", "backend_config": {"udp-port": "4500"}}}]}}),
        ],
        endpoints: vec![
            json!({"spec": {"cluster_id": "c1"}}),
            json!({"spec": {"cluster_id": "c2"}}),
            json!({"spec": {"cluster_id": "c3"}}),
        ],
        exports: vec![
            json!({"metadata": {"name": "web", "namespace": "shop"}, "status": {"conditions": [
            {"type": "Valid", "status": "False", "message": "Service to be exported doesn't exist"}]}}),
        ],
        corefile: Some("#lighthouse-start\nclusterset.local:53 {}\n#lighthouse-end\n".into()),
        ..Default::default()
    }
}

fn fails(lines: &[Line]) -> Vec<&str> {
    lines
        .iter()
        .filter_map(|l| {
            if let Line::Fail(m) = l {
                Some(m.as_str())
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn a_down_connection_and_an_invalid_export_fail_with_their_fix() {
    let lines = evaluate(Check::All, &joined());
    let f = fails(&lines);
    assert_eq!(f.len(), 2, "{lines:?}");
    assert!(f[0].contains("c3") && f[0].contains("no handshake") && f[0].contains("UDP 4500"));
    assert!(f[1].contains("shop/web") && f[1].contains("doesn't exist"));
    assert!(lines.contains(&Line::Ok(
        "connection to c2 (172.30.2.12) is connected, RTT 1ms".into()
    )));
}

#[test]
fn an_unlabelled_cluster_without_gateway_says_how_to_fix_it() {
    let mut f = joined();
    f.nodes[0]["metadata"]["labels"] = json!({});
    f.gateways.clear();
    let lines = evaluate(Check::Deployment, &f);
    let fl = fails(&lines);
    assert!(fl.iter().any(|m| m.contains("kubectl label node")));
    assert!(fl.iter().any(|m| m.contains("no gateway is running")));
}

#[test]
fn unjoined_clusters_old_versions_and_missing_dns_forwarding_are_reported() {
    let f = Facts {
        version: Some("v1.19.3".into()),
        ..Default::default()
    };
    let lines = evaluate(Check::All, &f);
    assert!(fails(&lines).iter().any(|m| m.contains("older than 1.21")));
    assert!(fails(&lines).iter().any(|m| m.contains("subctl join")));
    let mut f = joined();
    f.corefile = Some(".:53 { forward . /etc/resolv.conf }".into());
    assert!(
        fails(&evaluate(Check::ServiceDiscovery, &f))
            .iter()
            .any(|m| m.contains("does not forward clusterset.local"))
    );
}

#[test]
fn overlapping_cidrs_name_both_blocks_and_the_fix() {
    let mut f = joined();
    f.endpoints[0]["spec"]["subnets"] = json!(["10.129.0.0/16", "100.65.0.0/16"]);
    f.endpoints[1]["spec"]["subnets"] = json!(["10.130.0.0/16", "100.66.0.0/16"]);
    f.endpoints[2]["spec"]["subnets"] = json!(["10.129.128.0/17", "100.67.0.0/16"]);
    let lines = evaluate(Check::Connections, &f);
    let fl = fails(&lines);
    let clash: Vec<&&str> = fl.iter().filter(|m| m.contains("overlaps")).collect();
    assert_eq!(clash.len(), 1, "{lines:?}");
    assert!(clash[0].contains("cluster c3's CIDR 10.129.128.0/17 overlaps this cluster's 10.129.0.0/16"));
    assert!(clash[0].contains("--clustercidr"));
}

#[test]
fn globalnet_verdicts_name_what_is_missing() {
    let mut f = joined();
    assert!(
        evaluate(Check::Globalnet, &f)
            .iter()
            .any(|l| matches!(l, Line::Warn(m) if m.contains("did not join with Globalnet")))
    );
    f.submariner = Some(json!({"spec": {"clusterID": "c1", "globalCIDR": "242.0.0.0/16"}}));
    f.exports = vec![json!({"metadata": {"name": "web", "namespace": "shop"}})];
    f.ingress = vec![
        json!({"metadata": {"name": "web", "namespace": "shop"}, "status": {"conditions": [
        {"type": "Allocated", "status": "False", "message": "the pool is exhausted"}]}}),
    ];
    f.egress = vec![
        json!({"metadata": {"name": "team", "namespace": "shop"}, "status": {"conditions": [
        {"type": "Allocated", "status": "False", "reason": "InvalidInput", "message": "numberOfIPs 21 is out of range"}]}}),
    ];
    let lines = evaluate(Check::Globalnet, &f);
    let failed = fails(&lines);
    assert!(
        failed.iter().any(|m| m.contains("gw1 has no global IP")),
        "{failed:?}"
    );
    assert!(
        failed.iter().any(|m| m.contains("no ClusterGlobalEgressIP")),
        "{failed:?}"
    );
    assert!(
        failed
            .iter()
            .any(|m| m.contains("numberOfIPs 21") && m.contains("InvalidInput")),
        "{failed:?}"
    );
    assert!(
        failed
            .iter()
            .any(|m| m.contains("shop/web") && m.contains("exhausted")),
        "{failed:?}"
    );

    f.nodes[0]["metadata"]["annotations"] = json!({"submariner.io/globalIp": "242.0.0.1"});
    f.cluster_egress = vec![
        json!({"metadata": {"name": "cluster-egress.submariner.io"}, "status": {"conditions": [
        {"type": "Allocated", "status": "True", "message": "allocated 8 global IPs 242.0.0.2-242.0.0.9"}]}}),
    ];
    f.egress.clear();
    f.ingress[0]["status"] = json!({"allocatedIP": "242.0.0.10"});
    let lines = evaluate(Check::Globalnet, &f);
    assert!(fails(&lines).is_empty(), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| matches!(l, Line::Ok(m) if m.contains("global IP 242.0.0.10")))
    );
}
