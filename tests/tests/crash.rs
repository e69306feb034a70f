//! Crash safety: SIGKILL the server in the middle of a burst of creates and updates, restart
//! it, and check that every acknowledged write survived with its resourceVersion and that no
//! object holds anything but a value some client actually sent. `CRASH_ROUNDS` sets the number
//! of kill/restart rounds (CI runs a few; e2e/bench/crash.sh runs 20).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use subsea_integration::ApiServer;

/// What the clients know about one object.
#[derive(Clone, Debug, Default)]
struct Known {
    /// Last acknowledged (resourceVersion, value).
    acked: Option<(u64, String)>,
    /// A write sent but not acknowledged when the server died.
    in_flight: Option<String>,
}

type Ledger = Arc<Mutex<HashMap<String, Known>>>;

async fn client(s: &ApiServer) -> Client {
    let kc = kube::config::Kubeconfig::read_from(s.kubeconfig()).expect("kubeconfig");
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    cfg.connect_timeout = Some(Duration::from_secs(2));
    cfg.read_timeout = Some(Duration::from_secs(2));
    Client::try_from(cfg).expect("client")
}

fn cm(name: &str, v: &str, rv: Option<String>) -> ConfigMap {
    let mut c: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": name}, "data": {"v": v}})).expect("cm");
    c.metadata.resource_version = rv;
    c
}

fn rv_of(c: &ConfigMap) -> u64 {
    c.metadata
        .resource_version
        .as_deref()
        .and_then(|r| r.parse().ok())
        .expect("resourceVersion")
}

/// One writer: creates objects and updates each twice, recording every acknowledgement.
async fn writer(api: Api<ConfigMap>, id: usize, round: usize, ledger: Ledger) {
    for i in 0.. {
        let name = format!("r{round}-w{id}-{i}");
        let mut rv = None;
        for step in 0..3 {
            let value = format!("{name}-v{step}");
            ledger
                .lock()
                .expect("lock")
                .entry(name.clone())
                .or_default()
                .in_flight = Some(value.clone());
            let result = if step == 0 {
                api.create(&PostParams::default(), &cm(&name, &value, None)).await
            } else {
                api.replace(&name, &PostParams::default(), &cm(&name, &value, rv.clone()))
                    .await
            };
            match result {
                Ok(stored) => {
                    let mut l = ledger.lock().expect("lock");
                    let k = l.entry(name.clone()).or_default();
                    k.acked = Some((rv_of(&stored), value));
                    k.in_flight = None;
                    rv = stored.metadata.resource_version.clone();
                }
                // The server is gone: whatever was sent stays "in flight".
                Err(_) => return,
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    let rounds: usize = std::env::var("CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let mut server = ApiServer::start(&[]).expect("server");
    let ledger: Ledger = Arc::default();
    for round in 0..rounds {
        let c = client(&server).await;
        let tasks: Vec<_> = (0..8)
            .map(|id| {
                tokio::spawn(writer(
                    Api::namespaced(c.clone(), "default"),
                    id,
                    round,
                    ledger.clone(),
                ))
            })
            .collect();
        // Kill only once writes are flowing (a slow machine may take a while to connect), at a
        // moment that varies from round to round.
        let acked_now = || {
            ledger
                .lock()
                .expect("lock")
                .values()
                .filter(|k| k.acked.is_some())
                .count()
        };
        let before = acked_now();
        for _ in 0..200 {
            if acked_now() >= before + 20 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        tokio::time::sleep(Duration::from_millis(97 * round as u64 % 300)).await;
        server.kill();
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
        server.restart().expect("restart");

        let api: Api<ConfigMap> = Api::namespaced(client(&server).await, "default");
        let stored: HashMap<String, ConfigMap> = api
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .into_iter()
            .map(|c| (c.metadata.name.clone().unwrap_or_default(), c))
            .collect();
        let ledger = ledger.lock().expect("lock");
        let mut acked = 0;
        for (name, known) in ledger.iter() {
            let got = stored.get(name);
            let value = got
                .and_then(|c| c.data.as_ref())
                .and_then(|d| d.get("v"))
                .cloned();
            match (&known.acked, got) {
                (Some((rv, v)), Some(c)) => {
                    acked += 1;
                    let (got_rv, got_v) = (rv_of(c), value.unwrap_or_default());
                    if got_rv == *rv {
                        assert_eq!(&got_v, v, "{name}: acknowledged value at rv {rv}");
                    } else {
                        assert!(
                            got_rv > *rv,
                            "{name}: resourceVersion went back from {rv} to {got_rv}"
                        );
                        assert_eq!(
                            Some(&got_v),
                            known.in_flight.as_ref(),
                            "{name}: newer than acknowledged, so it must be the write in flight"
                        );
                    }
                }
                (Some((rv, _)), None) => {
                    panic!("{name}: acknowledged at rv {rv} but lost after SIGKILL (round {round})")
                }
                (None, Some(_)) => assert_eq!(
                    value.as_ref(),
                    known.in_flight.as_ref(),
                    "{name}: unacknowledged create must hold what was sent"
                ),
                (None, None) => {}
            }
        }
        assert!(
            acked > 0,
            "round {round}: no write was acknowledged before the kill"
        );
        for name in stored.keys().filter(|n| n.starts_with('r')) {
            assert!(ledger.contains_key(name), "{name} exists but nobody wrote it");
        }
        eprintln!("round {round}: {acked} acknowledged objects intact after SIGKILL");
    }
}
