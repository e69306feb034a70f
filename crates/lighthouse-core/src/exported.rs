//! A v1beta1 ServiceExport's `exportedLabels` and `exportedAnnotations`: checked where the
//! export is made, carried on the cluster's broker import as two JSON annotations, and put on
//! the ServiceImport every cluster derives. As for the other global properties, the oldest
//! export's win and a differing export gets a `Conflict` condition.
//!
//! JSON annotations rather than the broker import's own labels: the broker import's labels are
//! what agents and RBAC select by, and one annotation value is replaced whole, so a key the
//! user removes disappears with it.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use subsea_store::meta::{MAX_ANNOTATIONS_BYTES, key_error, label_value_error};

use crate::export::{Invalid, annotation};

/// On a broker import: the export's `exportedLabels`, as a JSON object.
pub const LABELS_ANNOTATION: &str = "subsea.io/exported-labels";
/// On a broker import: the export's `exportedAnnotations`, as a JSON object.
pub const ANNOTATIONS_ANNOTATION: &str = "subsea.io/exported-annotations";

/// The spec of a ServiceExport (empty in v1alpha1).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportSpec {
    /// Labels for the derived ServiceImport.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exported_labels: BTreeMap<String, String>,
    /// Annotations for the derived ServiceImport.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exported_annotations: BTreeMap<String, String>,
}

/// Whether the agent sets `key` itself on a ServiceImport (or on what selects by it): an
/// exported key of that kind would be overwritten, or would confuse the agents.
fn reserved(key: &str) -> bool {
    let prefix = key.rsplit_once('/').map_or("", |(p, _)| p);
    prefix == "multicluster.kubernetes.io"
        || prefix == "subsea.io"
        || prefix == "submariner-io"
        || prefix == "submariner.io"
        || prefix.ends_with(".submariner.io")
        || key == crate::agent::AGGREGATE_LABEL
}

/// Why one entry cannot be exported, if it cannot.
fn entry_error(key: &str, value: &str, is_label: bool) -> Option<String> {
    if let Some(e) = key_error(key) {
        return Some(format!("key {key:?} is not a valid key: {e}"));
    }
    if reserved(key) {
        return Some(format!(
            "key {key:?} is reserved: the agent sets keys of this kind itself (multicluster.kubernetes.io/, subsea.io/, *submariner.io/, submariner-io/, {}); choose another key",
            crate::agent::AGGREGATE_LABEL
        ));
    }
    if is_label && let Some(e) = label_value_error(value) {
        return Some(format!(
            "the value {value:?} of key {key:?} is not a valid label value: {e}"
        ));
    }
    None
}

/// Whether the export's labels and annotations can be put on a ServiceImport, as the `Valid`
/// condition says it: `InvalidExportedLabels` or `InvalidExportedAnnotations` naming the first
/// bad key and what to change.
pub fn validate(spec: &ExportSpec) -> Result<(), Invalid> {
    for (k, v) in &spec.exported_labels {
        if let Some(e) = entry_error(k, v, true) {
            return Err(("InvalidExportedLabels", format!("spec.exportedLabels: {e}")));
        }
    }
    for (k, v) in &spec.exported_annotations {
        if let Some(e) = entry_error(k, v, false) {
            return Err((
                "InvalidExportedAnnotations",
                format!("spec.exportedAnnotations: {e}"),
            ));
        }
    }
    let size: usize = spec
        .exported_annotations
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    if size > MAX_ANNOTATIONS_BYTES / 2 {
        return Err((
            "InvalidExportedAnnotations",
            format!(
                "spec.exportedAnnotations: {size} bytes, more than the {} a ServiceImport leaves for them; export fewer or shorter annotations",
                MAX_ANNOTATIONS_BYTES / 2
            ),
        ));
    }
    Ok(())
}

/// The annotations that carry `spec` on the cluster's broker import (none for an empty map).
pub fn carry(spec: &ExportSpec) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (key, map) in [
        (LABELS_ANNOTATION, &spec.exported_labels),
        (ANNOTATIONS_ANNOTATION, &spec.exported_annotations),
    ] {
        if !map.is_empty() {
            if let Ok(json) = serde_json::to_string(map) {
                out.push((key.to_string(), json));
            }
        }
    }
    out
}

/// What a broker import carries, as `(labels, annotations)`. Another cluster's import is
/// untrusted input: a value that does not decode counts as empty and an entry that could not
/// be exported is left out, so no cluster can make the derived ServiceImport unwritable.
pub fn read(meta: &ObjectMeta) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let decode = |key: &str, is_label: bool| -> BTreeMap<String, String> {
        let map: BTreeMap<String, String> = serde_json::from_str(annotation(meta, key)).unwrap_or_default();
        map.into_iter()
            .filter(|(k, v)| entry_error(k, v, is_label).is_none())
            .collect()
    };
    (
        decode(LABELS_ANNOTATION, true),
        decode(ANNOTATIONS_ANNOTATION, false),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(labels: &[(&str, &str)], annotations: &[(&str, &str)]) -> ExportSpec {
        let map = |kv: &[(&str, &str)]| kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ExportSpec {
            exported_labels: map(labels),
            exported_annotations: map(annotations),
        }
    }

    #[test]
    fn valid_entries_pass_and_bad_ones_are_named() {
        assert_eq!(
            validate(&spec(
                &[("team", "payments"), ("example.com/tier", "")],
                &[("note", "any text: ok")]
            )),
            Ok(())
        );
        let (reason, message) = validate(&spec(&[("team", "two words")], &[])).expect_err("bad value");
        assert_eq!(reason, "InvalidExportedLabels");
        assert!(
            message.contains("\"two words\"") && message.contains("team"),
            "{message}"
        );
        let (reason, message) = validate(&spec(&[], &[("Bad_Prefix/x", "v")])).expect_err("bad key");
        assert_eq!(reason, "InvalidExportedAnnotations");
        assert!(message.contains("Bad_Prefix/x"), "{message}");
        for key in [
            "multicluster.kubernetes.io/service-name",
            "lighthouse.submariner.io/sourceNamespace",
            "submariner-io/clusterID",
            "subsea.io/exported-labels",
            "app.kubernetes.io/managed-by",
        ] {
            let (_, message) = validate(&spec(&[(key, "x")], &[])).expect_err(key);
            assert!(message.contains("reserved"), "{key}: {message}");
        }
        let big = "x".repeat(MAX_ANNOTATIONS_BYTES);
        let (_, message) = validate(&spec(&[], &[("big", &big)])).expect_err("too big");
        assert!(message.contains("bytes"), "{message}");
    }

    #[test]
    fn carried_values_read_back_and_garbage_reads_as_nothing() {
        let s = spec(&[("team", "payments")], &[("note", "hello")]);
        let carried = carry(&s);
        assert_eq!(carried.len(), 2);
        let meta = ObjectMeta {
            annotations: Some(carried.into_iter().collect()),
            ..Default::default()
        };
        assert_eq!(
            read(&meta),
            (s.exported_labels.clone(), s.exported_annotations.clone())
        );
        assert!(carry(&ExportSpec::default()).is_empty());

        let hostile = ObjectMeta {
            annotations: Some(BTreeMap::from([
                (
                    LABELS_ANNOTATION.to_string(),
                    r#"{"ok": "yes", "bad key!": "x", "v": "not valid"}"#.to_string(),
                ),
                (ANNOTATIONS_ANNOTATION.to_string(), "not json".to_string()),
            ])),
            ..Default::default()
        };
        let (labels, annotations) = read(&hostile);
        assert_eq!(labels, BTreeMap::from([("ok".to_string(), "yes".to_string())]));
        assert!(annotations.is_empty());
    }
}
