//! Benchmark of `subsea apiserver`: durable creates and updates per second (1 and 16 clients),
//! listing 10k objects, watch delivery latency (1, 10, 100 watchers) and memory per object with
//! 100k ConfigMaps. Starts its own server from `SUBSEA_BIN` (default `target/release/subsea`)
//! on loopback in a temporary directory. Prints a table; medians where repeated. With
//! `SUBSEA_BENCH_ETCD=URL[,URL]` the server keeps its objects in that etcd (the memory rows are
//! left out: the cache is the embedded store's).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use subsea_nettest::stats;

struct Server {
    child: Child,
    dir: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start() -> Result<Server> {
    let bin = std::env::var("SUBSEA_BIN").unwrap_or_else(|_| "target/release/subsea".into());
    let dir = std::env::temp_dir().join(format!("subsea-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut cmd = Command::new(&bin);
    cmd.args(["apiserver", "--data-dir"])
        .arg(&dir)
        .args(["--listen", "127.0.0.1:0"]);
    if let Some(etcd) = etcd() {
        cmd.args(["--etcd-servers", &etcd]);
    }
    let child = cmd
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("failed to start {bin}"))?;
    let server = Server { child, dir };
    for _ in 0..200 {
        if server.dir.join("admin.kubeconfig").exists() {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("the server did not start")
}

fn etcd() -> Option<String> {
    std::env::var("SUBSEA_BENCH_ETCD").ok().filter(|e| !e.is_empty())
}

async fn client(s: &Server) -> Result<Client> {
    let kc = kube::config::Kubeconfig::read_from(s.dir.join("admin.kubeconfig"))?;
    Ok(Client::try_from(
        kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?,
    )?)
}

fn cm(name: &str, v: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"v": v}})).expect("valid ConfigMap")
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Writes `total` objects named `<prefix>-<client>-<i>` with `clients` concurrent writers,
/// creating them or (with `update`) replacing existing ones; returns writes per second.
async fn burst(
    api: &Api<ConfigMap>,
    prefix: &str,
    total: usize,
    clients: usize,
    update: bool,
) -> Result<f64> {
    let started = Instant::now();
    let per = total / clients;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let api = api.clone();
            let prefix = prefix.to_string();
            tokio::spawn(async move {
                for i in 0..per {
                    let name = format!("{prefix}-{c}-{i}");
                    if update {
                        api.replace(&name, &PostParams::default(), &cm(&name, "1"))
                            .await?;
                    } else {
                        api.create(&PostParams::default(), &cm(&name, "0")).await?;
                    }
                }
                Ok::<_, kube::Error>(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok((per * clients) as f64 / started.elapsed().as_secs_f64())
}

fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

/// Watch latency: `watchers` watches, `events` writes stamped with their send time.
async fn watch_latency(client: &Client, ns: &str, watchers: usize, events: usize) -> Result<(f64, f64)> {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let rv = api
        .list(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let api = api.clone();
        let rv = rv.clone();
        let samples = samples.clone();
        tasks.push(tokio::spawn(async move {
            let stream = api.watch(&WatchParams::default().timeout(120), &rv).await?;
            futures::pin_mut!(stream);
            let mut seen = 0;
            while let Some(ev) = stream.try_next().await? {
                if let WatchEvent::Added(c) = ev {
                    let sent: u128 = c
                        .data
                        .and_then(|d| d.get("t").cloned())
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(0);
                    samples
                        .lock()
                        .expect("lock")
                        .push((now_us() - sent) as f64 / 1000.0);
                    seen += 1;
                    if seen == events {
                        break;
                    }
                }
            }
            Ok::<_, kube::Error>(())
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..events {
        let c: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": format!("w{i}")}, "data": {"t": now_us().to_string()}}),
        )?;
        api.create(&PostParams::default(), &c).await?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(60), t).await???;
    }
    let mut s = samples.lock().expect("lock").clone();
    stats::sort(&mut s);
    Ok((stats::percentile(&s, 0.5), stats::percentile(&s, 0.99)))
}

async fn namespace(client: &Client, name: &str) -> Result<()> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}}))?,
    )
    .await?;
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let server = start()?;
    let c = client(&server).await?;
    let mut rows: Vec<(String, String)> = Vec::new();
    for (clients, total) in [(1usize, 1000usize), (16, 8000)] {
        let ns = format!("rate{clients}");
        namespace(&c, &ns).await?;
        let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
        let cr = burst(&api, "o", total, clients, false).await?;
        let up = burst(&api, "o", total, clients, true).await?;
        rows.push((
            format!("durable creates/s, {clients} client(s)"),
            format!("{cr:.0}"),
        ));
        rows.push((
            format!("durable updates/s, {clients} client(s)"),
            format!("{up:.0}"),
        ));
    }
    namespace(&c, "list").await?;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "list");
    burst(&api, "l", 10_000, 16, false).await?;
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let n = api.list(&ListParams::default()).await?.items.len();
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(n, 10_000);
    }
    rows.push((
        "list 10k objects (median of 5), ms".into(),
        format!("{:.1}", stats::median(&mut times)),
    ));
    for watchers in [1usize, 10, 100] {
        let ns = format!("watch{watchers}");
        namespace(&c, &ns).await?;
        let (p50, p99) = watch_latency(&c, &ns, watchers, 200).await?;
        rows.push((
            format!("watch delivery p50 / p99, {watchers} watcher(s), ms"),
            format!("{p50:.2} / {p99:.2}"),
        ));
    }
    if etcd().is_some() {
        print_rows(rows);
        return Ok(());
    }
    namespace(&c, "mem").await?;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "mem");
    let before = rss_kib(server.child.id());
    burst(&api, "m", 100_000, 16, false).await?;
    let after = rss_kib(server.child.id());
    let sample = serde_json::to_vec(&api.get("m-0-0").await?)?.len();
    let per_object = (after.saturating_sub(before) as f64 * 1024.0) / 100_000.0;
    rows.push((
        "RSS growth per ConfigMap, bytes (raw JSON size)".into(),
        format!("{per_object:.0} ({sample})"),
    ));
    rows.push((
        "RSS with 100k+ ConfigMaps, MiB".into(),
        format!("{:.0}", after as f64 / 1024.0),
    ));
    print_rows(rows);
    Ok(())
}

fn print_rows(rows: Vec<(String, String)>) {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let store = if etcd().is_some() { "etcd" } else { "embedded log" };
    println!("{:width$}  {} ({store})", "measure", "value");
    for (k, v) in rows {
        println!("{k:width$}  {v}");
    }
}
