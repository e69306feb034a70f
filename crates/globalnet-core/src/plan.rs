//! One Globalnet pass: allocations, ingress objects and the gateway's NAT rules.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use subsea_api::globalnet::{CLUSTER_EGRESS_NAME, MAX_EGRESS_IPS};
use subsea_cidr::Cidr;

use crate::pool::Pool;
use crate::{Egress, Export, Ingress, Key, Scope, Target, World};

/// Kind names used in [`Key`].
pub const EGRESS: &str = "GlobalEgressIP";
/// Cluster-scoped egress kind.
pub const CLUSTER_EGRESS: &str = "ClusterGlobalEgressIP";
/// Ingress kind.
pub const INGRESS: &str = "GlobalIngressIP";
/// The gateway node's own address (its annotation).
const GATEWAY: &str = "Node";

/// The `Allocated` condition an object should carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    /// True when the object holds what it asked for.
    pub ok: bool,
    /// `Success`, `ZeroInput`, `InvalidInput`, `IPPoolAllocationFailed`.
    pub reason: &'static str,
    /// For people.
    pub message: String,
}

/// What one object's status should say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The IPs it holds.
    pub ips: Vec<Ipv4Addr>,
    /// Its `Allocated` condition.
    pub condition: Condition,
}

/// A GlobalIngressIP that must be created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewIngress {
    /// Identity (kind is [`INGRESS`]).
    pub key: Key,
    /// Its target.
    pub target: Target,
}

/// SNAT of some sources to some global IPs (a range when several).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snat {
    /// Source addresses, or whole CIDRs for the cluster-wide rule.
    pub sources: Vec<Cidr>,
    /// The global IPs (contiguous).
    pub to: Vec<Ipv4Addr>,
}

/// The active gateway's NAT rules, in match order.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Rules {
    /// Destinations whose traffic is SNATed (the other clusters' GlobalCIDRs).
    pub remote: Vec<Cidr>,
    /// Global IP → local address (headless pods, the gateway itself).
    pub dnat: Vec<(Ipv4Addr, Ipv4Addr)>,
    /// Sources → global IPs; the first matching rule wins.
    pub snat: Vec<Snat>,
}

/// The outcome of a pass.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Plan {
    /// The gateway node's global IP (its `submariner.io/globalIp` annotation).
    pub gateway_ip: Option<(String, Ipv4Addr)>,
    /// Create the well-known ClusterGlobalEgressIP (it is missing).
    pub create_cluster_egress: bool,
    /// GlobalIngressIPs to create.
    pub create: Vec<NewIngress>,
    /// GlobalIngressIPs to delete (their Service is no longer exported, or the pod is gone).
    pub delete: Vec<Key>,
    /// Every egress and ingress object's status.
    pub status: BTreeMap<Key, Outcome>,
    /// ClusterIP Services reachable at a global IP: `(namespace, service, ip)`.
    pub services: Vec<(String, String, Ipv4Addr)>,
    /// The gateway's NAT rules (only meaningful on the active gateway).
    pub rules: Rules,
}

/// The name of the GlobalIngressIP of a headless Service's pod.
pub fn pod_ingress_name(pod: &str) -> String {
    let name = format!("pod-{pod}");
    name.chars().take(63).collect()
}

fn ok(ips: Vec<Ipv4Addr>) -> Outcome {
    let message = match ips.as_slice() {
        [] => "no global IP requested".to_string(),
        [one] => format!("allocated global IP {one}"),
        [first, .., last] => format!("allocated {} global IPs {first}-{last}", ips.len()),
    };
    Outcome {
        ips,
        condition: Condition {
            ok: true,
            reason: "Success",
            message,
        },
    }
}

fn failed(reason: &'static str, message: String) -> Outcome {
    Outcome {
        ips: vec![],
        condition: Condition {
            ok: false,
            reason,
            message,
        },
    }
}

/// How many IPs an egress object asks for, or why its request is unusable.
fn wanted(e: &Egress) -> Result<u32, Outcome> {
    let field = if e.key.kind == CLUSTER_EGRESS {
        "numGlobalIPs"
    } else {
        "numberOfIPs"
    };
    if !(0..=MAX_EGRESS_IPS).contains(&e.requested) {
        return Err(failed(
            "InvalidInput",
            format!(
                "{field} {} is out of range: ask for 0 to {MAX_EGRESS_IPS} global IPs",
                e.requested
            ),
        ));
    }
    if let Scope::Namespace(Some(sel)) = &e.scope {
        if let Some(why) = crate::select::invalid(sel) {
            return Err(failed("InvalidInput", why));
        }
    }
    if e.requested == 0 {
        return Err(failed(
            "ZeroInput",
            format!("{field} is 0: no global IPs allocated"),
        ));
    }
    Ok(e.requested as u32)
}

/// One claimant of addresses, in allocation order.
struct Claim {
    key: Key,
    created: String,
    wanted: Result<u32, Outcome>,
    held: Vec<Option<Ipv4Addr>>,
}

fn parse(held: &[String]) -> Vec<Option<Ipv4Addr>> {
    held.iter().map(|s| s.parse().ok()).collect()
}

fn contiguous(ips: &[Ipv4Addr]) -> bool {
    ips.windows(2)
        .all(|w| u32::from(w[1]) == u32::from(w[0]).wrapping_add(1))
}

/// Keeps what each claimant validly holds (older first), then gives the rest first-fit.
fn allocate(pool: &mut Pool, mut claims: Vec<Claim>) -> BTreeMap<Key, Outcome> {
    claims.sort_by(|a, b| (&a.created, &a.key).cmp(&(&b.created, &b.key)));
    let mut out = BTreeMap::new();
    let mut pending = Vec::new();
    for c in claims {
        let n = match &c.wanted {
            Ok(n) => *n,
            Err(outcome) => {
                out.insert(c.key, outcome.clone());
                continue;
            }
        };
        let held: Option<Vec<Ipv4Addr>> = c.held.iter().copied().collect();
        let keep = held.filter(|h| {
            h.len() == n as usize
                && contiguous(h)
                && h.iter().all(|ip| pool.holds(*ip))
                && h.iter().collect::<BTreeSet<_>>().len() == h.len()
        });
        match keep {
            Some(h) if h.iter().all(|ip| !pool.is_used(*ip)) => {
                for ip in &h {
                    pool.claim(*ip);
                }
                out.insert(c.key, ok(h));
            }
            _ => pending.push((c.key, n)),
        }
    }
    // A gateway without a valid address is served first: it must stay reachable for health
    // checks, and it only ever needs one.
    pending.sort_by_key(|(key, _)| key.kind != GATEWAY);
    for (key, n) in pending {
        let outcome = match pool.take(n) {
            Ok(ips) => ok(ips),
            Err(e) => failed(
                "IPPoolAllocationFailed",
                format!(
                    "the cluster's global IP pool cannot give {} contiguous IPs ({} free): delete unused GlobalEgressIPs or GlobalIngressIPs, ask for fewer, or rejoin with a larger --globalnet-cluster-size",
                    e.wanted, e.free
                ),
            ),
        };
        out.insert(key, outcome);
    }
    out
}

fn ingress_key(namespace: &str, name: &str) -> Key {
    Key {
        kind: INGRESS,
        namespace: namespace.into(),
        name: name.into(),
    }
}

/// The GlobalIngressIPs the exported Services need.
fn wanted_ingress(exports: &[Export]) -> BTreeMap<Key, Target> {
    let mut out = BTreeMap::new();
    for e in exports {
        if e.headless {
            for pod in &e.ready_pods {
                out.insert(
                    ingress_key(&e.namespace, &pod_ingress_name(pod)),
                    Target::HeadlessPod {
                        service: e.name.clone(),
                        pod: pod.clone(),
                    },
                );
            }
        } else {
            out.insert(
                ingress_key(&e.namespace, &e.name),
                Target::Service(e.name.clone()),
            );
        }
    }
    out
}

/// Decides a whole pass. The gateway's own IP, the egress objects and the ingress objects
/// share one pool; an address is held by at most one of them.
pub fn plan(w: &World) -> Plan {
    let mut p = Plan::default();
    let Some(mut pool) = Pool::new(&w.global_cidr) else {
        return p;
    };
    let wanted_in = wanted_ingress(&w.exports);
    let existing: BTreeMap<&Key, &Ingress> = w.ingress.iter().map(|i| (&i.key, i)).collect();
    for (key, target) in &wanted_in {
        match existing.get(key) {
            Some(i) if i.target == *target => {}
            Some(_) => {
                // Same name, other target (a Service turned headless): replace it.
                p.delete.push(key.clone());
                p.create.push(NewIngress {
                    key: key.clone(),
                    target: target.clone(),
                });
            }
            None => p.create.push(NewIngress {
                key: key.clone(),
                target: target.clone(),
            }),
        }
    }
    for i in &w.ingress {
        if !wanted_in.contains_key(&i.key) {
            p.delete.push(i.key.clone());
        }
    }
    p.create_cluster_egress = !w.egress.iter().any(|e| e.key.kind == CLUSTER_EGRESS);

    let gateway_key = Key {
        kind: GATEWAY,
        namespace: String::new(),
        name: w.gateway.as_ref().map(|g| g.node.clone()).unwrap_or_default(),
    };
    let mut claims = Vec::new();
    if let Some(g) = &w.gateway {
        claims.push(Claim {
            key: gateway_key.clone(),
            // The gateway's annotation is kept only when no object holds the address (it may
            // be stale from an earlier term as gateway): it sorts after every object.
            created: "\u{10FFFF}".into(),
            wanted: Ok(1),
            held: g.held.iter().map(|s| s.parse().ok()).collect(),
        });
    }
    for e in &w.egress {
        claims.push(Claim {
            key: e.key.clone(),
            created: e.created.clone(),
            wanted: wanted(e),
            held: parse(&e.held),
        });
    }
    let replaced: BTreeSet<&Key> = p.delete.iter().collect();
    for i in w.ingress.iter().filter(|i| !replaced.contains(&i.key)) {
        claims.push(Claim {
            key: i.key.clone(),
            created: i.created.clone(),
            wanted: Ok(1),
            held: if i.held.is_empty() {
                vec![]
            } else {
                vec![i.held.parse().ok()]
            },
        });
    }
    for n in &p.create {
        claims.push(Claim {
            key: n.key.clone(),
            // New objects come last: they have no creation time yet.
            created: "~".into(),
            wanted: Ok(1),
            held: vec![],
        });
    }
    let mut status = allocate(&mut pool, claims);
    if let Some(g) = &w.gateway {
        if let Some(ip) = status.remove(&gateway_key).and_then(|o| o.ips.first().copied()) {
            p.gateway_ip = Some((g.node.clone(), ip));
        }
    }
    p.status = status;
    p.services = services(w, &p);
    p.rules = rules(w, &p);
    p
}

fn services(w: &World, p: &Plan) -> Vec<(String, String, Ipv4Addr)> {
    w.exports
        .iter()
        .filter(|e| !e.headless)
        .filter_map(|e| {
            let ip = p.status.get(&ingress_key(&e.namespace, &e.name))?.ips.first()?;
            Some((e.namespace.clone(), e.name.clone(), *ip))
        })
        .collect()
}

fn host(ip: Ipv4Addr) -> Cidr {
    Cidr {
        addr: ip.into(),
        prefix: 32,
    }
}

fn rules(w: &World, p: &Plan) -> Rules {
    let mut r = Rules {
        remote: w.remote_cidrs.clone(),
        ..Rules::default()
    };
    let pod_ip = |ns: &str, name: &str| {
        w.pods
            .iter()
            .find(|p| p.namespace == ns && p.name == name)
            .and_then(|p| p.ip)
    };
    let mut covered: BTreeSet<Ipv4Addr> = BTreeSet::new();
    if let (Some(g), Some((_, ip))) = (&w.gateway, &p.gateway_ip) {
        r.dnat.push((*ip, g.cni_ip));
        r.snat.push(Snat {
            sources: vec![host(g.cni_ip)],
            to: vec![*ip],
        });
        covered.insert(g.cni_ip);
    }
    // Headless pods: one address each, both ways.
    let mut headless: Vec<(&Key, &Target)> = w
        .ingress
        .iter()
        .map(|i| (&i.key, &i.target))
        .chain(p.create.iter().map(|n| (&n.key, &n.target)))
        .collect();
    headless.sort();
    headless.dedup();
    for (key, target) in headless {
        let Target::HeadlessPod { pod, .. } = target else {
            continue;
        };
        let (Some(local), Some(global)) = (
            pod_ip(&key.namespace, pod),
            p.status.get(key).and_then(|o| o.ips.first()),
        ) else {
            continue;
        };
        if covered.insert(local) {
            r.dnat.push((*global, local));
            r.snat.push(Snat {
                sources: vec![host(local)],
                to: vec![*global],
            });
        }
    }
    // Namespace egress: selector objects before namespace-wide ones.
    let mut egress: Vec<&Egress> = w
        .egress
        .iter()
        .filter(|e| matches!(e.scope, Scope::Namespace(_)))
        .collect();
    egress.sort_by_key(|e| {
        (
            !matches!(e.scope, Scope::Namespace(Some(_))),
            e.created.clone(),
            e.key.clone(),
        )
    });
    for e in egress {
        let Some(to) = p
            .status
            .get(&e.key)
            .map(|o| o.ips.clone())
            .filter(|v| !v.is_empty())
        else {
            continue;
        };
        let Scope::Namespace(sel) = &e.scope else {
            continue;
        };
        let mut sources: Vec<Cidr> = w
            .pods
            .iter()
            .filter(|pod| pod.namespace == e.key.namespace)
            .filter(|pod| {
                sel.as_ref()
                    .is_none_or(|s| crate::select::matches(s, &pod.labels))
            })
            .filter_map(|pod| pod.ip)
            .filter(|ip| covered.insert(*ip))
            .map(host)
            .collect();
        sources.sort_by_key(|c| c.to_string());
        if !sources.is_empty() {
            r.snat.push(Snat { sources, to });
        }
    }
    let cluster = w
        .egress
        .iter()
        .find(|e| e.key.kind == CLUSTER_EGRESS && e.key.name == CLUSTER_EGRESS_NAME)
        .and_then(|e| p.status.get(&e.key))
        .map(|o| o.ips.clone())
        .filter(|v| !v.is_empty());
    if let Some(to) = cluster {
        r.snat.push(Snat {
            sources: w.pod_cidrs.clone(),
            to,
        });
    }
    r
}

#[cfg(test)]
mod tests;
