//! Clients: the local cluster (kubeconfig, else the pod's service account) and the broker.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::{Error, Result};

/// The local cluster's client: the kubeconfig (and context) when given, else the pod's service
/// account when running in a cluster, else `$KUBECONFIG` / `~/.kube/config`.
pub async fn local(kubeconfig: Option<&Path>, context: Option<&str>) -> Result<Client> {
    if kubeconfig.is_none() && context.is_none() && std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
        return Client::try_default()
            .await
            .map_err(|e| Error::Config(format!("cannot use the in-cluster service account: {e}")));
    }
    let kc = match kubeconfig {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Error::Config(format!("cannot read the kubeconfig {}: {e}", p.display())))?;
            Kubeconfig::from_yaml(&text)
                .map_err(|e| Error::Config(format!("the kubeconfig {} is not valid: {e}", p.display())))?
        }
        None => Kubeconfig::read().map_err(|e| {
            Error::Config(format!(
                "cannot read the kubeconfig from $KUBECONFIG or ~/.kube/config ({e}); pass --kubeconfig"
            ))
        })?,
    };
    let opts = KubeConfigOptions {
        context: context.map(String::from),
        ..Default::default()
    };
    let cfg = Config::from_custom_kubeconfig(kc, &opts)
        .await
        .map_err(|e| Error::Config(format!("cannot load the kubeconfig: {e}")))?;
    Client::try_from(cfg).map_err(|e| Error::Config(format!("cannot build a Kubernetes client: {e}")))
}

/// The certificates (DER) of a PEM bundle.
pub fn pem_certificates(pem: &[u8]) -> Vec<Vec<u8>> {
    rustls_pemfile::certs(&mut &pem[..])
        .filter_map(|c| c.ok())
        .map(|c| c.as_ref().to_vec())
        .collect()
}

/// A client for the broker at `url` with a bearer token; `verify` checks its certificate
/// against `ca_pem`.
pub fn broker(url: &str, ca_pem: &[u8], token: &str, namespace: &str, verify: bool) -> Result<Client> {
    let uri = url
        .parse()
        .map_err(|_| Error::Config(format!("the broker URL {url:?} is not a valid URL")))?;
    let mut cfg = Config::new(uri);
    cfg.default_namespace = namespace.to_string();
    cfg.auth_info.token = Some(token.to_string().into());
    if verify {
        cfg.root_cert = Some(pem_certificates(ca_pem));
    } else {
        cfg.accept_invalid_certs = true;
    }
    Client::try_from(cfg).map_err(|e| Error::Config(format!("cannot build the broker client: {e}")))
}

/// A broker client over every replica's URL (the first is the one `subctl join` was given):
/// requests go to the replica that answered last; one that cannot be reached (refused, reset,
/// no route, TLS failed) is skipped for the next. HTTP answers, errors included, are final.
pub fn broker_replicas(
    urls: &[String],
    ca_pem: &[u8],
    token: &str,
    namespace: &str,
    verify: bool,
) -> Result<Client> {
    let clients = urls
        .iter()
        .map(|u| broker(u, ca_pem, token, namespace, verify))
        .collect::<Result<Vec<_>>>()?;
    match clients.len() {
        0 => Err(Error::Config("no broker URL".into())),
        1 => Ok(clients.into_iter().next().expect("one client")),
        _ => {
            let replicas = std::sync::Arc::new(Replicas {
                clients,
                urls: urls.to_vec(),
                current: std::sync::atomic::AtomicUsize::new(0),
            });
            let svc = tower::service_fn(move |req| {
                let replicas = replicas.clone();
                async move { replicas.send(req).await }
            });
            Ok(Client::new(svc, namespace.to_string()))
        }
    }
}

struct Replicas {
    clients: Vec<Client>,
    urls: Vec<String>,
    current: std::sync::atomic::AtomicUsize,
}

impl Replicas {
    async fn send(
        &self,
        req: http::Request<kube::client::Body>,
    ) -> std::result::Result<http::Response<kube::client::Body>, tower::BoxError> {
        use std::sync::atomic::Ordering;
        let (parts, body) = req.into_parts();
        // Request bodies are small JSON documents: kept, so a second replica can be sent the same.
        let body = body.collect_bytes().await?;
        let start = self.current.load(Ordering::Relaxed);
        let mut last = None;
        for k in 0..self.clients.len() {
            let i = (start + k) % self.clients.len();
            let req = http::Request::from_parts(parts.clone(), kube::client::Body::from(body.clone()));
            match self.clients[i].send(req).await {
                Ok(resp) => {
                    if i != start && self.current.swap(i, Ordering::Relaxed) != i {
                        tracing::warn!(broker = %self.urls[i], "using another broker replica");
                    }
                    return Ok(resp);
                }
                Err(e) if unreachable(&e) => {
                    tracing::debug!(broker = %self.urls[i], error = %e, "broker replica unreachable");
                    last = Some(e);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(last.map(Into::into).unwrap_or_else(|| "no broker replica".into()))
    }
}

/// Whether the request failed for want of a connection, not with an answer.
fn unreachable(e: &kube::Error) -> bool {
    matches!(e, kube::Error::HyperError(_) | kube::Error::Service(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_broker_urls_are_named() {
        let e = broker("not a url", b"", "t", "ns", true)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("the broker URL \"not a url\" is not a valid URL")
        );
    }

    #[test]
    fn pem_bundles_yield_their_certificates_only() {
        let pem = b"junk\n-----BEGIN CERTIFICATE-----\nAAEC\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----\n";
        assert_eq!(pem_certificates(pem), vec![vec![0u8, 1, 2]]);
        assert!(pem_certificates(b"").is_empty());
    }
}
