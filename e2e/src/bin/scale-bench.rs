//! `scale-bench`: one broker, N simulated clusters (default 50), each a `subsea apiserver` with
//! a Lighthouse agent and a Lighthouse DNS server, E exports per cluster (default 200), on
//! loopback (no data plane: the clusters' gateways are represented by their Endpoint records on
//! the broker). Measures, on the embedded store or (`--store etcd`) a 3-member etcd:
//!
//! - the time from creating every ServiceExport at once until every cluster's DNS server
//!   answers every name with its exporting cluster's service IP (N×N×E answers checked);
//! - export → resolvable in every cluster, p50/p99 over single exports made at that scale;
//! - broker watch fan-out: delivery p50/p99 to 50 more watchers while the agents watch too;
//! - the broker's CPU seconds during the convergence and its RSS (peak and after).
//!
//! Binaries come from `SUBSEA_BIN_DIR` (default: this executable's directory, e.g.
//! target/release). Run as root (the DNS servers bind 127.0.50.x:5300). Prints a table.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, RecordType};
use k8s_openapi::api::core::v1::Service;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use serde_json::json;
use subsea_e2e::bench;
use subsea_integration::{ApiServer, TempDir, etcd::EtcdCluster};
use subsea_nettest::stats;
use tokio::net::UdpSocket;

#[derive(Parser)]
#[command(
    about = "Joins N simulated clusters to one broker with E exports each and measures how fast every cluster resolves every export"
)]
struct Args {
    /// Simulated clusters (1-100).
    #[arg(long, default_value_t = 50)]
    clusters: u8,
    /// Exports per cluster.
    #[arg(long, default_value_t = 200)]
    exports: usize,
    /// Single exports timed once everything has converged.
    #[arg(long, default_value_t = 20)]
    samples: usize,
    /// The broker's store: embedded (its write-ahead log) or etcd (a 3-member etcd on loopback).
    #[arg(long, default_value = "embedded", value_parser = ["embedded", "etcd"])]
    store: String,
    /// Give up when the cluster set has not converged within this many seconds.
    #[arg(long, default_value_t = 2400)]
    timeout: u64,
}

/// Where `subctl deploy-broker` keeps the broker's records.
const BROKER_NAMESPACE: &str = "submariner-k8s-broker";

/// Child processes killed when dropped, whatever the outcome.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One simulated cluster.
struct Member {
    id: String,
    /// Kept for its lifetime: dropping it stops the cluster.
    _server: ApiServer,
    dns: SocketAddr,
    client: Client,
}

/// Names asked per cluster per round at most (spread over its pending ones): asking all
/// 500,000 every round would load the machine more than the system under test.
const SAMPLE: usize = 2000;

fn dns_addr(k: u8) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(127, 0, 50, k), 5300))
}

/// Starts the clusters' API servers (`simulated_cluster`) a few at a time.
fn start_clusters(n: u8) -> Result<Vec<ApiServer>> {
    let mut out = Vec::with_capacity(n as usize);
    let ids: Vec<u8> = (1..=n).collect();
    for chunk in ids.chunks(4) {
        let started: Vec<_> = chunk
            .iter()
            .map(|&k| std::thread::spawn(move || ApiServer::simulated_cluster(k)))
            .collect();
        for t in started {
            out.push(t.join().map_err(|_| anyhow!("a cluster start panicked"))??);
        }
    }
    Ok(out)
}

/// Joins every cluster to the broker with `subctl join`, a few at a time.
fn join_all(servers: &[ApiServer], dir: &Path) -> Result<()> {
    for (c, chunk) in servers.chunks(4).enumerate() {
        std::thread::scope(|s| -> Result<()> {
            let joins: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(i, server)| {
                    let id = format!("cluster{}", c * 4 + i + 1);
                    s.spawn(move || {
                        let (ok, out, err) =
                            server.subctl(dir, &["join", "broker-info.subm", "--clusterid", &id]);
                        if ok {
                            Ok(())
                        } else {
                            Err(anyhow!("join of {id} failed: {out}{err}"))
                        }
                    })
                })
                .collect();
            for j in joins {
                j.join().map_err(|_| anyhow!("a join panicked"))??;
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Starts cluster `k`'s Lighthouse agent and DNS server, logging into `logs`.
fn start_lighthouse(server: &ApiServer, k: u8, logs: &Path, procs: &mut Procs) -> Result<()> {
    let bin = subsea_integration::binary("subsea");
    let kc = server.kubeconfig();
    let log = |name: &str| -> Result<Stdio> {
        Ok(std::fs::File::create(logs.join(format!("cluster{k}-{name}.log")))?.into())
    };
    procs.0.push(
        Command::new(&bin)
            .arg("lighthouse-agent")
            .arg("--kubeconfig")
            .arg(&kc)
            .stdout(Stdio::null())
            .stderr(log("agent")?)
            .spawn()
            .context("starting a Lighthouse agent")?,
    );
    procs.0.push(
        Command::new(&bin)
            .arg("lighthouse-dns")
            .arg("--kubeconfig")
            .arg(&kc)
            .args(["--listen", &dns_addr(k).to_string()])
            .args(["--metrics-listen", "off", "--udp-workers", "1"])
            .stdout(Stdio::null())
            .stderr(log("dns")?)
            .spawn()
            .context("starting a Lighthouse DNS server")?,
    );
    Ok(())
}

fn export_resource() -> ApiResource {
    ApiResource {
        group: "multicluster.x-k8s.io".into(),
        version: "v1alpha1".into(),
        api_version: "multicluster.x-k8s.io/v1alpha1".into(),
        kind: "ServiceExport".into(),
        plural: "serviceexports".into(),
    }
}

/// Creates Service `name` with one ready endpoint; returns its ClusterIP.
async fn service(client: &Client, name: &str, backend: Ipv4Addr) -> Result<Ipv4Addr> {
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let svc: Service = serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}))?;
    let made = svcs.create(&PostParams::default(), &svc).await?;
    let ip = made
        .spec
        .and_then(|s| s.cluster_ip)
        .with_context(|| format!("service {name} got no ClusterIP"))?;
    let slices: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::erase::<k8s_openapi::api::discovery::v1::EndpointSlice>(&()),
    );
    let slice: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": format!("{name}-1"), "labels": {"kubernetes.io/service-name": name}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        "endpoints": [{"addresses": [backend.to_string()], "conditions": {"ready": true}}]}))?;
    slices.create(&PostParams::default(), &slice).await?;
    Ok(ip.parse()?)
}

async fn export(client: &Client, name: &str) -> Result<()> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &export_resource());
    let e: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "multicluster.x-k8s.io/v1alpha1", "kind": "ServiceExport",
        "metadata": {"name": name}}))?;
    api.create(&PostParams::default(), &e).await?;
    Ok(())
}

fn fqdn(name: &str) -> String {
    format!("{name}.default.svc.clusterset.local.")
}

/// Asks `server` for every name's A record (up to 256 in flight); returns which answered with
/// exactly the expected address.
async fn resolves(server: SocketAddr, names: &[(String, Ipv4Addr)]) -> Result<Vec<bool>> {
    Ok(answers(server, names)
        .await?
        .into_iter()
        .map(|a| a == Some(true))
        .collect())
}

/// Asks `server` for every name's A record (up to 256 in flight): per name, whether the answer
/// was exactly the expected address, or `None` when no reply came (a loaded server may drop a
/// query; that is not a wrong answer).
async fn answers(server: SocketAddr, names: &[(String, Ipv4Addr)]) -> Result<Vec<Option<bool>>> {
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    sock.connect(server).await?;
    let mut ok = vec![None; names.len()];
    let (mut next, mut inflight) = (0usize, 0usize);
    let mut buf = vec![0u8; 4096];
    while next < names.len() || inflight > 0 {
        while next < names.len() && inflight < 256 {
            let mut m = Message::query();
            m.metadata.id = next as u16;
            m.metadata.recursion_desired = true;
            m.add_query(Query::query(
                Name::from_ascii(fqdn(&names[next].0))?,
                RecordType::A,
            ));
            sock.send(&m.to_vec()?).await?;
            next += 1;
            inflight += 1;
        }
        match tokio::time::timeout(Duration::from_millis(500), sock.recv(&mut buf)).await {
            // The rest of this window went unanswered: counted as not resolving.
            Err(_) => inflight = 0,
            Ok(n) => {
                let Ok(reply) = Message::from_vec(&buf[..n?]) else {
                    continue;
                };
                inflight = inflight.saturating_sub(1);
                // Ids wrap at 65536: match the reply to the latest query with that id.
                let id = reply.metadata.id as usize;
                let Some(i) = (0..next).rev().find(|i| i % 65536 == id) else {
                    continue;
                };
                let want = RData::A(A(names[i].1));
                ok[i] = Some(reply.answers.len() == 1 && reply.answers[0].data == want);
            }
        }
    }
    Ok(ok)
}

async fn run(a: Args) -> Result<Vec<(String, String)>> {
    if !(1..=100).contains(&a.clusters) {
        bail!("--clusters must be between 1 and 100, got {}", a.clusters);
    }
    let etcd = match a.store.as_str() {
        "etcd" => Some(EtcdCluster::start(3)?),
        _ => None,
    };
    let mut flags = vec!["--context".to_string(), "broker".to_string()];
    if let Some(e) = &etcd {
        flags.extend(["--etcd-servers".into(), e.servers()]);
    }
    let flag_refs: Vec<&str> = flags.iter().map(String::as_str).collect();
    let broker = ApiServer::start(&flag_refs)?;
    let dir = TempDir::new("scale-bench");
    let (ok, out, err) = broker.subctl(&dir.0, &["deploy-broker"]);
    if !ok {
        bail!("deploy-broker failed: {out}{err}");
    }
    eprintln!("starting {} cluster API servers", a.clusters);
    let servers = start_clusters(a.clusters)?;
    eprintln!("joining them to the broker");
    join_all(&servers, &dir.0)?;
    let broker_client = bench::client(&broker.kubeconfig()).await?;
    let endpoints: Api<DynamicObject> = Api::namespaced_with(
        broker_client.clone(),
        BROKER_NAMESPACE,
        &ApiResource {
            group: "submariner.io".into(),
            version: "v1".into(),
            api_version: "submariner.io/v1".into(),
            kind: "Endpoint".into(),
            plural: "endpoints".into(),
        },
    );
    let mut procs = Procs(Vec::new());
    let mut members = Vec::new();
    for (i, server) in servers.into_iter().enumerate() {
        let k = i as u8 + 1;
        let id = format!("cluster{k}");
        let ep: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "submariner.io/v1", "kind": "Endpoint",
            "metadata": {"name": format!("{id}-submariner-cable-{id}-gw"),
                "labels": {"submariner-io/clusterID": id}},
            "spec": {"cluster_id": id, "cable_name": format!("submariner-cable-{id}-gw"),
                "hostname": "gw", "backend": "wireguard", "nat_enabled": false,
                "private_ip": format!("172.30.{k}.2"), "public_ip": format!("172.30.{k}.2"),
                "subnets": [format!("100.{}.0.0/16", 65 + k), format!("10.{}.0.0/16", 129 + k)],
                "backend_config": {"publicKey": "y1YnUgzXGBNi0C5cvUhhBtzLqFmlJVWFobrpmbB8Jh8="}}}))?;
        endpoints.create(&PostParams::default(), &ep).await?;
        start_lighthouse(&server, k, &dir.0, &mut procs)?;
        let client = bench::client(&server.kubeconfig()).await?;
        members.push(Member {
            id,
            _server: server,
            dns: dns_addr(k),
            client,
        });
    }

    eprintln!(
        "creating {} services with ready endpoints",
        a.clusters as usize * a.exports
    );
    let mut names: Vec<(String, Ipv4Addr)> = Vec::new();
    let made = futures::future::try_join_all(members.iter().enumerate().map(|(i, m)| {
        let client = m.client.clone();
        let count = a.exports;
        async move {
            let mut out = Vec::with_capacity(count);
            for j in 0..count {
                let name = format!("c{}-s{j}", i + 1);
                let backend = Ipv4Addr::new(10, 129 + i as u8 + 1, 1, (j % 250) as u8 + 1);
                out.push((name.clone(), service(&client, &name, backend).await?));
            }
            Ok::<_, anyhow::Error>(out)
        }
    }))
    .await?;
    for m in made {
        names.extend(m);
    }

    let broker_pid = broker.pid().context("the broker is not running")?;
    let cpu_before = bench::cpu_seconds(broker_pid);
    eprintln!("exporting {} services at once", names.len());
    let started = Instant::now();
    futures::future::try_join_all(members.iter().enumerate().map(|(i, m)| {
        let client = m.client.clone();
        let count = a.exports;
        async move {
            for j in 0..count {
                export(&client, &format!("c{}-s{j}", i + 1)).await?;
            }
            Ok::<_, anyhow::Error>(())
        }
    }))
    .await?;
    let exported = started.elapsed();
    // Every cluster must answer every name; a cluster's time is when its last name came right.
    let mut pending: Vec<Vec<usize>> = vec![(0..names.len()).collect(); members.len()];
    let mut done_at: Vec<Option<Duration>> = vec![None; members.len()];
    let deadline = started + Duration::from_secs(a.timeout);
    let mut round = 0usize;
    while done_at.iter().any(Option::is_none) {
        round += 1;
        if Instant::now() > deadline {
            let left: usize = pending.iter().map(Vec::len).sum();
            bail!("{left} answers still wrong or missing after {} s", a.timeout);
        }
        // Every cluster at once: one slow server must not hold up the others' checks.
        let asked: Vec<Vec<usize>> = pending
            .iter()
            .map(|p| {
                // A different slice of the spread each round, so every name is asked soon.
                let step = p.len().div_ceil(SAMPLE).max(1);
                p.iter().copied().skip(round % step).step_by(step).collect()
            })
            .collect();
        let answers =
            futures::future::try_join_all(members.iter().zip(&asked).enumerate().map(|(c, (m, asked))| {
                let queries: Vec<(String, Ipv4Addr)> = asked.iter().map(|&i| names[i].clone()).collect();
                let skip = done_at[c].is_some();
                async move {
                    if skip {
                        Ok(Vec::new())
                    } else {
                        resolves(m.dns, &queries).await
                    }
                }
            }))
            .await?;
        for (c, ok) in answers.into_iter().enumerate() {
            if done_at[c].is_some() {
                continue;
            }
            let right: std::collections::HashSet<usize> = asked[c]
                .iter()
                .zip(&ok)
                .filter(|(_, ok)| **ok)
                .map(|(i, _)| *i)
                .collect();
            pending[c].retain(|i| !right.contains(i));
            if pending[c].is_empty() {
                done_at[c] = Some(started.elapsed());
            }
        }
        let left: usize = pending.iter().map(Vec::len).sum();
        eprintln!(
            "{:>6.1} s: {} of {} clusters complete, {left} answers to go",
            started.elapsed().as_secs_f64(),
            done_at.iter().filter(|d| d.is_some()).count(),
            members.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let converged = done_at.iter().flatten().max().copied().unwrap_or_default();
    let cpu = bench::cpu_seconds(broker_pid) - cpu_before;
    // Once all came right, every answer again: none may have gone wrong since (a query that
    // got no reply is asked again, up to 5 times).
    for m in &members {
        let mut ask: Vec<(String, Ipv4Addr)> = names.clone();
        for _ in 0..5 {
            let got = answers(m.dns, &ask).await?;
            if let Some(i) = got.iter().position(|o| *o == Some(false)) {
                bail!(
                    "{} no longer answers {} with {} after converging",
                    m.id,
                    ask[i].0,
                    ask[i].1
                );
            }
            ask = ask
                .into_iter()
                .zip(got)
                .filter(|(_, o)| o.is_none())
                .map(|(n, _)| n)
                .collect();
            if ask.is_empty() {
                break;
            }
        }
        if let Some((name, _)) = ask.first() {
            bail!(
                "{} gave no answer for {name} (and {} more) in 5 tries",
                m.id,
                ask.len() - 1
            );
        }
    }
    let mut per_cluster: Vec<f64> = done_at.iter().flatten().map(Duration::as_secs_f64).collect();
    stats::sort(&mut per_cluster);

    eprintln!("timing {} single exports at this scale", a.samples);
    let stages = Stages::watch(&broker_client, &members).await?;
    let (mut to_broker, mut to_api, mut to_dns) = (Vec::new(), Vec::new(), Vec::new());
    let mut everywhere = Vec::new();
    let mut each = Vec::new();
    for s in 0..a.samples {
        let m = &members[s % members.len()];
        let name = format!("late-{s}");
        let ip = service(&m.client, &name, Ipv4Addr::new(10, 200, 0, 1)).await?;
        let want = vec![(name.clone(), ip)];
        let t0 = Instant::now();
        export(&m.client, &name).await?;
        let mut seen: HashMap<usize, f64> = HashMap::new();
        while seen.len() < members.len() {
            if t0.elapsed() > Duration::from_secs(60) {
                bail!(
                    "{name} (from {}) not resolvable in every cluster within 60 s",
                    m.id
                );
            }
            for (c, other) in members.iter().enumerate() {
                if !seen.contains_key(&c) && resolves(other.dns, &want).await?[0] {
                    seen.insert(c, t0.elapsed().as_secs_f64() * 1e3);
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let on_broker = stages.on_broker(&name, &m.id, t0);
        to_broker.extend(on_broker);
        for (c, dns) in &seen {
            if let (Some(b), Some(l)) = (on_broker, stages.in_cluster(*c, &name, &m.id, t0)) {
                to_api.push(l - b);
                to_dns.push(dns - l);
            }
        }
        everywhere.push(seen.values().cloned().fold(0.0, f64::max));
        each.extend(seen.into_values());
    }
    stats::sort(&mut everywhere);
    stats::sort(&mut each);

    bench::namespace(&broker_client, "fanout").await?;
    let (w50, w99) =
        bench::watch_latency(&broker_client, "fanout", 50, 100, Duration::from_millis(20)).await?;
    let rss = bench::rss_kib(broker_pid) as f64 / 1024.0;
    let hwm = bench::status_kib(broker_pid, "VmHWM") as f64 / 1024.0;
    let total = names.len();
    let n = members.len();
    drop(procs);
    Ok(vec![
        (
            format!("clusters × exports"),
            format!("{n} × {} = {total}", a.exports),
        ),
        (
            "answers checked (every name in every cluster)".into(),
            format!("{} ({n} × {total}), all correct", n * total),
        ),
        (
            "exports created (all clusters at once)".into(),
            format!("{:.1} s", exported.as_secs_f64()),
        ),
        (
            "every cluster resolves every export".into(),
            format!(
                "{:.1} s (first cluster {:.1} s, median {:.1} s)",
                converged.as_secs_f64(),
                per_cluster.first().copied().unwrap_or(0.0),
                stats::percentile(&per_cluster, 0.5)
            ),
        ),
        (
            format!(
                "one export → resolvable in all {n} clusters, p50 / p99 ({} exports)",
                a.samples
            ),
            format!(
                "{:.0} / {:.0} ms",
                stats::percentile(&everywhere, 0.5),
                stats::percentile(&everywhere, 0.99)
            ),
        ),
        (
            "same, per cluster, p50 / p99".into(),
            format!(
                "{:.0} / {:.0} ms",
                stats::percentile(&each, 0.5),
                stats::percentile(&each, 0.99)
            ),
        ),
        (
            "  of which: export → on the broker (import and slice), p50 / p99".into(),
            p50_p99(&mut to_broker),
        ),
        (
            "  on the broker → in a cluster's API server (import and slice), p50 / p99".into(),
            p50_p99(&mut to_api),
        ),
        (
            "  in the cluster's API server → its DNS answers, p50 / p99".into(),
            p50_p99(&mut to_dns),
        ),
        (
            "broker watch delivery p50 / p99, 50 more watchers".into(),
            format!("{w50:.1} / {w99:.1} ms"),
        ),
        ("broker CPU while converging".into(), format!("{cpu:.1} s")),
        (
            "broker RSS after / peak".into(),
            format!("{rss:.0} / {hwm:.0} MiB"),
        ),
    ])
}

fn p50_p99(v: &mut [f64]) -> String {
    stats::sort(v);
    format!(
        "{:.0} / {:.0} ms",
        stats::percentile(v, 0.5),
        stats::percentile(v, 0.99)
    )
}

/// Where an export's way goes: the broker's copy (import and slice) and each cluster's local
/// copy, first seen by watches started before the single exports.
struct Stages {
    broker: [bench::Arrivals; 2],
    clusters: Vec<[bench::Arrivals; 2]>,
}

impl Stages {
    async fn watch(broker: &Client, members: &[Member]) -> Result<Self> {
        let (imports, slices) = (import_resource(), slice_resource());
        let pair = |c: &Client, ns: &str| {
            [
                bench::Arrivals::watch(c, ns, &imports),
                bench::Arrivals::watch(c, ns, &slices),
            ]
        };
        let s = Self {
            broker: pair(broker, BROKER_NAMESPACE),
            clusters: members.iter().map(|m| pair(&m.client, "default")).collect(),
        };
        for a in s.broker.iter().chain(s.clusters.iter().flatten()) {
            a.listed(Duration::from_secs(60)).await?;
        }
        Ok(s)
    }

    /// Milliseconds from `t0` until both of `svc`'s broker objects from `cluster` were seen.
    fn on_broker(&self, svc: &str, cluster: &str, t0: Instant) -> Option<f64> {
        let name = format!("{svc}-default-{cluster}");
        latest(&self.broker, [name.as_str(), name.as_str()], t0)
    }

    /// Milliseconds from `t0` until cluster `c` held `svc`'s import and `cluster`'s slice.
    fn in_cluster(&self, c: usize, svc: &str, cluster: &str, t0: Instant) -> Option<f64> {
        let slice = format!("{svc}-{cluster}");
        latest(&self.clusters[c], [svc, slice.as_str()], t0)
    }
}

fn latest(watches: &[bench::Arrivals; 2], names: [&str; 2], t0: Instant) -> Option<f64> {
    let a = watches[0].at(names[0])?;
    let b = watches[1].at(names[1])?;
    Some(a.max(b).saturating_duration_since(t0).as_secs_f64() * 1e3)
}

fn import_resource() -> ApiResource {
    ApiResource {
        group: "multicluster.x-k8s.io".into(),
        version: "v1alpha1".into(),
        api_version: "multicluster.x-k8s.io/v1alpha1".into(),
        kind: "ServiceImport".into(),
        plural: "serviceimports".into(),
    }
}

fn slice_resource() -> ApiResource {
    ApiResource::erase::<k8s_openapi::api::discovery::v1::EndpointSlice>(&())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if std::env::var_os("SUBSEA_BIN_DIR").is_none() {
        eprintln!(
            "✗ set SUBSEA_BIN_DIR to the directory holding subsea and subctl (e2e/bench/scale.sh does)"
        );
        return std::process::ExitCode::FAILURE;
    }
    if std::env::var(subsea_integration::STORE_ENV).is_ok_and(|v| !v.is_empty() && v != "embedded") {
        eprintln!(
            "✗ unset {}: the clusters' own API servers use the embedded store; --store picks the broker's",
            subsea_integration::STORE_ENV
        );
        return std::process::ExitCode::FAILURE;
    }
    let store = args.store.clone();
    match run(args).await {
        Ok(rows) => {
            bench::print_rows(&format!("value (broker on {store})"), &rows);
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("✗ {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
