//! Connecting to a cluster from a kubeconfig, and generic create-or-update of JSON manifests.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use kube::api::{Api, DynamicObject, ListParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::Value;

/// A connected cluster.
#[derive(Clone)]
pub struct Target {
    /// The client.
    pub client: Client,
    /// API server URL.
    pub url: String,
    /// Name of the kubeconfig cluster entry (the default cluster ID).
    pub cluster_name: String,
    /// The context used.
    pub context: String,
}

/// How long subctl waits to reach an API server (`--connect-timeout`).
static CONNECT_TIMEOUT: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
/// The default of `--connect-timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Sets the connect timeout for every connection this process makes (once, at start).
pub fn set_connect_timeout(d: Duration) {
    let _ = CONNECT_TIMEOUT.set(d);
}

fn connect_timeout() -> Duration {
    CONNECT_TIMEOUT.get().copied().unwrap_or(DEFAULT_CONNECT_TIMEOUT)
}

/// Connects like [`connect`] and checks at once that the API server answers and accepts the
/// credentials, so that a wrong address or a revoked token is reported as such instead of as
/// an empty cluster.
pub async fn open(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Target> {
    let t = connect(kubeconfig, context).await?;
    probe(&t).await?;
    Ok(t)
}

/// One authenticated request (the core API versions) within the connect timeout.
pub async fn probe(t: &Target) -> Result<()> {
    let limit = connect_timeout();
    let answer = tokio::time::timeout(limit, t.client.list_core_api_versions()).await;
    let e = match answer {
        Ok(Ok(_)) => return Ok(()),
        // Authenticated but not allowed to read discovery: the credentials work.
        Ok(Err(kube::Error::Api(s))) if s.code == 403 => return Ok(()),
        Ok(Err(e)) => e,
        Err(_) => bail!(
            "the API server at {} (context {:?}) did not answer within {} s; check the address and that it is running, or raise --connect-timeout",
            t.url,
            t.context,
            limit.as_secs_f64()
        ),
    };
    match e {
        kube::Error::Api(s) if s.code == 401 => bail!(
            "the API server at {} (context {:?}) rejected the credentials (401 Unauthorized): the kubeconfig's token or certificate is wrong, expired or revoked",
            t.url,
            t.context
        ),
        kube::Error::Api(s) => bail!(
            "the API server at {} (context {:?}) answered {} {}: {}",
            t.url,
            t.context,
            s.code,
            s.reason,
            s.message
        ),
        other => Err(anyhow!(other)).with_context(|| {
            format!(
                "cannot reach the API server at {} (context {:?}); check the address and that it is running",
                t.url, t.context
            )
        }),
    }
}

/// The kubeconfig: `--kubeconfig`, else `$KUBECONFIG` (files joined by `:` are merged, as
/// kubectl does), else `~/.kube/config`.
fn read_kubeconfig(path: Option<&Path>) -> Result<Kubeconfig> {
    match path {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the kubeconfig {}", p.display()))?;
            Kubeconfig::from_yaml(&text)
                .with_context(|| format!("the kubeconfig {} is not valid YAML", p.display()))
        }
        None => Kubeconfig::read()
            .context("cannot read the kubeconfig from $KUBECONFIG or ~/.kube/config (or pass --kubeconfig)"),
    }
}

/// Connects with a kubeconfig (`--kubeconfig`, else `$KUBECONFIG`, else `~/.kube/config`) and
/// an optional context.
pub async fn connect(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Target> {
    let kc = read_kubeconfig(kubeconfig)?;
    let ctx_name = context
        .map(String::from)
        .or_else(|| kc.current_context.clone())
        .unwrap_or_default();
    let cluster_name = kc
        .contexts
        .iter()
        .find(|c| c.name == ctx_name)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .ok_or_else(|| anyhow!("the kubeconfig has no context {ctx_name:?}; pick one with --context"))?;
    let opts = KubeConfigOptions {
        context: Some(ctx_name.clone()),
        ..Default::default()
    };
    let mut cfg = Config::from_custom_kubeconfig(kc, &opts)
        .await
        .context("failed to load the kubeconfig")?;
    // Twice the probe's limit, so that an address that never answers is reported by the probe
    // ("did not answer within"), and later requests still give up on a dead connection.
    cfg.connect_timeout = Some(connect_timeout() * 2);
    let url = cfg.cluster_url.to_string().trim_end_matches('/').to_string();
    let client = Client::try_from(cfg).context("failed to build a Kubernetes client")?;
    Ok(Target {
        client,
        url,
        cluster_name,
        context: ctx_name,
    })
}

/// The contexts of a kubeconfig, or just `context` when given.
pub async fn connect_all(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Vec<Target>> {
    if context.is_some() {
        return Ok(vec![open(kubeconfig, context).await?]);
    }
    let kc = read_kubeconfig(kubeconfig)?;
    let mut out = Vec::new();
    for ctx in kc.contexts.iter().map(|c| c.name.clone()) {
        out.push(open(kubeconfig, Some(&ctx)).await?);
    }
    Ok(out)
}

/// The API of the object's kind, in its namespace (if any).
pub fn api_for(client: &Client, obj: &Value) -> Result<Api<DynamicObject>> {
    Ok(subsea_runtime::objects::api_for(client, obj)?)
}

/// An API for `(apiVersion, kind)` in `ns` (or cluster-wide).
pub fn api(client: &Client, api_version: &str, kind: &str, ns: Option<&str>) -> Result<Api<DynamicObject>> {
    Ok(subsea_runtime::objects::api(client, api_version, kind, ns)?)
}

/// A kube error as a readable message: the API server's own message for API errors.
pub fn readable(e: kube::Error) -> anyhow::Error {
    match e {
        kube::Error::Api(s) => anyhow!("{} ({})", s.message, s.reason),
        other => anyhow!(other),
    }
}

/// Creates the object, or merges it into the existing one (writing nothing when the existing
/// one already holds everything). Returns the stored object and whether it was created.
pub async fn apply(client: &Client, obj: &Value) -> Result<(DynamicObject, bool)> {
    Ok(subsea_runtime::objects::apply(client, obj).await?)
}

/// Deletes an object if it exists.
pub async fn delete(api: &Api<DynamicObject>, name: &str) -> Result<()> {
    Ok(subsea_runtime::objects::delete(api, name).await?)
}

/// A service account's token Secret, created if missing, once the token controller has filled it.
pub async fn service_account_token(client: &Client, ns: &str, sa: &str) -> Result<DynamicObject> {
    let secrets = api(client, "v1", "Secret", Some(ns))?;
    let mine = |s: &DynamicObject| {
        s.data["type"] == "kubernetes.io/service-account-token"
            && s.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .map(String::as_str)
                == Some(sa)
    };
    let existing = secrets
        .list(&ListParams::default())
        .await
        .context("failed to list Secrets")?
        .items
        .into_iter()
        .find(mine);
    let name = match existing {
        Some(s) => s.metadata.name.unwrap_or_default(),
        None => {
            let obj: DynamicObject = serde_json::from_value(subsea_broker::objects::token_secret(ns, sa))?;
            secrets
                .create(&PostParams::default(), &obj)
                .await
                .context("failed to create the token Secret")?
                .metadata
                .name
                .unwrap_or_default()
        }
    };
    for _ in 0..300 {
        let s = secrets
            .get(&name)
            .await
            .context("failed to read the token Secret")?;
        if s.data
            .pointer("/data/token")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty())
        {
            return Ok(s);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "the token of service account {ns}/{sa} was not issued within 30 s (is the token controller running?)"
    )
}

/// Decodes a base64 `data` field of a Secret.
pub fn secret_data(secret: &DynamicObject, key: &str) -> Result<Vec<u8>> {
    use base64::Engine;
    let v = secret
        .data
        .pointer(&format!("/data/{}", key.replace('/', "~1")))
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("Secret has no {key}"))?;
    base64::engine::general_purpose::STANDARD
        .decode(v)
        .with_context(|| format!("Secret field {key} is not base64"))
}

/// The cluster's `Submariner` object (written by join), if it has one.
pub async fn submariner_object(client: &Client) -> Result<Option<DynamicObject>> {
    Ok(subsea_runtime::objects::submariner_object(client).await?)
}

/// How a joined cluster reaches its broker, from its Submariner object's spec.
pub struct BrokerAccess {
    /// `https://host:port`.
    pub url: String,
    /// The broker's other replicas (`brokerK8sApiServerReplicas`), as URLs.
    pub replicas: Vec<String>,
    /// CA bundle (PEM).
    pub ca: Vec<u8>,
    /// The cluster's broker token.
    pub token: String,
    /// The broker namespace.
    pub namespace: String,
    /// Whether to verify the server certificate.
    pub verify: bool,
}

impl BrokerAccess {
    /// A client for the broker that fails over between its replicas.
    pub fn client(&self) -> Result<Client> {
        let urls = crate::join::broker_urls(&self.url, &self.replicas);
        crate::join::broker_client(&urls, &self.ca, &self.token, &self.namespace, self.verify)
    }
}

/// [`BrokerAccess`] from a Submariner spec.
pub fn broker_access(spec: &Value) -> BrokerAccess {
    use base64::Engine;
    BrokerAccess {
        url: format!(
            "https://{}",
            spec["brokerK8sApiServer"].as_str().unwrap_or_default()
        ),
        replicas: spec["brokerK8sApiServerReplicas"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(subsea_runtime::join::url_of)
            .collect(),
        ca: base64::engine::general_purpose::STANDARD
            .decode(spec["brokerK8sCA"].as_str().unwrap_or_default())
            .unwrap_or_default(),
        token: spec["brokerK8sApiServerToken"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        namespace: spec["brokerK8sRemoteNamespace"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        verify: spec["brokerK8sInsecure"] != true,
    }
}
