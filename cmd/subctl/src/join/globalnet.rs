//! Join's Globalnet steps: is the broker Globalnet, may this cluster join it, and which
//! GlobalCIDR does it get. The allocation is read-modify-write on the broker's ConfigMap under
//! its resourceVersion, so clusters joining at once never get the same block.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use kube::{Client, core::DynamicObject};
use subsea_broker::Cidr;
use subsea_broker::globalnet::{self, Info};

/// How often a conflicting write is retried before join gives up.
const ATTEMPTS: usize = 30;

/// The broker's Globalnet settings (off when the ConfigMap is missing: an older broker).
pub async fn read(admin: &Client, ns: &str) -> Result<(Info, Option<ConfigMap>)> {
    let api: Api<ConfigMap> = Api::namespaced(admin.clone(), ns);
    let Some(cm) = api.get_opt(globalnet::CONFIGMAP).await? else {
        return Ok((Info::default(), None));
    };
    let info = Info::from_data(&cm.data.clone().unwrap_or_default())?;
    Ok((info, Some(cm)))
}

fn global_of(c: &DynamicObject) -> Vec<String> {
    c.data["spec"]["global_cidr"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect()
}

/// Refuses mixing Globalnet and non-Globalnet clusters, in either direction.
pub fn check_mix(
    on: bool,
    wanted: bool,
    requested: Option<&str>,
    id: &str,
    others: &[&DynamicObject],
) -> Result<()> {
    if on && !wanted {
        bail!(
            "the broker has Globalnet on, and a cluster without Globalnet cannot reach the others' global IPs: join with --globalnet (the default), or deploy a broker without --globalnet for clusters with distinct CIDRs"
        );
    }
    if !on && requested.is_some() {
        bail!(
            "--globalnet-cidr was given but the broker does not have Globalnet on: redeploy it with `subctl deploy-broker --globalnet`, or join without --globalnet-cidr"
        );
    }
    for c in others {
        let other = c.data["spec"]["cluster_id"].as_str().unwrap_or_default();
        let has = !global_of(c).is_empty();
        if on && !has {
            bail!(
                "cluster {other:?} joined this broker without Globalnet, and Globalnet and non-Globalnet clusters cannot be mixed: rejoin {other:?} first (it gets a GlobalCIDR), then join {id:?}"
            );
        }
        if !on && has {
            bail!(
                "cluster {other:?} on this broker uses Globalnet but the broker's {} says Globalnet is off: redeploy the broker with --globalnet",
                globalnet::CONFIGMAP
            );
        }
    }
    Ok(())
}

/// A GlobalCIDR must not overlap any cluster's pod or service CIDRs: the gateways route it.
pub fn check_routable(cidr: &Cidr, mine: &[Cidr], others: &[&DynamicObject]) -> Result<()> {
    if let Some(c) = mine.iter().find(|c| c.overlaps(cidr)) {
        bail!(
            "the GlobalCIDR {cidr} overlaps this cluster's own CIDR {c}: pick another with --globalnet-cidr"
        );
    }
    for o in others {
        let other = o.data["spec"]["cluster_id"].as_str().unwrap_or_default();
        for k in ["service_cidr", "cluster_cidr"] {
            for s in o.data["spec"][k]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str())
            {
                if Cidr::parse(s).is_ok_and(|c| c.overlaps(cidr)) {
                    bail!(
                        "the GlobalCIDR {cidr} overlaps {s}, a CIDR of cluster {other:?}: pick another with --globalnet-cidr"
                    );
                }
            }
        }
    }
    Ok(())
}

/// Changes the ConfigMap with `change` until a write lands without conflict. `change` returns
/// its result and whether the ConfigMap changed (nothing is written when it did not).
async fn update<T>(
    admin: &Client,
    ns: &str,
    mut change: impl FnMut(&mut Info) -> Result<(T, bool)>,
) -> Result<T> {
    let api: Api<ConfigMap> = Api::namespaced(admin.clone(), ns);
    for attempt in 0..ATTEMPTS {
        let (mut info, cm) = read(admin, ns).await?;
        let Some(mut cm) = cm else {
            bail!(
                "the broker has no {} ConfigMap: re-run `subctl deploy-broker --globalnet`",
                globalnet::CONFIGMAP
            );
        };
        let (out, changed) = change(&mut info)?;
        if !changed {
            return Ok(out);
        }
        cm.data = Some(info.to_data());
        match api
            .replace(globalnet::CONFIGMAP, &PostParams::default(), &cm)
            .await
        {
            Ok(_) => return Ok(out),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                // Another join wrote first: re-read and allocate again, after a short,
                // jittered pause so the racers spread out.
                let ms = 20 + rand::random::<u64>() % (20 * (attempt as u64 + 1));
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            Err(e) => return Err(anyhow!("failed to record the GlobalCIDR on the broker: {e}")),
        }
    }
    bail!(
        "could not record the GlobalCIDR on the broker: {ATTEMPTS} writes of {} conflicted with other joins; retry the join",
        globalnet::CONFIGMAP
    )
}

/// Allocates (or confirms) the cluster's GlobalCIDR; returns it and whether this call recorded
/// it (so a failed join can release it).
pub async fn allocate(
    admin: &Client,
    ns: &str,
    id: &str,
    requested: Option<&str>,
    size: u64,
) -> Result<(Cidr, bool)> {
    update(admin, ns, |info| {
        let a = globalnet::allocate(info, id, requested, size)?;
        Ok(((a.cidr, a.changed), a.changed))
    })
    .await
}

/// Removes the cluster's allocation.
pub async fn release(admin: &Client, ns: &str, id: &str) -> Result<()> {
    update(admin, ns, |info| Ok(((), info.release(id)))).await
}
