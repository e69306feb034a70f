//! `subsea apiserver`: a small Kubernetes-compatible API server with durable storage.
//!
//! It serves the built-in kinds subsea needs plus any CRD, over HTTPS with bearer-token
//! authentication, to kubectl and kube-rs alike. The object rules live in `subsea-store`; this
//! crate adds TLS, HTTP routing, discovery, the write-ahead log and watch fan-out.

pub mod auth;
pub mod authz;
pub mod discovery;
pub mod election;
pub mod error;
pub mod etcd;
pub mod handlers;
pub mod http;
pub mod impersonate;
pub mod logs;
pub mod paging;
pub mod pki;
pub mod reply;
pub mod request;
pub mod reviews;
pub mod route;
pub mod state;
pub mod tokens;
pub mod wal;
pub mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Context;
use serde_json::json;
use subsea_store::registry::keys;
use subsea_store::{Registry, Store};
use tokio::net::TcpListener;

pub use crate::error::{Error, Result};
use crate::state::Shared;

/// How to run the server.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where the snapshot, log, certificates and kubeconfig live.
    pub data_dir: PathBuf,
    /// Address to listen on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Extra names and addresses for the serving certificate.
    pub tls_sans: Vec<String>,
    /// Events of watch history kept per resource type.
    pub watch_cache_size: usize,
    /// Context (and cluster) name written into `admin.kubeconfig`.
    pub context: String,
    /// Ranges Service ClusterIPs are allocated from (empty: stored as given).
    pub service_cidrs: Vec<subsea_cidr::Cidr>,
    /// Keep objects in etcd instead of the data directory's log.
    pub etcd: Option<etcd::EtcdConfig>,
}

/// A running server.
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    /// Path of the admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// The serving task.
    pub task: tokio::task::JoinHandle<()>,
    /// The data directory's lock, held while the server runs (the log holds it otherwise).
    _lock: Option<std::fs::File>,
}

fn tls_acceptor(pki: &pki::Pki) -> Result<tokio_rustls::TlsAcceptor> {
    let certs = rustls_pemfile::certs(&mut pki.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("serving certificate is not valid PEM")?;
    let key = rustls_pemfile::private_key(&mut pki.key_pem.as_bytes())
        .context("serving key is not valid PEM")?
        .context("no private key in the serving key PEM")?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("failed to select TLS versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("failed to load the serving certificate")?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// Objects every cluster has from the start.
fn seed(store: &mut Store, reg: &Registry) -> Vec<subsea_store::Event> {
    let mut events = Vec::new();
    let now = state::now();
    let ns_info = reg.find("", "v1", "namespaces").cloned();
    let svc_info = reg.find("", "v1", "services").cloned();
    if let Some(ns_info) = ns_info {
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            if store.get(keys::NAMESPACES, "", ns).is_none() {
                if let Ok((_, evs)) =
                    store.create(&ns_info, "", json!({"metadata": {"name": ns}}), now, false)
                {
                    events.extend(evs);
                }
            }
        }
    }
    if let Some(svc_info) = svc_info {
        if store.get(keys::SERVICES, "default", "kubernetes").is_none() {
            let svc = json!({"metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"type": "ClusterIP", "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}});
            if let Ok((_, evs)) = store.create(&svc_info, "default", svc, now, false) {
                events.extend(evs);
            }
        }
    }
    for (plural, objects) in [
        ("clusterroles", subsea_rbac::bootstrap::cluster_roles()),
        (
            "clusterrolebindings",
            subsea_rbac::bootstrap::cluster_role_bindings(),
        ),
    ] {
        let Some(info) = reg.find(subsea_rbac::RBAC_GROUP, "v1", plural).cloned() else {
            continue;
        };
        for obj in objects {
            let name = obj["metadata"]["name"].as_str().unwrap_or_default().to_string();
            if store.get(&info.type_key(), "", &name).is_none() {
                if let Ok((_, evs)) = store.create(&info, "", obj, now, false) {
                    events.extend(evs);
                }
            }
        }
    }
    events
}

/// This replica's hold on the controllers' Lease, renewed every [`election::RENEW_SECONDS`].
#[derive(Default)]
struct Leadership {
    until: Option<tokio::time::Instant>,
    last_try: Option<tokio::time::Instant>,
    holder: Option<String>,
}

impl Leadership {
    /// Whether this replica may run the controllers now, renewing the Lease when due.
    async fn holds(&mut self, shared: &Arc<Shared>, me: &str) -> bool {
        let now = tokio::time::Instant::now();
        let due = self
            .last_try
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(election::RENEW_SECONDS as u64));
        if due {
            self.last_try = Some(now);
            let holder = match election::campaign(shared, me).await {
                Ok(Ok(())) => {
                    // Stop a little before others may take over.
                    let margin = election::DURATION_SECONDS as u64 - election::RENEW_SECONDS as u64;
                    self.until = Some(now + Duration::from_secs(margin));
                    me.to_string()
                }
                Ok(Err(other)) => {
                    self.until = None;
                    other
                }
                Err(e) => {
                    tracing::debug!(error = %e.message, "could not renew the controllers' Lease");
                    self.holder.clone().unwrap_or_default()
                }
            };
            if self.holder.as_deref() != Some(holder.as_str()) {
                if holder == me {
                    tracing::info!(
                        identity = me,
                        "this replica runs the namespace and garbage-collection controllers"
                    );
                } else {
                    tracing::info!(holder = %holder, "another replica runs the namespace and garbage-collection controllers");
                }
                self.holder = Some(holder);
            }
        }
        self.until.is_some_and(|u| now < u)
    }
}

/// Connects to etcd and loads every object into the cache.
async fn open_etcd(cfg: &etcd::EtcdConfig) -> Result<(Store, state::Backend)> {
    let builtin: Vec<String> = Registry::with_built_ins()
        .all()
        .iter()
        .filter(|i| !i.custom)
        .map(|i| i.type_key())
        .collect();
    let backend = etcd::Etcd::connect(cfg, &builtin).await?;
    let (objects, rev) = backend
        .load()
        .await
        .map_err(|e| Error::Corrupt(format!("cannot load the objects from etcd: {}", e.message)))?;
    let mut store = Store::new();
    for (key, object) in objects {
        let rev = subsea_store::layout::revision_of(&object).unwrap_or(0);
        store.replay(&subsea_store::Event {
            ty: key.ty,
            kind: subsea_store::EventType::Added,
            object: Arc::new(object),
            prev: None,
            rev,
        });
    }
    store.bump_rev_to(rev);
    tracing::info!(
        objects = store.keys().len(),
        revision = rev,
        "loaded the objects from etcd"
    );
    Ok((store, state::Backend::Etcd(Arc::new(backend))))
}

/// Starts serving; returns once the listener is bound and the kubeconfig written.
pub async fn start(config: Config) -> Result<Running> {
    let (mut store, backend, lock) = match &config.etcd {
        None => {
            let (store, wal) = wal::open(&config.data_dir)?;
            (store, state::Backend::Wal(wal), None)
        }
        Some(cfg) => {
            let lock = wal::lock_dir(&config.data_dir)?;
            let (store, backend) = open_etcd(cfg).await?;
            (store, backend, Some(lock))
        }
    };
    store.set_service_cidrs(config.service_cidrs.clone());
    let mut registry = Registry::with_built_ins();
    for crd in store.objects(keys::CRDS, None) {
        registry.set_crd(&crd);
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("failed to listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let pki = pki::ensure(&config.data_dir, addr, &config.tls_sans)?;
    let acceptor = tls_acceptor(&pki)?;
    let kubeconfig = config.data_dir.join("admin.kubeconfig");
    pki::write_secret(
        &kubeconfig,
        pki::kubeconfig(
            &config.context,
            &pki::server_url(addr),
            &pki.ca_pem,
            &pki.admin_token,
        )
        .as_bytes(),
    )?;
    let shared = Shared::start(
        store,
        registry,
        backend,
        config.watch_cache_size,
        pki.admin_token.clone(),
        pki.ca_pem.clone(),
        pki.signing_key.clone(),
    );
    shared
        .write(|store, reg| Ok(((), seed(store, reg))))
        .await
        .map_err(|e| Error::Corrupt(format!("cannot seed the default objects: {}", e.message)))?;
    let janitor = shared.clone();
    let me = format!(
        "{}_{addr}",
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default()
    );
    tokio::spawn(async move {
        let mut deletions = 0;
        let mut leader = Leadership::default();
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if janitor.replicated() && !leader.holds(&janitor, &me).await {
                continue;
            }
            handlers::finalize_namespaces(&janitor).await;
            deletions = handlers::collect_garbage(&janitor, deletions).await;
        }
    });
    let task = tokio::spawn(http::serve(listener, acceptor, shared));
    Ok(Running {
        addr,
        kubeconfig,
        task,
        _lock: lock,
    })
}
