//! kube-rs 5 against `subsea apiserver`: typed CRUD, discovery, watchers that survive 410, a
//! Controller with the finalizer helper, and await_condition.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Client, Discovery, ResourceExt};
use serde_json::json;
use subsea_api::mcs::v1alpha1::ServiceExport;
use subsea_api::mcs::{Condition, ServiceExportStatus};
use subsea_api::submariner::{Cluster, ClusterSpec, Endpoint, EndpointSpec};
use subsea_integration::ApiServer;
use tokio::net::{TcpListener, TcpStream};

async fn client_at(s: &ApiServer, url: Option<String>) -> Client {
    let kc = kube::config::Kubeconfig::read_from(s.kubeconfig()).expect("kubeconfig");
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    if let Some(u) = url {
        cfg.cluster_url = u.parse().expect("url");
    }
    Client::try_from(cfg).expect("client")
}

async fn install_crds(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (_, crd) in subsea_api::crds::all() {
        let name = crd.name_any();
        crds.create(&PostParams::default(), &crd)
            .await
            .expect("create CRD");
        let established = await_condition(crds.clone(), &name, conditions::is_crd_established());
        tokio::time::timeout(Duration::from_secs(10), established)
            .await
            .expect("CRD established in time")
            .expect("watch");
    }
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": {"app": "t"}}, "data": {"k": "v"}}))
        .expect("cm")
}

#[tokio::test]
async fn typed_crud_for_builtins_and_custom_resources() {
    let s = ApiServer::start(&[]).expect("server");
    let client = client_at(&s, None).await;
    install_crds(&client).await;

    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let dry_created = cms.create(&dry, &cm("dry")).await.expect("dry-run create");
    assert_eq!(dry_created.metadata.name.as_deref(), Some("dry"));
    assert!(
        cms.get_opt("dry").await.expect("get").is_none(),
        "dryRun=All is not persisted"
    );
    let created = cms
        .create(&PostParams::default(), &cm("a"))
        .await
        .expect("create");
    assert!(created.resource_version().is_some() && created.uid().is_some());
    let err = cms
        .create(&PostParams::default(), &cm("a"))
        .await
        .expect_err("duplicate");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.is_already_exists()),
        "{err:?}"
    );
    let mut changed = created.clone();
    changed.data = Some([("k".to_string(), "w".to_string())].into());
    let replaced = cms
        .replace("a", &PostParams::default(), &changed)
        .await
        .expect("replace");
    assert_eq!(
        replaced
            .data
            .as_ref()
            .and_then(|d| d.get("k"))
            .map(String::as_str),
        Some("w")
    );
    let err = cms
        .replace("a", &PostParams::default(), &changed)
        .await
        .expect_err("stale");
    assert!(matches!(&err, kube::Error::Api(s) if s.is_conflict()), "{err:?}");
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
    )
    .await
    .expect("merge");
    let listed = cms
        .list(&ListParams::default().labels("x=y"))
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
    assert!(listed.metadata.resource_version.is_some());
    assert!(cms.get_opt("missing").await.expect("get_opt").is_none());
    let meta = cms
        .list_metadata(&ListParams::default())
        .await
        .expect("metadata list");
    assert_eq!(meta.items.len(), 1);
    assert_eq!(meta.items[0].metadata.name.as_deref(), Some("a"));
    assert_eq!(
        cms.get_metadata("a")
            .await
            .expect("metadata get")
            .metadata
            .labels
            .and_then(|l| l.get("x").cloned()),
        Some("y".into())
    );
    let deleted = cms.delete("a", &DeleteParams::default()).await.expect("delete");
    assert!(deleted.is_right(), "an immediate delete returns a Status");

    let clusters: Api<Cluster> = Api::namespaced(client.clone(), "default");
    let spec = ClusterSpec {
        cluster_id: "cluster1".into(),
        service_cidr: vec!["100.66.0.0/16".into()],
        cluster_cidr: vec!["10.130.0.0/16".into()],
        ..Default::default()
    };
    let c = clusters
        .create(&PostParams::default(), &Cluster::new("cluster1", spec))
        .await
        .expect("create cluster");
    assert_eq!(c.spec.cluster_id, "cluster1");
    let invalid = Cluster::new("cluster2", ClusterSpec::default());
    let err = clusters
        .create(&PostParams::default(), &invalid)
        .await
        .expect_err("cluster_id too short");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.is_invalid() && s.message.contains("should be at least 1 chars long")),
        "{err:?}"
    );

    let endpoints: Api<Endpoint> = Api::namespaced(client.clone(), "default");
    let ep = EndpointSpec {
        cluster_id: "cluster1".into(),
        cable_name: "submariner-cable-cluster1-172-18-0-4".into(),
        hostname: "gw1".into(),
        private_ip: "172.18.0.4".into(),
        private_ips: vec!["172.18.0.4".into(), "fd00::4".into()],
        backend: "wireguard".into(),
        backend_config: [("publicKey".to_string(), "abc=".to_string())].into(),
        ..Default::default()
    };
    endpoints
        .create(
            &PostParams::default(),
            &Endpoint::new("cluster1-submariner-cable-cluster1-172-18-0-4", ep.clone()),
        )
        .await
        .expect("create endpoint");
    let got = endpoints
        .get("cluster1-submariner-cable-cluster1-172-18-0-4")
        .await
        .expect("get endpoint");
    assert_eq!(got.spec, ep, "every field, plural IPs included, round-trips");

    let exports: Api<ServiceExport> = Api::namespaced(client.clone(), "default");
    exports
        .create(
            &PostParams::default(),
            &ServiceExport::new("svc", Default::default()),
        )
        .await
        .expect("export");
    let status = json!({"status": {"conditions": [{"type": "Valid", "status": "True", "reason": "Valid"}]}});
    let patched = exports
        .patch_status("svc", &PatchParams::default(), &Patch::Merge(status))
        .await
        .expect("status");
    assert_eq!(patched.status.map(|s| s.conditions.len()), Some(1));
    assert_eq!(
        patched.metadata.generation,
        Some(1),
        "status writes do not bump generation"
    );
}

#[tokio::test]
async fn discovery_run_sees_builtin_and_submariner_groups() {
    let s = ApiServer::start(&[]).expect("server");
    let client = client_at(&s, None).await;
    install_crds(&client).await;
    let aggregated = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .expect("aggregated discovery");
    let agg_groups: Vec<String> = aggregated.groups().map(|g| g.name().to_string()).collect();
    for want in ["", "apps", "submariner.io", "multicluster.x-k8s.io"] {
        assert!(
            agg_groups.iter().any(|g| g == want),
            "{want} missing from aggregated {agg_groups:?}"
        );
    }
    let (ar, caps) = aggregated
        .resolve_gvk(&kube::api::GroupVersionKind::gvk(
            "submariner.io",
            "v1",
            "Gateway",
        ))
        .expect("Gateway");
    assert_eq!(
        (ar.plural.as_str(), caps.scope),
        ("gateways", kube::discovery::Scope::Namespaced)
    );
    let discovery = Discovery::new(client).run().await.expect("discovery");
    let groups: Vec<String> = discovery.groups().map(|g| g.name().to_string()).collect();
    for want in [
        "",
        "apps",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "submariner.io",
        "multicluster.x-k8s.io",
    ] {
        assert!(groups.iter().any(|g| g == want), "{want} missing from {groups:?}");
    }
    let mcs = discovery.get("multicluster.x-k8s.io").expect("mcs group");
    assert_eq!(mcs.preferred_version_or_latest(), "v1beta1");
    let kinds: Vec<String> = mcs
        .recommended_resources()
        .into_iter()
        .map(|(ar, _)| ar.kind)
        .collect();
    assert!(
        kinds.contains(&"ServiceExport".to_string()) && kinds.contains(&"ServiceImport".to_string()),
        "{kinds:?}"
    );
}

/// A TCP proxy that can cut its connections and hold new ones, to force a watcher to resume
/// from a resourceVersion the server no longer has.
struct Proxy {
    addr: SocketAddr,
    paused: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let paused = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (p, c) = (paused.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                let p = p.clone();
                let task = tokio::spawn(async move {
                    for _ in 0..600 {
                        if !p.load(Ordering::SeqCst) {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    if let Ok(mut up) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                c.lock().expect("lock").push(task);
            }
        });
        Self { addr, paused, conns }
    }

    fn pause(&self) {
        self.paused.store(true, Ordering::SeqCst);
        for t in self.conns.lock().expect("lock").drain(..) {
            t.abort();
        }
    }

    fn resume(&self) {
        self.paused.store(false, Ordering::SeqCst);
    }
}

fn server_addr(s: &ApiServer) -> SocketAddr {
    let kc = std::fs::read_to_string(s.kubeconfig()).expect("kubeconfig");
    let url = kc
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: https://"))
        .expect("server line");
    url.parse().expect("addr")
}

#[tokio::test]
async fn watcher_and_reflector_relist_after_a_forced_410() {
    let s = ApiServer::start(&["--watch-cache-size", "5"]).expect("server");
    let proxy = Proxy::start(server_addr(&s)).await;
    let direct = client_at(&s, None).await;
    let proxied = client_at(&s, Some(format!("https://127.0.0.1:{}", proxy.addr.port()))).await;
    let cms: Api<ConfigMap> = Api::namespaced(direct.clone(), "default");
    for i in 0..3 {
        cms.create(&PostParams::default(), &cm(&format!("first-{i}")))
            .await
            .expect("create");
    }
    let (reader, writer) = reflector::store::<ConfigMap>();
    let inits = Arc::new(AtomicUsize::new(0));
    let seen = inits.clone();
    let api: Api<ConfigMap> = Api::namespaced(proxied, "default");
    let stream = reflector(writer, watcher(api, watcher::Config::default().labels("app=t")))
        .default_backoff()
        .inspect_ok(move |ev| {
            if matches!(ev, watcher::Event::Init) {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        });
    let task = tokio::spawn(stream.for_each(|_| async {}));
    tokio::time::timeout(Duration::from_secs(10), reader.wait_until_ready())
        .await
        .expect("ready in time")
        .expect("ready");
    assert_eq!(reader.state().len(), 3);

    proxy.pause();
    for i in 0..20 {
        cms.create(&PostParams::default(), &cm(&format!("later-{i}")))
            .await
            .expect("create");
    }
    cms.delete("first-0", &DeleteParams::default())
        .await
        .expect("delete");
    proxy.resume();

    let mut ok = false;
    for _ in 0..200 {
        if reader.state().len() == 22 && inits.load(Ordering::SeqCst) >= 2 {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    task.abort();
    assert!(
        ok,
        "reflector has {} objects after {} lists; server log:\n{}",
        reader.state().len(),
        inits.load(Ordering::SeqCst),
        s.log()
    );
    assert!(
        reader
            .get(&reflector::ObjectRef::new("first-0").within("default"))
            .is_none()
    );
}

struct Ctx {
    client: Client,
    cleaned: Mutex<Vec<String>>,
}

async fn reconcile(
    obj: Arc<ServiceExport>,
    ctx: Arc<Ctx>,
) -> Result<Action, kube::runtime::finalizer::Error<kube::Error>> {
    let api: Api<ServiceExport> = Api::namespaced(ctx.client.clone(), &obj.namespace().unwrap_or_default());
    finalizer(&api, "subsea.test/cleanup", obj, |ev| async {
        match ev {
            Finalizer::Apply(o) => {
                let status = ServiceExportStatus {
                    conditions: vec![Condition {
                        type_: "Valid".into(),
                        status: "True".into(),
                        reason: Some("Valid".into()),
                        ..Default::default()
                    }],
                };
                api.patch_status(
                    &o.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": status})),
                )
                .await?;
                Ok(Action::await_change())
            }
            Finalizer::Cleanup(o) => {
                ctx.cleaned.lock().expect("lock").push(o.name_any());
                Ok(Action::await_change())
            }
        }
    })
    .await
}

#[tokio::test]
async fn controller_with_finalizer_reconciles_and_cleans_up() {
    let s = ApiServer::start(&[]).expect("server");
    let client = client_at(&s, None).await;
    install_crds(&client).await;
    let api: Api<ServiceExport> = Api::namespaced(client.clone(), "default");
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        cleaned: Mutex::default(),
    });
    let controller = Controller::new(api.clone(), watcher::Config::default())
        .run(
            reconcile,
            |_, _, _| Action::requeue(Duration::from_millis(200)),
            ctx.clone(),
        )
        .for_each(|_| async {});
    let task = tokio::spawn(controller);

    let created = api
        .create(
            &PostParams::default(),
            &ServiceExport::new("payment-service", Default::default()),
        )
        .await
        .expect("create");
    let valid = await_condition(api.clone(), "payment-service", |o: Option<&ServiceExport>| {
        o.and_then(|o| o.status.as_ref())
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Valid"))
    });
    tokio::time::timeout(Duration::from_secs(20), valid)
        .await
        .expect("reconciled in time")
        .expect("watch");
    let live = api.get("payment-service").await.expect("get");
    assert_eq!(live.finalizers(), &["subsea.test/cleanup".to_string()]);

    api.delete("payment-service", &DeleteParams::default())
        .await
        .expect("delete");
    let uid = created.uid().expect("uid");
    let gone = await_condition(api.clone(), "payment-service", conditions::is_deleted(&uid));
    tokio::time::timeout(Duration::from_secs(20), gone)
        .await
        .expect("deleted in time")
        .expect("watch");
    task.abort();
    assert_eq!(
        *ctx.cleaned.lock().expect("lock"),
        vec!["payment-service".to_string()]
    );
}

async fn status_of(
    client: &Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("Content-Type", content_type)
        .body(kube::client::Body::from(body))
        .expect("request");
    let resp = client.send(req).await.expect("send");
    let code = resp.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("body")
        .to_bytes();
    (
        code,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn bad_requests_get_the_right_status_codes() {
    let s = ApiServer::start(&[]).expect("server");
    let client = client_at(&s, None).await;
    install_crds(&client).await;
    let cms = "/api/v1/namespaces/default/configmaps";
    let json = "application/json";
    let cases: Vec<(&str, &str, &str, Vec<u8>, u16, &str)> = vec![
        ("POST", cms, json, b"{not json".to_vec(), 400, "BadRequest"),
        (
            "POST",
            cms,
            json,
            br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}"#.to_vec(),
            400,
            "BadRequest",
        ),
        (
            "POST",
            cms,
            json,
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Not_DNS"}}"#.to_vec(),
            422,
            "Invalid",
        ),
        (
            "POST",
            cms,
            json,
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"labels":"x","name":"a"}}"#.to_vec(),
            400,
            "BadRequest",
        ),
        (
            "POST",
            cms,
            json,
            vec![b'{'; 4 << 20],
            413,
            "RequestEntityTooLarge",
        ),
        (
            "POST",
            cms,
            json,
            format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
            400,
            "BadRequest",
        ),
        (
            "POST",
            "/api/v1/namespaces/nope/configmaps",
            json,
            br#"{"metadata":{"name":"a"}}"#.to_vec(),
            404,
            "NotFound",
        ),
        (
            "POST",
            cms,
            "application/vnd.kubernetes.protobuf",
            b"k8s\0".to_vec(),
            400,
            "BadRequest",
        ),
        (
            "PATCH",
            "/apis/submariner.io/v1/namespaces/default/clusters/x",
            "application/strategic-merge-patch+json",
            b"{}".to_vec(),
            404,
            "NotFound",
        ),
        ("GET", "/api/v1/nothings", json, Vec::new(), 404, "NotFound"),
        ("PUT", cms, json, b"{}".to_vec(), 405, "MethodNotAllowed"),
        (
            "GET",
            "/api/v1/configmaps?labelSelector=a%3D(",
            json,
            Vec::new(),
            400,
            "BadRequest",
        ),
        (
            "GET",
            "/api/v1/configmaps?fieldSelector=spec.x%3D1",
            json,
            Vec::new(),
            400,
            "BadRequest",
        ),
    ];
    for (method, path, ct, body, code, reason) in cases {
        let (got, status) = status_of(&client, method, path, ct, body).await;
        assert_eq!(
            (got, status["reason"].as_str()),
            (code, Some(reason)),
            "{method} {path}: {status}"
        );
        assert_eq!(status["kind"], "Status");
    }
    // A strategic merge patch on a custom resource is a 415, as on a real cluster.
    let clusters: Api<Cluster> = Api::namespaced(client.clone(), "default");
    let spec = ClusterSpec {
        cluster_id: "c".into(),
        ..Default::default()
    };
    clusters
        .create(&PostParams::default(), &Cluster::new("c", spec))
        .await
        .expect("create");
    let (got, _) = status_of(
        &client,
        "PATCH",
        "/apis/submariner.io/v1/namespaces/default/clusters/c",
        "application/strategic-merge-patch+json",
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(got, 415);

    let kc = kube::config::Kubeconfig::read_from(s.kubeconfig()).expect("kubeconfig");
    let mut cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("config");
    cfg.auth_info = Default::default();
    let anonymous = Client::try_from(cfg).expect("client");
    let (got, status) = status_of(&anonymous, "GET", "/api/v1/namespaces", json, Vec::new()).await;
    assert_eq!((got, status["reason"].as_str()), (401, Some("Unauthorized")));
    for open in ["/healthz", "/livez", "/readyz", "/version"] {
        assert_eq!(
            status_of(&anonymous, "GET", open, json, Vec::new()).await.0,
            200,
            "{open}"
        );
    }
}

#[tokio::test]
async fn server_side_apply_gives_lease_managers_mutual_exclusion() {
    use k8s_openapi::api::coordination::v1::Lease;
    let s = ApiServer::start(&[]).expect("server");
    let client = client_at(&s, None).await;
    let leases: Api<Lease> = Api::namespaced(client, "default");
    let claim = |holder: &str| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "lock"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}})
    };
    let created = leases
        .patch("lock", &PatchParams::apply("gw-a"), &Patch::Apply(claim("gw-a")))
        .await
        .expect("create by apply");
    assert_eq!(
        created.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("gw-a")
    );
    let err = leases
        .patch("lock", &PatchParams::apply("gw-b"), &Patch::Apply(claim("gw-b")))
        .await
        .expect_err("held");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict"),
        "{err:?}"
    );
    let taken = leases
        .patch(
            "lock",
            &PatchParams::apply("gw-b").force(),
            &Patch::Apply(claim("gw-b")),
        )
        .await
        .expect("forced");
    assert_eq!(
        taken.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("gw-b")
    );
    let mf = taken.metadata.managed_fields.unwrap_or_default();
    assert!(
        mf.iter()
            .any(|m| m.manager.as_deref() == Some("gw-b") && m.operation.as_deref() == Some("Apply"))
    );
}

#[tokio::test]
async fn pages_are_consistent_and_streaming_lists_work() {
    let s = ApiServer::start(&[]).expect("server");
    let client = client_at(&s, None).await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for i in 0..5 {
        cms.create(&PostParams::default(), &cm(&format!("p{i}")))
            .await
            .expect("create");
    }
    let first = cms.list(&ListParams::default().limit(2)).await.expect("page 1");
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    // A write between pages does not show up in the rest of this list.
    cms.create(&PostParams::default(), &cm("p-late"))
        .await
        .expect("create");
    let token = first.metadata.continue_.clone().expect("continue token");
    let second = cms
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect("page 2");
    let third = cms
        .list(
            &ListParams::default()
                .limit(2)
                .continue_token(second.metadata.continue_.as_deref().expect("token")),
        )
        .await
        .expect("page 3");
    let names: Vec<String> = first
        .items
        .iter()
        .chain(&second.items)
        .chain(&third.items)
        .map(|c| c.name_any())
        .collect();
    assert_eq!(names, vec!["p0", "p1", "p2", "p3", "p4"]);
    assert_eq!(
        second.metadata.resource_version, first.metadata.resource_version,
        "every page is the first page's snapshot"
    );
    assert!(third.metadata.continue_.is_none());
    let reused = cms
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect_err("used token");
    assert!(
        matches!(&reused, kube::Error::Api(s) if s.code == 410 && s.reason == "Expired"),
        "{reused:?}"
    );

    let (reader, writer) = reflector::store::<ConfigMap>();
    let stream = reflector(
        writer,
        watcher(cms.clone(), watcher::Config::default().streaming_lists()),
    )
    .default_backoff();
    let task = tokio::spawn(stream.for_each(|_| async {}));
    tokio::time::timeout(Duration::from_secs(10), reader.wait_until_ready())
        .await
        .expect("initial events end in time")
        .expect("ready");
    assert_eq!(
        reader.state().len(),
        6,
        "sendInitialEvents delivered every object, then the initial-events-end bookmark"
    );
    cms.create(&PostParams::default(), &cm("p-live"))
        .await
        .expect("create");
    for _ in 0..100 {
        if reader.state().len() == 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    task.abort();
    assert_eq!(reader.state().len(), 7, "live events follow the initial ones");
}

/// One request with raw headers; the status, Content-Type and body bytes.
async fn raw(
    client: &Client,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> (u16, String, Vec<u8>) {
    let mut req = http::Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .send(req.body(kube::client::Body::from(body)).expect("request"))
        .await
        .expect("send");
    let code = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("Content-Type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("body")
        .to_bytes();
    (code, ct, bytes.to_vec())
}

/// The object inside a `k8s\0` + runtime.Unknown body, decoded with kube-rs's prost types.
fn unwrap_pb<T: prost::Message + Default>(body: &[u8]) -> (String, T) {
    use prost::Message;
    let inner = body.strip_prefix(b"k8s\0").expect("the protobuf magic");
    let unknown = k8s_pb::apimachinery::pkg::runtime::Unknown::decode(inner).expect("Unknown");
    let kind = unknown.type_meta.and_then(|t| t.kind).unwrap_or_default();
    (
        kind,
        T::decode(unknown.raw.unwrap_or_default().as_slice()).expect("the object"),
    )
}

/// Protobuf bodies checked with an encoder and decoder that are not the server's (k8s-pb, the
/// prost bindings of Kubernetes' protos): a Deployment created in protobuf, answered in
/// protobuf, listed in protobuf, watched in protobuf frames, a 404 Status in protobuf; a custom
/// resource (object or watch) asked for in protobuf only is refused with 406, and falls back to
/// JSON when JSON is acceptable.
#[tokio::test]
async fn protobuf_bodies_and_answers_read_by_an_independent_decoder() {
    use k8s_pb::api::apps::v1 as apps;
    use k8s_pb::api::core::v1 as core;
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    use prost::Message;
    let s = ApiServer::start(&[]).expect("server");
    let client = client_at(&s, None).await;
    install_crds(&client).await;
    let labels = std::collections::BTreeMap::from([("app".to_string(), "web".to_string())]);
    let deployment = apps::Deployment {
        metadata: Some(meta::ObjectMeta {
            name: Some("web".into()),
            labels: labels.clone(),
            ..Default::default()
        }),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            selector: Some(meta::LabelSelector {
                match_labels: labels.clone(),
                ..Default::default()
            }),
            template: Some(core::PodTemplateSpec {
                metadata: Some(meta::ObjectMeta {
                    labels,
                    ..Default::default()
                }),
                spec: Some(core::PodSpec {
                    containers: vec![core::Container {
                        name: Some("nginx".into()),
                        image: Some("nginx:1.27".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        status: None,
    };
    let envelope = k8s_pb::apimachinery::pkg::runtime::Unknown {
        type_meta: Some(k8s_pb::apimachinery::pkg::runtime::TypeMeta {
            api_version: Some("apps/v1".into()),
            kind: Some("Deployment".into()),
        }),
        raw: Some(deployment.encode_to_vec()),
        ..Default::default()
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(envelope.encode_to_vec());
    let pb = "application/vnd.kubernetes.protobuf";
    let deployments = "/apis/apps/v1/namespaces/default/deployments";
    let (code, ct, answer) = raw(
        &client,
        "POST",
        deployments,
        &[("Content-Type", pb), ("Accept", pb)],
        body,
    )
    .await;
    assert_eq!(
        (code, ct.as_str()),
        (201, pb),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let (kind, created) = unwrap_pb::<apps::Deployment>(&answer);
    assert_eq!(kind, "Deployment");
    let meta = created.metadata.expect("metadata");
    assert_eq!(meta.name.as_deref(), Some("web"));
    assert!(meta.uid.is_some() && meta.resource_version.is_some(), "{meta:?}");
    assert!(meta.creation_timestamp.and_then(|t| t.seconds).unwrap_or(0) > 1_700_000_000);
    let spec = created.spec.expect("spec");
    assert_eq!(spec.replicas, Some(0), "an explicit 0 survives");
    let image = spec
        .template
        .and_then(|t| t.spec)
        .map(|p| p.containers[0].image.clone());
    assert_eq!(image, Some(Some("nginx:1.27".into())));

    let (code, ct, answer) = raw(&client, "GET", deployments, &[("Accept", pb)], Vec::new()).await;
    assert_eq!((code, ct.as_str()), (200, pb));
    let (kind, list) = unwrap_pb::<apps::DeploymentList>(&answer);
    assert_eq!((kind.as_str(), list.items.len()), ("DeploymentList", 1));
    assert!(list.metadata.and_then(|m| m.resource_version).is_some());

    let (code, ct, answer) = raw(
        &client,
        "GET",
        &format!("{deployments}/nope"),
        &[("Accept", pb)],
        Vec::new(),
    )
    .await;
    assert_eq!((code, ct.as_str()), (404, pb));
    let (kind, status) = unwrap_pb::<meta::Status>(&answer);
    assert_eq!(
        (kind.as_str(), status.code, status.reason.as_deref()),
        ("Status", Some(404), Some("NotFound"))
    );

    let (code, ct, answer) = raw(
        &client,
        "GET",
        &format!("{deployments}/web"),
        &[("Accept", "application/json")],
        Vec::new(),
    )
    .await;
    assert_eq!((code, ct.as_str()), (200, "application/json"));
    let json: serde_json::Value = serde_json::from_slice(&answer).expect("json");
    assert_eq!(
        json["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );

    let custom = "/apis/submariner.io/v1/namespaces/default/endpoints";
    let (code, _, answer) = raw(&client, "GET", custom, &[("Accept", pb)], Vec::new()).await;
    assert_eq!(code, 406, "{}", String::from_utf8_lossy(&answer));
    assert!(String::from_utf8_lossy(&answer).contains("accept application/json"));
    let (code, ct, _) = raw(
        &client,
        "GET",
        custom,
        &[("Accept", &format!("{pb}, application/json"))],
        Vec::new(),
    )
    .await;
    assert_eq!((code, ct.as_str()), (200, "application/json"));
    let (code, ct, stream) = raw(
        &client,
        "GET",
        &format!("{deployments}?watch=true&timeoutSeconds=1"),
        &[("Accept", pb)],
        Vec::new(),
    )
    .await;
    assert_eq!(
        (code, ct.as_str()),
        (200, "application/vnd.kubernetes.protobuf;stream=watch")
    );
    // client-go's length-delimited framing: a 4-byte big-endian length, then a WatchEvent
    // whose object.raw is the object's full encoding.
    let mut events = Vec::new();
    let mut rest = stream.as_slice();
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let (frame, next) = tail.split_at(u32::from_be_bytes(*len) as usize);
        let event = meta::WatchEvent::decode(frame).expect("a WatchEvent");
        let raw = event.object.and_then(|o| o.raw).unwrap_or_default();
        let (kind, d) = unwrap_pb::<apps::Deployment>(&raw);
        events.push((
            event.r#type.unwrap_or_default(),
            kind,
            d.metadata.and_then(|m| m.name),
        ));
        rest = next;
    }
    assert_eq!(
        events,
        [(
            "ADDED".to_string(),
            "Deployment".to_string(),
            Some("web".to_string())
        )]
    );
    let (code, _, _) = raw(
        &client,
        "GET",
        &format!("{custom}?watch=true&timeoutSeconds=1"),
        &[("Accept", pb)],
        Vec::new(),
    )
    .await;
    assert_eq!(code, 406, "a custom resource's watch asked for in protobuf only");
}
