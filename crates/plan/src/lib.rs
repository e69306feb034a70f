//! The gateway's connection plan, as a pure function of the remote Endpoints and the local
//! cluster: which clusters become WireGuard peers, at which address and port, with which
//! AllowedIPs, which routes go into the tunnel, and why any endpoint was left out. No I/O.
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use subsea_api::submariner::EndpointSpec;
use subsea_cidr::Cidr;

/// Submariner's default dataplane port.
pub const DEFAULT_PORT: u16 = 4500;
/// Persistent keepalive Submariner configures.
pub const KEEPALIVE_SECS: u16 = 10;

/// The local side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Local {
    /// Our cluster ID.
    pub cluster_id: String,
    /// Our service and pod CIDRs.
    pub subnets: Vec<Cidr>,
}

/// A remote Endpoint with the time it was created (RFC 3339), to pick the newest per cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Remote {
    /// The Endpoint's spec.
    pub spec: EndpointSpec,
    /// `metadata.creationTimestamp`.
    pub created: String,
    /// Its `submariner-io/clusterID` label, when it has one.
    pub label: Option<String>,
}

/// One planned tunnel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Remote cluster.
    pub cluster_id: String,
    /// Its cable name.
    pub cable_name: String,
    /// Its WireGuard public key.
    pub public_key: subsea_wg::keys::Key,
    /// Where to send.
    pub endpoint: SocketAddr,
    /// Whether the address is the public (NATed) one.
    pub using_nat: bool,
    /// Remote subnets: AllowedIPs and routes.
    pub allowed_ips: Vec<Cidr>,
}

/// An endpoint left out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// Remote cluster.
    pub cluster_id: String,
    /// Why, in words an operator can act on.
    pub reason: String,
}

/// The plan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Tunnels to have, sorted by cluster ID.
    pub peers: Vec<Peer>,
    /// Endpoints not connected.
    pub skipped: Vec<Skipped>,
}

impl Plan {
    /// Every remote subnet to route into the tunnel, sorted.
    pub fn routes(&self) -> Vec<Cidr> {
        let mut r: Vec<Cidr> = self
            .peers
            .iter()
            .flat_map(|p| p.allowed_ips.iter().copied())
            .collect();
        r.sort_by_key(|c| (c.addr, c.prefix));
        r.dedup();
        r
    }

    /// The peer table for `subsea_wg::Device::set_peers`.
    pub fn wg_peers(&self) -> Vec<subsea_wg::PeerConfig> {
        self.peers
            .iter()
            .map(|p| subsea_wg::PeerConfig {
                public_key: p.public_key,
                endpoint: Some(p.endpoint),
                allowed_ips: p.allowed_ips.clone(),
                keepalive: Some(KEEPALIVE_SECS),
            })
            .collect()
    }
}

/// The address to use for a remote endpoint: Submariner's rule when NAT discovery has no
/// answer — the public IP when the remote has NAT enabled and publishes one, else the private.
fn address(spec: &EndpointSpec) -> Option<(IpAddr, bool)> {
    let public = spec.public_ip.parse::<IpAddr>().ok();
    let private = spec.private_ip.parse::<IpAddr>().ok();
    match (spec.nat_enabled, public, private) {
        (true, Some(ip), _) => Some((ip, true)),
        (_, _, Some(ip)) => Some((ip, false)),
        (_, Some(ip), None) => Some((ip, true)),
        _ => None,
    }
}

/// Most subnets one remote Endpoint may publish: every one becomes a route and AllowedIPs
/// entry, so a cluster publishing thousands would slow every other gateway.
pub const MAX_SUBNETS: usize = 256;

fn skip(cluster_id: &str, reason: String) -> Skipped {
    Skipped {
        cluster_id: cluster_id.to_string(),
        reason,
    }
}

fn list(c: &[Cidr]) -> String {
    c.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// Plans the tunnels to every remote cluster.
pub fn plan(local: &Local, remotes: &[Remote]) -> Plan {
    // One endpoint per cluster: the newest (a gateway failover leaves the old one briefly).
    let mut newest: BTreeMap<&str, &Remote> = BTreeMap::new();
    let mut out = Plan::default();
    for r in remotes.iter().filter(|r| r.spec.cluster_id != local.cluster_id) {
        // An Endpoint whose spec names another cluster than its label is not trusted: the
        // broker's per-cluster rule only vouches for the label.
        if let Some(label) = r.label.as_deref().filter(|l| *l != r.spec.cluster_id) {
            out.skipped.push(skip(
                &r.spec.cluster_id,
                format!(
                    "endpoint {:?} is labelled submariner-io/clusterID={label} but its spec.cluster_id is {:?}; ignored",
                    r.spec.cable_name, r.spec.cluster_id
                ),
            ));
            continue;
        }
        let keep = newest.get(r.spec.cluster_id.as_str()).is_none_or(|cur| {
            (r.created.as_str(), r.spec.cable_name.as_str())
                > (cur.created.as_str(), cur.spec.cable_name.as_str())
        });
        if keep {
            newest.insert(&r.spec.cluster_id, r);
        }
    }
    let mut taken: Vec<(String, Cidr)> = Vec::new();
    // Contested subnets stay with the cluster that published first: a newcomer (or a
    // misbehaving cluster) cannot take another's traffic by choosing a name that sorts first.
    let mut ordered: Vec<(&str, &Remote)> = newest.into_iter().collect();
    ordered.sort_by(|a, b| (a.1.created.as_str(), a.0).cmp(&(b.1.created.as_str(), b.0)));
    for (cluster, r) in ordered {
        let spec = &r.spec;
        if spec.backend != "wireguard" {
            out.skipped.push(skip(
                cluster,
                format!(
                    "its cable driver is {:?}; subsea's data plane is WireGuard",
                    spec.backend
                ),
            ));
            continue;
        }
        let Some(key) = spec
            .backend_config
            .get("publicKey")
            .and_then(|k| subsea_wg::keys::from_base64(k))
        else {
            out.skipped.push(skip(
                cluster,
                "its endpoint has no valid backend_config.publicKey".into(),
            ));
            continue;
        };
        if spec.subnets.len() > MAX_SUBNETS {
            out.skipped.push(skip(
                cluster,
                format!(
                    "its endpoint lists {} subnets, more than the {MAX_SUBNETS} a cluster may publish",
                    spec.subnets.len()
                ),
            ));
            continue;
        }
        let subnets: Result<Vec<Cidr>, subsea_cidr::CidrError> =
            spec.subnets.iter().map(|s| Cidr::parse(s)).collect();
        let subnets = match subnets {
            Ok(s) if !s.is_empty() => s,
            Ok(_) => {
                out.skipped
                    .push(skip(cluster, "its endpoint lists no subnets".into()));
                continue;
            }
            Err(e) => {
                out.skipped
                    .push(skip(cluster, format!("its endpoint has a bad subnet: {e}")));
                continue;
            }
        };
        let local_clash = subsea_cidr::overlaps(&subnets, &local.subnets);
        if let Some((theirs, ours)) = local_clash.first() {
            out.skipped.push(skip(cluster, format!("its subnet {theirs} overlaps local subnet {ours}; clusters need distinct CIDRs, or Globalnet (`subctl deploy-broker --globalnet`)")));
            continue;
        }
        if let Some((other, c)) = taken.iter().find(|(_, c)| subnets.iter().any(|s| s.overlaps(c))) {
            out.skipped.push(skip(
                cluster,
                format!("its subnets {} overlap {c} of cluster {other:?}", list(&subnets)),
            ));
            continue;
        }
        let Some((ip, using_nat)) = address(spec) else {
            out.skipped.push(skip(
                cluster,
                "its endpoint has neither a valid public nor private IP".into(),
            ));
            continue;
        };
        let port = spec
            .backend_config
            .get("udp-port")
            .and_then(|p| p.parse().ok())
            .unwrap_or(DEFAULT_PORT);
        taken.extend(subnets.iter().map(|c| (cluster.to_string(), *c)));
        out.peers.push(Peer {
            cluster_id: cluster.to_string(),
            cable_name: spec.cable_name.clone(),
            public_key: key,
            endpoint: SocketAddr::new(ip, port),
            using_nat,
            allowed_ips: subnets,
        });
    }
    out.peers.sort_by(|a, b| a.cluster_id.cmp(&b.cluster_id));
    out
}

/// Routes to add and to remove to go from `current` to `desired`.
pub fn route_changes(current: &[Cidr], desired: &[Cidr]) -> (Vec<Cidr>, Vec<Cidr>) {
    let add = desired.iter().filter(|c| !current.contains(c)).copied().collect();
    let remove = current.iter().filter(|c| !desired.contains(c)).copied().collect();
    (add, remove)
}

#[cfg(test)]
mod tests;
