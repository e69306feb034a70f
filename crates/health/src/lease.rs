//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it:
//! take a free or expired lease, renew our own, follow a live holder, and step down when a
//! renewal cannot be made within the renew deadline.

use std::time::Duration;

/// The Lease fields election reads and writes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LeaseState {
    /// `spec.holderIdentity`.
    pub holder: Option<String>,
    /// `spec.leaseDurationSeconds`.
    pub duration_secs: u32,
    /// `spec.renewTime`, as seconds (fractional) since the epoch.
    pub renew_time: Option<f64>,
    /// `spec.acquireTime`.
    pub acquire_time: Option<f64>,
    /// `spec.leaseTransitions`.
    pub transitions: u32,
}

/// Timing (Submariner's defaults are 15 s / 10 s / 2 s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// How long a lease is valid after its last renewal.
    pub lease: Duration,
    /// How long the leader keeps trying to renew before stepping down.
    pub renew_deadline: Duration,
    /// How often to try.
    pub retry: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }
}

/// What to do now.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Write this lease (take it or renew it); we lead if the write succeeds.
    Write(LeaseState),
    /// Someone else leads; try again later.
    Follow {
        /// The current holder.
        holder: String,
    },
}

/// Decides for `me` given the current lease (`None` when it does not exist yet) at `now`.
pub fn decide(me: &str, current: Option<&LeaseState>, timing: &Timing, now: f64) -> Decision {
    let fresh = |transitions: u32| LeaseState {
        holder: Some(me.to_string()),
        duration_secs: timing.lease.as_secs_f64().ceil() as u32,
        renew_time: Some(now),
        acquire_time: Some(now),
        transitions,
    };
    let Some(cur) = current else {
        return Decision::Write(fresh(0));
    };
    match cur.holder.as_deref() {
        Some(h) if h == me => Decision::Write(LeaseState {
            renew_time: Some(now),
            duration_secs: timing.lease.as_secs_f64().ceil() as u32,
            ..cur.clone()
        }),
        Some(h) if !h.is_empty() => {
            // The holder's own lease duration says how long its last renewal stays valid.
            let expired = expires_at(cur, timing).is_none_or(|t| now > t);
            if expired {
                Decision::Write(fresh(cur.transitions + 1))
            } else {
                Decision::Follow {
                    holder: h.to_string(),
                }
            }
        }
        _ => Decision::Write(fresh(cur.transitions + 1)),
    }
}

/// When a lease held by someone runs out (seconds since the epoch), judged as [`decide`] does.
pub fn expires_at(lease: &LeaseState, timing: &Timing) -> Option<f64> {
    let valid_for = if lease.duration_secs == 0 {
        timing.lease.as_secs_f64()
    } else {
        f64::from(lease.duration_secs)
    };
    lease.renew_time.map(|t| t + valid_for)
}

/// Whether a leader whose last successful renewal was at `last_renew` must step down at `now`.
pub fn must_step_down(last_renew: f64, timing: &Timing, now: f64) -> bool {
    now - last_renew >= timing.renew_deadline.as_secs_f64()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_expired_and_own_leases_are_written() {
        let t = Timing::default();
        let Decision::Write(first) = decide("gw-a", None, &t, 100.0) else {
            panic!("take a missing lease")
        };
        assert_eq!(
            (first.holder.as_deref(), first.duration_secs, first.transitions),
            (Some("gw-a"), 15, 0)
        );
        assert_eq!(
            decide("gw-b", Some(&first), &t, 110.0),
            Decision::Follow {
                holder: "gw-a".into()
            }
        );
        let Decision::Write(taken) = decide("gw-b", Some(&first), &t, 115.5) else {
            panic!("expired lease is taken")
        };
        assert_eq!(
            (taken.holder.as_deref(), taken.transitions, taken.acquire_time),
            (Some("gw-b"), 1, Some(115.5))
        );
        let Decision::Write(renewed) = decide("gw-b", Some(&taken), &t, 117.0) else {
            panic!("renew")
        };
        assert_eq!(
            (renewed.renew_time, renewed.acquire_time, renewed.transitions),
            (Some(117.0), Some(115.5), 1)
        );
        let released = LeaseState {
            holder: Some(String::new()),
            ..taken
        };
        assert!(
            matches!(decide("gw-a", Some(&released), &t, 118.0), Decision::Write(_)),
            "a released lease is free"
        );
    }

    #[test]
    fn leaders_step_down_after_the_renew_deadline() {
        let t = Timing {
            lease: Duration::from_secs(3),
            renew_deadline: Duration::from_secs(2),
            retry: Duration::from_millis(500),
        };
        assert!(!must_step_down(10.0, &t, 11.9));
        assert!(must_step_down(10.0, &t, 12.0));
    }
}
