//! One pass of the Lighthouse agent as a pure function: from everything the agent sees (local
//! exports, services and slices; the broker's imports and slices) to the writes that bring the
//! world in line. Level-triggered: the pass recomputes everything, and on a converged world it
//! returns no action at all, so an idle agent makes no API calls.

use std::collections::{BTreeSet, HashSet};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use subsea_api::mcs::v1alpha1::ServiceImport;
use subsea_api::mcs::{Condition, ServiceExportStatus};

use crate::export::{self, key, label};
use crate::exported::{self, ExportSpec};
use crate::labels::*;

mod index;
pub use index::Memo;
use index::{Index, Of};

/// Marks the aggregated imports the agent writes in service namespaces.
pub const AGGREGATE_LABEL: &str = "app.kubernetes.io/managed-by";

/// A ServiceExport as the agent reads it, of either version. The v1alpha1 spec is empty and
/// usually absent from what users write, which the derived `ServiceExport` type (spec
/// required) would refuse; a v1beta1 one may carry labels and annotations to export.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct Export {
    /// The export's metadata; namespace and name are the Service's.
    pub metadata: ObjectMeta,
    /// Its labels and annotations for the ServiceImport.
    #[serde(default)]
    pub spec: ExportSpec,
    /// Its conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ServiceExportStatus>,
}

/// What the agent sees.
#[derive(Clone, Copy, Debug)]
pub struct World<'a> {
    /// This cluster's ID.
    pub cluster: &'a str,
    /// The broker namespace this cluster publishes into.
    pub broker_ns: &'a str,
    /// Local ServiceExports.
    pub exports: &'a [&'a Export],
    /// Local Services.
    pub services: &'a [&'a Service],
    /// Local EndpointSlices: Kubernetes' and Lighthouse's copies.
    pub slices: &'a [&'a EndpointSlice],
    /// Local ServiceImports (the aggregates among them are the agent's).
    pub local_imports: &'a [&'a ServiceImport],
    /// Every cluster's ServiceImports on the broker.
    pub broker_imports: &'a [&'a ServiceImport],
    /// Every cluster's Lighthouse EndpointSlices on the broker.
    pub broker_slices: &'a [&'a EndpointSlice],
    /// The time written into new conditions (RFC 3339).
    pub now: &'a str,
    /// With Globalnet: the cluster's allocated global IPs, which replace its own addresses.
    pub globalnet: Option<&'a crate::globalnet::GlobalIps>,
    /// ClusterSetIP settings.
    pub vips: &'a crate::vip::Settings,
    /// Condition reasons in the MCS API's words ([`export::mcs_reasons`]), not Lighthouse's.
    pub mcs_reasons: bool,
}

/// Labels and annotations an update must remove: the executor's merge patch keeps every key
/// it does not name, and the agent owns the whole metadata of the imports it writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stale {
    /// Label keys.
    pub labels: Vec<String>,
    /// Annotation keys.
    pub annotations: Vec<String>,
    /// `spec.ips` must go (a released ClusterSetIP).
    pub ips: bool,
}

impl Stale {
    /// What `existing` has and `desired` does not.
    pub fn between(existing: &ServiceImport, desired: &ServiceImport) -> Self {
        Self {
            ips: !existing.spec.ips.is_empty() && desired.spec.ips.is_empty(),
            ..Self::between_meta(&existing.metadata, &desired.metadata)
        }
    }

    /// The label and annotation keys `existing` has and `desired` does not.
    pub fn between_meta(existing: &ObjectMeta, desired: &ObjectMeta) -> Self {
        let gone = |old: &Option<std::collections::BTreeMap<String, String>>,
                    new: &Option<std::collections::BTreeMap<String, String>>| {
            old.iter()
                .flatten()
                .filter(|(k, _)| !new.as_ref().is_some_and(|n| n.contains_key(*k)))
                .map(|(k, _)| k.clone())
                .collect()
        };
        Self {
            labels: gone(&existing.labels, &desired.labels),
            annotations: gone(&existing.annotations, &desired.annotations),
            ips: false,
        }
    }

    /// Whether nothing is to be removed.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty() && !self.ips
    }
}

/// Which API an action goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The broker, in [`World::broker_ns`].
    Broker,
    /// This cluster.
    Local,
}

/// An object to create or update.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    /// A ServiceImport (with its status, written through the status subresource), and the
    /// labels and annotations the update must remove.
    Import(ServiceImport, Stale),
    /// An EndpointSlice.
    Slice(EndpointSlice),
}

/// The kind of an object to delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `multicluster.x-k8s.io/v1alpha1` ServiceImport.
    ServiceImport,
    /// `discovery.k8s.io/v1` EndpointSlice.
    EndpointSlice,
}

/// Whether the agent's watch cache held the object a write is for: the executor creates or
/// patches without reading it first (and falls back to a read when the cache was stale).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cached {
    /// Not seen: create it.
    Absent,
    /// Seen, saying something else: update it.
    Present,
}

/// One write.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create `object`, or update it to say what it says.
    Apply(Target, Object, Cached),
    /// Delete an object (absent is fine).
    Delete {
        /// Where.
        target: Target,
        /// Its kind.
        kind: Kind,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// Replace a ServiceExport's conditions.
    ExportConditions {
        /// Namespace of the export.
        namespace: String,
        /// Name of the export.
        name: String,
        /// The conditions.
        conditions: Vec<Condition>,
    },
}

/// Whether the agent writes this local object (an aggregated import or a slice copy): its own
/// output, whose changes need not wake it.
pub fn written_here(meta: &ObjectMeta) -> bool {
    label(meta, MANAGED_BY) == MANAGER || label(meta, AGGREGATE_LABEL) == MANAGER
}

/// `desired` unless `existing` (same namespace and name) already says all of it.
fn unless_covered<T: Serialize>(desired: &T, existing: Option<&T>) -> bool {
    let Some(current) = existing else {
        return true;
    };
    match (serde_json::to_value(current), serde_json::to_value(desired)) {
        (Ok(c), Ok(d)) => !export::covers(&c, &d),
        _ => true,
    }
}

/// Pushes the write of `desired` (made an [`Object`] by `wrap`) unless `existing` holds it;
/// returns whether it did.
fn apply<T: Serialize>(
    out: &mut Vec<Action>,
    target: Target,
    desired: T,
    existing: Option<&T>,
    wrap: fn(T) -> Object,
) -> bool {
    let needed = unless_covered(&desired, existing);
    if needed {
        let cached = if existing.is_some() {
            Cached::Present
        } else {
            Cached::Absent
        };
        out.push(Action::Apply(target, wrap(desired), cached));
    }
    needed
}

/// [`apply`] for a ServiceImport: also written when `existing` has labels or annotations that
/// `desired` no longer has.
fn apply_import(
    out: &mut Vec<Action>,
    target: Target,
    desired: ServiceImport,
    existing: Option<&ServiceImport>,
) -> bool {
    let stale = existing.map_or_else(Stale::default, |e| Stale::between(e, &desired));
    if stale.is_empty() {
        return apply(out, target, desired, existing, |i| {
            Object::Import(i, Stale::default())
        });
    }
    out.push(Action::Apply(
        target,
        Object::Import(desired, stale),
        Cached::Present,
    ));
    true
}

fn delete(target: Target, kind: Kind, (namespace, name): (&str, &str)) -> Action {
    Action::Delete {
        target,
        kind,
        namespace: namespace.into(),
        name: name.into(),
    }
}

/// The writes of one pass, in order: publish this cluster's exports on the broker, their
/// conditions, withdrawals, then the local aggregates and slice copies and their removals.
pub fn plan(w: &World) -> Vec<Action> {
    plan_with(w, &Memo::default()).0
}

/// [`plan`], skipping the local writes `memo` (the last pass's) found unnecessary while their
/// inputs are unchanged; returns the memo for the next pass. Same actions as [`plan`].
pub fn plan_with(w: &World, memo: &Memo) -> (Vec<Action>, Memo) {
    let mut out = Vec::new();
    let mut next = Memo::default();
    let (lh_slices, k8s_slices): (Vec<&EndpointSlice>, Vec<&EndpointSlice>) = w
        .slices
        .iter()
        .partition(|sl| label(&sl.metadata, MANAGED_BY) == MANAGER);
    let ix = Index::new(w, &lh_slices, &k8s_slices);
    let vips = crate::vip::Table::new(w.broker_imports);
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    for e in w
        .exports
        .iter()
        .filter(|e| e.metadata.deletion_timestamp.is_none())
    {
        let (ns, name) = key(&e.metadata);
        let svc = ix.services.get(&(ns, name)).copied();
        let mut valid = export::validate(svc).and_then(|()| exported::validate(&e.spec));
        // Under Globalnet the Service is published as other clusters reach it.
        let global_svc = match (&valid, svc, w.globalnet) {
            (Ok(()), Some(s), Some(g)) if !export::headless(s) => match crate::globalnet::service(s, g) {
                Ok(gs) => Some(gs),
                Err(e) => {
                    valid = Err(e);
                    None
                }
            },
            _ => None,
        };
        let svc = global_svc.as_ref().or(svc);
        let mut conflict = None;
        if let (Ok(()), Some(svc)) = (&valid, svc) {
            let mut backends: Vec<&EndpointSlice> = ix.backends.get(&(ns, name)).cloned().unwrap_or_default();
            // Under Globalnet a headless export publishes its pods' global IPs.
            let global_headless = w.globalnet.filter(|_| export::headless(svc));
            let global_backends;
            if let Some(g) = global_headless {
                global_backends = crate::globalnet::headless_slices(ns, &backends, g);
                backends = global_backends.iter().collect();
            }
            let exported_at = e
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| format!("{:.0}", t.0))
                .unwrap_or_default();
            let mut si = export::cluster_import(w.cluster, w.broker_ns, svc, &exported_at);
            si.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .extend(exported::carry(&e.spec));
            if !export::headless(svc) && crate::vip::wanted(&e.metadata, w.vips.default_on) {
                let (v4, v6) = export::families(svc);
                for fam in [v4.then_some(false), v6.then_some(true)].into_iter().flatten() {
                    if let Some(c) = vips.claim(ns, name, w.vips.range_of(fam), w.now) {
                        si.metadata
                            .annotations
                            .get_or_insert_with(Default::default)
                            .insert(crate::vip::annotation_of(fam).into(), c.value());
                    }
                }
            }
            let exporters = ix
                .exporters
                .get(&(ns, name))
                .map(Vec::as_slice)
                .unwrap_or_default();
            conflict = export::conflict(w.cluster, &si, exporters);
            let held_back = conflict.as_ref().is_some_and(|c| c.blocking);
            if held_back {
                // Published as held back (no VIP claim, no external DNS record, no slices):
                // the first exporter reports the conflict too.
                let a = si.metadata.annotations.get_or_insert_with(Default::default);
                for k in [
                    crate::vip::ANNOTATION,
                    crate::vip::ANNOTATION_V6,
                    subsea_api::extdns::EXTERNAL_ANNOTATION,
                ] {
                    a.remove(k);
                }
                a.insert(TYPE_CONFLICT.into(), "true".into());
            }
            wanted.insert(export::broker_name(name, ns, w.cluster));
            let existing = ix.broker_imports.get(&key(&si.metadata)).copied();
            apply_import(&mut out, Target::Broker, si, existing);
            if !held_back {
                for mut sl in export::cluster_slices(w.cluster, w.broker_ns, svc, &backends) {
                    if global_headless.is_some() {
                        sl.metadata
                            .annotations
                            .get_or_insert_with(Default::default)
                            .insert(crate::globalnet::GLOBALNET_ENABLED.into(), "true".into());
                    }
                    wanted.insert(key(&sl.metadata).1.to_string());
                    let existing = ix.broker_slices.get(&key(&sl.metadata)).copied();
                    apply(&mut out, Target::Broker, sl, existing, Object::Slice);
                }
            }
        }
        let ours = export::broker_name(name, ns, w.cluster);
        let exported = ix
            .broker_imports
            .get(&(w.broker_ns, ours.as_str()))
            .is_some_and(|i| !export::type_conflicted(i));
        let blocked = conflict.as_ref().is_some_and(|c| c.blocking);
        let old = e
            .status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default();
        let mut conds = export::conditions(old, &valid, exported && !blocked, conflict.as_ref(), w.now);
        if w.mcs_reasons {
            conds = export::mcs_reasons(conds);
        }
        if !export::same_conditions(old, &conds) {
            out.push(Action::ExportConditions {
                namespace: ns.into(),
                name: name.into(),
                conditions: conds,
            });
        }
    }
    // Withdraw what this cluster no longer exports.
    let mine = |m: &ObjectMeta| label(m, CLUSTER_ID) == w.cluster && !wanted.contains(key(m).1);
    for i in w.broker_imports.iter().filter(|i| mine(&i.metadata)) {
        out.push(delete(Target::Broker, Kind::ServiceImport, key(&i.metadata)));
    }
    for sl in w.broker_slices.iter().filter(|sl| mine(&sl.metadata)) {
        out.push(delete(Target::Broker, Kind::EndpointSlice, key(&sl.metadata)));
    }

    // Import: every exported service, aggregated, into its namespace here.
    let services: BTreeSet<(&str, &str)> = ix
        .exporters
        .iter()
        .filter(|(_, is)| is.iter().any(|i| !export::type_conflicted(i)))
        .map(|(k, _)| *k)
        .filter(|(ns, n)| !ns.is_empty() && !n.is_empty())
        .collect();
    let families = crate::import_status::cluster_families(w.services);
    // The services whose slice copies exist once this pass's writes are done: every broker
    // slice is copied (below). Counting those written now, not only those already seen, lets
    // the first write of an import carry its final status, rather than Absent and then Present
    // a pass later.
    let with_copies: HashSet<(&str, &str)> = w
        .broker_slices
        .iter()
        .map(|sl| {
            (
                label(&sl.metadata, SOURCE_NAMESPACE),
                label(&sl.metadata, SERVICE_NAME),
            )
        })
        .collect();
    for &(ns, name) in &services {
        let exporters = ix
            .exporters
            .get(&(ns, name))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let existing = ix.local_imports.get(&(ns, name)).copied();
        let print = index::print(
            exporters.iter().map(|i| &i.metadata),
            existing.map(|e| &e.metadata),
        );
        // The VIP also follows other services' claims, which the print does not cover.
        let ips_held = || existing.is_some_and(|e| e.spec.ips == vips.ips(ns, name, &e.spec.ip_families));
        // The status also follows the slice copies, which the print does not cover either.
        let present = with_copies.contains(&(ns, name));
        let status = |families_of: &[String], old: Option<&ServiceImport>| {
            let old = old
                .and_then(|e| e.status.as_ref())
                .map(|s| s.conditions.as_slice())
                .unwrap_or_default();
            crate::import_status::of(old, families_of, &families, present, w.now)
        };
        let status_held = || {
            existing.is_some_and(|e| {
                let (objects, ready) = status(&e.spec.ip_families, Some(e));
                e.status.as_ref().is_some_and(|st| {
                    st.endpoint_slice_objects.as_deref() == Some(objects.as_str())
                        && export::same_conditions(&st.conditions, std::slice::from_ref(&ready))
                })
            })
        };
        if memo.holds(Of::Imports, (ns, name), print) && ips_held() && status_held() {
            next.record(Of::Imports, (ns, name), print);
            continue;
        }
        if let Some(mut agg) = export::aggregate(ns, name, exporters) {
            agg.spec.ips = vips.ips(ns, name, &agg.spec.ip_families);
            let (objects, ready) = status(&agg.spec.ip_families, existing);
            let st = agg.status.get_or_insert_with(Default::default);
            st.endpoint_slice_objects = Some(objects);
            st.conditions = vec![ready];
            agg.metadata
                .labels
                .get_or_insert_with(Default::default)
                .insert(AGGREGATE_LABEL.to_string(), MANAGER.to_string());
            if !apply_import(&mut out, Target::Local, agg, existing) {
                next.record(Of::Imports, (ns, name), print);
            }
        }
    }
    for i in w
        .local_imports
        .iter()
        .filter(|i| label(&i.metadata, AGGREGATE_LABEL) == MANAGER)
    {
        if !services.contains(&key(&i.metadata)) {
            out.push(delete(Target::Local, Kind::ServiceImport, key(&i.metadata)));
        }
    }
    let mut copies: Vec<(&str, String)> = Vec::with_capacity(w.broker_slices.len());
    for bs in w.broker_slices {
        let (ns, name) = export::local_slice_key(bs);
        let existing = ix.copies.get(&(ns, name.as_str())).copied();
        let print = index::print([&bs.metadata], existing.map(|e| &e.metadata));
        let target = (ns, name.as_str());
        if memo.holds(Of::Slices, target, print) {
            next.record(Of::Slices, target, print);
        } else if !apply(
            &mut out,
            Target::Local,
            export::local_slice(bs),
            existing,
            Object::Slice,
        ) {
            next.record(Of::Slices, target, print);
        }
        copies.push((ns, name));
    }
    let copies: HashSet<(&str, &str)> = copies.iter().map(|(ns, n)| (*ns, n.as_str())).collect();
    for sl in &lh_slices {
        let (ns, name) = key(&sl.metadata);
        if !copies.contains(&(ns, name)) {
            out.push(delete(Target::Local, Kind::EndpointSlice, (ns, name)));
        }
    }
    (out, next)
}

#[cfg(test)]
mod tests;
