//! Measuring helpers shared by the benchmarks: clients from kubeconfig files, process
//! resources from /proc, and watch delivery latency.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;
use subsea_nettest::stats;

/// A kube-rs client from an admin kubeconfig file.
pub async fn client(kubeconfig: &Path) -> Result<Client> {
    let kc = kube::config::Kubeconfig::read_from(kubeconfig)?;
    Ok(Client::try_from(
        kube::Config::from_custom_kubeconfig(kc, &Default::default()).await?,
    )?)
}

/// A `/proc/<pid>/status` field in KiB (`VmRSS`, `VmHWM`), 0 when unreadable.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Resident memory of `pid` in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS")
}

/// CPU time (user + system) `pid` has used, in seconds (clock ticks of 1/100 s, as on Linux).
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces: fields count from after its closing parenthesis.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat; 11 and 12 after the name.
    (tick(11) + tick(12)) / 100.0
}

/// Microseconds since the epoch.
pub fn now_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

/// Watch delivery latency in `ns`: `watchers` watches, `events` ConfigMaps created with their
/// send time in them, `gap` apart; returns (p50, p99) in ms over every delivery.
pub async fn watch_latency(
    client: &Client,
    ns: &str,
    watchers: usize,
    events: usize,
    gap: Duration,
) -> Result<(f64, f64)> {
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
            let stream = api.watch(&WatchParams::default().timeout(290), &rv).await?;
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
        tokio::time::sleep(gap).await;
    }
    for t in tasks {
        tokio::time::timeout(Duration::from_secs(120), t).await???;
    }
    let mut s = samples.lock().expect("lock").clone();
    stats::sort(&mut s);
    Ok((stats::percentile(&s, 0.5), stats::percentile(&s, 0.99)))
}

/// Creates namespace `name`.
pub async fn namespace(client: &Client, name: &str) -> Result<()> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}}))?,
    )
    .await?;
    Ok(())
}

/// Prints a two-column table headed by `title`.
pub fn print_rows(title: &str, rows: &[(String, String)]) {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    println!("{:width$}  {title}", "measure");
    for (k, v) in rows {
        println!("{k:width$}  {v}");
    }
}

/// When each object of one resource in one namespace was first seen, from a watch started
/// before the objects are made: the stages of a change's way through the system, timed apart.
/// The watch stops when this is dropped.
pub struct Arrivals {
    seen: Arc<std::sync::Mutex<std::collections::HashMap<String, std::time::Instant>>>,
    listed: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Arrivals {
    /// Watches `ar` objects in `ns`; [`Arrivals::listed`] waits for the first list.
    pub fn watch(client: &Client, ns: &str, ar: &kube::api::ApiResource) -> Self {
        use futures::StreamExt;
        use kube::ResourceExt;
        use kube::runtime::watcher::{self, Event};
        let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), ns, ar);
        let seen: Arc<std::sync::Mutex<std::collections::HashMap<_, _>>> = Arc::default();
        let listed = Arc::new(tokio::sync::Notify::new());
        let (into, done) = (seen.clone(), listed.clone());
        let task = tokio::spawn(async move {
            let stream = watcher::watcher(api, watcher::Config::default());
            futures::pin_mut!(stream);
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(Event::Apply(o) | Event::InitApply(o)) => {
                        let now = std::time::Instant::now();
                        into.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .entry(o.name_any())
                            .or_insert(now);
                    }
                    Ok(Event::InitDone) => done.notify_one(),
                    _ => {}
                }
            }
        });
        Self { seen, listed, task }
    }

    /// Waits until the watch's first list is in (`limit` at most).
    pub async fn listed(&self, limit: Duration) -> Result<()> {
        tokio::time::timeout(limit, self.listed.notified())
            .await
            .map_err(|_| anyhow::anyhow!("a watch did not list within {limit:?}"))
    }

    /// When `name` was first seen, if it was.
    pub fn at(&self, name: &str) -> Option<std::time::Instant> {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied()
    }
}

impl Drop for Arrivals {
    fn drop(&mut self) {
        self.task.abort();
    }
}
