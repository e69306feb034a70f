//! Which replica runs the controllers that must run once (namespace termination, garbage
//! collection): the holder of the Lease `kube-system/subsea-apiserver-controllers`, taken and
//! renewed through the ordinary guarded write path, as kube-controller-manager does.

use std::sync::Arc;

use serde_json::{Value, json};
use subsea_store::ApiError;
use subsea_store::meta::{parse_rfc3339, rfc3339};
use subsea_store::store::Part;

use crate::state::{Shared, now};

/// The Lease's namespace and name.
pub const NAMESPACE: &str = "kube-system";
/// The Lease's name.
pub const NAME: &str = "subsea-apiserver-controllers";
/// How long a holder that stopped renewing keeps the Lease.
pub const DURATION_SECONDS: i64 = 15;
/// How often the holder renews.
pub const RENEW_SECONDS: i64 = 2;

/// What a replica does with the Lease.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Write this Lease: take it (free or expired) or renew it.
    Hold(Value),
    /// Another replica holds it.
    Wait {
        /// The holder's identity.
        holder: String,
    },
}

/// Decides from the current Lease (if any) what replica `me` does at `now` (Unix seconds).
pub fn step(current: Option<&Value>, me: &str, now: i64) -> Step {
    let spec = current.map(|l| &l["spec"]);
    let holder = spec
        .and_then(|s| s["holderIdentity"].as_str())
        .unwrap_or_default();
    let renewed = spec
        .and_then(|s| s["renewTime"].as_str())
        .and_then(parse_rfc3339)
        .unwrap_or(i64::MIN / 2);
    let duration = spec
        .and_then(|s| s["leaseDurationSeconds"].as_i64())
        .unwrap_or(DURATION_SECONDS);
    if !holder.is_empty() && holder != me && renewed + duration > now {
        return Step::Wait {
            holder: holder.to_string(),
        };
    }
    let transitions = spec.and_then(|s| s["leaseTransitions"].as_i64()).unwrap_or(0);
    let (acquired, transitions) = if holder == me {
        let acquired = spec.and_then(|s| s["acquireTime"].as_str()).map(String::from);
        (acquired.unwrap_or_else(|| rfc3339(now)), transitions)
    } else if current.is_some() {
        (rfc3339(now), transitions + 1)
    } else {
        (rfc3339(now), 0)
    };
    let mut lease = current.cloned().unwrap_or_else(|| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": NAME, "namespace": NAMESPACE}})
    });
    lease["spec"] = json!({
        "holderIdentity": me,
        "leaseDurationSeconds": DURATION_SECONDS,
        "acquireTime": acquired,
        "renewTime": rfc3339(now),
        "leaseTransitions": transitions,
    });
    Step::Hold(lease)
}

/// Takes or renews the Lease; whether this replica holds it now, and who does otherwise.
pub async fn campaign(shared: &Arc<Shared>, me: &str) -> Result<Result<(), String>, ApiError> {
    shared
        .write(|store, reg| {
            let info = reg
                .find("coordination.k8s.io", "v1", "leases")
                .cloned()
                .ok_or_else(ApiError::no_route)?;
            let current = store.get(&info.type_key(), NAMESPACE, NAME);
            match step(current.as_deref(), me, now()) {
                Step::Wait { holder } => Ok((Err(holder), Vec::new())),
                Step::Hold(lease) => {
                    let (_, events) = match current {
                        Some(_) => store.update(&info, NAMESPACE, NAME, lease, Part::Main, false)?,
                        None => store.create(&info, NAMESPACE, lease, now(), false)?,
                    };
                    Ok((Ok(()), events))
                }
            }
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(step: &Step) -> &str {
        match step {
            Step::Hold(l) => l["spec"]["holderIdentity"].as_str().unwrap_or_default(),
            Step::Wait { holder } => holder,
        }
    }

    #[test]
    fn a_free_lease_is_taken_renewed_and_kept_from_others_until_it_expires() {
        let Step::Hold(mine) = step(None, "a", 1000) else {
            panic!("free lease not taken")
        };
        assert_eq!(mine["spec"]["leaseTransitions"], 0);
        assert_eq!(mine["metadata"]["namespace"], NAMESPACE);
        let Step::Hold(renewed) = step(Some(&mine), "a", 1002) else {
            panic!("not renewed")
        };
        assert_eq!(renewed["spec"]["acquireTime"], mine["spec"]["acquireTime"]);
        assert_eq!(renewed["spec"]["renewTime"], rfc3339(1002));
        assert_eq!(
            step(Some(&renewed), "b", 1002 + DURATION_SECONDS - 1),
            Step::Wait { holder: "a".into() }
        );
        let taken = step(Some(&renewed), "b", 1002 + DURATION_SECONDS);
        assert_eq!(holder(&taken), "b");
        let Step::Hold(taken) = taken else { unreachable!() };
        assert_eq!(taken["spec"]["leaseTransitions"], 1);
        assert_eq!(taken["spec"]["acquireTime"], rfc3339(1002 + DURATION_SECONDS));
    }

    #[test]
    fn a_lease_without_a_holder_or_time_is_free() {
        let empty = json!({"metadata": {"name": NAME}, "spec": {}});
        assert_eq!(holder(&step(Some(&empty), "b", 5)), "b");
        let no_time = json!({"metadata": {"name": NAME}, "spec": {"holderIdentity": "a"}});
        assert_eq!(holder(&step(Some(&no_time), "b", 5)), "b");
    }
}
