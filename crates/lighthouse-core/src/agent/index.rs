//! What one pass looks objects up by, built once per pass, so a pass costs time linear in the
//! objects it sees rather than their product (10,000 imports would otherwise be 10^8 compares),
//! and the memo of writes already found unnecessary.

use std::collections::{HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use subsea_api::mcs::v1alpha1::ServiceImport;

use crate::export::{key, label};
use crate::labels::*;

/// `(namespace, name)`.
pub(super) type Key<'a> = (&'a str, &'a str);

fn by_key<'a, T>(list: &[&'a T], meta: impl Fn(&T) -> &ObjectMeta) -> HashMap<Key<'a>, &'a T> {
    list.iter().map(|o| (key(meta(o)), *o)).collect()
}

/// Lookups over a pass's [`super::World`].
pub(super) struct Index<'a> {
    pub services: HashMap<Key<'a>, &'a Service>,
    /// Kubernetes' slices by `(namespace, service)`.
    pub backends: HashMap<Key<'a>, Vec<&'a EndpointSlice>>,
    /// Broker imports by `(source namespace, service)`.
    pub exporters: HashMap<Key<'a>, Vec<&'a ServiceImport>>,
    pub broker_imports: HashMap<Key<'a>, &'a ServiceImport>,
    pub broker_slices: HashMap<Key<'a>, &'a EndpointSlice>,
    pub local_imports: HashMap<Key<'a>, &'a ServiceImport>,
    /// Lighthouse's local slice copies.
    pub copies: HashMap<Key<'a>, &'a EndpointSlice>,
}

impl<'a> Index<'a> {
    pub fn new(
        w: &super::World<'a>,
        lh_slices: &[&'a EndpointSlice],
        k8s_slices: &[&'a EndpointSlice],
    ) -> Self {
        let mut backends: HashMap<Key<'a>, Vec<&'a EndpointSlice>> = HashMap::new();
        for sl in k8s_slices {
            let svc = label(&sl.metadata, K8S_SERVICE_NAME);
            backends.entry((key(&sl.metadata).0, svc)).or_default().push(sl);
        }
        let mut exporters: HashMap<Key<'a>, Vec<&'a ServiceImport>> = HashMap::new();
        for i in w.broker_imports {
            let service = (
                label(&i.metadata, SOURCE_NAMESPACE),
                label(&i.metadata, SERVICE_NAME),
            );
            exporters.entry(service).or_default().push(i);
        }
        Self {
            services: by_key(w.services, |s| &s.metadata),
            backends,
            exporters,
            broker_imports: by_key(w.broker_imports, |i| &i.metadata),
            broker_slices: by_key(w.broker_slices, |s| &s.metadata),
            local_imports: by_key(w.local_imports, |i| &i.metadata),
            copies: by_key(lh_slices, |s| &s.metadata),
        }
    }
}

/// Local writes a pass found unnecessary, by target `(namespace, name)` (imports and slices
/// apart): the resourceVersions of the inputs the desired object was computed from and of the
/// object found holding it. While none of them changes, the next pass skips building and
/// comparing that object again, which is most of a pass's cost on a large cluster set. A pure
/// value: [`super::plan_with`] takes the last pass's and returns the next.
///
/// Each entry is one 64-bit hash of the target and its print, so that looking one up costs no
/// allocation (a pass looks up every imported object). A false hit needs two different
/// targets or prints to collide in 64 bits, and would only delay a write until its inputs
/// change again.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Memo {
    imports: HashSet<u64>,
    slices: HashSet<u64>,
}

impl Memo {
    /// Entries (imports and slices) held.
    pub fn len(&self) -> usize {
        self.imports.len() + self.slices.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which of the memo's two sets.
#[derive(Clone, Copy)]
pub(super) enum Of {
    Imports,
    Slices,
}

fn entry(target: Key<'_>, print: u64) -> u64 {
    let mut h = DefaultHasher::new();
    target.hash(&mut h);
    print.hash(&mut h);
    h.finish()
}

impl Memo {
    fn set(&self, of: Of) -> &HashSet<u64> {
        match of {
            Of::Imports => &self.imports,
            Of::Slices => &self.slices,
        }
    }

    /// Whether the write to `target` was found unnecessary with the same `print`.
    pub(super) fn holds(&self, of: Of, target: Key<'_>, print: Option<u64>) -> bool {
        print.is_some_and(|p| self.set(of).contains(&entry(target, p)))
    }

    pub(super) fn record(&mut self, of: Of, target: Key<'_>, print: Option<u64>) {
        if let Some(p) = print {
            let set = match of {
                Of::Imports => &mut self.imports,
                Of::Slices => &mut self.slices,
            };
            set.insert(entry(target, p));
        }
    }
}

/// A fingerprint of the inputs' and the existing object's resourceVersions; `None` when one
/// has none (then nothing is remembered).
pub(super) fn print<'m>(
    inputs: impl IntoIterator<Item = &'m ObjectMeta>,
    existing: Option<&ObjectMeta>,
) -> Option<u64> {
    let mut h = DefaultHasher::new();
    for m in inputs {
        key(m).hash(&mut h);
        m.resource_version.as_deref()?.hash(&mut h);
    }
    existing?.resource_version.as_deref()?.hash(&mut h);
    Some(h.finish())
}
