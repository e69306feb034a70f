//! `broker-info.subm`: URL-safe base64 (padded) of a JSON document, in exactly the shape
//! Submariner's subctl writes, including its odd key names (`brokerURL`, `ClientToken`,
//! `IPSecPSK`, `ServiceDiscovery`, `Components`, `CustomDomains`). Keys are read
//! case-insensitively, as Go's decoder does.

use base64::Engine;
use serde_json::{Map, Value, json};

/// Why a broker-info file could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InfoError {
    /// Not base64.
    #[error("it is not base64 text (a broker-info.subm file is the URL-safe base64 of a JSON document)")]
    NotBase64,
    /// Not JSON, or not an object.
    #[error("its decoded content is not a JSON object")]
    NotJson,
    /// A required field is missing.
    #[error("it has no {0}")]
    Missing(&'static str),
    /// A field is present but unusable.
    #[error("its {0} {1}")]
    Invalid(&'static str, String),
}

/// The decoded content.
#[derive(Clone, Debug, PartialEq)]
pub struct BrokerInfo {
    /// API server URL of the broker.
    pub broker_url: String,
    /// URLs of further broker replicas (`brokerReplicaURLs`, subsea's addition; Submariner's
    /// subctl ignores it and uses `brokerURL`).
    pub replica_urls: Vec<String>,
    /// CA certificate (PEM) of the broker's API server.
    pub ca_crt: Vec<u8>,
    /// Broker namespace.
    pub namespace: String,
    /// Bearer token for the broker.
    pub token: String,
    /// Name of the token Secret on the broker.
    pub token_secret_name: String,
    /// Service account the token belongs to.
    pub token_service_account: String,
    /// The pre-shared key (48 random bytes).
    pub psk: Vec<u8>,
    /// Enabled components, sorted.
    pub components: Vec<String>,
    /// Extra DNS domains, if any.
    pub custom_domains: Option<Vec<String>>,
}

fn b64(bytes: &[u8]) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
}

impl BrokerInfo {
    /// The JSON document, as Submariner writes it.
    pub fn to_json(&self) -> Value {
        let mut components = self.components.clone();
        components.sort();
        let mut doc = json!({
            "brokerURL": self.broker_url,
            "brokerReplicaURLs": self.replica_urls,
            "ClientToken": {
                "metadata": {
                    "name": self.token_secret_name,
                    "namespace": self.namespace,
                    "annotations": {
                        "kubernetes.io/service-account.name": self.token_service_account,
                        "kubernetes.io/created-by": "subctl",
                    },
                },
                "data": {"ca.crt": b64(&self.ca_crt), "namespace": b64(self.namespace.as_bytes()), "token": b64(self.token.as_bytes())},
                "type": "kubernetes.io/service-account-token",
            },
            "IPSecPSK": {"metadata": {"name": "submariner-ipsec-psk"}, "data": {"psk": b64(&self.psk)}},
            "ServiceDiscovery": components.iter().any(|c| c == "service-discovery"),
            "CustomDomains": self.custom_domains,
        });
        if !components.is_empty() {
            doc["Components"] = json!(components);
        }
        doc
    }

    /// The file content: URL-safe base64 with padding, no trailing newline.
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE.encode(self.to_json().to_string())
    }

    /// Parses file content.
    pub fn decode(text: &str) -> Result<Self, InfoError> {
        let trimmed = text.trim();
        let raw = base64::engine::general_purpose::URL_SAFE
            .decode(trimmed)
            .or_else(|_| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed.trim_end_matches('='))
            })
            .map_err(|_| InfoError::NotBase64)?;
        let doc: Value = serde_json::from_slice(&raw).map_err(|_| InfoError::NotJson)?;
        let doc = doc.as_object().ok_or(InfoError::NotJson)?;
        let get = |k: &str| ci_get(doc, k);
        let broker_url = get("brokerURL")
            .and_then(Value::as_str)
            .ok_or(InfoError::Missing("brokerURL"))?
            .to_string();
        let replica_urls: Vec<String> = get("brokerReplicaURLs")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default();
        if let Some(bad) = replica_urls
            .iter()
            .find(|u| crate::validate::broker_url(u).is_err())
        {
            return Err(InfoError::Invalid(
                "brokerReplicaURLs",
                format!("hold {bad:?}, which is not an https:// URL"),
            ));
        }
        let token_secret = get("ClientToken")
            .and_then(Value::as_object)
            .ok_or(InfoError::Missing("ClientToken"))?;
        let data = ci_get(token_secret, "data")
            .and_then(Value::as_object)
            .ok_or(InfoError::Missing("ClientToken.data"))?;
        let field = |m: &Map<String, Value>, k: &'static str| -> Result<Vec<u8>, InfoError> {
            let s = m.get(k).and_then(Value::as_str).ok_or(InfoError::Missing(k))?;
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|_| InfoError::NotBase64)
        };
        let meta = ci_get(token_secret, "metadata").and_then(Value::as_object);
        let meta_str = |k: &str| {
            meta.and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let sa = meta
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get("kubernetes.io/service-account.name"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let psk_secret = get("IPSecPSK")
            .and_then(Value::as_object)
            .ok_or(InfoError::Missing("IPSecPSK"))?;
        let psk_data = ci_get(psk_secret, "data")
            .and_then(Value::as_object)
            .ok_or(InfoError::Missing("IPSecPSK.data"))?;
        let mut components: Vec<String> = get("Components")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
            .unwrap_or_default();
        if components.is_empty() && get("ServiceDiscovery").and_then(Value::as_bool) == Some(true) {
            components = vec!["connectivity".into(), "service-discovery".into()];
        }
        components.sort();
        if let Some(bad) = components
            .iter()
            .find(|c| !crate::COMPONENTS.contains(&c.as_str()))
        {
            return Err(InfoError::Invalid(
                "Components",
                format!(
                    "name an unknown component {bad:?} (known: {})",
                    crate::COMPONENTS.join(", ")
                ),
            ));
        }
        let psk = field(psk_data, "psk")?;
        if psk.is_empty() {
            return Err(InfoError::Invalid(
                "IPSecPSK",
                "is empty: the tunnels' pre-shared key must not be (re-create the file with `subctl deploy-broker`)".into(),
            ));
        }
        let custom_domains = get("CustomDomains")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect());
        Ok(Self {
            broker_url,
            replica_urls,
            ca_crt: field(data, "ca.crt")?,
            namespace: String::from_utf8(field(data, "namespace")?).map_err(|_| InfoError::NotJson)?,
            token: String::from_utf8(field(data, "token")?).map_err(|_| InfoError::NotJson)?,
            token_secret_name: meta_str("name"),
            token_service_account: sa,
            psk,
            components,
            custom_domains,
        })
    }
}

fn ci_get<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.get(key).or_else(|| {
        m.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BrokerInfo {
        BrokerInfo {
            broker_url: "https://172.18.0.4:6443".into(),
            replica_urls: vec!["https://172.18.0.5:6443".into()],
            ca_crt: b"-----BEGIN CERTIFICATE-----\n".to_vec(),
            namespace: "submariner-k8s-broker".into(),
            token: "tok".into(),
            token_secret_name: "submariner-k8s-broker-admin-token-abcde".into(),
            token_service_account: "submariner-k8s-broker-admin".into(),
            psk: vec![7; 48],
            components: vec!["service-discovery".into(), "connectivity".into()],
            custom_domains: None,
        }
    }

    #[test]
    fn encodes_with_submariners_keys_and_round_trips() {
        let info = sample();
        let doc = info.to_json();
        let keys: Vec<&String> = doc.as_object().expect("object").keys().collect();
        for k in [
            "brokerURL",
            "ClientToken",
            "IPSecPSK",
            "ServiceDiscovery",
            "Components",
            "CustomDomains",
        ] {
            assert!(keys.iter().any(|x| *x == k), "{k} missing: {keys:?}");
        }
        assert_eq!(doc["Components"], json!(["connectivity", "service-discovery"]));
        assert!(doc["CustomDomains"].is_null());
        assert_eq!(
            doc["ClientToken"]["data"]["namespace"],
            "c3VibWFyaW5lci1rOHMtYnJva2Vy"
        );
        let text = info.encode();
        assert!(!text.ends_with('\n') && !text.contains('+') && !text.contains('/'));
        let back = BrokerInfo::decode(&text).expect("decodes");
        assert_eq!(
            back,
            BrokerInfo {
                components: vec!["connectivity".into(), "service-discovery".into()],
                ..info
            }
        );
    }

    #[test]
    fn reads_keys_case_insensitively_like_go() {
        let mut doc = sample().to_json();
        let ct = doc["ClientToken"].take();
        doc.as_object_mut().expect("object").remove("ClientToken");
        doc["clientToken"] = ct;
        let text = base64::engine::general_purpose::URL_SAFE.encode(doc.to_string());
        assert_eq!(BrokerInfo::decode(&text).expect("decodes").token, "tok");
    }

    #[test]
    fn malformed_files_say_what_is_wrong() {
        assert_eq!(BrokerInfo::decode("not base64 !!!"), Err(InfoError::NotBase64));
        let not_json = base64::engine::general_purpose::URL_SAFE.encode("hello");
        assert_eq!(BrokerInfo::decode(&not_json), Err(InfoError::NotJson));
        let empty = base64::engine::general_purpose::URL_SAFE.encode("{}");
        assert_eq!(BrokerInfo::decode(&empty), Err(InfoError::Missing("brokerURL")));
        let no_psk = BrokerInfo {
            psk: vec![],
            ..sample()
        }
        .encode();
        let e = BrokerInfo::decode(&no_psk).expect_err("empty PSK");
        assert!(e.to_string().contains("IPSecPSK is empty"), "{e}");
        let unknown = BrokerInfo {
            components: vec!["globalnet-ish".into()],
            ..sample()
        }
        .encode();
        let e = BrokerInfo::decode(&unknown).expect_err("unknown component");
        assert!(
            e.to_string().contains("unknown component \"globalnet-ish\""),
            "{e}"
        );
    }
}
