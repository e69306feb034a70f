//! The tunnel controller: every change to the Endpoints re-plans peers, routes in table 150 and health-check pingers.

use super::*;

/// The tunnel controller: every change to the Endpoints in our namespace re-plans peers and
/// routes.
pub(super) async fn tunnels(shared: Arc<Shared>, d: Arc<Datapath>) {
    let api: Api<Endpoint> = Api::namespaced(shared.local.clone(), &shared.settings.namespace);
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let store = subsea_runtime::reflect::reflect_with(api, (), tx);
    if store.wait_until_ready().await.is_err() {
        return;
    }
    let local = Local {
        cluster_id: shared.settings.cluster_id.clone(),
        subnets: shared.settings.subnets(),
    };
    // Kept across passes: the running pingers, and what was last said about skipped peers.
    let state: Mutex<(
        BTreeMap<String, (std::net::Ipv4Addr, Owned)>,
        Vec<subsea_plan::Skipped>,
    )> = Mutex::new((BTreeMap::new(), Vec::new()));
    // No settling: a failover re-plans at once.
    Loop::new("tunnels")
        .settle(Duration::ZERO)
        .run(&mut rx, std::future::pending(), |_| async {
            let endpoints = store.state();
            let remotes: Vec<Remote> = endpoints.iter().map(|e| remote(e)).collect();
            let plan = subsea_plan::plan(&local, &remotes);
            d.set_peers(&plan.wg_peers());
            let routed = program_routes(&shared, &plan).await;
            match &routed {
                Err(e) => *guard(&shared.failure) = format!("{e:#}"),
                Ok(()) => guard(&shared.failure).clear(),
            }
            {
                let mut st = guard(&state);
                let (pingers, skipped) = &mut *st;
                // Each reason is said once, when it appears, not on every pass nor again when
                // another cluster's changes.
                if plan.skipped != *skipped {
                    for s in plan.skipped.iter().filter(|s| !skipped.contains(s)) {
                        tracing::warn!(cluster = %s.cluster_id, reason = %s.reason, "not connecting");
                    }
                    *skipped = plan.skipped.clone();
                }
                if shared.settings.health_check {
                    reconcile_pingers(&shared, &plan, &endpoints, pingers);
                }
            }
            *guard(&shared.remotes) = endpoints
                .iter()
                .map(|e| (e.spec.cluster_id.clone(), e.spec.clone()))
                .collect();
            *guard(&shared.plan) = plan;
            routed.map_err(|e| format!("cannot program routes: {e:#}"))
        })
        .await;
}

/// An Endpoint as the planners see it.
pub(crate) fn remote(e: &Endpoint) -> Remote {
    Remote {
        spec: e.spec.clone(),
        created: e
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0.to_string())
            .unwrap_or_default(),
        label: e
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("submariner-io/clusterID"))
            .cloned(),
    }
}

/// One pinger per connected remote endpoint with a health-check address; restarted when the
/// address changes, stopped when the endpoint goes.
pub(super) fn reconcile_pingers(
    shared: &Arc<Shared>,
    plan: &Plan,
    endpoints: &[Arc<Endpoint>],
    pingers: &mut BTreeMap<String, (std::net::Ipv4Addr, Owned)>,
) {
    let wanted: BTreeMap<String, std::net::Ipv4Addr> = plan
        .peers
        .iter()
        .filter_map(|p| {
            let e = endpoints.iter().find(|e| e.spec.cable_name == p.cable_name)?;
            let ip = e.spec.health_check_ip.parse().ok()?;
            Some((p.cable_name.clone(), ip))
        })
        .collect();
    pingers.retain(|cable, (ip, _)| wanted.get(cable) == Some(ip));
    guard(&shared.health).retain(|cable, _| wanted.contains_key(cable));
    let src = shared.node.cni_ip.and_then(|ip| match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(_) => None,
    });
    for (cable, ip) in wanted {
        if pingers.contains_key(&cable) {
            continue;
        }
        let task = tokio::spawn(crate::health::ping(
            shared.health.clone(),
            cable.clone(),
            ip,
            src,
            Duration::from_secs(shared.settings.health_interval.max(1)),
            shared.settings.health_max_loss,
            {
                let shared = shared.clone();
                move || shared.status_now.notify_one()
            },
        ));
        pingers.insert(cable, (ip, Owned(task)));
    }
}

pub(super) async fn program_routes(shared: &Shared, plan: &Plan) -> Result<()> {
    let nl = &shared.netlink;
    let dev = nl
        .link_index("submariner")
        .await?
        .ok_or_else(|| Error::Missing("the TUN device submariner is gone".into()))?;
    nl.ensure_rule(TABLE, RULE_PRIORITY).await?;
    let current = nl.routes(TABLE).await?;
    let desired = plan.routes();
    let (add, remove) = subsea_plan::route_changes(&current, &desired);
    for dst in add {
        let src = [shared.node.cni_ip, shared.node.cni_ip6]
            .into_iter()
            .flatten()
            .find(|ip| ip.is_ipv4() == dst.addr.is_ipv4());
        nl.replace_route(&Route {
            dst,
            table: TABLE,
            dev: Some(dev),
            via: None,
            src,
            mtu: None,
        })
        .await?;
    }
    for dst in remove {
        nl.delete_route(dst, TABLE).await?;
    }
    Ok(())
}
