//! What the leader starts and publishes: the data path, the local Endpoint and Cluster (and, under Globalnet, the node's global IP as health-check address), the syncers.

use super::*;

pub(super) fn datapath(shared: &Shared) -> Result<Arc<Datapath>> {
    if let Some(d) = shared.datapath.get() {
        return Ok(d.clone());
    }
    // A fresh key per process, as Submariner's driver does; the PSK is shared cluster-wide.
    let cfg = subsea_datapath::Config {
        name: "submariner".into(),
        mtu: shared.opts.mtu,
        port: shared.settings.port,
        private_key: subsea_wg::keys::generate_private(),
        psk: Some(subsea_wg::keys::psk_from_text(&shared.settings.psk_text)),
    };
    let d = Arc::new(Datapath::start(&cfg).map_err(Error::Datapath)?);
    let get = {
        let d = d.clone();
        Arc::new(move || d.uapi_get())
    };
    if let Err(e) = subsea_datapath::uapi::serve(&shared.opts.uapi_dir, "submariner", get) {
        tracing::warn!(error = %e, dir = %shared.opts.uapi_dir.display(), "no UAPI socket: `wg show` will not see the device");
    }
    let _ = shared.datapath.set(d.clone());
    Ok(d)
}

pub(super) fn local_endpoint(shared: &Shared, d: &Datapath, global_ip: Option<IpAddr>) -> EndpointSpec {
    local::endpoint(
        &shared.settings,
        &shared.node,
        &subsea_wg::keys::to_base64(&d.public_key()),
        d.port(),
        global_ip,
    )
}

/// With Globalnet, remote clusters can ping us only at our global IP, which the Globalnet
/// daemon allocates once we are active and writes on our Node: republish when it appears or
/// changes.
pub(super) async fn publish_global_ip(shared: Arc<Shared>, d: Arc<Datapath>) {
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(shared.local.clone());
    let mut published: Option<IpAddr> = None;
    loop {
        if let Ok(Some(node)) = nodes.get_opt(&shared.node.hostname).await {
            let ip = node
                .annotations()
                .get(subsea_api::globalnet::NODE_GLOBAL_IP_ANNOTATION)
                .and_then(|s| s.parse::<IpAddr>().ok());
            if ip.is_some() && ip != published {
                tracing::info!(global_ip = ?ip, "publishing the node's global IP as the health-check address");
                publish(shared.clone(), local_endpoint(&shared, &d, ip)).await;
                published = ip;
                *guard(&shared.global_ip) = ip;
            }
        }
        tokio::time::sleep(NODE_CHECK).await;
    }
}

pub(super) async fn lead(shared: Arc<Shared>) -> Vec<JoinHandle<()>> {
    let d = match datapath(&shared) {
        Ok(d) => d,
        Err(e) => {
            *guard(&shared.failure) = format!("{e:#}");
            tracing::error!(error = %e, "cannot start the data path");
            return Vec::new();
        }
    };
    shared.active.store(true, Ordering::SeqCst);
    shared.status_now.notify_one();
    let mut tasks = vec![tokio::spawn(publish(
        shared.clone(),
        local_endpoint(&shared, &d, None),
    ))];
    if shared.settings.global_cidr.is_some() {
        tasks.push(tokio::spawn(publish_global_ip(shared.clone(), d.clone())));
    }
    let s = &shared.settings;
    for ar in [
        ApiResource::erase::<Endpoint>(&()),
        ApiResource::erase::<Cluster>(&()),
    ] {
        for (direction, src_ns, dst_ns, src, dst) in [
            (
                Direction::LocalToBroker,
                &s.namespace,
                &s.broker_namespace,
                &shared.local,
                &shared.broker,
            ),
            (
                Direction::BrokerToLocal,
                &s.broker_namespace,
                &s.namespace,
                &shared.broker,
                &shared.local,
            ),
        ] {
            let syncer = Syncer {
                resource: ar.clone(),
                config: SyncConfig {
                    cluster_id: s.cluster_id.clone(),
                    direction,
                    source_namespace: Some(src_ns.clone()),
                    target_namespace: dst_ns.clone(),
                },
                source: src.clone(),
                target: dst.clone(),
            };
            tasks.push(tokio::spawn(syncer.run()));
        }
    }
    tasks.push(tokio::spawn(super::heartbeat::heartbeat(shared.clone())));
    tasks.push(tokio::spawn(super::tunnels::tunnels(shared.clone(), d)));
    tasks
}

/// Creates or updates our Endpoint and Cluster, then deletes our cluster's other Endpoints.
pub(super) async fn publish(shared: Arc<Shared>, spec: EndpointSpec) {
    let s = &shared.settings;
    let name = local::endpoint_name(&spec);
    let labels = serde_json::json!({ CLUSTER_ID_LABEL: s.cluster_id });
    let endpoint = serde_json::json!({"apiVersion": "submariner.io/v1", "kind": "Endpoint",
        "metadata": {"name": name, "labels": labels}, "spec": spec});
    let cluster = serde_json::json!({"apiVersion": "submariner.io/v1", "kind": "Cluster",
        "metadata": {"name": local::valid_name(&s.cluster_id), "labels": labels}, "spec": local::cluster(s)});
    let eps: Api<Endpoint> = Api::namespaced(shared.local.clone(), &s.namespace);
    let clusters: Api<Cluster> = Api::namespaced(shared.local.clone(), &s.namespace);
    let pp = PatchParams::apply(MANAGER).force();
    loop {
        let r = async {
            eps.patch(&name, &pp, &Patch::Apply(&endpoint)).await?;
            clusters
                .patch(&local::valid_name(&s.cluster_id), &pp, &Patch::Apply(&cluster))
                .await?;
            let all: Vec<(String, EndpointSpec)> = eps
                .list(&ListParams::default())
                .await?
                .into_iter()
                .map(|e| (e.name_any(), e.spec))
                .collect();
            for stale in local::stale_local_endpoints(&s.cluster_id, &name, &all) {
                tracing::info!(endpoint = stale, "deleting our cluster's previous Endpoint");
                match eps.delete(stale, &DeleteParams::default()).await {
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    r => {
                        r?;
                    }
                }
            }
            Ok::<_, kube::Error>(())
        }
        .await;
        match r {
            Ok(()) => {
                tracing::info!(endpoint = %name, "published the local Endpoint and Cluster");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot publish the local Endpoint; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
