//! Label selectors (`metav1.LabelSelector`) over a pod's labels.

use std::collections::BTreeMap;

use subsea_api::globalnet::LabelSelector;

/// Whether `labels` satisfy `sel`; an empty selector matches everything. An unknown operator
/// matches nothing, so a typo never widens a selection.
pub fn matches(sel: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let exact = sel.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v));
    exact
        && sel.match_expressions.iter().all(|r| {
            let value = labels.get(&r.key);
            match r.operator.as_str() {
                "In" => value.is_some_and(|v| r.values.contains(v)),
                "NotIn" => value.is_none_or(|v| !r.values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

/// Why a selector can never be evaluated, for the object's status.
pub fn invalid(sel: &LabelSelector) -> Option<String> {
    sel.match_expressions
        .iter()
        .find_map(|r| match r.operator.as_str() {
            "In" | "NotIn" if r.values.is_empty() => Some(format!(
                "podSelector: operator {} on {:?} needs at least one value",
                r.operator, r.key
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => None,
            other => Some(format!(
                "podSelector: unknown operator {other:?} on {:?} (use In, NotIn, Exists or DoesNotExist)",
                r.key
            )),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use subsea_api::globalnet::LabelSelectorRequirement;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn labels_and_expressions() {
        let mut sel = LabelSelector::default();
        assert!(matches(&sel, &labels(&[])));
        sel.match_labels.insert("app".into(), "web".into());
        assert!(matches(&sel, &labels(&[("app", "web"), ("x", "y")])));
        assert!(!matches(&sel, &labels(&[("app", "db")])));
        sel.match_expressions.push(LabelSelectorRequirement {
            key: "tier".into(),
            operator: "NotIn".into(),
            values: vec!["canary".into()],
        });
        assert!(matches(&sel, &labels(&[("app", "web")])));
        assert!(!matches(&sel, &labels(&[("app", "web"), ("tier", "canary")])));
        sel.match_expressions[0].operator = "Sometimes".into();
        assert!(!matches(&sel, &labels(&[("app", "web")])));
        assert!(invalid(&sel).expect("bad").contains("Sometimes"));
    }
}
