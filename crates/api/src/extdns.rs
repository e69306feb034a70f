//! What the external DNS publisher (`subsea dns-publisher`) reads from the broker: each
//! cluster's externally reachable addresses of an export (an annotation the Lighthouse agent
//! writes on the cluster's ServiceImport) and each cluster's gateway heartbeat (a Lease the
//! active gateway renews, carrying its connection states).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// On a cluster's broker ServiceImport: its [`External`] part of the export as JSON, or empty
/// when the Service has nothing to publish. Always written, so that a merge patch clears it.
pub const EXTERNAL_ANNOTATION: &str = "subsea.io/external-dns";

/// ExternalDNS's hostname annotation on a Service (comma-separated names).
pub const HOSTNAME_ANNOTATION: &str = "external-dns.alpha.kubernetes.io/hostname";

/// ExternalDNS's TTL annotation on a Service (seconds).
pub const TTL_ANNOTATION: &str = "external-dns.alpha.kubernetes.io/ttl";

/// A cluster's externally reachable part of an export.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct External {
    /// Names from the hostname annotation (empty: the publisher's default name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// The Service's load-balancer ingress IPs and external IPs, sorted.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// TTL from the TTL annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
}

/// Prefix of a cluster's gateway heartbeat Lease in the broker namespace.
pub const HEARTBEAT_PREFIX: &str = "subsea-gateway-";

/// On the heartbeat Lease: the active gateway's connection state per remote cluster, as a JSON
/// object `{"<cluster>": "connected" | "connecting" | "error"}`.
pub const CONNECTIONS_ANNOTATION: &str = "subsea.io/connections";

/// `text` as part of an object name: lowercase, anything but letters, digits and `-` as `-`.
pub fn name_part(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// The heartbeat Lease of `cluster` (a DNS-1123 name made from the cluster ID).
pub fn heartbeat_name(cluster: &str) -> String {
    format!("{HEARTBEAT_PREFIX}{}", name_part(cluster))
}

/// Connection states as written in [`CONNECTIONS_ANNOTATION`].
pub type Connections = BTreeMap<String, String>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_names_are_valid_object_names() {
        assert_eq!(heartbeat_name("cluster-a"), "subsea-gateway-cluster-a");
        assert_eq!(heartbeat_name("East_1.prod"), "subsea-gateway-east-1-prod");
    }

    #[test]
    fn empty_parts_are_left_out_of_the_annotation() {
        let e = External {
            addresses: vec!["192.0.2.1".into()],
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"addresses":["192.0.2.1"]}"#
        );
        let back: External = serde_json::from_str(r#"{"addresses":["192.0.2.1"],"ttl":60}"#).unwrap();
        assert_eq!(back.ttl, Some(60));
    }
}
