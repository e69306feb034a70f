//! Type and value checks of the built-in kinds, as kube-apiserver makes them: a body that does
//! not decode into the kind's Go type is a 400 ("cannot be handled as a ..."), a value out of
//! range or of the wrong form is a 422 with the field named. The types come from k8s-openapi, so
//! every field of every served kind is checked without a hand-written schema; the value rules
//! below are the ones clients most often get wrong, with Kubernetes' messages.

use std::net::IpAddr;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, Cause};

/// Checks an object of a built-in kind. Unknown kinds (and custom resources) pass.
pub fn check(kind: &str, obj: &Value) -> Result<(), ApiError> {
    use k8s_openapi::api::{
        apps, batch, coordination, core, discovery, networking, policy, rbac, scheduling,
    };
    match kind {
        "ConfigMap" => decodes::<core::v1::ConfigMap>(kind, obj)?,
        "Secret" => decodes::<core::v1::Secret>(kind, obj)?,
        "ServiceAccount" => decodes::<core::v1::ServiceAccount>(kind, obj)?,
        "Namespace" => decodes::<core::v1::Namespace>(kind, obj)?,
        "Service" => decodes::<core::v1::Service>(kind, obj)?,
        "Node" => decodes::<core::v1::Node>(kind, obj)?,
        "Pod" => decodes::<core::v1::Pod>(kind, obj)?,
        "Event" if obj["apiVersion"] == "v1" => decodes::<core::v1::Event>(kind, obj)?,
        "EndpointSlice" => decodes::<discovery::v1::EndpointSlice>(kind, obj)?,
        "Lease" => decodes::<coordination::v1::Lease>(kind, obj)?,
        "Deployment" => decodes::<apps::v1::Deployment>(kind, obj)?,
        "DaemonSet" => decodes::<apps::v1::DaemonSet>(kind, obj)?,
        "StatefulSet" => decodes::<apps::v1::StatefulSet>(kind, obj)?,
        "ReplicaSet" => decodes::<apps::v1::ReplicaSet>(kind, obj)?,
        "Job" => decodes::<batch::v1::Job>(kind, obj)?,
        "CronJob" => decodes::<batch::v1::CronJob>(kind, obj)?,
        "PodDisruptionBudget" => decodes::<policy::v1::PodDisruptionBudget>(kind, obj)?,
        "ResourceQuota" => decodes::<core::v1::ResourceQuota>(kind, obj)?,
        "PriorityClass" => decodes::<scheduling::v1::PriorityClass>(kind, obj)?,
        "NetworkPolicy" => decodes::<networking::v1::NetworkPolicy>(kind, obj)?,
        "Ingress" => decodes::<networking::v1::Ingress>(kind, obj)?,
        "Role" => decodes::<rbac::v1::Role>(kind, obj)?,
        "ClusterRole" => decodes::<rbac::v1::ClusterRole>(kind, obj)?,
        "RoleBinding" => decodes::<rbac::v1::RoleBinding>(kind, obj)?,
        "ClusterRoleBinding" => decodes::<rbac::v1::ClusterRoleBinding>(kind, obj)?,
        _ => return Ok(()),
    }
    let causes = match kind {
        "ConfigMap" => config_map(obj),
        "Service" => service(obj),
        "EndpointSlice" => endpoint_slice(obj),
        "Pod" => pod(obj),
        "Lease" => lease(obj),
        _ => Vec::new(),
    };
    if causes.is_empty() {
        return Ok(());
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let group = obj["apiVersion"]
        .as_str()
        .and_then(|av| av.split_once('/'))
        .map(|(g, _)| g)
        .unwrap_or_default();
    Err(ApiError::invalid(kind, group, name, causes))
}

/// 400 when the body does not decode into the kind's type, naming the field.
fn decodes<T: DeserializeOwned>(kind: &str, obj: &Value) -> Result<(), ApiError> {
    let version = obj["apiVersion"]
        .as_str()
        .map(|av| av.rsplit('/').next().unwrap_or(av))
        .unwrap_or("v1");
    match serde_path_to_error::deserialize::<_, T>(obj) {
        Ok(_) => Ok(()),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let at = if path == "." {
                String::new()
            } else {
                format!("{path}: ")
            };
            Err(ApiError::bad_request(format!(
                "{kind} in version \"{version}\" cannot be handled as a {kind}: {at}{inner}"
            )))
        }
    }
}

fn items<'a>(v: &'a Value, pointer: &str) -> impl Iterator<Item = (usize, &'a Value)> {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

fn port_range(causes: &mut Vec<Cause>, field: String, v: &Value) {
    if let Some(n) = v.as_i64() {
        if !(1..=65535).contains(&n) {
            causes.push(Cause::invalid(field, v, "must be between 1 and 65535, inclusive"));
        }
    }
}

fn not_supported(field: String, v: &Value, supported: &[&str]) -> Cause {
    let list = supported
        .iter()
        .map(|s| format!("{s:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    Cause::new(
        "FieldValueNotSupported",
        field,
        format!(
            "Unsupported value: {}: supported values: {list}",
            crate::error::render_value(v)
        ),
    )
}

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

fn protocol(causes: &mut Vec<Cause>, field: String, v: Option<&Value>) {
    if let Some(p) = v.filter(|p| !p.is_null()) {
        if !p.as_str().is_some_and(|s| PROTOCOLS.contains(&s)) {
            causes.push(not_supported(field, p, PROTOCOLS));
        }
    }
}

fn config_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 253
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn config_map(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    for section in ["data", "binaryData"] {
        for key in obj[section].as_object().into_iter().flatten().map(|(k, _)| k) {
            if !config_key(key) {
                causes.push(Cause::invalid(
                    format!("{section}[{key}]"),
                    &Value::String(key.clone()),
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ));
            }
        }
    }
    causes
}

const IP_HINT: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

fn service(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let spec = &obj["spec"];
    for (i, p) in items(obj, "/spec/ports") {
        port_range(&mut causes, format!("spec.ports[{i}].port"), &p["port"]);
        if p["targetPort"].is_i64() {
            port_range(
                &mut causes,
                format!("spec.ports[{i}].targetPort"),
                &p["targetPort"],
            );
        }
        if !p["nodePort"].is_null() && p["nodePort"] != 0 {
            port_range(&mut causes, format!("spec.ports[{i}].nodePort"), &p["nodePort"]);
        }
        protocol(
            &mut causes,
            format!("spec.ports[{i}].protocol"),
            p.get("protocol"),
        );
    }
    let mut ips: Vec<(String, &Value)> = Vec::new();
    if !spec["clusterIP"].is_null() {
        ips.push(("spec.clusterIPs[0]".into(), &spec["clusterIP"]));
    }
    for (i, ip) in items(obj, "/spec/clusterIPs") {
        if !(i == 0 && ips.first().is_some_and(|(_, v)| *v == ip)) {
            ips.push((format!("spec.clusterIPs[{i}]"), ip));
        }
    }
    for (field, ip) in ips {
        let s = ip.as_str().unwrap_or_default();
        if !s.is_empty() && s != "None" && s.parse::<IpAddr>().is_err() {
            causes.push(Cause::invalid(field, ip, IP_HINT));
        }
    }
    if let Some(t) = spec.get("type").filter(|t| !t.is_null()) {
        const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
        if !t.as_str().is_some_and(|s| TYPES.contains(&s)) {
            causes.push(not_supported("spec.type".into(), t, TYPES));
        }
    }
    causes
}

fn endpoint_slice(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    const TYPES: &[&str] = &["FQDN", "IPv4", "IPv6"];
    let at = &obj["addressType"];
    let family = at.as_str().filter(|s| TYPES.contains(s));
    if family.is_none() {
        causes.push(not_supported("addressType".into(), at, TYPES));
    }
    for (i, ep) in items(obj, "/endpoints") {
        for (j, addr) in items(ep, "/addresses") {
            let parsed = addr.as_str().and_then(|a| a.parse::<IpAddr>().ok());
            let ok = match (family, parsed) {
                (Some("IPv4"), Some(IpAddr::V4(_))) | (Some("IPv6"), Some(IpAddr::V6(_))) => true,
                (Some("FQDN"), _) | (None, _) => true,
                _ => false,
            };
            if !ok {
                let hint = format!("must be a valid {} address", family.unwrap_or_default());
                causes.push(Cause::invalid(
                    format!("endpoints[{i}].addresses[{j}]"),
                    addr,
                    &hint,
                ));
            }
        }
    }
    for (i, p) in items(obj, "/ports") {
        if !p["port"].is_null() {
            port_range(&mut causes, format!("ports[{i}].port"), &p["port"]);
        }
        protocol(&mut causes, format!("ports[{i}].protocol"), p.get("protocol"));
    }
    causes
}

fn pod(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if obj
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
    {
        causes.push(Cause::required("spec.containers"));
    }
    for (i, c) in items(obj, "/spec/containers") {
        if c["name"].as_str().is_none_or(str::is_empty) {
            causes.push(Cause::required(format!("spec.containers[{i}].name")));
        }
        for (j, p) in items(c, "/ports") {
            port_range(
                &mut causes,
                format!("spec.containers[{i}].ports[{j}].containerPort"),
                &p["containerPort"],
            );
        }
    }
    causes
}

fn lease(obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let d = &obj["spec"]["leaseDurationSeconds"];
    if d.as_i64().is_some_and(|d| d <= 0) {
        causes.push(Cause::invalid(
            "spec.leaseDurationSeconds",
            d,
            "must be greater than 0",
        ));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn code(kind: &str, obj: Value) -> (u16, String) {
        match check(kind, &obj) {
            Ok(()) => (0, String::new()),
            Err(e) => (e.code, e.message),
        }
    }

    #[test]
    fn wrong_types_are_400_naming_the_field() {
        let (c, m) = code(
            "ConfigMap",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"a": 1}}),
        );
        assert_eq!(c, 400);
        assert!(
            m.starts_with(
                "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: data.a: invalid type"
            ),
            "{m}"
        );
        let (c, m) = code(
            "EndpointSlice",
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "s"}, "addressType": "IPv4", "endpoints": "garbage"}),
        );
        assert_eq!(c, 400, "{m}");
        assert!(m.contains("endpoints"), "{m}");
        let (c, _) = code(
            "Lease",
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"}, "spec": {"holderIdentity": 5}}),
        );
        assert_eq!(c, 400);
        let (c, _) = code(
            "Pod",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": "garbage"}),
        );
        assert_eq!(c, 400);
        let (c, m) = code(
            "Secret",
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "not base64!"}}),
        );
        assert_eq!(c, 400, "{m}");
        assert!(m.contains("data.k"), "{m}");
    }

    #[test]
    fn bad_values_are_422_with_kubernetes_messages() {
        let svc = |port: i64, ip: &str| {
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
                "spec": {"clusterIP": ip, "ports": [{"port": port}]}})
        };
        let (c, m) = code("Service", svc(99999, "10.0.0.1"));
        assert_eq!(c, 422);
        assert_eq!(
            m,
            "Service \"s\" is invalid: spec.ports[0].port: Invalid value: 99999: must be between 1 and 65535, inclusive"
        );
        let (c, m) = code("Service", svc(80, "999.1.1.1"));
        assert_eq!(c, 422);
        assert!(
            m.contains("spec.clusterIPs[0]: Invalid value: \"999.1.1.1\": must be a valid IP address"),
            "{m}"
        );
        assert_eq!(code("Service", svc(80, "None")).0, 0);
        let (c, m) = code(
            "EndpointSlice",
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "e"}, "addressType": "Bogus", "endpoints": []}),
        );
        assert_eq!(c, 422);
        assert!(
            m.contains(
                "addressType: Unsupported value: \"Bogus\": supported values: \"FQDN\", \"IPv4\", \"IPv6\""
            ),
            "{m}"
        );
        let (c, m) = code(
            "EndpointSlice",
            json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "e"}, "addressType": "IPv4", "endpoints": [{"addresses": ["fd00::1"]}]}),
        );
        assert_eq!(c, 422, "{m}");
        let (c, m) = code(
            "ConfigMap",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"a b": "x"}}),
        );
        assert_eq!(c, 422, "{m}");
        let good = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": {"name": "e"},
            "addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": true}}], "ports": [{"port": 80, "protocol": "TCP"}]});
        assert_eq!(code("EndpointSlice", good).0, 0);
    }
}
