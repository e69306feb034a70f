//! Network discovery from what a cluster's API exposes, in Submariner's generic order: the
//! kube-controller-manager and kube-apiserver pods' flags, kube-proxy's flags or ConfigMap, the
//! nodes' pod CIDRs, and for services the "range of valid IPs" in a rejected Service's error.

use serde_json::Value;
use subsea_cidr::Cidr;

fn flag_values(pod: &Value, flag: &str) -> Vec<String> {
    let prefix = format!("--{flag}=");
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|c| {
            ["command", "args"]
                .into_iter()
                .filter_map(move |k| c[k].as_array())
                .flatten()
        })
        .filter_map(Value::as_str)
        .filter_map(|a| a.strip_prefix(&prefix))
        .flat_map(|v| v.split(',').map(str::trim).map(String::from).collect::<Vec<_>>())
        .collect()
}

fn is_component(pod: &Value, name: &str) -> bool {
    let labels = &pod["metadata"]["labels"];
    labels["component"] == name
        || labels["k8s-app"] == name
        || pod["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with(name))
}

fn valid(list: Vec<String>) -> Vec<String> {
    list.into_iter().filter(|c| Cidr::parse(c).is_ok()).collect()
}

/// Pod CIDRs from control-plane pods (kube-system), kube-proxy's ConfigMap, or the nodes.
pub fn pod_cidrs(
    kube_system_pods: &[Value],
    kube_proxy_config: Option<&str>,
    nodes: &[Value],
) -> Vec<String> {
    for component in ["kube-controller-manager", "kube-proxy"] {
        for pod in kube_system_pods.iter().filter(|p| is_component(p, component)) {
            let found = valid(flag_values(pod, "cluster-cidr"));
            if !found.is_empty() {
                return found;
            }
        }
    }
    if let Some(cfg) = kube_proxy_config {
        for line in cfg.lines() {
            if let Some(v) = line.trim().strip_prefix("clusterCIDR:") {
                let found = valid(
                    v.trim()
                        .trim_matches('"')
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .collect(),
                );
                if !found.is_empty() {
                    return found;
                }
            }
        }
    }
    let per_node: Vec<Cidr> = nodes
        .iter()
        .flat_map(|n| {
            let spec = &n["spec"];
            let list: Vec<&str> = spec["podCIDRs"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if list.is_empty() {
                spec["podCIDR"].as_str().into_iter().collect()
            } else {
                list
            }
        })
        .filter_map(|c| Cidr::parse(c).ok())
        .collect();
    covering(&per_node).into_iter().map(|c| c.to_string()).collect()
}

/// The smallest block per family covering every given block.
fn covering(blocks: &[Cidr]) -> Vec<Cidr> {
    let mut out = Vec::new();
    for v4 in [true, false] {
        let fam: Vec<&Cidr> = blocks.iter().filter(|c| c.addr.is_ipv4() == v4).collect();
        let Some(first) = fam.first() else { continue };
        let mut prefix = first.prefix;
        loop {
            let candidate = Cidr::parse(&format!("{}/{prefix}", first.addr)).ok();
            if let Some(c) =
                candidate.filter(|c| fam.iter().all(|b| c.contains(b.addr) && c.prefix <= b.prefix))
            {
                out.push(c);
                break;
            }
            if prefix == 0 {
                break;
            }
            prefix -= 1;
        }
    }
    out
}

/// Service CIDRs from kube-apiserver or kube-controller-manager flags.
pub fn service_cidrs_from_pods(kube_system_pods: &[Value]) -> Vec<String> {
    for component in ["kube-apiserver", "kube-controller-manager"] {
        for pod in kube_system_pods.iter().filter(|p| is_component(p, component)) {
            let found = valid(flag_values(pod, "service-cluster-ip-range"));
            if !found.is_empty() {
                return found;
            }
        }
    }
    Vec::new()
}

/// The service CIDRs named in an API server's answer to a Service with an out-of-range
/// ClusterIP ("... The range of valid IPs is 100.66.0.0/16").
pub fn service_cidrs_from_error(message: &str) -> Vec<String> {
    let Some(idx) = message.find("The range of valid IPs is ") else {
        return Vec::new();
    };
    let rest = &message[idx + "The range of valid IPs is ".len()..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == ']' || c == '"' || c == '\'')
        .unwrap_or(rest.len());
    valid(rest[..end].split(',').map(|s| s.trim().to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn controller_manager_flags_win() {
        let kcm = json!({"metadata": {"name": "kube-controller-manager-cp", "labels": {"component": "kube-controller-manager"}},
            "spec": {"containers": [{"command": ["kube-controller-manager", "--cluster-cidr=10.130.0.0/16,fd00:130::/56", "--service-cluster-ip-range=100.66.0.0/16"]}]}});
        assert_eq!(
            pod_cidrs(&[kcm.clone()], None, &[]),
            vec!["10.130.0.0/16", "fd00:130::/56"]
        );
        assert_eq!(service_cidrs_from_pods(&[kcm]), vec!["100.66.0.0/16"]);
    }

    #[test]
    fn kube_proxy_config_then_nodes() {
        let cfg =
            "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nclusterCIDR: 10.131.0.0/16\nmode: iptables\n";
        assert_eq!(pod_cidrs(&[], Some(cfg), &[]), vec!["10.131.0.0/16"]);
        let nodes = [
            json!({"spec": {"podCIDR": "10.132.1.0/24"}}),
            json!({"spec": {"podCIDRs": ["10.132.2.0/24"]}}),
        ];
        assert_eq!(pod_cidrs(&[], None, &nodes), vec!["10.132.0.0/22"]);
        assert!(pod_cidrs(&[], None, &[]).is_empty());
    }

    #[test]
    fn range_from_the_apiserver_error() {
        let msg = "Service \"invalid-svc\" is invalid: spec.clusterIPs: Invalid value: []string{\"1.1.1.1\"}: failed to allocate IP 1.1.1.1: provided IP is not in the valid range. The range of valid IPs is 100.66.0.0/16";
        assert_eq!(service_cidrs_from_error(msg), vec!["100.66.0.0/16"]);
        assert!(service_cidrs_from_error("nothing here").is_empty());
    }
}
