//! The route agent, on every node: remote CIDRs go to the cluster's active gateway.
//!
//! In the main table, each remote subnet is routed `via` the active gateway's private IP
//! (protocol 4, MTU of the tunnel), so pod traffic keeps its source address all the way to the
//! remote cluster. On the active gateway itself these routes are removed: its table-150 routes
//! into the tunnel win (rule priority 150). Submariner reaches the gateway over a VXLAN overlay
//! (`vx-submariner`) so that it works on routed node networks; the sandbox's nodes share one
//! L2 segment, as kind's do, where a plain next hop does the same with less overhead.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use kube::Api;
use subsea_api::submariner::Endpoint;
use subsea_cidr::Cidr;
use subsea_netlink::{Netlink, Route};
use subsea_plan::{Local, Remote};
use subsea_runtime::controller::Loop;

/// The main routing table.
pub const MAIN_TABLE: u32 = 254;

/// Routes a node wants: remote subnets via the local active gateway, unless this node is it.
/// IPv6 subnets go via the gateway's IPv6 private address, when it publishes one.
pub fn desired_routes(hostname: &str, local: &Local, endpoints: &[Remote]) -> Vec<(Cidr, IpAddr)> {
    let gateway = endpoints
        .iter()
        .filter(|e| e.spec.cluster_id == local.cluster_id)
        .max_by(|a, b| a.created.cmp(&b.created));
    let Some(gw) = gateway else {
        return Vec::new();
    };
    if gw.spec.hostname == hostname {
        return Vec::new();
    }
    let vias: Vec<IpAddr> = std::iter::once(&gw.spec.private_ip)
        .chain(&gw.spec.private_ips)
        .filter_map(|ip| ip.parse().ok())
        .collect();
    let plan = subsea_plan::plan(local, endpoints);
    plan.routes()
        .into_iter()
        .filter_map(|c| {
            vias.iter()
                .find(|v| v.is_ipv4() == c.addr.is_ipv4())
                .map(|v| (c, *v))
        })
        .collect()
}

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Kubeconfig of the local cluster.
    pub kubeconfig: Option<PathBuf>,
    /// Context in it.
    pub context: Option<String>,
    /// This node's name.
    pub hostname: String,
    /// MTU of the routes (the tunnel's).
    pub mtu: u32,
}

/// Runs until SIGTERM or Ctrl-C; removes its routes on the way out.
pub async fn run(opts: Options) -> Result<()> {
    let client = subsea_runtime::client::local(opts.kubeconfig.as_deref(), opts.context.as_deref()).await?;
    let spec = subsea_runtime::join::submariner(&client).await?;
    let settings = crate::settings::from_spec(&spec)?;
    let nl = Netlink::connect()?;
    let local = Local {
        cluster_id: settings.cluster_id.clone(),
        subnets: settings.subnets(),
    };
    let api: Api<Endpoint> = Api::namespaced(client, &settings.namespace);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let store = subsea_runtime::reflect::reflect_with(api, (), tx);
    tracing::info!(node = %opts.hostname, cluster = %settings.cluster_id, "route agent starting");
    if store.wait_until_ready().await.is_err() {
        return Err(Error::Missing(
            "the Endpoint watch ended before its first list".into(),
        ));
    }
    let last: std::sync::Mutex<Option<Vec<(Cidr, IpAddr)>>> = std::sync::Mutex::new(None);
    Loop::new("route-agent")
        .settle(Duration::ZERO)
        .run(&mut rx, subsea_runtime::shutdown::signal(), |_| async {
            let remotes: Vec<Remote> = store.state().iter().map(|e| crate::engine::remote(e)).collect();
            let want = desired_routes(&opts.hostname, &local, &remotes);
            program(&nl, &want, opts.mtu)
                .await
                .map_err(|e| format!("cannot program routes: {e}"))?;
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            if last.as_ref() != Some(&want) {
                tracing::info!(via = ?want.first().map(|r| r.1), routes = want.len(), "routes to remote clusters programmed");
                *last = Some(want);
            }
            Ok::<(), String>(())
        })
        .await;
    let _ = program(&nl, &[], opts.mtu).await;
    tracing::info!("route agent stopped; routes removed");
    Ok(())
}

async fn program(nl: &Netlink, routes: &[(Cidr, IpAddr)], mtu: u32) -> Result<()> {
    let current = nl.routes(MAIN_TABLE).await?;
    for (dst, via) in routes {
        nl.replace_route(&Route {
            dst: *dst,
            table: MAIN_TABLE,
            dev: None,
            via: Some(*via),
            src: None,
            mtu: Some(mtu),
        })
        .await?;
    }
    for dst in current.iter().filter(|c| !routes.iter().any(|(d, _)| d == *c)) {
        nl.delete_route(*dst, MAIN_TABLE).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use subsea_api::submariner::EndpointSpec;

    fn ep(cluster: &str, host: &str, ip: &str, subnets: &[&str], created: &str) -> Remote {
        let mut backend_config = std::collections::BTreeMap::new();
        backend_config.insert("publicKey".to_string(), subsea_wg::keys::to_base64(&[1; 32]));
        Remote {
            spec: EndpointSpec {
                cluster_id: cluster.into(),
                cable_name: format!("cable-{host}"),
                hostname: host.into(),
                private_ip: ip.into(),
                subnets: subnets.iter().map(|s| s.to_string()).collect(),
                backend: "wireguard".into(),
                backend_config,
                ..Default::default()
            },
            created: created.into(),
            label: None,
        }
    }

    fn local() -> Local {
        Local {
            cluster_id: "c1".into(),
            subnets: vec![Cidr::parse("10.129.0.0/16").expect("cidr")],
        }
    }

    #[test]
    fn workers_route_remote_subnets_via_the_newest_local_gateway() {
        let eps = [
            ep(
                "c1",
                "gw1",
                "172.30.1.12",
                &["10.129.0.0/16"],
                "2026-01-01T00:00:00Z",
            ),
            ep(
                "c1",
                "gw2",
                "172.30.1.13",
                &["10.129.0.0/16"],
                "2026-01-01T00:00:05Z",
            ),
            ep(
                "c2",
                "r-gw",
                "172.30.2.12",
                &["100.66.0.0/16", "10.130.0.0/16"],
                "2026-01-01T00:00:00Z",
            ),
        ];
        let routes = desired_routes("c1-worker", &local(), &eps);
        let shown: Vec<String> = routes.iter().map(|(c, v)| format!("{c} via {v}")).collect();
        assert_eq!(
            shown,
            ["10.130.0.0/16 via 172.30.1.13", "100.66.0.0/16 via 172.30.1.13"]
        );
    }

    #[test]
    fn the_active_gateway_and_a_cluster_without_gateway_get_no_main_routes() {
        let eps = [
            ep("c1", "gw1", "172.30.1.12", &["10.129.0.0/16"], "t1"),
            ep("c2", "r", "172.30.2.12", &["10.130.0.0/16"], "t1"),
        ];
        assert_eq!(desired_routes("gw1", &local(), &eps), vec![]);
        assert_eq!(desired_routes("w", &local(), &eps[1..]), vec![]);
    }

    #[test]
    fn ipv6_subnets_go_via_the_gateways_ipv6_address_or_nowhere() {
        let mut gw = ep("c1", "gw1", "172.30.1.12", &["10.129.0.0/16"], "t1");
        let remote = ep(
            "c2",
            "r",
            "172.30.2.12",
            &["10.130.0.0/16", "fd00:130::/48"],
            "t1",
        );
        let shown = |eps: &[Remote]| -> Vec<String> {
            desired_routes("w", &local(), eps)
                .iter()
                .map(|(c, v)| format!("{c} via {v}"))
                .collect()
        };
        assert_eq!(
            shown(&[gw.clone(), remote.clone()]),
            ["10.130.0.0/16 via 172.30.1.12"]
        );
        gw.spec.private_ips = vec!["172.30.1.12".into(), "fd00:30::1:12".into()];
        assert_eq!(
            shown(&[gw, remote]),
            ["10.130.0.0/16 via 172.30.1.12", "fd00:130::/48 via fd00:30::1:12"]
        );
    }
}
