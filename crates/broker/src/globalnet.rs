//! Globalnet on the broker: the `submariner-globalnet-info` ConfigMap (Submariner's keys and
//! value encodings) and the first-fit allocation of each cluster's GlobalCIDR from the range.
//! Pure: `subctl join` reads the ConfigMap, calls [`allocate`] and writes the result back under
//! optimistic concurrency, retrying on a conflict.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use subsea_cidr::Cidr;

use crate::Invalid;
use crate::validate::exact_cidr;

/// The ConfigMap's name on the broker.
pub const CONFIGMAP: &str = "submariner-globalnet-info";
/// Submariner's default range.
pub const DEFAULT_RANGE: &str = "242.0.0.0/8";
/// Submariner's default number of global IPs per cluster.
pub const DEFAULT_CLUSTER_SIZE: u64 = 65536;
/// Smallest useful block: the gateway's IP and a few egress IPs.
pub const MIN_CLUSTER_SIZE: u64 = 4;

const ENABLED: &str = "globalnetEnabled";
const RANGE: &str = "globalnetCidrRange";
const SIZE: &str = "globalnetClusterSize";
const CLUSTERS: &str = "clusterinfo";

/// The range and default block size of a Globalnet broker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The supernet the clusters' blocks come from.
    pub range: Cidr,
    /// Default addresses per cluster (a power of two).
    pub cluster_size: u64,
}

/// One cluster's allocation, as Submariner records it under `clusterinfo`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// The cluster ID.
    pub cluster_id: String,
    /// Its GlobalCIDRs (one in practice).
    pub global_cidr: Vec<String>,
}

/// The whole ConfigMap's data.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Info {
    /// Range and size, when Globalnet is on.
    pub settings: Option<Settings>,
    /// Allocations so far.
    pub clusters: Vec<ClusterInfo>,
}

/// The prefix length of the smallest power-of-two block holding `size` IPv4 addresses.
fn prefix_for(size: u64) -> u8 {
    let bits = 64 - (size.max(1) - 1).leading_zeros();
    (32 - bits.min(32)) as u8
}

impl Settings {
    /// Checks a range and cluster size as `deploy-broker --globalnet-cidr-range
    /// --globalnet-cluster-size` give them; the size is rounded up to a power of two.
    pub fn new(range: &str, cluster_size: u64) -> Result<Self, Invalid> {
        let r = exact_cidr(range, "--globalnet-cidr-range")?;
        if !r.addr.is_ipv4() {
            return Err(Invalid(format!(
                "--globalnet-cidr-range: {range:?} is IPv6; Globalnet allocates IPv4 addresses: use an IPv4 range such as {DEFAULT_RANGE}"
            )));
        }
        if cluster_size < MIN_CLUSTER_SIZE {
            return Err(Invalid(format!(
                "--globalnet-cluster-size {cluster_size} is too small: a cluster needs at least {MIN_CLUSTER_SIZE} global IPs (default {DEFAULT_CLUSTER_SIZE})"
            )));
        }
        let rounded = 1u64 << (32 - prefix_for(cluster_size));
        if u128::from(rounded) > r.size() {
            return Err(Invalid(format!(
                "--globalnet-cluster-size {cluster_size} does not fit in --globalnet-cidr-range {range} ({} addresses): use a larger range or a smaller size",
                r.size()
            )));
        }
        Ok(Self {
            range: r,
            cluster_size: rounded,
        })
    }
}

fn bad(key: &str, why: impl std::fmt::Display) -> Invalid {
    Invalid(format!(
        "the broker's ConfigMap {CONFIGMAP} has a bad {key:?} ({why}); fix it with kubectl edit, or re-run `subctl deploy-broker`"
    ))
}

impl Info {
    /// Reads the ConfigMap's `data`.
    pub fn from_data(data: &BTreeMap<String, String>) -> Result<Self, Invalid> {
        let enabled = match data.get(ENABLED).map(String::as_str) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => return Err(bad(ENABLED, format!("{other:?} is not true or false"))),
        };
        let clusters = match data.get(CLUSTERS) {
            None => vec![],
            Some(text) if text.trim().is_empty() => vec![],
            Some(text) => serde_json::from_str(text).map_err(|e| bad(CLUSTERS, e))?,
        };
        if !enabled {
            return Ok(Self {
                settings: None,
                clusters,
            });
        }
        // Submariner stores the range JSON-encoded (with quotes); accept the bare form too.
        let raw = data.get(RANGE).ok_or_else(|| bad(RANGE, "missing"))?;
        let range: String = serde_json::from_str(raw).unwrap_or_else(|_| raw.clone());
        let size: u64 = data
            .get(SIZE)
            .ok_or_else(|| bad(SIZE, "missing"))?
            .trim()
            .parse()
            .map_err(|e| bad(SIZE, e))?;
        let settings = Settings::new(&range, size).map_err(|e| bad(RANGE, e))?;
        Ok(Self {
            settings: Some(settings),
            clusters,
        })
    }

    /// The ConfigMap's `data`, encoded as Submariner writes it.
    pub fn to_data(&self) -> BTreeMap<String, String> {
        let mut d = BTreeMap::new();
        d.insert(ENABLED.into(), self.settings.is_some().to_string());
        if let Some(s) = &self.settings {
            d.insert(RANGE.into(), format!("\"{}\"", s.range));
            d.insert(SIZE.into(), s.cluster_size.to_string());
        }
        if !self.clusters.is_empty() {
            // Serialising plain strings cannot fail.
            d.insert(
                CLUSTERS.into(),
                serde_json::to_string(&self.clusters).unwrap_or_default(),
            );
        }
        d
    }

    /// The allocated block of one cluster.
    pub fn of(&self, cluster_id: &str) -> Option<&ClusterInfo> {
        self.clusters.iter().find(|c| c.cluster_id == cluster_id)
    }

    /// Removes a cluster's allocation (uninstall, or a join that failed after allocating).
    pub fn release(&mut self, cluster_id: &str) -> bool {
        let before = self.clusters.len();
        self.clusters.retain(|c| c.cluster_id != cluster_id);
        before != self.clusters.len()
    }
}

/// The ConfigMap `deploy-broker` writes over `existing` (what a previous run left, with the
/// joined clusters' blocks): the new settings keep every allocation, or the change is refused.
pub fn redeploy(existing: &Info, settings: Option<Settings>) -> Result<Info, Invalid> {
    let holders = || {
        existing
            .clusters
            .iter()
            .map(|c| c.cluster_id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if existing.clusters.is_empty() || existing.settings == settings {
        return Ok(Info {
            settings,
            clusters: existing.clusters.clone(),
        });
    }
    let Some(new) = settings else {
        return Err(Invalid(format!(
            "this broker has Globalnet on and clusters ({}) hold GlobalCIDRs: redeploy it with --globalnet, or uninstall those clusters first",
            holders()
        )));
    };
    for c in &existing.clusters {
        for b in c.global_cidr.iter().filter_map(|s| Cidr::parse(s).ok()) {
            if !new.range.contains(b.addr) || b.prefix < new.range.prefix {
                return Err(Invalid(format!(
                    "--globalnet-cidr-range {} does not hold {b}, the GlobalCIDR of joined cluster {:?}: keep a range that holds every joined cluster's block ({})",
                    new.range,
                    c.cluster_id,
                    holders()
                )));
            }
        }
    }
    Ok(Info {
        settings: Some(new),
        clusters: existing.clusters.clone(),
    })
}

/// The outcome of [`allocate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    /// The cluster's GlobalCIDR.
    pub cidr: Cidr,
    /// Whether `info` changed (and must be written back).
    pub changed: bool,
}

fn taken_by_others(info: &Info, cluster_id: &str) -> Vec<(String, Cidr)> {
    info.clusters
        .iter()
        .filter(|c| c.cluster_id != cluster_id)
        .flat_map(|c| {
            c.global_cidr
                .iter()
                .filter_map(|s| Cidr::parse(s).ok())
                .map(|b| (c.cluster_id.clone(), b))
        })
        .collect()
}

fn record(info: &mut Info, cluster_id: &str, cidr: Cidr) -> bool {
    let entry = ClusterInfo {
        cluster_id: cluster_id.into(),
        global_cidr: vec![cidr.to_string()],
    };
    match info.clusters.iter_mut().find(|c| c.cluster_id == cluster_id) {
        Some(c) if *c == entry => false,
        Some(c) => {
            *c = entry;
            true
        }
        None => {
            info.clusters.push(entry);
            true
        }
    }
}

/// Gives `cluster_id` its GlobalCIDR: the `requested` block (`--globalnet-cidr`) when it is
/// inside the range and free, else the block it already has, else the first free aligned block
/// of `size` addresses (`--globalnet-cluster-size`, or the broker's default when 0).
pub fn allocate(
    info: &mut Info,
    cluster_id: &str,
    requested: Option<&str>,
    size: u64,
) -> Result<Allocation, Invalid> {
    let Some(settings) = info.settings else {
        return Err(Invalid(
            "Globalnet is not enabled on this broker: deploy it with `subctl deploy-broker --globalnet`, or join without --globalnet-cidr".into(),
        ));
    };
    let others = taken_by_others(info, cluster_id);
    if let Some(req) = requested {
        let cidr = exact_cidr(req, "--globalnet-cidr")?;
        if !cidr.addr.is_ipv4() || !settings.range.contains(cidr.addr) || cidr.prefix < settings.range.prefix
        {
            return Err(Invalid(format!(
                "--globalnet-cidr {req} is outside the broker's Globalnet range {}: pick a block inside it, or leave the flag out to have one allocated",
                settings.range
            )));
        }
        if let Some((owner, b)) = others.iter().find(|(_, b)| b.overlaps(&cidr)) {
            return Err(Invalid(format!(
                "--globalnet-cidr {req} overlaps {b}, the GlobalCIDR of cluster {owner:?}: pick a free block, or leave the flag out to have one allocated"
            )));
        }
        let changed = record(info, cluster_id, cidr);
        return Ok(Allocation { cidr, changed });
    }
    if let Some(existing) = info
        .of(cluster_id)
        .and_then(|c| c.global_cidr.first())
        .and_then(|s| Cidr::parse(s).ok())
    {
        if let Some((owner, b)) = others.iter().find(|(_, b)| b.overlaps(&existing)) {
            return Err(Invalid(format!(
                "the broker's {CONFIGMAP} records {existing} for cluster {cluster_id:?}, which overlaps {b} of cluster {owner:?}: correct clusterinfo with `kubectl edit configmap {CONFIGMAP}` on the broker"
            )));
        }
        return Ok(Allocation {
            cidr: existing,
            changed: false,
        });
    }
    let size = if size == 0 { settings.cluster_size } else { size };
    if size < MIN_CLUSTER_SIZE {
        return Err(Invalid(format!(
            "--globalnet-cluster-size {size} is too small: a cluster needs at least {MIN_CLUSTER_SIZE} global IPs"
        )));
    }
    let prefix = prefix_for(size);
    if prefix < settings.range.prefix {
        return Err(Invalid(format!(
            "--globalnet-cluster-size {size} is larger than the broker's Globalnet range {}",
            settings.range
        )));
    }
    let block = 1u128 << (32 - prefix);
    let IpAddr::V4(base) = settings.range.addr else {
        return Err(Invalid(format!(
            "the Globalnet range {} is not IPv4",
            settings.range
        )));
    };
    let first = u128::from(u32::from(base));
    let end = first + settings.range.size();
    let mut start = first;
    // Bounded by the number of taken blocks: each overlap jumps past the block it hit.
    while start + block <= end {
        let cidr = Cidr {
            addr: IpAddr::V4(std::net::Ipv4Addr::from(start as u32)),
            prefix,
        };
        match others.iter().find(|(_, b)| b.overlaps(&cidr)) {
            None => {
                let changed = record(info, cluster_id, cidr);
                return Ok(Allocation { cidr, changed });
            }
            Some((_, b)) => {
                let IpAddr::V4(b_addr) = b.addr else {
                    break;
                };
                let past = u128::from(u32::from(b_addr)) + b.size();
                // The next aligned candidate at or after the end of the block hit.
                start = past.div_ceil(block).max(start / block + 1) * block;
            }
        }
    }
    Err(Invalid(format!(
        "the broker's Globalnet range {} has no free block of {size} addresses left ({} clusters hold blocks): ask for fewer with --globalnet-cluster-size, or redeploy the broker with a larger --globalnet-cidr-range",
        settings.range,
        info.clusters.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(range: &str, size: u64) -> Info {
        Info {
            settings: Some(Settings::new(range, size).expect("settings")),
            clusters: vec![],
        }
    }

    #[test]
    fn sizes_round_up_to_powers_of_two() {
        assert_eq!(prefix_for(65536), 16);
        assert_eq!(prefix_for(65537), 15);
        assert_eq!(prefix_for(8), 29);
        assert_eq!(Settings::new("242.0.0.0/8", 1000).expect("ok").cluster_size, 1024);
    }

    #[test]
    fn bad_settings_name_the_flag() {
        let e = Settings::new("242.0.0.0/24", 65536).expect_err("too small");
        assert!(e.0.contains("does not fit"), "{e}");
        let e = Settings::new("242.1.0.0/8", 65536).expect_err("host bits");
        assert!(e.0.contains("--globalnet-cidr-range"), "{e}");
        assert!(Settings::new("fd00::/8", 65536).is_err());
        assert!(Settings::new("242.0.0.0/8", 2).is_err());
        assert!(Settings::new("nonsense", 8).is_err());
    }

    #[test]
    fn first_fit_skips_taken_blocks_and_reuses_own() {
        let mut i = info("242.0.0.0/8", 65536);
        let a = allocate(&mut i, "c1", None, 0).expect("c1");
        assert_eq!(a.cidr.to_string(), "242.0.0.0/16");
        assert!(a.changed);
        let b = allocate(&mut i, "c2", None, 0).expect("c2");
        assert_eq!(b.cidr.to_string(), "242.1.0.0/16");
        let again = allocate(&mut i, "c1", None, 0).expect("c1 again");
        assert_eq!(again.cidr, a.cidr);
        assert!(!again.changed, "a rejoin keeps its block");
        i.release("c1");
        let c = allocate(&mut i, "c3", None, 1 << 17).expect("c3");
        // 242.0.0.0/15 overlaps c2's 242.1.0.0/16; the next aligned /15 is free.
        assert_eq!(c.cidr.to_string(), "242.2.0.0/15");
        let d = allocate(&mut i, "c4", None, 0).expect("c4 fills the hole");
        assert_eq!(d.cidr.to_string(), "242.0.0.0/16");
    }

    #[test]
    fn requested_blocks_are_checked() {
        let mut i = info("242.0.0.0/8", 65536);
        allocate(&mut i, "c1", Some("242.5.0.0/16"), 0).expect("free");
        let e = allocate(&mut i, "c2", Some("242.5.128.0/17"), 0).expect_err("taken");
        assert!(e.0.contains("\"c1\"") && e.0.contains("242.5.0.0/16"), "{e}");
        let e = allocate(&mut i, "c2", Some("10.0.0.0/16"), 0).expect_err("outside");
        assert!(e.0.contains("outside"), "{e}");
        let e = allocate(&mut i, "c2", Some("242.0.0.0/7"), 0).expect_err("bigger than range");
        assert!(e.0.contains("outside") || e.0.contains("host bits"), "{e}");
        assert_eq!(i.clusters.len(), 1, "failed requests record nothing");
    }

    #[test]
    fn a_hand_edited_overlap_is_refused_by_name() {
        let mut i = info("242.0.0.0/8", 65536);
        i.clusters = vec![
            ClusterInfo {
                cluster_id: "c1".into(),
                global_cidr: vec!["242.0.0.0/16".into()],
            },
            ClusterInfo {
                cluster_id: "c2".into(),
                global_cidr: vec!["242.0.128.0/17".into()],
            },
        ];
        let e = allocate(&mut i, "c2", None, 0).expect_err("overlap");
        assert!(e.0.contains("overlaps 242.0.0.0/16 of cluster \"c1\""), "{e}");
    }

    #[test]
    fn exhaustion_is_reported_and_records_nothing() {
        let mut i = info("242.0.0.0/30", 4);
        allocate(&mut i, "c1", None, 0).expect("one block");
        let e = allocate(&mut i, "c2", None, 0).expect_err("full");
        assert!(e.0.contains("no free block"), "{e}");
        assert_eq!(i.clusters.len(), 1);
    }

    #[test]
    fn redeploying_keeps_allocations_or_refuses() {
        let mut i = info("242.0.0.0/8", 65536);
        allocate(&mut i, "c1", Some("242.7.0.0/16"), 0).expect("c1");
        let same = redeploy(&i, i.settings).expect("same settings");
        assert_eq!(same, i);
        let smaller = Settings::new("242.0.0.0/14", 1024).expect("settings");
        let e = redeploy(&i, Some(smaller)).expect_err("c1 outside");
        assert!(e.0.contains("\"c1\"") && e.0.contains("242.7.0.0/16"), "{e}");
        assert!(redeploy(&i, None).expect_err("off").0.contains("c1"));
        let wider = Settings::new("240.0.0.0/4", 4096).expect("settings");
        assert_eq!(redeploy(&i, Some(wider)).expect("wider").clusters, i.clusters);
        assert_eq!(redeploy(&Info::default(), None).expect("fresh"), Info::default());
    }

    #[test]
    fn data_round_trips_in_submariners_encoding() {
        let mut i = info("242.0.0.0/8", 65536);
        allocate(&mut i, "c1", None, 0).expect("c1");
        let d = i.to_data();
        assert_eq!(d["globalnetEnabled"], "true");
        assert_eq!(d["globalnetCidrRange"], "\"242.0.0.0/8\"");
        assert_eq!(d["globalnetClusterSize"], "65536");
        assert_eq!(
            d["clusterinfo"],
            r#"[{"cluster_id":"c1","global_cidr":["242.0.0.0/16"]}]"#
        );
        assert_eq!(Info::from_data(&d).expect("parse"), i);
        let off = Info::default().to_data();
        assert_eq!(off["globalnetEnabled"], "false");
        assert_eq!(Info::from_data(&off).expect("off").settings, None);
        let mut broken = d.clone();
        broken.insert("clusterinfo".into(), "{not json".into());
        assert!(
            Info::from_data(&broken)
                .expect_err("bad")
                .0
                .contains("clusterinfo")
        );
    }
}
