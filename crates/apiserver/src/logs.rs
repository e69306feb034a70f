//! `GET …/pods/{name}/log`, as kube-apiserver serves it: proxied to the kubelet of the pod's
//! node (`InternalIP`, `status.daemonEndpoints.kubeletEndpoint.Port`, default 10250) at
//! `/containerLogs/{ns}/{pod}/{container}`. Only the sandbox's kubelet stand-in answers this
//! API server, over plain HTTP; `follow` is not supported.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use subsea_store::error::ApiError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The most log bytes returned.
const MAX_LOG: u64 = 8 * 1024 * 1024;

/// Where to fetch a pod's log: (host, port, path with query).
pub fn kubelet_target(
    pod: &Value,
    node: Option<&Value>,
    query: &HashMap<String, String>,
) -> Result<(String, u16, String), ApiError> {
    let s = |v: &Value, p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let (ns, name) = (s(pod, "/metadata/namespace"), s(pod, "/metadata/name"));
    let containers: Vec<String> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| s(c, "/name"))
        .collect();
    let container = match query.get("container").filter(|c| !c.is_empty()) {
        Some(c) if containers.contains(c) => c.clone(),
        Some(c) => {
            return Err(ApiError::bad_request(format!(
                "container {c} is not valid for pod {name}"
            )));
        }
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            )));
        }
    };
    if matches!(query.get("follow").map(String::as_str), Some("true" | "1")) {
        return Err(ApiError::bad_request(
            "subsea apiserver does not stream logs (follow); fetch them without -f",
        ));
    }
    let node_name = s(pod, "/spec/nodeName");
    if node_name.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} is not scheduled to a node yet, so it has no logs"
        )));
    }
    let node = node.ok_or_else(|| ApiError::not_found("nodes", &node_name))?;
    let host = node
        .pointer("/status/addresses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|a| a["type"] == "InternalIP")
        .and_then(|a| a["address"].as_str())
        .ok_or_else(|| ApiError::internal(format!("node {node_name} has no InternalIP address")))?
        .to_string();
    let port = node
        .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(10250);
    let mut path = format!("/containerLogs/{ns}/{name}/{container}");
    let params: Vec<String> = ["tailLines", "limitBytes", "sinceSeconds"]
        .iter()
        .filter_map(|k| {
            let v = query.get(*k)?;
            v.parse::<u64>().ok().map(|n| format!("{k}={n}"))
        })
        .collect();
    if !params.is_empty() {
        path.push('?');
        path.push_str(&params.join("&"));
    }
    Ok((host, port, path))
}

/// Fetches `path` from the kubelet at `host:port`; the body on 200.
pub async fn fetch(host: &str, port: u16, path: &str) -> Result<Vec<u8>, ApiError> {
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let unreachable =
        |e: std::io::Error| ApiError::internal(format!("cannot reach the kubelet at {addr}: {e}"));
    let work = async {
        let mut c = tokio::net::TcpStream::connect(&addr).await.map_err(unreachable)?;
        c.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .map_err(unreachable)?;
        let mut raw = Vec::new();
        c.take(MAX_LOG + 4096)
            .read_to_end(&mut raw)
            .await
            .map_err(unreachable)?;
        Ok::<_, ApiError>(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(10), work)
        .await
        .map_err(|_| ApiError::internal(format!("the kubelet at {addr} did not answer within 10 s")))??;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| ApiError::internal(format!("the kubelet at {addr} sent no HTTP response")))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let body = raw[split + 4..].to_vec();
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    match code {
        200 => Ok(body),
        404 => Err(ApiError::not_found(
            "pods/log",
            String::from_utf8_lossy(&body).trim(),
        )),
        _ => Err(ApiError::internal(format!(
            "the kubelet at {addr} answered {code}: {}",
            String::from_utf8_lossy(&body).trim()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_target_is_the_nodes_kubelet_and_the_named_container() {
        let pod = json!({"metadata": {"name": "gw", "namespace": "submariner-operator"},
            "spec": {"nodeName": "n1", "containers": [{"name": "gateway"}]}});
        let node = json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "172.30.1.12"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10255}}}});
        assert_eq!(
            kubelet_target(&pod, Some(&node), &q(&[("tailLines", "50"), ("pretty", "x")])).expect("target"),
            (
                "172.30.1.12".to_string(),
                10255,
                "/containerLogs/submariner-operator/gw/gateway?tailLines=50".to_string()
            )
        );
        let e = kubelet_target(&pod, Some(&node), &q(&[("container", "nope")])).unwrap_err();
        assert!(
            e.message.contains("container nope is not valid for pod gw"),
            "{}",
            e.message
        );
        assert!(kubelet_target(&pod, Some(&node), &q(&[("follow", "true")])).is_err());
        let mut unscheduled = pod.clone();
        unscheduled["spec"]["nodeName"] = json!("");
        assert!(
            kubelet_target(&unscheduled, Some(&node), &q(&[]))
                .unwrap_err()
                .message
                .contains("not scheduled")
        );
        assert_eq!(kubelet_target(&pod, None, &q(&[])).unwrap_err().code, 404);
    }
}
