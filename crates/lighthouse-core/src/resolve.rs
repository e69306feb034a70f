//! Which answer a `clusterset.local` query gets, as a pure function of a [`Snapshot`]: the
//! name forms of the MCS DNS spec and Lighthouse (`<cluster>.<svc>.<ns>.svc`, headless
//! `<host>.<cluster>.<svc>.<ns>.svc`, SRV `_port._proto.…`, headless SRV per backend and PTR
//! per backend address), local-cluster preference, round robin over healthy connected clusters,
//! and optionally nearest-first by measured RTT.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A port of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    /// Port name (may be empty).
    pub name: String,
    /// `tcp`, `udp` or `sctp`, lowercase.
    pub protocol: String,
    /// Port number.
    pub port: u16,
}

/// One exporting cluster of a ClusterSetIP service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterAddrs {
    /// Cluster ID.
    pub cluster: String,
    /// Its service IPs.
    pub ips: Vec<IpAddr>,
    /// Whether any backend is ready.
    pub ready: bool,
}

/// One backend of a headless service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backend {
    /// Cluster ID.
    pub cluster: String,
    /// Hostname (StatefulSet pod name), if any.
    pub hostname: Option<String>,
    /// Addresses.
    pub ips: Vec<IpAddr>,
    /// Ready.
    pub ready: bool,
}

/// A service as DNS sees it.
#[derive(Debug, Default)]
pub struct Service {
    /// Headless (per-backend records) or ClusterSetIP (per-cluster service IPs).
    pub headless: bool,
    /// ClusterSetIP: every exporting cluster.
    pub clusters: Vec<ClusterAddrs>,
    /// Headless: every backend of every exporting cluster.
    pub backends: Vec<Backend>,
    /// Ports.
    pub ports: Vec<Port>,
    /// ClusterSetIP: the service's VIPs (`ServiceImport.spec.ips`), answered instead of a
    /// cluster's service IP when there are any.
    pub vips: Vec<IpAddr>,
    /// `trafficDistribution: PreferClose`: the local cluster, then the nearest by measured RTT
    /// (as `--prefer-nearest` does for every service).
    pub prefer_close: bool,
    /// Round-robin position.
    pub next: AtomicUsize,
}

/// What the server knows, swapped whole on every change.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Services by `(namespace, name)`; shared with the next snapshot while unchanged.
    pub services: HashMap<(String, String), Arc<Service>>,
    /// Clusters whose tunnel is connected (the local one included); `None`: no Gateway status
    /// is known, so every cluster counts as connected (Lighthouse does the same).
    pub connected: Option<HashSet<String>>,
    /// RTT to each connected cluster in µs, for nearest-first answers.
    pub rtt_us: HashMap<String, u64>,
    /// Order by RTT instead of round robin.
    pub prefer_nearest: bool,
    /// Which services have `<cluster>.<svc>` names (and their SRV), which the MCS DNS spec
    /// forbids and Lighthouse serves; per-backend `<host>.<cluster>.<svc>` names of headless
    /// services are served in every mode.
    pub cluster_names: ClusterNames,
    /// The names each VIP and ready headless backend address has, for PTR answers
    /// ([`Snapshot::index_reverse`]), relative to the zone.
    pub reverse: HashMap<IpAddr, Vec<Vec<String>>>,
    /// Our cluster ID.
    pub local: String,
}

/// Which services are given `<cluster>.<svc>.<ns>.svc` names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClusterNames {
    /// Every service, as Lighthouse does (Submariner-compatible: `subctl verify` and Submariner
    /// users rely on them).
    Always,
    /// Services without a ClusterSetIP: a service with one follows the spec (its VIP is the
    /// service's one address), the others Lighthouse.
    #[default]
    WithoutVip,
    /// None, as the MCS DNS spec says.
    Never,
}

impl ClusterNames {
    /// Whether `svc` has them.
    pub fn of(self, svc: &Service) -> bool {
        match self {
            Self::Always => true,
            Self::WithoutVip => svc.vips.is_empty(),
            Self::Never => false,
        }
    }
}

/// Query type, as far as the resolver cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qtype {
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
    /// Service record.
    Srv,
    /// `dns-version` TXT.
    Txt,
    /// Anything else: NODATA for names that exist.
    Other,
}

/// The answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Address records.
    Addrs(Vec<IpAddr>),
    /// SRV records: port and target labels (relative to the zone).
    Srv(Vec<(u16, Vec<String>)>),
    /// TXT strings.
    Txt(Vec<String>),
    /// The name exists but has no records of this type.
    NoData,
    /// No such name.
    NxDomain,
}

/// The `trafficDistribution` that asks for the nearest backends.
pub const PREFER_CLOSE: &str = "PreferClose";

/// The schema version the MCS DNS spec's `dns-version` TXT record announces.
pub const DNS_VERSION: &str = "1.0.0";

impl Snapshot {
    fn connected(&self, cluster: &str) -> bool {
        cluster == self.local || self.connected.as_ref().is_none_or(|c| c.contains(cluster))
    }

    fn namespace_exists(&self, ns: &str) -> bool {
        self.services.keys().any(|(n, _)| n == ns)
    }
}

fn family(ips: &[IpAddr], q: Qtype) -> Vec<IpAddr> {
    ips.iter()
        .copied()
        .filter(|ip| {
            if q == Qtype::Aaaa {
                ip.is_ipv6()
            } else {
                ip.is_ipv4()
            }
        })
        .collect()
}

fn addrs_or_nodata(ips: Vec<IpAddr>) -> Answer {
    if ips.is_empty() {
        Answer::NoData
    } else {
        Answer::Addrs(ips)
    }
}

fn clusterset_ip(snap: &Snapshot, svc: &Service, q: Qtype) -> Answer {
    // A routed VIP is the answer wherever the service is served from (the spec's A record).
    if !svc.vips.is_empty() {
        return addrs_or_nodata(family(&svc.vips, q));
    }
    // Local preference: our own ready export wins.
    if let Some(c) = svc.clusters.iter().find(|c| c.cluster == snap.local && c.ready) {
        return addrs_or_nodata(family(&c.ips, q));
    }
    let mut eligible: Vec<&ClusterAddrs> = svc
        .clusters
        .iter()
        .filter(|c| c.ready && snap.connected(&c.cluster) && !family(&c.ips, q).is_empty())
        .collect();
    if eligible.is_empty() {
        return Answer::NoData;
    }
    let pick = if snap.prefer_nearest || svc.prefer_close {
        eligible.sort_by_key(|c| snap.rtt_us.get(&c.cluster).copied().unwrap_or(u64::MAX));
        eligible[0]
    } else {
        eligible[svc.next.fetch_add(1, Ordering::Relaxed) % eligible.len()]
    };
    addrs_or_nodata(family(&pick.ips, q))
}

/// The label a headless backend's own name starts with: its hostname, else its first address
/// with dots or colons as dashes (`10-129-4-11`), as Kubernetes names pods without one.
pub fn host_label(b: &Backend) -> String {
    match b.hostname.as_deref().filter(|h| !h.is_empty()) {
        Some(h) => h.to_lowercase(),
        None => b
            .ips
            .first()
            .map(|ip| ip.to_string().replace(['.', ':'], "-"))
            .unwrap_or_default(),
    }
}

/// The ready backends of a headless service that an unnamed (`None`) or named cluster offers.
fn ready_backends<'a>(
    snap: &'a Snapshot,
    svc: &'a Service,
    cluster: Option<&'a str>,
) -> impl Iterator<Item = &'a Backend> {
    svc.backends
        .iter()
        .filter(|b| b.ready)
        .filter(move |b| match cluster {
            Some(c) => b.cluster == c,
            None => snap.connected(&b.cluster),
        })
}

fn headless(snap: &Snapshot, svc: &Service, cluster: Option<&str>, host: Option<&str>, q: Qtype) -> Answer {
    let mut ips: Vec<IpAddr> = ready_backends(snap, svc, cluster)
        .filter(|b| host.is_none_or(|h| host_label(b) == h))
        .flat_map(|b| family(&b.ips, q))
        .collect();
    ips.dedup();
    addrs_or_nodata(ips)
}

/// SRV records. A ClusterSetIP service has one per port, targeting the service's (or the named
/// cluster's) name; a headless one, as the MCS DNS spec says, one per ready backend and port,
/// each targeting the backend's own name `<host>.<cluster>.<svc>.<ns>.svc`.
fn srv(
    snap: &Snapshot,
    svc: &Service,
    port: Option<(&str, &str)>,
    cluster: Option<&str>,
    name: &str,
    ns: &str,
) -> Answer {
    let base: Vec<String> = vec![name.into(), ns.into(), "svc".into()];
    let targets: Vec<Vec<String>> = if svc.headless {
        let mut seen = HashSet::new();
        ready_backends(snap, svc, cluster)
            .map(|b| {
                let mut t = vec![host_label(b), b.cluster.clone()];
                t.extend(base.iter().cloned());
                t
            })
            .filter(|t| seen.insert(t.clone()))
            .collect()
    } else {
        let mut t = base;
        if let Some(c) = cluster {
            t.insert(0, c.into());
        }
        vec![t]
    };
    let records: Vec<(u16, Vec<String>)> = svc
        .ports
        .iter()
        .filter(|p| port.is_none_or(|(n, proto)| p.name == n && p.protocol == proto))
        .flat_map(|p| targets.iter().map(move |t| (p.port, t.clone())))
        .collect();
    if records.is_empty() {
        Answer::NoData
    } else {
        Answer::Srv(records)
    }
}

fn exporter(svc: &Service, cluster: &str) -> bool {
    svc.clusters.iter().any(|c| c.cluster == cluster) || svc.backends.iter().any(|b| b.cluster == cluster)
}

/// Resolves `labels` (the query name relative to the zone, lowercase, leftmost first).
pub fn resolve(snap: &Snapshot, labels: &[&str], q: Qtype) -> Answer {
    let n = labels.len();
    if n == 0 || (n == 1 && labels[0] == "svc") {
        return Answer::NoData;
    }
    if n == 1 && labels[0] == "dns-version" {
        return if q == Qtype::Txt {
            Answer::Txt(vec![DNS_VERSION.into()])
        } else {
            Answer::NoData
        };
    }
    if labels[n - 1] != "svc" {
        return Answer::NxDomain;
    }
    if n == 2 {
        return if snap.namespace_exists(labels[0]) {
            Answer::NoData
        } else {
            Answer::NxDomain
        };
    }
    let (name, ns) = (labels[n - 3], labels[n - 2]);
    let Some(svc) = snap.services.get(&(ns.to_string(), name.to_string())) else {
        return Answer::NxDomain;
    };
    let prefix = &labels[..n - 3];
    let want_addr = matches!(q, Qtype::A | Qtype::Aaaa);
    match prefix {
        [] => match q {
            Qtype::Srv => srv(snap, svc, None, None, name, ns),
            _ if !want_addr => Answer::NoData,
            _ if svc.headless => headless(snap, svc, None, None, q),
            _ => clusterset_ip(snap, svc, q),
        },
        [p, proto] if p.starts_with('_') && proto.starts_with('_') => {
            if q == Qtype::Srv {
                srv(snap, svc, Some((&p[1..], &proto[1..])), None, name, ns)
            } else {
                Answer::NoData
            }
        }
        [p, proto, cluster] if p.starts_with('_') && proto.starts_with('_') => {
            if !exporter(svc, cluster) || !snap.cluster_names.of(svc) {
                Answer::NxDomain
            } else if q == Qtype::Srv {
                srv(snap, svc, Some((&p[1..], &proto[1..])), Some(cluster), name, ns)
            } else {
                Answer::NoData
            }
        }
        [cluster] => {
            if !exporter(svc, cluster) {
                return Answer::NxDomain;
            }
            if !snap.cluster_names.of(svc) {
                // Under a headless service the name is an empty non-terminal of its backends'.
                return if svc.headless {
                    Answer::NoData
                } else {
                    Answer::NxDomain
                };
            }
            match q {
                Qtype::Srv => srv(snap, svc, None, Some(cluster), name, ns),
                _ if !want_addr => Answer::NoData,
                _ if svc.headless => headless(snap, svc, Some(cluster), None, q),
                // A named cluster answers whatever its health: the caller asked for it.
                _ => addrs_or_nodata(
                    svc.clusters
                        .iter()
                        .filter(|c| c.cluster == *cluster)
                        .flat_map(|c| family(&c.ips, q))
                        .collect(),
                ),
            }
        }
        [host, cluster] if svc.headless => {
            let known = svc
                .backends
                .iter()
                .any(|b| b.cluster == *cluster && host_label(b) == *host);
            if !known {
                Answer::NxDomain
            } else if want_addr {
                headless(snap, svc, Some(cluster), Some(host), q)
            } else {
                Answer::NoData
            }
        }
        _ => Answer::NxDomain,
    }
}

/// The names a reverse (PTR) query for `ip` answers, relative to the zone, as the MCS DNS spec
/// says: `<svc>.<ns>.svc` for a VIP, `<host>.<cluster>.<svc>.<ns>.svc` for every ready headless
/// backend with that address. Empty when the address is not one this server knows.
pub fn reverse(snap: &Snapshot, ip: IpAddr) -> Vec<Vec<String>> {
    snap.reverse.get(&ip).cloned().unwrap_or_default()
}

impl Snapshot {
    /// Rebuilds [`Snapshot::reverse`] from the services: every ready headless backend address
    /// names its backend, every VIP its service.
    pub fn index_reverse(&mut self) {
        let mut reverse: HashMap<IpAddr, Vec<Vec<String>>> = HashMap::new();
        let mut add = |ip: IpAddr, target: Vec<String>| {
            let targets = reverse.entry(ip).or_default();
            if !targets.contains(&target) {
                targets.push(target);
            }
        };
        for ((ns, name), svc) in &self.services {
            for ip in &svc.vips {
                add(*ip, vec![name.clone(), ns.clone(), "svc".into()]);
            }
            for b in svc.backends.iter().filter(|b| svc.headless && b.ready) {
                for ip in &b.ips {
                    add(
                        *ip,
                        vec![
                            host_label(b),
                            b.cluster.clone(),
                            name.clone(),
                            ns.clone(),
                            "svc".into(),
                        ],
                    );
                }
            }
        }
        for targets in reverse.values_mut() {
            targets.sort();
        }
        self.reverse = reverse;
    }
}

/// The address a reverse name stands for: `d.c.b.a.in-addr.arpa` or the 32 nibbles of
/// `….ip6.arpa` (labels leftmost first, lowercase, without the root). `None` for any other name.
pub fn reverse_name(labels: &[&str]) -> Option<IpAddr> {
    match labels {
        [d, c, b, a, "in-addr", "arpa"] => {
            let octet = |s: &str| -> Option<u8> {
                // No leading zeros or signs: a reverse name has one spelling per address.
                (s == "0" || !s.starts_with('0'))
                    .then(|| s.parse().ok())
                    .flatten()
            };
            Some(IpAddr::V4(std::net::Ipv4Addr::new(
                octet(a)?,
                octet(b)?,
                octet(c)?,
                octet(d)?,
            )))
        }
        [nibbles @ .., "ip6", "arpa"] if nibbles.len() == 32 => {
            let mut v: u128 = 0;
            for n in nibbles.iter().rev() {
                let [c] = n.as_bytes() else { return None };
                v = (v << 4) | u128::from((*c as char).to_digit(16)?);
            }
            Some(IpAddr::V6(std::net::Ipv6Addr::from(v)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
