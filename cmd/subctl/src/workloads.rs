//! The component workloads `subctl join` deploys, from the manifests in `manifests/deploy/`
//! (the same files users can apply by hand), with the image filled in.

use anyhow::{Context, Result};
use serde_json::Value;

const CONNECTIVITY: &str = include_str!("../../../manifests/deploy/connectivity.yaml");
const SERVICE_DISCOVERY: &str = include_str!("../../../manifests/deploy/service-discovery.yaml");
const GLOBALNET: &str = include_str!("../../../manifests/deploy/globalnet.yaml");
const CLUSTERSET_IP: &str = include_str!("../../../manifests/deploy/clusterset-ip.yaml");
/// Placeholder the manifests carry where the image goes.
pub const IMAGE_PLACEHOLDER: &str = "SUBSEA_IMAGE";
/// Default image repository.
pub const DEFAULT_REPOSITORY: &str = "ghcr.io/subsea-io";

/// The image for a repository and version.
/// The image for a user's `--repository` and `--version`, refusing what is not an image
/// reference (it is written into every workload).
pub fn checked_image(repository: &str, version: &str) -> Result<String> {
    subsea_broker::validate::repository(repository.trim_end_matches('/'))?;
    subsea_broker::validate::image_tag(version)?;
    Ok(image(repository, version))
}

/// The component image `REPOSITORY/subsea:VERSION`.
pub fn image(repository: &str, version: &str) -> String {
    format!("{}/subsea:{version}", repository.trim_end_matches('/'))
}

fn documents(text: &str, image: &str) -> Result<Vec<Value>> {
    let text = text.replace(IMAGE_PLACEHOLDER, image);
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| {
            let v: Value =
                serde::Deserialize::deserialize(d).context("a bundled manifest is not valid YAML")?;
            Ok(v)
        })
        .filter(|v: &Result<Value>| v.as_ref().map_or(true, |v| !v.is_null()))
        .collect()
}

/// Gateway and route agent: service accounts, RBAC, DaemonSets, metrics Service.
pub fn connectivity(image: &str) -> Result<Vec<Value>> {
    documents(CONNECTIVITY, image)
}

/// Globalnet: its service account, cluster-wide RBAC and the DaemonSet on gateway nodes.
pub fn globalnet(image: &str) -> Result<Vec<Value>> {
    documents(GLOBALNET, image)
}

/// Lighthouse agent and DNS server (service accounts, RBAC, Deployments, the DNS Service), and
/// the ClusterSetIP DaemonSet on every node. `mcs_spec`: the agent writes the MCS API's
/// condition reasons and the DNS server serves only the DNS spec's names, instead of
/// Lighthouse's.
pub fn service_discovery(image: &str, mcs_spec: bool) -> Result<Vec<Value>> {
    let mut docs = documents(SERVICE_DISCOVERY, image)?;
    if mcs_spec {
        for (deployment, arg) in [
            ("submariner-lighthouse-agent", "--mcs-condition-reasons"),
            ("submariner-lighthouse-coredns", "--strict-mcs-names"),
        ] {
            let command = docs
                .iter_mut()
                .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == deployment)
                .and_then(|d| d["spec"]["template"]["spec"]["containers"][0]["command"].as_array_mut())
                .with_context(|| format!("the bundled manifests have no {deployment} command"))?;
            command.push(arg.into());
        }
    }
    docs.extend(documents(CLUSTERSET_IP, image)?);
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globalnet_runs_on_gateway_nodes_only_with_the_image() {
        let docs = globalnet("registry.example/subsea:1.2").expect("parses");
        let ds = docs.iter().find(|d| d["kind"] == "DaemonSet").expect("DaemonSet");
        assert_eq!(
            ds["spec"]["template"]["spec"]["nodeSelector"]["submariner.io/gateway"],
            "true"
        );
        assert_eq!(
            ds.pointer("/spec/template/spec/containers/0/image")
                .and_then(Value::as_str),
            Some("registry.example/subsea:1.2")
        );
        assert!(docs.iter().any(|d| d["kind"] == "ClusterRole"));
    }

    #[test]
    fn connectivity_manifests_parse_and_carry_the_image() {
        let docs = connectivity("registry.example/subsea:1.2").expect("parses");
        let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
        assert!(kinds.contains(&"DaemonSet") && kinds.contains(&"Role") && kinds.contains(&"ServiceAccount"));
        for d in docs.iter().filter(|d| d["kind"] == "DaemonSet") {
            assert_eq!(
                d.pointer("/spec/template/spec/containers/0/image")
                    .and_then(Value::as_str),
                Some("registry.example/subsea:1.2")
            );
            assert_eq!(
                d.pointer("/metadata/namespace").and_then(Value::as_str),
                Some("submariner-operator")
            );
        }
        assert!(
            !serde_json::to_string(&docs)
                .expect("json")
                .contains(IMAGE_PLACEHOLDER)
        );
        let sd = service_discovery("x/subsea:1", false).expect("parses");
        let deployments: Vec<&str> = sd
            .iter()
            .filter(|d| d["kind"] == "Deployment")
            .filter_map(|d| d["metadata"]["name"].as_str())
            .collect();
        assert_eq!(
            deployments,
            ["submariner-lighthouse-agent", "submariner-lighthouse-coredns"]
        );
        let daemonsets: Vec<&str> = sd
            .iter()
            .filter(|d| d["kind"] == "DaemonSet")
            .filter_map(|d| d["metadata"]["name"].as_str())
            .collect();
        assert_eq!(daemonsets, ["submariner-clusterset-ip"]);
    }

    #[test]
    fn the_mcs_spec_mode_adds_the_agent_and_dns_flags() {
        let command = |mcs: bool, name: &str| -> Vec<String> {
            service_discovery("x/subsea:1", mcs)
                .expect("parses")
                .iter()
                .find(|d| d["metadata"]["name"] == name && d["kind"] == "Deployment")
                .and_then(|d| {
                    d["spec"]["template"]["spec"]["containers"][0]["command"]
                        .as_array()
                        .cloned()
                })
                .expect("a command")
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        };
        assert_eq!(
            command(false, "submariner-lighthouse-agent"),
            ["subsea", "lighthouse-agent"]
        );
        assert_eq!(
            command(true, "submariner-lighthouse-agent"),
            ["subsea", "lighthouse-agent", "--mcs-condition-reasons"]
        );
        assert!(
            command(true, "submariner-lighthouse-coredns").ends_with(&["--strict-mcs-names".to_string()])
        );
        assert!(!command(false, "submariner-lighthouse-coredns").contains(&"--strict-mcs-names".to_string()));
    }
}
