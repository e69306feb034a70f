//! The Globalnet daemon (`subsea globalnet`), one per gateway node. On the active gateway it
//! allocates global IPs into the Globalnet objects' statuses (the API is the allocator's only
//! state, so a restart or a failover resumes from it), creates the GlobalIngressIPs exported
//! Services need, publishes the node's own global IP, and programs the SNAT/DNAT table. On a
//! passive gateway it removes its table and writes nothing.
//!
//! The decisions are `subsea_globalnet_core::plan`; this crate reads the world and carries out
//! the plan.
#![deny(missing_docs)]

pub mod error;
mod execute;
pub mod nft;
pub mod world;

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{ApiResource, DynamicObject};
use subsea_api::globalnet::{ClusterGlobalEgressIP, GlobalEgressIP, GlobalIngressIP};
use subsea_api::submariner::Endpoint;
use subsea_cidr::Cidr;
use subsea_runtime::controller::Loop;
use subsea_runtime::reflect::reflect_with;

pub use error::{Error, Result};

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Kubeconfig of the local cluster.
    pub kubeconfig: Option<PathBuf>,
    /// Context in it.
    pub context: Option<String>,
    /// This node's name.
    pub hostname: String,
}

fn cidrs(text: &str) -> Vec<Cidr> {
    text.split(',')
        .filter_map(|s| Cidr::parse(s.trim()).ok())
        .collect()
}

/// Runs until SIGTERM or Ctrl-C; removes its table on the way out.
pub async fn run(opts: Options) -> Result<()> {
    let client = subsea_runtime::client::local(opts.kubeconfig.as_deref(), opts.context.as_deref()).await?;
    let spec = subsea_runtime::join::submariner(&client).await?;
    let Some(global_cidr) = cidrs(&spec.global_cidr).first().copied() else {
        return Err(Error::Settings(
            "the Submariner object has no globalCIDR: this cluster did not join with Globalnet (deploy the broker with --globalnet and rejoin), so there is nothing for the Globalnet daemon to do".into(),
        ));
    };
    let pod_cidrs: Vec<Cidr> = cidrs(&spec.cluster_cidr)
        .into_iter()
        .filter(|c| c.addr.is_ipv4())
        .collect();
    let ns = if spec.namespace.is_empty() {
        "submariner-operator".to_string()
    } else {
        spec.namespace.clone()
    };
    let nl = subsea_netlink::Netlink::connect()?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let export_ar = ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        "multicluster.x-k8s.io",
        "v1alpha1",
        "ServiceExport",
    ));
    let s = Stores {
        egress: reflect_with(Api::<GlobalEgressIP>::all(client.clone()), (), tx.clone()),
        cluster_egress: reflect_with(Api::<ClusterGlobalEgressIP>::all(client.clone()), (), tx.clone()),
        ingress: reflect_with(Api::<GlobalIngressIP>::all(client.clone()), (), tx.clone()),
        exports: reflect_with(
            Api::<DynamicObject>::all_with(client.clone(), &export_ar),
            export_ar.clone(),
            tx.clone(),
        ),
        services: reflect_with(Api::<Service>::all(client.clone()), (), tx.clone()),
        slices: reflect_with(Api::<EndpointSlice>::all(client.clone()), (), tx.clone()),
        pods: reflect_with(Api::<Pod>::all(client.clone()), (), tx.clone()),
        endpoints: reflect_with(Api::<Endpoint>::namespaced(client.clone(), &ns), (), tx.clone()),
    };
    s.ready().await?;
    tracing::info!(node = %opts.hostname, cluster = %spec.cluster_id, %global_cidr, "globalnet starting");
    let ctx = execute::Context {
        client: client.clone(),
        cluster_id: spec.cluster_id.clone(),
        hostname: opts.hostname.clone(),
        global_cidr,
        pod_cidrs,
    };
    let active = std::sync::atomic::AtomicBool::new(false);
    Loop::new("globalnet")
        .resync(Duration::from_secs(5))
        .run(&mut rx, subsea_runtime::shutdown::signal(), |_| async {
            let addrs: Vec<std::net::IpAddr> = nl
                .addresses()
                .await
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|(_, ip, _)| ip)
                .collect();
            let now_active = execute::pass(&ctx, &s, &addrs).await.map_err(|e| e.to_string())?;
            if active.swap(now_active, std::sync::atomic::Ordering::Relaxed) != now_active {
                tracing::info!(active = now_active, "globalnet role changed");
            }
            Ok::<(), String>(())
        })
        .await;
    nft::remove()?;
    tracing::info!("globalnet stopped; its nftables table removed");
    Ok(())
}

/// The reflected objects a pass reads.
pub(crate) struct Stores {
    egress: subsea_runtime::reflect::Reflector<GlobalEgressIP>,
    cluster_egress: subsea_runtime::reflect::Reflector<ClusterGlobalEgressIP>,
    ingress: subsea_runtime::reflect::Reflector<GlobalIngressIP>,
    exports: subsea_runtime::reflect::Reflector<DynamicObject>,
    services: subsea_runtime::reflect::Reflector<Service>,
    slices: subsea_runtime::reflect::Reflector<EndpointSlice>,
    pods: subsea_runtime::reflect::Reflector<Pod>,
    endpoints: subsea_runtime::reflect::Reflector<Endpoint>,
}

impl Stores {
    async fn ready(&self) -> Result<()> {
        let missing = |what: &str| {
            Error::Settings(format!(
                "the {what} watch ended before its first list: are the Globalnet CRDs installed (`subsea crds | kubectl apply -f -`)?"
            ))
        };
        self.egress
            .wait_until_ready()
            .await
            .map_err(|_| missing("GlobalEgressIP"))?;
        self.cluster_egress
            .wait_until_ready()
            .await
            .map_err(|_| missing("ClusterGlobalEgressIP"))?;
        self.ingress
            .wait_until_ready()
            .await
            .map_err(|_| missing("GlobalIngressIP"))?;
        self.exports
            .wait_until_ready()
            .await
            .map_err(|_| missing("ServiceExport"))?;
        self.services
            .wait_until_ready()
            .await
            .map_err(|_| missing("Service"))?;
        self.slices
            .wait_until_ready()
            .await
            .map_err(|_| missing("EndpointSlice"))?;
        self.pods.wait_until_ready().await.map_err(|_| missing("Pod"))?;
        self.endpoints
            .wait_until_ready()
            .await
            .map_err(|_| missing("Endpoint"))?;
        Ok(())
    }
}
