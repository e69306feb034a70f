//! The CustomResourceDefinitions of every type in this crate, as committed under
//! `manifests/crds/`. A test compares the committed YAML with what the types generate.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::CustomResourceExt;
use kube::core::crd::merge_crds;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::{globalnet, mcs, operator, submariner};

/// Every CRD, each paired with the file name it is committed under.
pub fn all() -> Vec<(String, CustomResourceDefinition)> {
    let crds = vec![
        submariner::Cluster::crd(),
        submariner::Endpoint::crd(),
        gateway_crd(),
        globalnet::GlobalEgressIP::crd(),
        globalnet::ClusterGlobalEgressIP::crd(),
        globalnet::GlobalIngressIP::crd(),
        operator::Submariner::crd(),
        operator::ServiceDiscovery::crd(),
        operator::Broker::crd(),
        optional_spec(merged(
            mcs::v1alpha1::ServiceExport::crd(),
            mcs::v1beta1::ServiceExport::crd(),
        )),
        merged(
            mcs::v1alpha1::ServiceImport::crd(),
            mcs::v1beta1::ServiceImport::crd(),
        ),
    ];
    crds.into_iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().unwrap_or_default();
            (format!("{name}.yaml"), crd)
        })
        .collect()
}

/// The YAML text of one CRD, as committed.
pub fn to_yaml(crd: &CustomResourceDefinition) -> String {
    // Serialising a plain data struct to YAML cannot fail.
    let body = serde_yaml::to_string(crd).unwrap_or_default();
    format!("# Generated from crates/api by `cargo run -p subsea -- crds`; do not edit.\n{body}")
}

/// A ServiceExport is usually created with no spec at all (`kubectl` users write only metadata),
/// so, as in the mcs-api CRDs, `spec` is not required.
fn optional_spec(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for v in &mut crd.spec.versions {
        if let Some(schema) = v.schema.as_mut().and_then(|s| s.open_api_v3_schema.as_mut()) {
            if let Some(required) = schema.required.as_mut() {
                required.retain(|r| r != "spec");
            }
        }
    }
    crd
}

/// v1alpha1 stays the storage version: it is what Submariner reads and writes.
fn merged(alpha: CustomResourceDefinition, beta: CustomResourceDefinition) -> CustomResourceDefinition {
    let mut crd = merge_crds(vec![alpha.clone(), beta], "v1alpha1").unwrap_or(alpha);
    // Both versions are served; v1beta1 is listed first so it is the preferred version in
    // discovery, matching current mcs-api installations.
    crd.spec.versions.sort_by(|a, b| b.name.cmp(&a.name));
    crd
}

/// Schema of a Gateway: no spec, only status.
#[derive(JsonSchema, Deserialize)]
#[allow(dead_code)]
struct GatewaySchema {
    status: Option<submariner::GatewayStatus>,
}

fn gateway_crd() -> CustomResourceDefinition {
    // The same generator settings kube-derive uses, so the schema is structural.
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .with_transform(schemars::transform::AddNullable::default())
        .with_transform(kube::core::schema::StructuralSchemaRewriter)
        .with_transform(kube::core::schema::OptionalEnum)
        .with_transform(kube::core::schema::OptionalIntOrString)
        .into_generator();
    let mut schema =
        serde_json::to_value(generator.into_root_schema_for::<GatewaySchema>()).unwrap_or_default();
    if let Some(obj) = schema.as_object_mut() {
        obj.remove("title");
        obj.insert(
            "description".into(),
            "Auto-generated derived type for Gateway via `CustomResource`".into(),
        );
    }
    let schema: JSONSchemaProps = serde_json::from_value(schema).unwrap_or_default();
    let crd = serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gateways.submariner.io"},
        "spec": {
            "group": "submariner.io",
            "names": {
                "kind": "Gateway", "listKind": "GatewayList",
                "plural": "gateways", "singular": "gateway", "categories": [], "shortNames": []
            },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "additionalPrinterColumns": [
                    {"name": "HA Status", "type": "string", "jsonPath": ".status.haStatus"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                ],
                "schema": {"openAPIV3Schema": schema},
                "subresources": {}
            }]
        }
    });
    serde_json::from_value(crd).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_submariner_group_and_scope() {
        let names: Vec<String> = all().into_iter().map(|(f, _)| f).collect();
        for want in [
            "clusters.submariner.io.yaml",
            "endpoints.submariner.io.yaml",
            "gateways.submariner.io.yaml",
            "submariners.submariner.io.yaml",
            "servicediscoveries.submariner.io.yaml",
            "brokers.submariner.io.yaml",
            "serviceexports.multicluster.x-k8s.io.yaml",
            "serviceimports.multicluster.x-k8s.io.yaml",
        ] {
            assert!(names.iter().any(|n| n == want), "missing {want} in {names:?}");
        }
        for (name, crd) in all() {
            let cluster_scoped = name.starts_with("clusterglobalegressips");
            assert_eq!(
                crd.spec.scope,
                if cluster_scoped { "Cluster" } else { "Namespaced" },
                "{name}"
            );
        }
    }

    #[test]
    fn mcs_kinds_serve_both_versions_and_store_v1alpha1() {
        let (_, crd) = all()
            .into_iter()
            .find(|(f, _)| f.starts_with("serviceexports"))
            .expect("serviceexports CRD");
        let versions: Vec<(&str, bool, bool)> = crd
            .spec
            .versions
            .iter()
            .map(|v| (v.name.as_str(), v.served, v.storage))
            .collect();
        assert_eq!(versions, vec![("v1beta1", true, false), ("v1alpha1", true, true)]);
    }

    #[test]
    fn endpoint_fields_keep_submariner_json_names() {
        let ep = submariner::EndpointSpec {
            cluster_id: "c1".into(),
            health_check_ip: "10.0.0.1".into(),
            health_check_ips: vec!["10.0.0.1".into(), "fd00::1".into()],
            nat_enabled: true,
            ..Default::default()
        };
        let v = serde_json::to_value(&ep).expect("serialize");
        for key in [
            "cluster_id",
            "cable_name",
            "healthCheckIP",
            "healthCheckIPs",
            "hostname",
            "subnets",
            "private_ip",
            "public_ip",
            "nat_enabled",
            "backend",
        ] {
            assert!(v.get(key).is_some(), "missing {key} in {v}");
        }
    }

    #[test]
    fn gateway_schema_has_status_only() {
        let (_, crd) = all()
            .into_iter()
            .find(|(f, _)| f.starts_with("gateways"))
            .expect("gateways");
        let schema = crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref());
        let props = schema.and_then(|s| s.properties.as_ref()).expect("properties");
        assert!(props.contains_key("status"));
        assert!(!props.contains_key("spec"));
        let status = &props["status"];
        let status_props = status.properties.as_ref().expect("status properties");
        assert!(status_props.contains_key("haStatus"));
        assert!(status_props.contains_key("localEndpoint"));
    }

    #[test]
    fn committed_manifests_match_the_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../manifests/crds");
        let mut expected: Vec<String> = Vec::new();
        for (file, crd) in all() {
            let path = dir.join(&file);
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(
                committed,
                to_yaml(&crd),
                "{} is out of date: regenerate with `cargo run -p subsea -- crds --dir manifests/crds`",
                path.display()
            );
            expected.push(file);
        }
        let mut present: Vec<String> = std::fs::read_dir(&dir)
            .expect("manifests/crds exists")
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .filter(|n| n.ends_with(".yaml"))
            .collect();
        present.sort();
        expected.sort();
        assert_eq!(present, expected, "manifests/crds holds files no type generates");
    }
}
