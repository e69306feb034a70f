//! One pass: read the stores, plan, and write only what differs.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use subsea_api::globalnet::{
    ALLOCATED, CLUSTER_EGRESS_NAME, ClusterGlobalEgressIP, DEFAULT_CLUSTER_EGRESS_IPS, GlobalEgressIP,
    GlobalIngressIP, NODE_GLOBAL_IP_ANNOTATION, SERVICE_REF_LABEL, TARGET_HEADLESS_POD, TARGET_SERVICE,
};
use subsea_api::mcs::Condition;
use subsea_cidr::Cidr;
use subsea_globalnet_core::plan::{CLUSTER_EGRESS, EGRESS, INGRESS, Outcome, Plan};
use subsea_globalnet_core::{Gateway, Key, Target, World};

use crate::{Result, Stores, nft, world};

/// Label on what the daemon creates, so it only ever deletes its own objects.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "subsea-globalnet");
/// Label on an internal Service naming the exported Service it fronts.
pub const EXPORTED_SERVICE_LABEL: &str = "submariner.io/exportedServiceRef";

/// What does not change between passes.
pub(crate) struct Context {
    pub client: Client,
    pub cluster_id: String,
    pub hostname: String,
    pub global_cidr: Cidr,
    pub pod_cidrs: Vec<Cidr>,
}

fn refs<K: Clone>(v: &[Arc<K>]) -> Vec<&K> {
    v.iter().map(|a| &**a).collect()
}

/// The internal Service through which a ClusterIP Service is reachable at its global IP: its
/// selector and ports with the global IP as an external IP, so kube-proxy does the DNAT.
pub fn internal_service_name(service: &str) -> String {
    format!("submariner-{service}").chars().take(63).collect()
}

/// A pass; returns whether this node is the active gateway.
pub(crate) async fn pass(ctx: &Context, s: &Stores, addrs: &[IpAddr]) -> Result<bool> {
    let endpoints = s.endpoints.state();
    let nodes: Api<Node> = Api::all(ctx.client.clone());
    let node = nodes.get_opt(&ctx.hostname).await?;
    if !world::is_active(&refs(&endpoints), &ctx.cluster_id, &ctx.hostname) {
        nft::remove()?;
        // The address is the active gateway's: a passive node must not keep advertising it.
        if node
            .as_ref()
            .is_some_and(|n| n.annotations().contains_key(NODE_GLOBAL_IP_ANNOTATION))
        {
            nodes
                .patch(
                    &ctx.hostname,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"annotations": {NODE_GLOBAL_IP_ANNOTATION: null}}})),
                )
                .await?;
        }
        return Ok(false);
    }
    let held = node
        .as_ref()
        .and_then(|n| n.annotations().get(NODE_GLOBAL_IP_ANNOTATION).cloned());
    let gateway = world::cni_ip(addrs, &ctx.pod_cidrs).map(|cni_ip| Gateway {
        node: ctx.hostname.clone(),
        cni_ip,
        held: held.clone(),
    });
    let (egress, cluster_egress, ingress) = (s.egress.state(), s.cluster_egress.state(), s.ingress.state());
    let (exports, services, slices, pods) = (
        s.exports.state(),
        s.services.state(),
        s.slices.state(),
        s.pods.state(),
    );
    let w = World {
        global_cidr: ctx.global_cidr,
        pod_cidrs: ctx.pod_cidrs.clone(),
        remote_cidrs: world::remote_cidrs(&refs(&endpoints), &ctx.cluster_id),
        gateway,
        egress: world::egress(&refs(&egress), &refs(&cluster_egress)),
        ingress: world::ingress(&refs(&ingress)),
        exports: world::exports(&refs(&exports), &refs(&services), &refs(&slices)),
        pods: world::pods(&refs(&pods)),
    };
    let plan = subsea_globalnet_core::plan(&w);
    write_objects(ctx, &plan).await?;
    write_status(ctx, &plan, &egress, &cluster_egress, &ingress).await?;
    if let Some((name, ip)) = &plan.gateway_ip {
        if held.as_deref() != Some(ip.to_string().as_str()) && node.is_some() {
            nodes
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(
                        json!({"metadata": {"annotations": {NODE_GLOBAL_IP_ANNOTATION: ip.to_string()}}}),
                    ),
                )
                .await?;
            tracing::info!(node = %name, %ip, "gateway node's global IP published");
        }
    }
    internal_services(ctx, &plan, &services).await?;
    nft::apply(&plan.rules)?;
    Ok(true)
}

async fn write_objects(ctx: &Context, plan: &Plan) -> Result<()> {
    if plan.create_cluster_egress {
        let api: Api<ClusterGlobalEgressIP> = Api::all(ctx.client.clone());
        let obj: ClusterGlobalEgressIP = serde_json::from_value(json!({
            "apiVersion": "submariner.io/v1", "kind": "ClusterGlobalEgressIP",
            "metadata": {"name": CLUSTER_EGRESS_NAME},
            "spec": {"numGlobalIPs": DEFAULT_CLUSTER_EGRESS_IPS}}))
        .map_err(|e| crate::Error::Settings(e.to_string()))?;
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => {}
            Err(e) if status(&e) == Some(409) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for key in &plan.delete {
        let api: Api<GlobalIngressIP> = Api::namespaced(ctx.client.clone(), &key.namespace);
        match api.delete(&key.name, &DeleteParams::default()).await {
            Ok(_) => tracing::info!(namespace = %key.namespace, name = %key.name, "GlobalIngressIP released"),
            Err(e) if status(&e) == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
    }
    for n in &plan.create {
        let (target, service, spec) = match &n.target {
            Target::Service(svc) => (
                TARGET_SERVICE,
                svc.clone(),
                json!({"target": TARGET_SERVICE, "serviceRef": {"name": svc}}),
            ),
            Target::HeadlessPod { service, pod } => (
                TARGET_HEADLESS_POD,
                service.clone(),
                json!({"target": TARGET_HEADLESS_POD, "serviceRef": {"name": service}, "podRef": {"name": pod}}),
            ),
        };
        let obj: GlobalIngressIP = serde_json::from_value(json!({
            "apiVersion": "submariner.io/v1", "kind": "GlobalIngressIP",
            "metadata": {"name": n.key.name, "namespace": n.key.namespace,
                "labels": {SERVICE_REF_LABEL: service, MANAGED_BY.0: MANAGED_BY.1}},
            "spec": spec}))
        .map_err(|e| crate::Error::Settings(e.to_string()))?;
        let api: Api<GlobalIngressIP> = Api::namespaced(ctx.client.clone(), &n.key.namespace);
        match api.create(&PostParams::default(), &obj).await {
            Ok(_) => {
                tracing::info!(namespace = %n.key.namespace, name = %n.key.name, target, "GlobalIngressIP created")
            }
            Err(e) if status(&e) == Some(409) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn condition(o: &Outcome, old: &[Condition]) -> Condition {
    let (status, reason) = (if o.condition.ok { "True" } else { "False" }, o.condition.reason);
    let same = old
        .iter()
        .find(|c| c.type_ == ALLOCATED && c.status == status && c.reason.as_deref() == Some(reason));
    Condition {
        type_: ALLOCATED.into(),
        status: status.into(),
        last_transition_time: same
            .and_then(|c| c.last_transition_time.clone())
            .or_else(|| Some(format!("{:.0}", jiff::Timestamp::now()))),
        reason: Some(reason.into()),
        message: Some(o.condition.message.clone()),
    }
}

/// Whether the stored status already says what `o` and its condition `c` say.
fn same(o: &Outcome, c: &Condition, ips: &[String], old: &[Condition]) -> bool {
    let want: Vec<String> = o.ips.iter().map(Ipv4Addr::to_string).collect();
    want == ips
        && old.iter().any(|x| {
            x.type_ == ALLOCATED && x.status == c.status && x.reason == c.reason && x.message == c.message
        })
}

async fn write_status(
    ctx: &Context,
    plan: &Plan,
    egress: &[Arc<GlobalEgressIP>],
    cluster: &[Arc<ClusterGlobalEgressIP>],
    ingress: &[Arc<GlobalIngressIP>],
) -> Result<()> {
    let current: BTreeMap<Key, (Vec<String>, Vec<Condition>)> = egress
        .iter()
        .map(|g| {
            let st = g.status.clone().unwrap_or_default();
            (
                key(EGRESS, g.namespace(), g.name_any()),
                (st.allocated_ips, st.conditions),
            )
        })
        .chain(cluster.iter().map(|g| {
            let st = g.status.clone().unwrap_or_default();
            (
                key(CLUSTER_EGRESS, None, g.name_any()),
                (st.allocated_ips, st.conditions),
            )
        }))
        .chain(ingress.iter().map(|g| {
            let st = g.status.clone().unwrap_or_default();
            let ips = if st.allocated_ip.is_empty() {
                vec![]
            } else {
                vec![st.allocated_ip]
            };
            (key(INGRESS, g.namespace(), g.name_any()), (ips, st.conditions))
        }))
        .collect();
    for (k, o) in &plan.status {
        let (ips, old) = current.get(k).cloned().unwrap_or_default();
        let cond = condition(o, &old);
        if same(o, &cond, &ips, &old) {
            continue;
        }
        let body: Value = if k.kind == INGRESS {
            json!({"allocatedIP": o.ips.first().map(ToString::to_string).unwrap_or_default(), "conditions": [cond]})
        } else {
            json!({"allocatedIPs": o.ips.iter().map(ToString::to_string).collect::<Vec<_>>(), "conditions": [cond]})
        };
        let patch = Patch::Merge(json!({"status": body}));
        let pp = PatchParams::default();
        let res = match k.kind {
            EGRESS => Api::<GlobalEgressIP>::namespaced(ctx.client.clone(), &k.namespace)
                .patch_status(&k.name, &pp, &patch)
                .await
                .map(|_| ()),
            CLUSTER_EGRESS => Api::<ClusterGlobalEgressIP>::all(ctx.client.clone())
                .patch_status(&k.name, &pp, &patch)
                .await
                .map(|_| ()),
            _ => Api::<GlobalIngressIP>::namespaced(ctx.client.clone(), &k.namespace)
                .patch_status(&k.name, &pp, &patch)
                .await
                .map(|_| ()),
        };
        match res {
            // Deleted meanwhile: its addresses are free again.
            Ok(_) => {}
            Err(e) if status(&e) == Some(404) => {}
            Err(e) => return Err(e.into()),
        }
        if o.condition.ok {
            tracing::info!(kind = k.kind, namespace = %k.namespace, name = %k.name, ips = ?o.ips, "global IPs allocated");
        } else {
            tracing::warn!(kind = k.kind, namespace = %k.namespace, name = %k.name, reason = o.condition.reason, message = %o.condition.message, "global IPs not allocated");
        }
    }
    Ok(())
}

/// The HTTP status of an API error.
fn status(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

fn key(kind: &'static str, ns: Option<String>, name: String) -> Key {
    Key {
        kind,
        namespace: ns.unwrap_or_default(),
        name,
    }
}

async fn internal_services(ctx: &Context, plan: &Plan, services: &[Arc<Service>]) -> Result<()> {
    let mut wanted = BTreeMap::new();
    for (ns, name, ip) in &plan.services {
        let Some(svc) = services
            .iter()
            .find(|s| s.namespace().as_deref() == Some(ns) && s.name_any() == *name)
        else {
            continue;
        };
        let spec = svc.spec.clone().unwrap_or_default();
        let ports: Vec<Value> = spec
            .ports
            .unwrap_or_default()
            .iter()
            .map(|p| {
                json!({"name": p.name, "port": p.port, "protocol": p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                    "targetPort": p.target_port.clone().map_or(json!(p.port), |t| serde_json::to_value(t).unwrap_or(json!(p.port)))})
            })
            .collect();
        let internal = internal_service_name(name);
        let obj = json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": internal, "namespace": ns,
                "labels": {EXPORTED_SERVICE_LABEL: name, MANAGED_BY.0: MANAGED_BY.1}},
            "spec": {"selector": spec.selector, "ports": ports, "externalIPs": [ip.to_string()]}});
        wanted.insert((ns.clone(), internal), obj);
    }
    for ((ns, name), obj) in &wanted {
        let current = services
            .iter()
            .find(|s| s.namespace().as_deref() == Some(ns) && s.name_any() == *name);
        let stale = current.is_none_or(|s| {
            let want: Vec<String> = obj["spec"]["externalIPs"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(String::from))
                .collect();
            s.spec
                .as_ref()
                .and_then(|sp| sp.external_ips.clone())
                .unwrap_or_default()
                != want
        });
        if stale {
            subsea_runtime::objects::apply(&ctx.client, obj).await?;
        }
    }
    for s in services
        .iter()
        .filter(|s| s.labels().get(MANAGED_BY.0).map(String::as_str) == Some(MANAGED_BY.1))
    {
        let (ns, name) = (s.namespace().unwrap_or_default(), s.name_any());
        if !wanted.contains_key(&(ns.clone(), name.clone())) {
            let api: Api<Service> = Api::namespaced(ctx.client.clone(), &ns);
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(e) if status(&e) == Some(404) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}
