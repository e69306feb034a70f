//! The external DNS publisher (`subsea dns-publisher`): one process next to the broker that
//! publishes every exported Service's external addresses into an authoritative zone, with the
//! addresses of every reachable exporting cluster under one name. It reads the broker only
//! (each cluster's ServiceImport carries its addresses; each active gateway's heartbeat Lease
//! carries its connections), decides with `subsea_extdns_core`, and writes with RFC 2136
//! updates signed with TSIG. Its state is the zone itself (ExternalDNS's TXT registry), so a
//! restart or a second replica with the same owner ID resumes from what is published.
#![deny(missing_docs)]

pub mod dns;
pub mod error;
mod metrics;
mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use subsea_api::mcs::v1alpha1::ServiceImport;
use subsea_extdns_core::plan::{self, Config, Policy};
use subsea_extdns_core::source::{self, Desired, Settings};
use subsea_extdns_core::{health, key};
use subsea_runtime::controller::Loop;
use subsea_runtime::reflect::reflect_with;

pub use error::{Error, Result};

/// How to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Kubeconfig of the broker.
    pub kubeconfig: Option<PathBuf>,
    /// Context in it.
    pub context: Option<String>,
    /// The broker namespace.
    pub broker_namespace: String,
    /// The authoritative server.
    pub server: SocketAddr,
    /// The zone updated.
    pub zone: String,
    /// The BIND key file with the TSIG key.
    pub key_file: PathBuf,
    /// The TXT registry owner ID.
    pub owner: String,
    /// sync or upsert-only.
    pub policy: Policy,
    /// Only names within these domains.
    pub domain_filter: Vec<String>,
    /// Default TTL.
    pub ttl: u32,
    /// Port of `/metrics` (0: off).
    pub metrics_port: u16,
}

/// How often the decision is remade (heartbeats expire without any event).
const TICK: Duration = Duration::from_secs(1);
/// The zone is reread at least this often even when nothing changed, to repair edits by hand.
const REREAD: Duration = Duration::from_secs(30);
/// Longest wait between attempts after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Reads and checks the key file: the secret must not be readable by others.
pub fn read_key(path: &std::path::Path) -> Result<key::Key> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read the TSIG key file {}: {e}", path.display())))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = std::fs::metadata(path) {
            if m.permissions().mode() & 0o077 != 0 {
                tracing::warn!(file = %path.display(), "the TSIG key file is readable by other users: chmod 600 it");
            }
        }
    }
    key::parse(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

struct Last {
    desired: Vec<Desired>,
    at: Instant,
    ok: bool,
    failures: u32,
    next_try: Instant,
    /// What the last plan left alone, and the last error.
    kept: Vec<source::Skip>,
    error: Option<String>,
}

/// Runs until SIGTERM or Ctrl-C.
pub async fn run(opts: Options) -> Result<()> {
    let key = read_key(&opts.key_file)?;
    let zone = subsea_extdns_core::name::normal(&opts.zone);
    if let Some(why) = subsea_extdns_core::name::invalid(&zone) {
        return Err(Error::Config(format!("--zone: {why}")));
    }
    let server = dns::Server::new(opts.server, &zone, &key)?;
    let client = subsea_runtime::client::local(opts.kubeconfig.as_deref(), opts.context.as_deref()).await?;
    let ns = opts.broker_namespace.clone();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let imports = reflect_with(
        Api::<ServiceImport>::namespaced(client.clone(), &ns),
        (),
        tx.clone(),
    );
    let leases = reflect_with(Api::<Lease>::namespaced(client.clone(), &ns), (), tx.clone());
    for (what, ready) in [
        ("ServiceImport", imports.wait_until_ready().await),
        ("Lease", leases.wait_until_ready().await),
    ] {
        ready.map_err(|_| {
            Error::Config(format!(
                "cannot watch {what}s in the broker namespace {ns}: is the kubeconfig the broker's, with read access to that namespace?"
            ))
        })?;
    }
    let cfg = Config {
        owner: opts.owner.clone(),
        policy: opts.policy,
        domain_filter: opts
            .domain_filter
            .iter()
            .map(|d| subsea_extdns_core::name::normal(d))
            .collect(),
    };
    let settings = Settings {
        zone: zone.clone(),
        ttl: opts.ttl,
    };
    let state = Arc::new(metrics::State::default());
    let metrics_task = (opts.metrics_port != 0).then(|| {
        let s = state.clone();
        tokio::spawn(subsea_metrics::serve(
            SocketAddr::from(([0, 0, 0, 0], opts.metrics_port)),
            Arc::new(move || s.render()),
        ))
    });
    let reporter = status::Reporter::new(client.clone(), &ns, &opts, &server.describe());
    tracing::info!(server = %server.describe(), owner = %opts.owner, policy = ?opts.policy, "dns-publisher starting");
    let last: Option<Last> = None;
    // Shared with each pass's future (the loop runs one pass at a time).
    let progress = tokio::sync::Mutex::new((last, reporter));
    Loop::new("dns-publisher")
        .resync(TICK)
        .run(&mut rx, subsea_runtime::shutdown::signal(), |_| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or_default();
            let beats: Vec<health::Heartbeat> = leases
                .state()
                .iter()
                .filter_map(|l| health::heartbeat(l))
                .collect();
            let health = health::health(&beats, now);
            let all = imports.state();
            let refs: Vec<&ServiceImport> = all.iter().map(|a| &**a).collect();
            let parts = source::parts(&refs);
            let (desired, mut skipped) = source::desired(&parts, &health, &settings);
            let server = &server;
            let cfg = &cfg;
            let state = &state;
            let progress = &progress;
            async move {
                let mut guard = progress.lock().await;
                let (last, reporter) = &mut *guard;
                let due = match &*last {
                    None => true,
                    Some(l) if !l.ok => Instant::now() >= l.next_try,
                    Some(l) => l.desired != desired || l.at.elapsed() >= REREAD,
                };
                if !due {
                    // Health reasons can change without changing a record: the status follows.
                    if let Some(l) = &*last {
                        skipped.extend(l.kept.iter().cloned());
                        reporter
                            .report(&desired, &skipped, health.down(), l.error.as_deref())
                            .await;
                    }
                    return Ok::<(), String>(());
                }
                let result = publish(server, cfg, &desired, state).await;
                let failures = last.as_ref().map_or(0, |l| if l.ok { 0 } else { l.failures });
                let mut kept = Vec::new();
                let (ok, error) = match result {
                    Ok(more) => {
                        kept = more;
                        (true, None)
                    }
                    Err(e) => {
                        let text = e.to_string();
                        if last.as_ref().is_none_or(|l| l.ok) {
                            tracing::error!(error = %text, "publishing failed; retrying with backoff");
                        }
                        (false, Some(text))
                    }
                };
                let failures = if ok { 0 } else { failures + 1 };
                let backoff = TICK.saturating_mul(1 << failures.min(5)).min(MAX_BACKOFF);
                *last = Some(Last {
                    desired: desired.clone(),
                    at: Instant::now(),
                    ok,
                    failures,
                    next_try: Instant::now() + backoff,
                    kept: kept.clone(),
                    error: error.clone(),
                });
                skipped.extend(kept);
                reporter
                    .report(&desired, &skipped, health.down(), error.as_deref())
                    .await;
                Ok(())
            }
        })
        .await;
    if let Some(t) = metrics_task {
        t.abort();
    }
    tracing::info!("dns-publisher stopped");
    Ok(())
}

/// One pass against the server: read the zone, plan, send. Returns the names left alone.
async fn publish(
    server: &dns::Server,
    cfg: &Config,
    desired: &[Desired],
    state: &metrics::State,
) -> Result<Vec<source::Skip>> {
    let zone = server.transfer().await.inspect_err(|_| state.failed())?;
    let planned = plan::plan(&zone, desired, cfg);
    for c in &planned.changes {
        match server.apply(c).await {
            Ok(()) => {
                state.updated();
                let targets: Vec<String> = c.targets.iter().map(ToString::to_string).collect();
                let verb = match c.op {
                    plan::Op::Create => "created",
                    plan::Op::Update { .. } => "updated",
                    plan::Op::Delete { .. } => "deleted",
                };
                tracing::info!(name = %c.name, rtype = c.rtype.as_str(), targets = ?targets, "{verb}");
            }
            Err(e) => {
                state.failed();
                return Err(e);
            }
        }
    }
    state.succeeded(desired.len());
    Ok(planned.skipped)
}
