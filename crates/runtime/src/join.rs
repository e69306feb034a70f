//! The join settings every component starts from, read once and typed: the `Submariner` object
//! (gateway, route agent) and the `ServiceDiscovery` object (Lighthouse) that `subctl join`
//! writes into `submariner-operator`. Until they exist the components wait, saying so once.

use std::time::Duration;

use base64::Engine;
use kube::Client;
use kube::api::Api;
use subsea_api::operator::{ServiceDiscovery, ServiceDiscoverySpec, SubmarinerSpec};

use crate::objects::OPERATOR_NAMESPACE;
use crate::{Error, Result};

/// How long to wait between looks for the join objects.
const POLL: Duration = Duration::from_secs(2);

/// How a joined cluster reaches the broker.
#[derive(Clone)]
pub struct BrokerAccess {
    /// This cluster's ID.
    pub cluster_id: String,
    /// The broker API server URL.
    pub url: String,
    /// URLs of further broker replicas, tried when `url` cannot be reached.
    pub replicas: Vec<String>,
    /// The cluster's broker service-account token.
    pub token: String,
    /// The broker CA (PEM).
    pub ca_pem: Vec<u8>,
    /// The broker namespace.
    pub namespace: String,
    /// Whether the broker's certificate is verified.
    pub verify: bool,
}

impl std::fmt::Debug for BrokerAccess {
    // The token is a secret: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrokerAccess")
            .field("cluster_id", &self.cluster_id)
            .field("url", &self.url)
            .field("replicas", &self.replicas)
            .field("namespace", &self.namespace)
            .field("verify", &self.verify)
            .finish_non_exhaustive()
    }
}

impl BrokerAccess {
    /// The broker client.
    pub fn client(&self) -> Result<Client> {
        let urls: Vec<String> = std::iter::once(self.url.clone())
            .chain(self.replicas.iter().cloned())
            .collect();
        crate::client::broker_replicas(&urls, &self.ca_pem, &self.token, &self.namespace, self.verify)
    }
}

/// A `brokerK8sApiServer`-style value (`host:port`, or a URL) as a URL.
pub fn url_of(host: &str) -> String {
    let host = host.trim();
    if host.contains("://") {
        host.into()
    } else {
        format!("https://{host}")
    }
}

/// The broker access a `ServiceDiscovery` spec describes.
pub fn broker_access(spec: &ServiceDiscoverySpec) -> Result<BrokerAccess> {
    let host = spec.broker_k8s_api_server.as_str();
    if host.is_empty() || spec.cluster_id.is_empty() {
        return Err(Error::Invalid(
            "the ServiceDiscovery object lacks brokerK8sApiServer or clusterID; re-run `subctl join`".into(),
        ));
    }
    let ca_pem = base64::engine::general_purpose::STANDARD
        .decode(&spec.broker_k8s_ca)
        .map_err(|_| {
            Error::Invalid(
                "the ServiceDiscovery object's brokerK8sCA is not base64; re-run `subctl join`".into(),
            )
        })?;
    Ok(BrokerAccess {
        cluster_id: spec.cluster_id.clone(),
        url: url_of(host),
        replicas: spec
            .broker_k8s_api_server_replicas
            .iter()
            .map(|h| url_of(h))
            .collect(),
        token: spec.broker_k8s_api_server_token.clone(),
        ca_pem,
        namespace: spec.broker_k8s_remote_namespace.clone(),
        verify: !spec.broker_k8s_insecure,
    })
}

/// Waits for `submariner-operator/service-discovery` and returns its spec.
pub async fn service_discovery(client: &Client) -> Result<ServiceDiscoverySpec> {
    let api: Api<ServiceDiscovery> = Api::namespaced(client.clone(), OPERATOR_NAMESPACE);
    let mut told = false;
    loop {
        match api.get_opt("service-discovery").await {
            Ok(Some(o)) => return Ok(o.spec),
            Ok(None) | Err(kube::Error::Api(_)) if !told => {
                tracing::info!("waiting for `subctl join` to create submariner-operator/service-discovery");
                told = true;
            }
            Ok(None) | Err(kube::Error::Api(_)) => {}
            // A spec that does not decode will not fix itself.
            Err(kube::Error::SerdeError(e)) => {
                return Err(Error::Invalid(format!(
                    "the ServiceDiscovery object is malformed ({e}); re-run `subctl join`"
                )));
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the ServiceDiscovery object; retrying"),
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits for `submariner-operator/submariner` and returns its spec.
pub async fn submariner(client: &Client) -> Result<SubmarinerSpec> {
    let mut told = false;
    loop {
        match crate::objects::submariner_object(client).await {
            Ok(Some(obj)) => {
                let spec = obj.data.get("spec").cloned().unwrap_or_default();
                return serde_json::from_value(spec).map_err(|e| {
                    Error::Invalid(format!(
                        "the Submariner object's spec is malformed ({e}); re-run `subctl join`"
                    ))
                });
            }
            Ok(None) if !told => {
                tracing::info!("waiting for `subctl join` to create submariner-operator/submariner");
                told = true;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the Submariner object; retrying"),
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ServiceDiscoverySpec {
        ServiceDiscoverySpec {
            broker_k8s_api_server: "10.0.0.1:6443".into(),
            broker_k8s_api_server_token: "secret-token".into(),
            broker_k8s_ca: base64::engine::general_purpose::STANDARD.encode("PEM"),
            broker_k8s_remote_namespace: "submariner-k8s-broker".into(),
            cluster_id: "c1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn service_discovery_becomes_broker_access_without_showing_the_token() {
        let a = broker_access(&spec()).expect("valid");
        assert_eq!(a.url, "https://10.0.0.1:6443");
        assert_eq!(a.ca_pem, b"PEM");
        assert!(a.verify);
        assert!(!format!("{a:?}").contains("secret-token"));
        let mut bad = spec();
        bad.broker_k8s_ca = "not base64!".into();
        assert!(
            broker_access(&bad)
                .expect_err("bad CA")
                .to_string()
                .contains("brokerK8sCA")
        );
        let mut none = spec();
        none.cluster_id.clear();
        assert!(
            broker_access(&none)
                .expect_err("no ID")
                .to_string()
                .contains("clusterID")
        );
    }
}
