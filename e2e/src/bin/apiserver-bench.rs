//! Benchmark of `subsea apiserver`: durable creates and updates per second (1 and 16 clients),
//! listing 10k objects, watch delivery latency (1, 10, 100 watchers) and memory per object with
//! 100k ConfigMaps. Starts its own server from `SUBSEA_BIN` (default `target/release/subsea`)
//! on loopback in a temporary directory. Prints a table; medians where repeated. With
//! `SUBSEA_BENCH_ETCD=URL[,URL]` the server keeps its objects in that etcd (the memory rows are
//! left out: the cache is the embedded store's).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use subsea_e2e::bench;
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
    bench::client(&s.dir.join("admin.kubeconfig")).await
}

fn cm(name: &str, v: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"v": v}})).expect("valid ConfigMap")
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

#[tokio::main]
async fn main() -> Result<()> {
    let server = start()?;
    let c = client(&server).await?;
    let mut rows: Vec<(String, String)> = Vec::new();
    for (clients, total) in [(1usize, 1000usize), (16, 8000)] {
        let ns = format!("rate{clients}");
        bench::namespace(&c, &ns).await?;
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
    bench::namespace(&c, "list").await?;
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
        bench::namespace(&c, &ns).await?;
        let (p50, p99) = bench::watch_latency(&c, &ns, watchers, 200, Duration::from_millis(5)).await?;
        rows.push((
            format!("watch delivery p50 / p99, {watchers} watcher(s), ms"),
            format!("{p50:.2} / {p99:.2}"),
        ));
    }
    if etcd().is_some() {
        print_rows(rows);
        return Ok(());
    }
    bench::namespace(&c, "mem").await?;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "mem");
    let before = bench::rss_kib(server.child.id());
    burst(&api, "m", 100_000, 16, false).await?;
    let after = bench::rss_kib(server.child.id());
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
    let store = if etcd().is_some() { "etcd" } else { "embedded log" };
    bench::print_rows(&format!("value ({store})"), &rows);
}
