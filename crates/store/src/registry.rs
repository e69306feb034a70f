//! The served resource types: the built-in ones and those defined by CRDs.

use serde_json::{Value, json};

/// Mapping of a CRD's scale subresource onto the custom resource.
#[derive(Clone, Debug, PartialEq)]
pub struct ScalePaths {
    /// JSON path of the desired replicas, e.g. `.spec.replicas`.
    pub spec_replicas: String,
    /// JSON path of the observed replicas.
    pub status_replicas: String,
    /// JSON path of the label selector, if any.
    pub label_selector: Option<String>,
}

/// One served resource type at one version.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourceInfo {
    /// API group; empty for the core group.
    pub group: String,
    /// Version served at this entry.
    pub version: String,
    /// Plural resource name (URL segment).
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names, e.g. `cm`.
    pub short_names: Vec<String>,
    /// Categories, e.g. `all`.
    pub categories: Vec<String>,
    /// Whether `/status` is a subresource (status isolated from main writes).
    pub status: bool,
    /// Scale subresource mapping.
    pub scale: Option<ScalePaths>,
    /// `openAPIV3Schema` for custom resources.
    pub schema: Option<Value>,
    /// Whether a PUT without resourceVersion is allowed.
    pub unconditional_update: bool,
    /// Whether `metadata.generation` is maintained.
    pub generation: bool,
    /// Defined by a CRD (no strategic merge patch).
    pub custom: bool,
    /// CRD `additionalPrinterColumns` for this version.
    pub printer_columns: Vec<Value>,
    /// Field selectors beyond `metadata.name` / `metadata.namespace`.
    pub extra_field_selectors: Vec<&'static str>,
}

/// Storage keys (`group/plural`) of the types with rules of their own.
pub mod keys {
    /// Namespaces.
    pub const NAMESPACES: &str = "/namespaces";
    /// Secrets.
    pub const SECRETS: &str = "/secrets";
    /// Services.
    pub const SERVICES: &str = "/services";
    /// Service accounts.
    pub const SERVICE_ACCOUNTS: &str = "/serviceaccounts";
    /// Pods.
    pub const PODS: &str = "/pods";
    /// Nodes.
    pub const NODES: &str = "/nodes";
    /// CustomResourceDefinitions.
    pub const CRDS: &str = "apiextensions.k8s.io/customresourcedefinitions";
}

/// What is special about writing a type, beyond the rules every object follows. Decided once
/// from the type, so the write path matches on it instead of comparing type names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// No rules of its own.
    Plain,
    /// Namespaces: termination (finalizer, content deletion), and namespaced writes need one.
    Namespace,
    /// Services: ClusterIP allocation.
    Service,
    /// Secrets: `stringData` folded into `data`, and the token controller.
    Secret,
    /// CustomResourceDefinitions: validated, given a served status, and served at once.
    CustomResourceDefinition,
    /// RBAC roles and bindings: escalation prevention, immutable `roleRef`.
    Rbac,
}

impl ResourceInfo {
    /// The type's write strategy.
    pub fn strategy(&self) -> Strategy {
        if self.custom {
            return Strategy::Plain;
        }
        match (self.group.as_str(), self.plural.as_str()) {
            ("", "namespaces") => Strategy::Namespace,
            ("", "services") => Strategy::Service,
            ("", "secrets") => Strategy::Secret,
            ("apiextensions.k8s.io", "customresourcedefinitions") => Strategy::CustomResourceDefinition,
            ("rbac.authorization.k8s.io", _) => Strategy::Rbac,
            _ => Strategy::Plain,
        }
    }

    /// Storage identity of the type, shared by all its versions: `group/plural`.
    pub fn type_key(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }

    /// `plural` or `plural.group`, as used in error messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `group/version` or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether names of this type must be DNS-1123 labels (rather than subdomains).
    pub fn name_is_label(&self) -> bool {
        self.group.is_empty() && matches!(self.plural.as_str(), "namespaces" | "services")
    }

    /// Field paths a `fieldSelector` may use.
    pub fn field_selectors(&self) -> Vec<&str> {
        let mut v = vec!["metadata.name", "metadata.namespace"];
        v.extend(self.extra_field_selectors.iter().copied());
        v
    }
}

struct BuiltIn {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
    generation: bool,
    fields: &'static [&'static str],
}

const fn b(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    status: bool,
    generation: bool,
) -> BuiltIn {
    BuiltIn {
        group,
        version,
        plural,
        kind,
        namespaced,
        short,
        status,
        generation,
        fields: &[],
    }
}

/// The built-in types this server stores (no controllers run for them).
const BUILT_INS: &[BuiltIn] = &[
    b("", "v1", "namespaces", "Namespace", false, &["ns"], true, false),
    b("", "v1", "configmaps", "ConfigMap", true, &["cm"], false, false),
    BuiltIn {
        fields: &["type"],
        ..b("", "v1", "secrets", "Secret", true, &[], false, false)
    },
    b(
        "",
        "v1",
        "serviceaccounts",
        "ServiceAccount",
        true,
        &["sa"],
        false,
        false,
    ),
    b("", "v1", "services", "Service", true, &["svc"], true, false),
    b("", "v1", "nodes", "Node", false, &["no"], true, false),
    BuiltIn {
        fields: &["spec.nodeName", "status.phase", "status.podIP"],
        ..b("", "v1", "pods", "Pod", true, &["po"], true, false)
    },
    BuiltIn {
        fields: &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        ..b("", "v1", "events", "Event", true, &["ev"], false, false)
    },
    b(
        "events.k8s.io",
        "v1",
        "events",
        "Event",
        true,
        &["ev"],
        false,
        false,
    ),
    b(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "EndpointSlice",
        true,
        &[],
        false,
        false,
    ),
    b(
        "coordination.k8s.io",
        "v1",
        "leases",
        "Lease",
        true,
        &[],
        false,
        false,
    ),
    b(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        true,
        &["deploy"],
        true,
        true,
    ),
    b("apps", "v1", "daemonsets", "DaemonSet", true, &["ds"], true, true),
    b(
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        true,
        &["sts"],
        true,
        true,
    ),
    b(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        true,
        &["rs"],
        true,
        true,
    ),
    b("batch", "v1", "jobs", "Job", true, &[], true, true),
    b("batch", "v1", "cronjobs", "CronJob", true, &["cj"], true, true),
    b(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
        &["pdb"],
        true,
        true,
    ),
    b(
        "",
        "v1",
        "resourcequotas",
        "ResourceQuota",
        true,
        &["quota"],
        true,
        false,
    ),
    b(
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        "PriorityClass",
        false,
        &["pc"],
        false,
        false,
    ),
    b(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "NetworkPolicy",
        true,
        &["netpol"],
        false,
        true,
    ),
    b(
        "networking.k8s.io",
        "v1",
        "ingresses",
        "Ingress",
        true,
        &["ing"],
        true,
        true,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "Role",
        true,
        &[],
        false,
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "RoleBinding",
        true,
        &[],
        false,
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "ClusterRole",
        false,
        &[],
        false,
        false,
    ),
    b(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        &[],
        false,
        false,
    ),
    b(
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicies",
        "ValidatingAdmissionPolicy",
        false,
        &[],
        true,
        true,
    ),
    b(
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicybindings",
        "ValidatingAdmissionPolicyBinding",
        false,
        &[],
        false,
        true,
    ),
    b(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        false,
        &[],
        false,
        false,
    ),
    b(
        "authorization.k8s.io",
        "v1",
        "subjectaccessreviews",
        "SubjectAccessReview",
        false,
        &[],
        false,
        false,
    ),
    b(
        "authentication.k8s.io",
        "v1",
        "tokenreviews",
        "TokenReview",
        false,
        &[],
        false,
        false,
    ),
    b(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        &["crd", "crds"],
        true,
        true,
    ),
];

fn built_in(x: &BuiltIn) -> ResourceInfo {
    let unconditional = !(x.group == "coordination.k8s.io");
    ResourceInfo {
        group: x.group.into(),
        version: x.version.into(),
        plural: x.plural.into(),
        singular: x.kind.to_lowercase(),
        kind: x.kind.into(),
        namespaced: x.namespaced,
        short_names: x.short.iter().map(|s| s.to_string()).collect(),
        categories: if matches!(
            x.plural,
            "pods"
                | "services"
                | "deployments"
                | "daemonsets"
                | "statefulsets"
                | "replicasets"
                | "jobs"
                | "cronjobs"
        ) {
            vec!["all".into()]
        } else {
            Vec::new()
        },
        status: x.status,
        // The workloads kubectl scales: `scale` maps to spec/status replicas.
        scale: (x.group == "apps" && x.plural != "daemonsets").then(|| ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: None,
        }),
        schema: None,
        unconditional_update: unconditional,
        generation: x.generation,
        custom: false,
        printer_columns: Vec::new(),
        extra_field_selectors: x.fields.to_vec(),
    }
}

/// All served types, in discovery order.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    infos: Vec<ResourceInfo>,
}

impl Registry {
    /// The built-in types only.
    pub fn with_built_ins() -> Self {
        Self {
            infos: BUILT_INS.iter().map(built_in).collect(),
        }
    }

    /// Every served entry.
    pub fn all(&self) -> &[ResourceInfo] {
        &self.infos
    }

    /// The entry for a URL's group, version and plural.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceInfo> {
        self.infos
            .iter()
            .find(|i| i.group == group && i.version == version && i.plural == plural)
    }

    /// Any served version of a type.
    pub fn find_type(&self, type_key: &str) -> Option<&ResourceInfo> {
        self.infos.iter().find(|i| i.type_key() == type_key)
    }

    /// Groups in discovery order, each with its versions in preference order.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for i in &self.infos {
            match out.iter_mut().find(|(g, _)| *g == i.group) {
                Some((_, vs)) if !vs.contains(&i.version) => vs.push(i.version.clone()),
                Some(_) => {}
                None => out.push((i.group.clone(), vec![i.version.clone()])),
            }
        }
        out
    }

    /// Replaces the entries of a CRD (by `plural.group`) with those it now defines.
    pub fn set_crd(&mut self, crd: &Value) {
        let Some(name) = crd.pointer("/metadata/name").and_then(Value::as_str) else {
            return;
        };
        self.remove_crd(name);
        self.infos.extend(infos_from_crd(crd));
    }

    /// Stops serving a CRD's types.
    pub fn remove_crd(&mut self, name: &str) {
        self.infos.retain(|i| !(i.custom && i.qualified() == name));
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default()
}

/// The served entries of a CRD, one per served version.
pub fn infos_from_crd(crd: &Value) -> Vec<ResourceInfo> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let group = spec["group"].as_str().unwrap_or_default();
    let plural = names["plural"].as_str().unwrap_or_default();
    let kind = names["kind"].as_str().unwrap_or_default();
    let singular = names["singular"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| kind.to_lowercase());
    let mut versions: Vec<&Value> = spec["versions"]
        .as_array()
        .map(|v| v.iter().filter(|v| v["served"].as_bool() == Some(true)).collect())
        .unwrap_or_default();
    // Kubernetes' version priority: GA > beta > alpha, higher numbers first.
    versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v["name"].as_str().unwrap_or_default())));
    versions
        .into_iter()
        .map(|v| {
            let sub = &v["subresources"];
            let scale = sub.get("scale").filter(|s| s.is_object()).map(|s| ScalePaths {
                spec_replicas: s["specReplicasPath"].as_str().unwrap_or(".spec.replicas").into(),
                status_replicas: s["statusReplicasPath"]
                    .as_str()
                    .unwrap_or(".status.replicas")
                    .into(),
                label_selector: s["labelSelectorPath"].as_str().map(String::from),
            });
            ResourceInfo {
                group: group.into(),
                version: v["name"].as_str().unwrap_or_default().into(),
                plural: plural.into(),
                singular: singular.clone(),
                kind: kind.into(),
                namespaced: spec["scope"].as_str() != Some("Cluster"),
                short_names: strings(names.get("shortNames")),
                categories: strings(names.get("categories")),
                status: sub.get("status").is_some_and(Value::is_object),
                scale,
                schema: v.pointer("/schema/openAPIV3Schema").cloned(),
                unconditional_update: false,
                generation: true,
                custom: true,
                printer_columns: v["additionalPrinterColumns"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                extra_field_selectors: Vec::new(),
            }
        })
        .collect()
}

/// Sort key of a Kubernetes version string (`v1` > `v1beta2` > `v1beta1` > `v1alpha1` > other).
pub fn version_priority(v: &str) -> (u8, u32, u32) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u32>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    let level = |prefix: &str| tail.strip_prefix(prefix).and_then(|n| n.parse::<u32>().ok());
    if tail.is_empty() {
        (3, major, 0)
    } else if let Some(n) = level("beta") {
        (2, major, n)
    } else if let Some(n) = level("alpha") {
        (1, major, n)
    } else {
        (0, 0, 0)
    }
}

/// Discovery verbs of a main resource.
pub fn verbs() -> Value {
    json!([
        "create",
        "delete",
        "deletecollection",
        "get",
        "list",
        "patch",
        "update",
        "watch"
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies_follow_the_type_not_its_version() {
        let reg = Registry::with_built_ins();
        let of = |g: &str, v: &str, p: &str| reg.find(g, v, p).map(ResourceInfo::strategy);
        assert_eq!(of("", "v1", "namespaces"), Some(Strategy::Namespace));
        assert_eq!(of("", "v1", "secrets"), Some(Strategy::Secret));
        assert_eq!(of("", "v1", "services"), Some(Strategy::Service));
        assert_eq!(
            of("rbac.authorization.k8s.io", "v1", "rolebindings"),
            Some(Strategy::Rbac)
        );
        assert_eq!(
            of("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
            Some(Strategy::CustomResourceDefinition)
        );
        assert_eq!(of("", "v1", "configmaps"), Some(Strategy::Plain));
        let crd = json!({"metadata": {"name": "secrets.example.com"}, "spec": {"group": "example.com",
            "scope": "Namespaced", "names": {"plural": "secrets", "kind": "Secret"},
            "versions": [{"name": "v1", "served": true, "storage": true}]}});
        assert_eq!(
            infos_from_crd(&crd)[0].strategy(),
            Strategy::Plain,
            "a custom type named like a built-in"
        );
    }

    #[test]
    fn crd_versions_are_ordered_by_priority() {
        let crd = json!({"metadata": {"name": "serviceexports.multicluster.x-k8s.io"}, "spec": {
        "group": "multicluster.x-k8s.io", "scope": "Namespaced",
        "names": {"plural": "serviceexports", "kind": "ServiceExport", "shortNames": ["svcex"]},
        "versions": [
            {"name": "v1alpha1", "served": true, "storage": true, "subresources": {"status": {}}},
            {"name": "v1beta1", "served": true, "storage": false},
            {"name": "v2", "served": false, "storage": false}
        ]}});
        let infos = infos_from_crd(&crd);
        let versions: Vec<&str> = infos.iter().map(|i| i.version.as_str()).collect();
        assert_eq!(versions, vec!["v1beta1", "v1alpha1"]);
        assert!(infos[1].status && !infos[0].status);
        assert_eq!(infos[0].singular, "serviceexport");
        let mut reg = Registry::with_built_ins();
        reg.set_crd(&crd);
        assert!(
            reg.find("multicluster.x-k8s.io", "v1alpha1", "serviceexports")
                .is_some()
        );
        reg.remove_crd("serviceexports.multicluster.x-k8s.io");
        assert!(
            reg.find("multicluster.x-k8s.io", "v1alpha1", "serviceexports")
                .is_none()
        );
    }

    #[test]
    fn leases_need_resource_version_on_update() {
        let reg = Registry::with_built_ins();
        assert!(
            !reg.find("coordination.k8s.io", "v1", "leases")
                .expect("leases")
                .unconditional_update
        );
        assert!(reg.find("", "v1", "configmaps").expect("cm").unconditional_update);
        assert_eq!(reg.groups()[0], ("".to_string(), vec!["v1".to_string()]));
    }
}
