//! Leader election on the Lease `submariner-gateway-lock`: taking, renewing and releasing it, stepping down when the node loses its gateway label.

use super::*;

/// subsea's lease duration in milliseconds, kept beside `leaseDurationSeconds` (whole seconds,
/// rounded up, so a reader that knows only the API field errs on the long side).
pub const DURATION_ANNOTATION: &str = "subsea.io/lease-duration-ms";

pub(super) fn to_state(l: &Lease) -> LeaseState {
    let spec = l.spec.clone().unwrap_or_default();
    let secs = |t: Option<MicroTime>| t.map(|t| t.0.as_microsecond() as f64 / 1e6);
    LeaseState {
        holder: spec.holder_identity,
        duration_ms: subsea_health::lease::duration_ms(
            spec.lease_duration_seconds,
            l.annotations().get(DURATION_ANNOTATION).map(String::as_str),
        ),
        renew_time: secs(spec.renew_time),
        acquire_time: secs(spec.acquire_time),
        transitions: spec.lease_transitions.unwrap_or(0).max(0) as u32,
    }
}

pub(super) fn micro(t: Option<f64>) -> Option<MicroTime> {
    t.and_then(|t| k8s_openapi::jiff::Timestamp::from_microsecond((t * 1e6) as i64).ok())
        .map(MicroTime)
}

/// The Lease object that states `want`, on top of the `current` one.
pub(super) fn lease_object(current: Option<&Lease>, want: &LeaseState) -> Lease {
    let mut lease = current.cloned().unwrap_or_else(|| Lease {
        metadata: kube::api::ObjectMeta {
            name: Some(LOCK.into()),
            ..Default::default()
        },
        ..Default::default()
    });
    lease
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(DURATION_ANNOTATION.into(), want.duration_ms.to_string());
    lease.spec = Some(LeaseSpec {
        holder_identity: want.holder.clone(),
        lease_duration_seconds: Some(subsea_health::lease::whole_seconds(want.duration_ms)),
        renew_time: micro(want.renew_time),
        acquire_time: micro(want.acquire_time),
        lease_transitions: Some(want.transitions as i32),
        ..Default::default()
    });
    lease
}

/// What one round of election found.
#[derive(Debug)]
enum Attempt {
    /// We hold the lease, renewed at the round's start.
    Held,
    /// Another gateway holds it, until `expiry` (seconds since the epoch) unless renewed.
    Lost { holder: String, expiry: Option<f64> },
    /// No answer, or an error: nothing is known; a leader keeps leading until its deadline.
    Failed(String),
}

/// Reads the lease and takes, renews or follows it, as [`decide`] says at `now`.
async fn attempt(api: &Api<Lease>, me: &str, timing: &Timing, now: f64) -> Attempt {
    let current = match api.get_opt(LOCK).await {
        Ok(c) => c,
        Err(e) => return Attempt::Failed(format!("cannot read the gateway lease: {e}")),
    };
    let state = current.as_ref().map(to_state);
    match decide(me, state.as_ref(), timing, now) {
        Decision::Write(want) => {
            let lease = lease_object(current.as_ref(), &want);
            let written = match current {
                Some(_) => api.replace(LOCK, &PostParams::default(), &lease).await,
                None => api.create(&PostParams::default(), &lease).await,
            };
            match written {
                Ok(_) => Attempt::Held,
                // Someone wrote the lease between our read and our write: the next round
                // reads who.
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    Attempt::Failed("the gateway lease changed while we wrote it".into())
                }
                Err(e) => Attempt::Failed(format!("cannot write the gateway lease: {e}")),
            }
        }
        Decision::Follow { holder } => Attempt::Lost {
            holder,
            expiry: state
                .as_ref()
                .and_then(|l| subsea_health::lease::expires_at(l, timing)),
        },
    }
}

/// How often the gateway re-reads its Node's labels.
pub(super) const NODE_CHECK: Duration = Duration::from_secs(1);

pub(super) async fn elect(shared: Arc<Shared>) -> Result<()> {
    let api: Api<Lease> = Api::namespaced(shared.local.clone(), &shared.settings.namespace);
    let me = format!("{}-submariner-gateway", shared.node.hostname);
    let timing = shared.opts.timing;
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(shared.local.clone());
    let mut leader: Option<Vec<JoinHandle<()>>> = None;
    let mut last_renew = 0.0;
    let mut failing = false;
    let (mut eligible, mut checked) = (true, f64::MIN);
    let shutdown = subsea_runtime::shutdown::signal();
    tokio::pin!(shutdown);
    // What the next API call may take: a leader's is what is left of its renew deadline, so a
    // silent API server cannot keep it leading past the instant it must be gone.
    let budget = |leading: bool, last_renew: f64| {
        if leading {
            renew_budget(last_renew, &timing, now_secs())
        } else {
            timing.renew_deadline
        }
    };
    loop {
        let now = now_secs();
        if now - checked >= NODE_CHECK.as_secs_f64() {
            checked = now;
            let limit = budget(leader.is_some(), last_renew).min(timing.retry);
            if let Ok(Ok(node)) = tokio::time::timeout(limit, nodes.get_opt(&shared.node.hostname)).await {
                let was = eligible;
                eligible = local::eligible(node.as_ref().map(|n| n.labels()));
                if was != eligible {
                    tracing::info!(eligible, "node label {} changed", local::GATEWAY_LABEL);
                }
            }
        }
        if !eligible {
            if let Some(tasks) = leader.take() {
                tracing::warn!(
                    "this node is no longer labelled {}=true: stepping down",
                    local::GATEWAY_LABEL
                );
                step_down(&shared, tasks).await;
                release(&api, &me).await;
            }
            tokio::select! {
                _ = tokio::time::sleep(timing.retry) => continue,
                _ = &mut shutdown => return Ok(()),
            }
        }
        let now = now_secs();
        let round = tokio::time::timeout(
            budget(leader.is_some(), last_renew),
            attempt(&api, &me, &timing, now),
        )
        .await
        .unwrap_or_else(|_| Attempt::Failed("the API server did not answer in time".into()));
        let after = now_secs();
        let mut wait = timing.retry;
        let keep = match &round {
            Attempt::Held => {
                last_renew = now;
                true
            }
            Attempt::Lost { holder, expiry } => {
                if leader.is_some() {
                    tracing::warn!(%holder, "another gateway holds the lease");
                }
                // Wake right when the holder's lease runs out rather than up to a retry
                // period later: that is the failover time.
                if let Some(expiry) = expiry {
                    wait = wait.min(Duration::from_secs_f64((expiry - after).max(0.0) + 0.005));
                }
                false
            }
            Attempt::Failed(e) => {
                if !failing {
                    tracing::warn!(error = %e, leading = leader.is_some(), "gateway election round failed");
                }
                let keep = leader.is_some() && !must_step_down(last_renew, &timing, after);
                if keep {
                    wait = wait.min(renew_budget(last_renew, &timing, after));
                }
                keep
            }
        };
        let failed = matches!(round, Attempt::Failed(_));
        if failing && !failed {
            tracing::info!("gateway election rounds answered again");
        }
        failing = failed;
        match (keep, leader.is_some()) {
            (true, false) => {
                tracing::info!("became the active gateway");
                leader = Some(lead(shared.clone()).await);
            }
            (false, true) => {
                tracing::warn!("lost the gateway lease; withdrawing routes and stopping publishing");
                if let Some(tasks) = leader.take() {
                    step_down(&shared, tasks).await;
                }
            }
            _ => {}
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut shutdown => {
                if let Some(tasks) = leader.take() {
                    step_down(&shared, tasks).await;
                    release(&api, &me).await;
                }
                tracing::info!("gateway stopped");
                return Ok(());
            }
        }
    }
}

/// Gives the lease up on a clean stop, so a passive gateway takes over at its next retry
/// instead of after the lease expires.
pub(super) async fn release(api: &Api<Lease>, me: &str) {
    if let Ok(Some(cur)) = api.get_opt(LOCK).await {
        if cur.spec.as_ref().and_then(|s| s.holder_identity.as_deref()) == Some(me) {
            let mut l = cur.clone();
            if let Some(spec) = l.spec.as_mut() {
                spec.holder_identity = None;
                spec.renew_time = None;
            }
            let _ = api.replace(LOCK, &PostParams::default(), &l).await;
        }
    }
}

/// Stops everything a leader does and stops forwarding: no tunnel peer (so nothing arriving
/// from a remote cluster is decrypted and delivered) and no route into the tunnel. "stepped
/// down" is logged only once all of it is done, so the log bounds when this gateway forwarded.
pub(super) async fn step_down(shared: &Shared, tasks: Vec<JoinHandle<()>>) {
    for t in &tasks {
        t.abort();
    }
    // Wait for the tasks to be gone: a tunnel pass in flight on another thread could otherwise
    // set its peers after we clear them.
    for t in tasks {
        let _ = t.await;
    }
    shared.active.store(false, Ordering::SeqCst);
    shared.status_now.notify_one();
    if let Some(d) = shared.datapath.get() {
        d.set_peers(&[]);
    }
    if let Err(e) = withdraw_routes(&shared.netlink).await {
        tracing::warn!(error = %e, "cannot withdraw routes");
    }
    tracing::info!("stepped down: no tunnel peers, no routes");
}

pub(super) async fn withdraw_routes(nl: &Netlink) -> Result<()> {
    nl.delete_rule(TABLE, RULE_PRIORITY).await?;
    for dst in nl.routes(TABLE).await? {
        nl.delete_route(dst, TABLE).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sub_second_lease_round_trips_through_the_lease_object() {
        let want = LeaseState {
            holder: Some("gw1-submariner-gateway".into()),
            duration_ms: 800,
            renew_time: Some(1_700_000_000.25),
            acquire_time: Some(1_700_000_000.0),
            transitions: 3,
        };
        let lease = lease_object(None, &want);
        let spec = lease.spec.clone().expect("spec");
        assert_eq!(
            spec.lease_duration_seconds,
            Some(1),
            "rounded up for other readers"
        );
        assert_eq!(lease.metadata.name.as_deref(), Some(LOCK));
        assert_eq!(to_state(&lease), want);
        // A writer that knows only the seconds (Submariner's gateway) and leaves our
        // annotation behind: its seconds count.
        let mut theirs = lease.clone();
        theirs.spec.as_mut().expect("spec").lease_duration_seconds = Some(15);
        assert_eq!(to_state(&theirs).duration_ms, 15_000);
        // Renewing keeps what else the object carries.
        let mut other = lease.clone();
        other
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert("note".into(), "kept".into());
        let renewed = lease_object(
            Some(&other),
            &LeaseState {
                duration_ms: 2500,
                ..want
            },
        );
        assert_eq!(
            renewed.annotations().get("note").map(String::as_str),
            Some("kept")
        );
        assert_eq!(renewed.spec.expect("spec").lease_duration_seconds, Some(3));
    }
}
