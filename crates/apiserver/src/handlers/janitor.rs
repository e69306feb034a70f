//! The background controllers: namespace termination and ownerReference garbage collection.

use std::sync::Arc;

use subsea_store::registry::keys;
use subsea_store::{Registry, ResourceInfo};

use crate::state::{Shared, now};

/// Runs the garbage collector when something was deleted since `seen` deletions; returns the
/// new count.
pub async fn collect_garbage(shared: &Arc<Shared>, seen: u64) -> u64 {
    let now_seen = shared.deletions.load(std::sync::atomic::Ordering::Relaxed);
    if now_seen == seen {
        return seen;
    }
    let _ = shared
        .write(|store, reg: &Registry| {
            let mut types = std::collections::HashSet::new();
            let infos: Vec<&ResourceInfo> = reg.all().iter().filter(|i| types.insert(i.type_key())).collect();
            Ok(((), store.collect_garbage(&infos, now())))
        })
        .await;
    now_seen
}

/// Runs the namespace controller step: empties terminating namespaces and removes empty ones.
pub async fn finalize_namespaces(shared: &Arc<Shared>) {
    let terminating = shared
        .store()
        .objects(keys::NAMESPACES, None)
        .iter()
        .any(|n| n.pointer("/metadata/deletionTimestamp").is_some());
    if !terminating {
        return;
    }
    let _ = shared
        .write(|store, reg: &Registry| {
            let mut seen = std::collections::HashSet::new();
            let infos: Vec<&ResourceInfo> = reg.all().iter().filter(|i| seen.insert(i.type_key())).collect();
            Ok(((), store.finalize_namespaces(&infos, now())))
        })
        .await;
}
