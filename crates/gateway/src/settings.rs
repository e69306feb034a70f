//! What a gateway needs to know, read from the `Submariner` object `subctl join` wrote.

use base64::Engine;
use subsea_api::operator::SubmarinerSpec;
use subsea_cidr::Cidr;

/// The gateway's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// Our cluster ID.
    pub cluster_id: String,
    /// Namespace of our Endpoint, Cluster, Gateway and Lease objects.
    pub namespace: String,
    /// Service CIDRs.
    pub service_cidrs: Vec<Cidr>,
    /// Pod CIDRs.
    pub cluster_cidrs: Vec<Cidr>,
    /// The PSK text (std-base64 of the broker PSK); WireGuard's PSK is its SHA-256.
    pub psk_text: String,
    /// Dataplane UDP port.
    pub port: u16,
    /// NAT traversal.
    pub nat_enabled: bool,
    /// Broker URLs (`https://host:port`): the one `subctl join` was given, then its replicas.
    pub broker_urls: Vec<String>,
    /// Broker namespace.
    pub broker_namespace: String,
    /// Per-cluster broker token.
    pub broker_token: String,
    /// Broker CA (PEM).
    pub broker_ca: Vec<u8>,
    /// Whether to verify the broker's certificate.
    pub broker_verify: bool,
    /// Health check on.
    pub health_check: bool,
    /// Health check interval, seconds.
    pub health_interval: u64,
    /// Lost pings before a connection is in error.
    pub health_max_loss: u32,
    /// The cluster's GlobalCIDR, when Globalnet is on.
    pub global_cidr: Option<Cidr>,
}

impl Settings {
    /// Local subnets as Submariner publishes them: services first, then pods; with Globalnet
    /// only the GlobalCIDR, since the real CIDRs may be the same in every cluster.
    pub fn subnets(&self) -> Vec<Cidr> {
        if let Some(g) = self.global_cidr {
            return vec![g];
        }
        self.service_cidrs
            .iter()
            .chain(&self.cluster_cidrs)
            .copied()
            .collect()
    }
}

fn cidrs(field: &str, flag: &str, text: &str) -> Result<Vec<Cidr>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            Cidr::parse(s).map_err(|e| {
                format!("Submariner object: {field} {s:?}: {e}; re-run `subctl join` with a valid {flag}")
            })
        })
        .collect()
}

/// A `Submariner` object the gateway cannot run from; the message names the field and the fix.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(pub String);

impl From<String> for SettingsError {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for SettingsError {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

/// Reads the `Submariner` object's spec. Errors name the field and the fix.
pub fn from_spec(spec: &SubmarinerSpec) -> Result<Settings, SettingsError> {
    if spec.cluster_id.is_empty() {
        return Err("Submariner object has no clusterID; re-run `subctl join`".into());
    }
    if !spec.cable_driver.is_empty() && spec.cable_driver != "wireguard" {
        return Err(format!(
            "Submariner object asks for cable driver {:?}; subsea's gateway implements wireguard only: re-run `subctl join --cable-driver wireguard`",
            spec.cable_driver
        )
        .into());
    }
    let cluster_cidrs = cidrs("clusterCIDR", "--clustercidr", &spec.cluster_cidr)?;
    let service_cidrs = cidrs("serviceCIDR", "--servicecidr", &spec.service_cidr)?;
    if cluster_cidrs.is_empty() || service_cidrs.is_empty() {
        return Err("Submariner object lacks clusterCIDR or serviceCIDR; re-run `subctl join` with --clustercidr and --servicecidr".into());
    }
    let broker_ca = if spec.broker_k8s_ca.is_empty() {
        Vec::new()
    } else {
        base64::engine::general_purpose::STANDARD
            .decode(spec.broker_k8s_ca.trim())
            .map_err(|e| {
                format!("Submariner object: brokerK8sCA is not base64 ({e}); re-run `subctl join`")
            })?
    };
    let host = spec.broker_k8s_api_server.trim();
    if host.is_empty() {
        return Err("Submariner object has no brokerK8sApiServer; re-run `subctl join`".into());
    }
    let health = spec.connection_health_check.clone().unwrap_or_default();
    let global_cidr = match cidrs("globalCIDR", "--globalnet-cidr", &spec.global_cidr)?.as_slice() {
        [] => None,
        [one] => Some(*one),
        _ => {
            return Err(
                "Submariner object: globalCIDR holds more than one block; re-run `subctl join`".into(),
            );
        }
    };
    Ok(Settings {
        cluster_id: spec.cluster_id.clone(),
        namespace: if spec.namespace.is_empty() {
            subsea_broker::OPERATOR_NAMESPACE.into()
        } else {
            spec.namespace.clone()
        },
        service_cidrs,
        cluster_cidrs,
        global_cidr,
        psk_text: spec.ce_ipsec_psk.clone(),
        port: if spec.ce_ipsec_natt_port == 0 {
            subsea_plan::DEFAULT_PORT
        } else {
            spec.ce_ipsec_natt_port
        },
        nat_enabled: spec.nat_enabled,
        broker_urls: std::iter::once(host)
            .chain(spec.broker_k8s_api_server_replicas.iter().map(String::as_str))
            .map(subsea_runtime::join::url_of)
            .collect(),
        broker_namespace: spec.broker_k8s_remote_namespace.clone(),
        broker_token: spec.broker_k8s_api_server_token.clone(),
        broker_ca,
        broker_verify: !spec.broker_k8s_insecure,
        health_check: spec.connection_health_check.is_none() || health.enabled,
        health_interval: if health.interval_seconds == 0 {
            1
        } else {
            health.interval_seconds
        },
        health_max_loss: if health.max_packet_loss_count == 0 {
            5
        } else {
            health.max_packet_loss_count as u32
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SubmarinerSpec {
        SubmarinerSpec {
            broker_k8s_api_server: "172.30.0.2:6443".into(),
            broker_k8s_api_server_token: "tok".into(),
            broker_k8s_ca: "Y2E=".into(),
            broker_k8s_remote_namespace: "submariner-k8s-broker".into(),
            cable_driver: "wireguard".into(),
            ce_ipsec_psk: "cHNr".into(),
            cluster_cidr: "10.129.0.0/16".into(),
            service_cidr: "100.65.0.0/16".into(),
            cluster_id: "cluster1".into(),
            ..Default::default()
        }
    }

    #[test]
    fn reads_what_join_writes_with_submariners_defaults() {
        let s = from_spec(&spec()).expect("valid");
        assert_eq!(s.broker_urls, ["https://172.30.0.2:6443"]);
        assert_eq!(s.broker_ca, b"ca");
        assert_eq!(s.port, 4500);
        assert_eq!(s.namespace, "submariner-operator");
        assert_eq!(
            s.subnets().iter().map(ToString::to_string).collect::<Vec<_>>(),
            ["100.65.0.0/16", "10.129.0.0/16"]
        );
        assert!(s.health_check);
        assert_eq!((s.health_interval, s.health_max_loss), (1, 5));
    }

    #[test]
    fn refuses_other_cable_drivers_and_bad_cidrs_naming_the_fix() {
        let mut sp = spec();
        sp.cable_driver = "libreswan".into();
        assert!(from_spec(&sp).unwrap_err().0.contains("--cable-driver wireguard"));
        let mut sp = spec();
        sp.cluster_cidr = "10.0.0.0/33".into();
        let e = from_spec(&sp).unwrap_err();
        assert!(e.0.contains("clusterCIDR") && e.0.contains("10.0.0.0/33"), "{e}");
        let mut sp = spec();
        sp.cluster_id = String::new();
        assert!(from_spec(&sp).unwrap_err().0.contains("clusterID"));
    }
}
