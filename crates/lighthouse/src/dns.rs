//! The `clusterset.local` DNS server: [`respond`] turns request bytes into response bytes
//! from a snapshot (pure, fuzzable); [`serve`] runs one inline UDP loop per core around it and
//! hickory-server's `Server` for TCP (a `RequestHandler` over the same function), with the
//! snapshot rebuilt from watches and swapped whole on every change. UDP bypasses
//! hickory-server's task-per-packet socket handling, as `dns.md` §7 recommends.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, ResponseCode};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use subsea_api::mcs::v1alpha1::ServiceImport;
use subsea_api::submariner::Gateway;
use subsea_runtime::controller::Loop;
use subsea_runtime::reflect::{Reflector, reflect_with};

use crate::resolve::Snapshot;
use crate::{Error, Result, refs};

pub mod metrics;

pub use subsea_lighthouse_core::respond::{EDNS_PAYLOAD, ZoneError, Zones, fast, respond};

/// How to run the server.
#[derive(Clone, Debug)]
pub struct Options {
    /// Kubeconfig of the local cluster (else the pod's service account).
    pub kubeconfig: Option<PathBuf>,
    /// Context.
    pub context: Option<String>,
    /// Where to listen (UDP and TCP).
    pub listen: SocketAddr,
    /// Zones and TTL.
    pub zones: Zones,
    /// Our cluster ID (else read from the ServiceDiscovery object).
    pub cluster_id: Option<String>,
    /// Nearest cluster first by measured RTT, instead of round robin.
    pub prefer_nearest: bool,
    /// Which services get `<cluster>.<svc>` names
    /// ([`crate::resolve::Snapshot::cluster_names`]).
    pub cluster_names: crate::resolve::ClusterNames,
    /// Where to serve Prometheus `/metrics` (`None`: off).
    pub metrics_listen: Option<SocketAddr>,
    /// Serve a fixed snapshot from this JSON file instead of watching a cluster.
    pub fixture: Option<PathBuf>,
    /// UDP receive loops (`None`: one per core, at most 8).
    pub udp_workers: Option<usize>,
}

struct Shared {
    snapshot: RwLock<Option<Arc<Snapshot>>>,
    serial: std::sync::atomic::AtomicU32,
    zones: Zones,
    metrics: metrics::Metrics,
}

impl Shared {
    fn answer(&self, bytes: &[u8], udp: bool) -> Option<Vec<u8>> {
        let snap = self.snapshot.read().ok().and_then(|s| s.clone());
        let out = respond(
            snap.as_deref(),
            &self.zones,
            self.serial.load(Ordering::Relaxed),
            bytes,
            udp,
        )?;
        self.metrics.count(bytes, &out);
        Some(out)
    }
}

/// Runs the server until SIGTERM or Ctrl-C.
pub async fn serve(opts: Options) -> Result<()> {
    let shared = Arc::new(Shared {
        snapshot: RwLock::new(None),
        serial: Default::default(),
        zones: opts.zones.clone(),
        metrics: Default::default(),
    });
    // One blocking receive loop per core, each on its own SO_REUSEPORT socket: the kernel
    // spreads queries over them, and no task or allocation is made per packet.
    let loops = opts
        .udp_workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, metrics::SHARDS - 1);
    // At light load socket i takes the queries that arrive on the i-th usable CPU
    // (SO_INCOMING_CPU), so a query wakes a loop where it was received: with hash spreading, two
    // half-busy loops woke each other's cores and a query cost up to twice the CPU. Under load
    // the sockets spread by hash again, so every loop shares the work ([`steer`]).
    let cpus = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|l| cpu_list(l.trim()))
        })
        .unwrap_or_default();
    let mut steered = Vec::new();
    for i in 0..loops {
        let sock = reuse_port_socket(opts.listen, cpus.get(i).copied()).map_err(|source| Error::Listen {
            context: format!("cannot listen on UDP {}", opts.listen),
            source,
        })?;
        if let (Some(cpu), Ok(dup)) = (cpus.get(i), sock.try_clone()) {
            steered.push((i, *cpu, dup));
        }
        let shared = shared.clone();
        std::thread::Builder::new()
            .name(format!("dns-udp-{i}"))
            .spawn(move || udp_loop(i, &sock, &shared))
            .map_err(|source| Error::Listen {
                context: "cannot start a UDP loop thread".into(),
                source,
            })?;
    }
    if !steered.is_empty() {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("dns-steer".into())
            .spawn(move || steering_loop(&steered, &shared))
            .map_err(|source| Error::Listen {
                context: "cannot start the steering thread".into(),
                source,
            })?;
    }
    // TCP (truncated answers retried, node-local caches with force_tcp) through
    // hickory-server's connection handling, with the same pure responder behind it.
    let tcp = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|source| Error::Listen {
            context: format!("cannot listen on TCP {}", opts.listen),
            source,
        })?;
    let mut tcp_server = hickory_server::server::Server::new(TcpHandler(shared.clone()));
    tcp_server.register_listener(tcp, TCP_IDLE, 32);
    let mut tasks = Vec::new();
    if let Some(addr) = opts.metrics_listen {
        let shared = shared.clone();
        tasks.push(tokio::spawn(subsea_metrics::serve(
            addr,
            Arc::new(move || shared.metrics.render()),
        )));
    }
    let result = match &opts.fixture {
        Some(path) => from_fixture(&shared, path, &opts).await,
        None => from_cluster(&shared, &opts).await,
    };
    for t in tasks {
        t.abort();
    }
    let _ = tcp_server.shutdown_gracefully().await;
    result
}

fn publish(shared: &Shared, snap: Snapshot) {
    if let Ok(mut w) = shared.snapshot.write() {
        *w = Some(Arc::new(snap));
    }
    // After the store: a loop that sees the new serial finds the new snapshot.
    shared.serial.fetch_add(1, Ordering::Release);
}

/// A fixture file: objects as the API returns them.
#[derive(serde::Deserialize)]
struct Fixture {
    #[serde(default)]
    imports: Vec<ServiceImport>,
    #[serde(default)]
    slices: Vec<EndpointSlice>,
    #[serde(default)]
    gateways: Vec<Gateway>,
}

/// Serves a fixed snapshot from a JSON file (`{"imports": [...], "slices": [...],
/// "gateways": [...]}`, objects as the API returns them): for benchmarks and for debugging an
/// answer without a cluster.
async fn from_fixture(shared: &Shared, path: &std::path::Path, opts: &Options) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Fixture(format!("cannot read the fixture {}: {e}", path.display())))?;
    let f: Fixture = serde_json::from_str(&text).map_err(|e| {
        Error::Fixture(format!(
            "{} is not a fixture ({{\"imports\": [ServiceImport...], \"slices\": [EndpointSlice...], \"gateways\": [Gateway...]}}): {e}",
            path.display()
        ))
    })?;
    let local = opts.cluster_id.clone().unwrap_or_else(|| "local".into());
    let mut snap = crate::snapshot::build(
        &local,
        &f.imports.iter().collect::<Vec<_>>(),
        &f.slices.iter().collect::<Vec<_>>(),
        &f.gateways.iter().collect::<Vec<_>>(),
        opts.prefer_nearest,
    );
    snap.cluster_names = opts.cluster_names;
    tracing::info!(listen = %opts.listen, services = snap.services.len(), fixture = %path.display(), "lighthouse DNS serving a fixed snapshot");
    publish(shared, snap);
    subsea_runtime::shutdown::signal().await;
    Ok(())
}

async fn from_cluster(shared: &Shared, opts: &Options) -> Result<()> {
    let client = subsea_runtime::client::local(opts.kubeconfig.as_deref(), opts.context.as_deref()).await?;
    let local = match &opts.cluster_id {
        Some(c) => c.clone(),
        None => subsea_runtime::join::service_discovery(&client).await?.cluster_id,
    };
    tracing::info!(listen = %opts.listen, cluster = %local, "lighthouse DNS serving (SERVFAIL until the first sync)");
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let imports: Reflector<ServiceImport> = reflect_with(Api::all(client.clone()), (), tx.clone());
    let slices: Reflector<EndpointSlice> = reflect_with(Api::all(client.clone()), (), tx.clone());
    let gateways: Reflector<Gateway> = reflect_with(Api::all(client.clone()), (), tx);
    tokio::try_join!(
        imports.wait_until_ready(),
        slices.wait_until_ready(),
        gateways.wait_until_ready(),
    )
    .map_err(|e| Error::Watch(format!("a watch ended before its first list: {e}")))?;
    let synced = AtomicBool::new(false);
    let mut memo = crate::snapshot::Memo::default();
    // Rebuilding the snapshot cannot fail; the resync only guards against a missed wake-up.
    let builder = Loop::new("lighthouse-dns snapshot")
        .resync(Duration::from_secs(30))
        .settle(Duration::from_millis(10))
        .paced();
    let cost = builder.cost();
    builder
        .run(&mut rx, subsea_runtime::shutdown::signal(), |pass| {
            cost.measure(|| {
                let (mut snap, next) = crate::snapshot::build_with(
                    &local,
                    &refs(&imports.state()),
                    &refs(&slices.state()),
                    &refs(&gateways.state()),
                    opts.prefer_nearest,
                    &memo,
                );
                memo = next;
                snap.cluster_names = opts.cluster_names;
                publish(shared, snap);
            });
            if let Some(w) = pass.woken {
                shared.metrics.programmed(w.elapsed());
            }
            if !synced.swap(true, Ordering::Relaxed) {
                tracing::info!("first sync done; answering");
            }
            std::future::ready(Ok::<(), std::convert::Infallible>(()))
        })
        .await;
    Ok(())
}

/// A UDP loop's query rate (per second) above which the sockets stop steering by CPU.
const SPREAD_ABOVE: u64 = 25_000;
/// The total rate below which they steer by CPU again.
const STEER_BELOW: u64 = 12_000;

/// Whether the sockets should steer queries by receiving CPU, from each loop's rate over the
/// last period and whether they do now (hysteresis between the two thresholds).
pub fn steer(rates: &[u64], steering: bool) -> bool {
    if steering {
        rates.iter().max().copied().unwrap_or(0) < SPREAD_ABOVE
    } else {
        rates.iter().sum::<u64>() < STEER_BELOW
    }
}

/// Every 100 ms, switches the sockets between CPU steering and hash spreading as [`steer`]
/// decides. `sockets` are (loop index, CPU, a handle on the loop's socket).
fn steering_loop(sockets: &[(usize, usize, std::net::UdpSocket)], shared: &Shared) {
    const PERIOD: Duration = Duration::from_millis(100);
    let mut last: Vec<u64> = sockets
        .iter()
        .map(|(i, _, _)| shared.metrics.shard_total(*i))
        .collect();
    let mut steering = true;
    loop {
        std::thread::sleep(PERIOD);
        let now: Vec<u64> = sockets
            .iter()
            .map(|(i, _, _)| shared.metrics.shard_total(*i))
            .collect();
        let rates: Vec<u64> = now
            .iter()
            .zip(&last)
            .map(|(n, l)| n.saturating_sub(*l) * 1000 / PERIOD.as_millis() as u64)
            .collect();
        last = now;
        let want = steer(&rates, steering);
        if want != steering {
            steering = want;
            for (_, cpu, sock) in sockets {
                // usize::MAX is -1 to the kernel: no CPU, so the group hashes.
                let _ = socket2::SockRef::from(sock).set_cpu_affinity(if want { *cpu } else { usize::MAX });
            }
        }
    }
}

/// Parses a kernel CPU list (`0-3,8,10-11`); junk yields what parses.
pub fn cpu_list(text: &str) -> Vec<usize> {
    text.split(',')
        .filter_map(|part| match part.trim().split_once('-') {
            Some((a, b)) => Some(
                (a.parse().ok()?..=b.parse().ok()?)
                    .take(4096)
                    .collect::<Vec<usize>>(),
            ),
            None => part.trim().parse().ok().map(|c| vec![c]),
        })
        .flatten()
        .collect()
}

fn reuse_port_socket(addr: SocketAddr, cpu: Option<usize>) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_port(true)?;
    if let Some(cpu) = cpu {
        // Best effort: without it the kernel spreads queries by hash.
        let _ = s.set_cpu_affinity(cpu);
    }
    let _ = s.set_recv_buffer_size(4 << 20);
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// One inline loop: receive, answer, send; no task per packet. Runs for the process's life.
/// Nothing it touches per query is written by another loop: the snapshot is re-read only when
/// the serial moves, and it counts into its own metrics shard.
fn udp_loop(index: usize, sock: &std::net::UdpSocket, shared: &Shared) {
    let mut buf = vec![0u8; 65535];
    let mut out = Vec::with_capacity(usize::from(EDNS_PAYLOAD));
    let mut cached: Option<(u32, Arc<Snapshot>)> = None;
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        if from.port() == 0 {
            continue;
        }
        let req = &buf[..n];
        let serial = shared.serial.load(Ordering::Acquire);
        if cached.as_ref().is_none_or(|(s, _)| *s != serial) {
            cached = shared
                .snapshot
                .read()
                .ok()
                .and_then(|s| s.clone())
                .map(|snap| (serial, snap));
        }
        let fast = cached
            .as_ref()
            .is_some_and(|(serial, snap)| fast::respond(snap, &shared.zones, *serial, req, &mut out));
        if fast {
            shared.metrics.count_on(index, req, &out);
            let _ = sock.send_to(&out, from);
        } else if let Some(slow) = shared.answer(req, true) {
            let _ = sock.send_to(&slow, from);
        }
    }
}

/// How long a TCP connection may stay idle: at least CoreDNS's pool keeps them open for.
const TCP_IDLE: Duration = Duration::from_secs(10);

/// hickory-server's request handler over [`respond`]: the answer is built by the same pure
/// function as over UDP, then handed to hickory-server's response path.
struct TcpHandler(Arc<Shared>);

#[async_trait::async_trait]
impl hickory_server::server::RequestHandler for TcpHandler {
    async fn handle_request<
        R: hickory_server::server::ResponseHandler,
        T: hickory_server::net::runtime::Time,
    >(
        &self,
        request: &hickory_server::server::Request,
        mut response: R,
    ) -> hickory_server::server::ResponseInfo {
        use hickory_server::zone_handler::MessageResponseBuilder;
        let failed = || {
            let mut m = hickory_proto::op::Metadata::new(
                request.metadata.id,
                MessageType::Response,
                request.metadata.op_code,
            );
            m.response_code = ResponseCode::ServFail;
            hickory_proto::op::Header {
                metadata: m,
                counts: Default::default(),
            }
            .into()
        };
        let Some(msg) = self
            .0
            .answer(request.as_slice(), false)
            .and_then(|bytes| Message::from_vec(&bytes).ok())
        else {
            return failed();
        };
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(e) = &msg.edns {
            builder.edns(e);
        }
        let reply = builder.build(
            msg.metadata.clone(),
            msg.answers.iter(),
            msg.authorities.iter(),
            std::iter::empty(),
            msg.additionals.iter(),
        );
        response.send_response(reply).await.unwrap_or_else(|_| failed())
    }
}

#[cfg(test)]
mod tests;
