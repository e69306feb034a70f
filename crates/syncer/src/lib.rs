//! Syncing objects between a cluster and the broker, as Submariner's admiral does.
//!
//! [`plan`] decides, from plain lists of source and target objects, what must be created,
//! updated and deleted where: loop prevention by the `submariner-io/clusterID` label, metadata
//! stripping, namespace mapping and orphan cleanup. [`driver`] is the thin kube-rs loop that
//! watches both sides and applies the plan whenever either changes, so a reconnect after the
//! broker was unreachable converges without losing or duplicating anything.

pub mod driver;
pub mod plan;
