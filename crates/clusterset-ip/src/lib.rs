//! The ClusterSetIP daemon (`subsea clusterset-ip`), one per node: it keeps the node's nftables
//! table in step with the cluster's aggregated ServiceImports, its EndpointSlices and the
//! gateway's connection status, so that a connection from any pod (or the node) to a service's
//! ClusterSetIP reaches a backend of an exporting cluster, local pods first.
//!
//! The decision is `subsea_lighthouse_core::vip_route::forwards`; this crate reads the world
//! and programs the table.
#![deny(missing_docs)]

pub mod error;
pub mod nft;

use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use subsea_api::mcs::v1alpha1::ServiceImport;
use subsea_api::submariner::Gateway;
use subsea_lighthouse_core::vip_route::{Forward, Health, Here, forwards};
use subsea_runtime::controller::Loop;
use subsea_runtime::reflect::{Reflector, reflect_with};

pub use error::{Error, Result};

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Kubeconfig of the local cluster (else the pod's service account).
    pub kubeconfig: Option<PathBuf>,
    /// Context in it.
    pub context: Option<String>,
    /// This node's name (`internalTrafficPolicy: Local` keeps connections on its pods).
    pub node: String,
    /// The local cluster's pods first; else they share with the other exporting clusters.
    pub local_first: bool,
}

fn refs<T>(v: &[std::sync::Arc<T>]) -> Vec<&T> {
    v.iter().map(|a| &**a).collect()
}

async fn ready<T: Clone + kube::Resource + 'static>(r: &Reflector<T>, what: &str) -> Result<()>
where
    T::DynamicType: Eq + std::hash::Hash + Clone,
{
    r.wait_until_ready().await.map_err(|e| {
        Error::Watch(format!(
            "the {what} watch ended before its first list ({e}): are the CRDs installed (`subsea crds | kubectl apply -f -`)?"
        ))
    })
}

/// Runs until SIGTERM or Ctrl-C; removes its table on the way out.
pub async fn run(opts: Options) -> Result<()> {
    let client = subsea_runtime::client::local(opts.kubeconfig.as_deref(), opts.context.as_deref()).await?;
    let join = subsea_runtime::join::service_discovery(&client).await?;
    let cluster = join.cluster_id.clone();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let imports: Reflector<ServiceImport> = reflect_with(Api::all(client.clone()), (), tx.clone());
    let slices: Reflector<EndpointSlice> = reflect_with(Api::all(client.clone()), (), tx.clone());
    let gateways: Reflector<Gateway> = reflect_with(
        Api::namespaced(client.clone(), subsea_runtime::objects::OPERATOR_NAMESPACE),
        (),
        tx,
    );
    ready(&imports, "ServiceImport").await?;
    ready(&slices, "EndpointSlice").await?;
    ready(&gateways, "Gateway").await?;
    tracing::info!(%cluster, node = %opts.node, table = nft::TABLE, "clusterset-ip running");
    let last: std::sync::Mutex<Option<Vec<Forward>>> = Default::default();
    Loop::new("clusterset-ip")
        .resync(Duration::from_secs(30))
        .run(&mut rx, subsea_runtime::shutdown::signal(), |_| async {
            let (i, s, g) = (imports.state(), slices.state(), gateways.state());
            let gateways = refs(&g);
            let connected = subsea_lighthouse_core::snapshot::connected(&gateways);
            let rtt_us = subsea_lighthouse_core::snapshot::rtts(&gateways);
            let health = Health {
                connected: connected.as_ref(),
                rtt_us: &rtt_us,
            };
            let here = Here {
                cluster: &cluster,
                node: &opts.node,
                local_first: opts.local_first,
            };
            let want = forwards(here, &refs(&i), &refs(&s), health);
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            if last.as_ref() != Some(&want) {
                nft::apply(&want).map_err(|e| e.to_string())?;
                tracing::info!(
                    forwards = want.len(),
                    without_backends = want.iter().filter(|f| f.backends.is_empty()).count(),
                    "clusterset IPs programmed"
                );
                *last = Some(want);
            }
            Ok::<(), String>(())
        })
        .await;
    nft::remove()?;
    tracing::info!("clusterset-ip stopped; its nftables table removed");
    Ok(())
}
