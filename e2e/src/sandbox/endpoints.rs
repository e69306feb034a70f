//! An EndpointSlice controller stand-in: keeps one EndpointSlice per Service with a selector
//! in step with the matching Pods (addresses, readiness, hostnames), as kube-controller-manager
//! would. The slice is a pure function of the Service and the Pods.

use serde_json::{Value, json};

fn s<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or_default()
}

/// Name of the slice the stand-in owns for a service.
pub fn slice_name(svc: &str) -> String {
    format!("{svc}-sandbox")
}

/// The pod's addresses of one family (`status.podIPs`, else `status.podIP`).
fn pod_ips(p: &Value, v6: bool) -> Vec<String> {
    let mut ips: Vec<String> = p
        .pointer("/status/podIPs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|i| i["ip"].as_str().map(String::from))
        .collect();
    if ips.is_empty() && !s(p, "/status/podIP").is_empty() {
        ips.push(s(p, "/status/podIP").to_string());
    }
    ips.retain(|ip| ip.contains(':') == v6);
    ips
}

/// The EndpointSlices of `svc` over `pods`: always an IPv4 one, and an IPv6 one when pods
/// have IPv6 addresses. Empty for a service without selector.
pub fn slices(svc: &Value, pods: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = slice(svc, pods, false).into_iter().collect();
    out.extend(slice(svc, pods, true).filter(|sl| sl["endpoints"].as_array().is_some_and(|e| !e.is_empty())));
    out
}

/// The EndpointSlice of one family, or `None` for a service without selector.
pub fn slice(svc: &Value, pods: &[Value], v6: bool) -> Option<Value> {
    let selector = svc.pointer("/spec/selector")?.as_object()?;
    if selector.is_empty() {
        return None;
    }
    let ns = s(svc, "/metadata/namespace");
    let name = s(svc, "/metadata/name");
    let endpoints: Vec<Value> = pods
        .iter()
        .filter(|p| s(p, "/metadata/namespace") == ns)
        .filter(|p| {
            selector
                .iter()
                .all(|(k, v)| p.pointer(&format!("/metadata/labels/{}", k.replace('/', "~1"))) == Some(v))
        })
        .filter(|p| !pod_ips(p, v6).is_empty())
        .map(|p| {
            let ready = p
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            let mut e = json!({"addresses": [pod_ips(p, v6)[0]], "conditions": {"ready": ready},
                "targetRef": {"kind": "Pod", "name": s(p, "/metadata/name"), "namespace": ns}});
            let node = s(p, "/spec/nodeName");
            if !node.is_empty() {
                e["nodeName"] = json!(node);
            }
            let host = s(p, "/spec/hostname");
            if !host.is_empty() {
                e["hostname"] = json!(host);
            }
            e
        })
        .collect();
    let ports: Vec<Value> = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| {
            let target = p.get("targetPort").filter(|t| t.is_u64()).unwrap_or(&p["port"]);
            json!({"name": p.get("name").cloned().unwrap_or(json!("")), "port": target, "protocol": p.get("protocol").cloned().unwrap_or(json!("TCP"))})
        })
        .collect();
    Some(
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": if v6 { format!("{}-v6", slice_name(name)) } else { slice_name(name) }, "namespace": ns,
            "labels": {"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
        "addressType": if v6 { "IPv6" } else { "IPv4" }, "endpoints": endpoints, "ports": ports}),
    )
}

/// Runs the stand-in for one cluster until killed.
pub async fn run(kubeconfig: &std::path::Path) -> anyhow::Result<()> {
    use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
    use subsea_runtime::reflect::{reflect, values};
    let client = subsea_runtime::client::local(Some(kubeconfig), None).await?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let watch = |g: &str, v: &str, k: &str, p: &str| {
        let r = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(g, v, k), p);
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &r);
        reflect(api, &r, tx.clone())
    };
    let services = watch("", "v1", "Service", "services");
    let pods = watch("", "v1", "Pod", "pods");
    // What was last written per slice: a pass over unchanged state writes nothing.
    let last: std::sync::Mutex<std::collections::HashMap<(String, String), Value>> = Default::default();
    subsea_runtime::controller::Loop::new("endpointslice stand-in")
        .run(&mut rx, std::future::pending(), |_| async {
            let pods = values(&pods);
            let mut failed = None;
            for svc in values(&services) {
                for sl in slices(&svc, &pods) {
                    let key = (
                        s(&sl, "/metadata/namespace").to_string(),
                        s(&sl, "/metadata/name").to_string(),
                    );
                    let unchanged = last.lock().unwrap_or_else(|e| e.into_inner()).get(&key) == Some(&sl);
                    if unchanged {
                        continue;
                    }
                    match subsea_runtime::objects::apply(&client, &sl).await {
                        Ok(_) => {
                            last.lock().unwrap_or_else(|e| e.into_inner()).insert(key, sl);
                        }
                        Err(e) => failed = Some(e),
                    }
                }
            }
            failed.map_or(Ok(()), Err)
        })
        .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_pods_become_endpoints_with_readiness_and_hostnames() {
        let svc = json!({"metadata": {"name": "web", "namespace": "default"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}});
        let pod = |name: &str, app: &str, ip: &str, ready: &str| {
            json!({"metadata": {"name": name, "namespace": "default", "labels": {"app": app}},
                "spec": {"hostname": name, "nodeName": "c1-worker"}, "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": ready}]}})
        };
        let pods = vec![
            pod("web-0", "web", "10.129.4.11", "True"),
            pod("web-1", "web", "10.129.2.11", "False"),
            pod("db-0", "db", "10.129.4.12", "True"),
        ];
        let sl = slice(&svc, &pods, false).expect("a slice");
        assert_eq!(sl["metadata"]["labels"]["kubernetes.io/service-name"], "web");
        assert_eq!(sl["endpoints"].as_array().map(Vec::len), Some(2));
        assert_eq!(sl["endpoints"][0]["conditions"]["ready"], true);
        assert_eq!(sl["endpoints"][1]["conditions"]["ready"], false);
        assert_eq!(sl["endpoints"][0]["hostname"], "web-0");
        assert_eq!(sl["endpoints"][0]["nodeName"], "c1-worker");
        assert_eq!(sl["ports"][0]["port"], 8080);
        let no_selector = json!({"metadata": {"name": "x", "namespace": "default"}, "spec": {}});
        assert!(slices(&no_selector, &pods).is_empty());
        let mut dual = pods[0].clone();
        dual["status"]["podIPs"] = json!([{"ip": "10.129.4.11"}, {"ip": "fd00:129:4::11"}]);
        let both = slices(&svc, &[dual]);
        assert_eq!(both.len(), 2);
        assert_eq!(both[1]["addressType"], "IPv6");
        assert_eq!(both[1]["endpoints"][0]["addresses"][0], "fd00:129:4::11");
    }
}
