//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it:
//! take a free or expired lease, renew our own, follow a live holder, and step down when a
//! renewal cannot be made within the renew deadline.
//!
//! Fencing: a leader counts its renew deadline from the instant *before* its last successful
//! renewal was sent, and a follower counts the lease from the `renewTime` written in it (that same
//! instant), so the leader has stepped down `lease - renew_deadline` before anyone may take over.
//! The election loop bounds every API call by what is left of the deadline
//! ([`renew_budget`]), so an API server that stops answering cannot hold a leader past it.
//! Both ends read their own clocks: the margin must cover the clock skew between gateway nodes.

use std::time::Duration;

/// The Lease fields election reads and writes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LeaseState {
    /// `spec.holderIdentity`.
    pub holder: Option<String>,
    /// The lease duration in milliseconds: `spec.leaseDurationSeconds`, or the finer value
    /// subsea keeps beside it (the API counts whole seconds; failover below a second needs
    /// less). 0 when unset.
    pub duration_ms: u64,
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
        duration_ms: millis(timing.lease),
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
            duration_ms: millis(timing.lease),
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
    let valid_for = if lease.duration_ms == 0 {
        timing.lease.as_secs_f64()
    } else {
        lease.duration_ms as f64 / 1000.0
    };
    lease.renew_time.map(|t| t + valid_for)
}

/// Whether a leader whose last successful renewal was at `last_renew` must step down at `now`.
pub fn must_step_down(last_renew: f64, timing: &Timing, now: f64) -> bool {
    now - last_renew >= timing.renew_deadline.as_secs_f64()
}

/// How long a leader's next API call may take: what is left of its renew deadline at `now`.
/// Zero means step down without waiting for an answer.
pub fn renew_budget(last_renew: f64, timing: &Timing, now: f64) -> Duration {
    let left = last_renew + timing.renew_deadline.as_secs_f64() - now;
    Duration::from_secs_f64(left.clamp(0.0, timing.renew_deadline.as_secs_f64()))
}

/// `leaseDurationSeconds` for a duration: whole seconds, rounded up so that a reader that knows
/// only the seconds waits at least as long as the holder means.
pub fn whole_seconds(duration_ms: u64) -> i32 {
    duration_ms.div_ceil(1000).clamp(1, i32::MAX as u64) as i32
}

/// The duration a Lease states, from its `leaseDurationSeconds` and subsea's finer value beside
/// it: the finer one counts only when it agrees with the seconds (a writer that knows only the
/// seconds may have changed them and left a stale annotation behind).
pub fn duration_ms(seconds: Option<i32>, fine_ms: Option<&str>) -> u64 {
    let secs = seconds.unwrap_or(0).max(0) as u64;
    match fine_ms.and_then(|v| v.trim().parse::<u64>().ok()) {
        Some(ms) if ms > 0 && whole_seconds(ms) as u64 == secs => ms,
        _ => secs * 1000,
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
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
            (first.holder.as_deref(), first.duration_ms, first.transitions),
            (Some("gw-a"), 15_000, 0)
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
        assert_eq!(renew_budget(10.0, &t, 10.5), Duration::from_millis(1500));
        assert_eq!(renew_budget(10.0, &t, 12.5), Duration::ZERO);
        // A clock that stepped back never grants more than one deadline.
        assert_eq!(renew_budget(10.0, &t, 5.0), Duration::from_secs(2));
    }

    #[test]
    fn sub_second_leases_expire_on_time_and_stay_fenced() {
        let t = Timing {
            lease: Duration::from_millis(800),
            renew_deadline: Duration::from_millis(600),
            retry: Duration::from_millis(150),
        };
        let Decision::Write(l) = decide("gw-a", None, &t, 100.0) else {
            panic!("take")
        };
        assert_eq!(l.duration_ms, 800);
        assert_eq!(whole_seconds(l.duration_ms), 1);
        let follow = Decision::Follow {
            holder: "gw-a".into(),
        };
        assert_eq!(decide("gw-b", Some(&l), &t, 100.79), follow);
        assert!(matches!(decide("gw-b", Some(&l), &t, 100.81), Decision::Write(_)));
        // The leader is out before the lease is free to take, by lease - renew deadline.
        assert!(!must_step_down(100.0, &t, 100.59));
        assert!(must_step_down(100.0, &t, 100.601));
        assert!(expires_at(&l, &t).is_some_and(|e| e - 100.601 >= 0.19));
        // A holder with a longer lease is honoured however short ours is.
        let slow = LeaseState {
            duration_ms: 15_000,
            ..l
        };
        assert_eq!(decide("gw-b", Some(&slow), &t, 110.0), follow);
    }

    #[test]
    fn the_fine_duration_counts_only_beside_matching_seconds() {
        assert_eq!(duration_ms(Some(1), Some("800")), 800);
        assert_eq!(duration_ms(Some(2), Some("1500")), 1500);
        assert_eq!(
            duration_ms(Some(15), Some("800")),
            15_000,
            "seconds changed by another writer"
        );
        assert_eq!(duration_ms(Some(1), Some("soon")), 1000);
        assert_eq!(duration_ms(Some(1), Some("0")), 1000);
        assert_eq!(duration_ms(Some(-3), None), 0);
        assert_eq!(duration_ms(None, None), 0);
        assert_eq!(whole_seconds(0), 1);
        assert_eq!(whole_seconds(2000), 2);
        assert_eq!(whole_seconds(2001), 3);
    }
}
