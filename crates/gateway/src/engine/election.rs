//! Leader election on the Lease `submariner-gateway-lock`: taking, renewing and releasing it, stepping down when the node loses its gateway label.

use super::*;

pub(super) fn to_state(l: &Lease) -> LeaseState {
    let spec = l.spec.clone().unwrap_or_default();
    let secs = |t: Option<MicroTime>| t.map(|t| t.0.as_microsecond() as f64 / 1e6);
    LeaseState {
        holder: spec.holder_identity,
        duration_secs: spec.lease_duration_seconds.unwrap_or(0).max(0) as u32,
        renew_time: secs(spec.renew_time),
        acquire_time: secs(spec.acquire_time),
        transitions: spec.lease_transitions.unwrap_or(0).max(0) as u32,
    }
}

pub(super) fn micro(t: Option<f64>) -> Option<MicroTime> {
    t.and_then(|t| k8s_openapi::jiff::Timestamp::from_microsecond((t * 1e6) as i64).ok())
        .map(MicroTime)
}

/// Writes our lease; `Ok(true)` when we hold it afterwards.
pub(super) async fn write_lease(
    api: &Api<Lease>,
    current: Option<&Lease>,
    want: &LeaseState,
) -> Result<bool, kube::Error> {
    let spec = LeaseSpec {
        holder_identity: want.holder.clone(),
        lease_duration_seconds: Some(want.duration_secs as i32),
        renew_time: micro(want.renew_time),
        acquire_time: micro(want.acquire_time),
        lease_transitions: Some(want.transitions as i32),
        ..Default::default()
    };
    let mut lease = current.cloned().unwrap_or_else(|| Lease {
        metadata: kube::api::ObjectMeta {
            name: Some(LOCK.into()),
            ..Default::default()
        },
        ..Default::default()
    });
    lease.spec = Some(spec);
    let r = match current {
        Some(_) => api.replace(LOCK, &PostParams::default(), &lease).await,
        None => api.create(&PostParams::default(), &lease).await,
    };
    match r {
        Ok(_) => Ok(true),
        // Someone else wrote first: they lead this round.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
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
    let (mut eligible, mut checked) = (true, f64::MIN);
    let shutdown = subsea_runtime::shutdown::signal();
    tokio::pin!(shutdown);
    loop {
        let now = now_secs();
        if now - checked >= NODE_CHECK.as_secs_f64() {
            checked = now;
            if let Ok(node) = nodes.get_opt(&shared.node.hostname).await {
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
        let current = api.get_opt(LOCK).await;
        let mut holding = false;
        let mut wait = timing.retry;
        match &current {
            Ok(cur) => match decide(&me, cur.as_ref().map(to_state).as_ref(), &timing, now) {
                Decision::Write(want) => match write_lease(&api, cur.as_ref(), &want).await {
                    Ok(true) => {
                        holding = true;
                        last_renew = now;
                    }
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot write the gateway lease"),
                },
                Decision::Follow { holder } => {
                    if leader.is_some() {
                        tracing::warn!(%holder, "another gateway holds the lease");
                    }
                    // Wake right when the holder's lease runs out rather than up to a retry
                    // period later: that is the failover time.
                    if let Some(expiry) = cur
                        .as_ref()
                        .map(to_state)
                        .and_then(|l| subsea_health::lease::expires_at(&l, &timing))
                    {
                        wait = wait.min(Duration::from_secs_f64((expiry - now).max(0.0) + 0.005));
                    }
                }
            },
            Err(e) => tracing::warn!(error = %e, "cannot read the gateway lease"),
        }
        let keep =
            holding || (leader.is_some() && !must_step_down(last_renew, &timing, now) && current.is_err());
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

pub(super) async fn step_down(shared: &Shared, tasks: Vec<JoinHandle<()>>) {
    for t in tasks {
        t.abort();
    }
    shared.active.store(false, Ordering::SeqCst);
    shared.status_now.notify_one();
    if let Err(e) = withdraw_routes(&shared.netlink).await {
        tracing::warn!(error = %e, "cannot withdraw routes");
    }
}

pub(super) async fn withdraw_routes(nl: &Netlink) -> Result<()> {
    nl.delete_rule(TABLE, RULE_PRIORITY).await?;
    for dst in nl.routes(TABLE).await? {
        nl.delete_route(dst, TABLE).await?;
    }
    Ok(())
}
