//! Label and field selectors, parsed from their query-string form.

use serde_json::Value;

use crate::error::{ApiError, Result};

#[derive(Clone, Debug, PartialEq)]
enum Requirement {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `labelSelector`: every requirement must hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    /// Parses `k=v,k!=v,k in (a,b),k notin (a),k,!k`.
    pub fn parse(s: &str) -> Result<Self> {
        let mut reqs = Vec::new();
        for term in split_top_level(s) {
            let t = term.trim();
            if t.is_empty() {
                continue;
            }
            reqs.push(parse_requirement(t).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "unable to parse requirement: found '{t}', expected: valid label selector"
                ))
            })?);
        }
        Ok(Self(reqs))
    }

    /// Whether the labels (a JSON object or absent) satisfy the selector.
    pub fn matches(&self, labels: Option<&Value>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.0.iter().all(|r| match r {
            Requirement::Eq(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEq(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }

    /// True when the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn valid_key(k: &str) -> bool {
    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

fn valid_value(v: &str) -> bool {
    v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
}

fn parse_set(rest: &str) -> Option<Vec<String>> {
    let inner = rest.trim().strip_prefix('(')?.strip_suffix(')')?;
    let vals: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    vals.iter().all(|v| valid_value(v)).then_some(vals)
}

fn parse_requirement(t: &str) -> Option<Requirement> {
    if let Some(k) = t.strip_prefix('!') {
        let k = k.trim();
        return valid_key(k).then(|| Requirement::NotExists(k.into()));
    }
    for (op, neg) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((k, v)) = t.split_once(op) {
            let (k, v) = (k.trim(), v.trim());
            if !valid_key(k) || !valid_value(v) {
                return None;
            }
            return Some(if neg {
                Requirement::NotEq(k.into(), v.into())
            } else {
                Requirement::Eq(k.into(), v.into())
            });
        }
    }
    let mut parts = t.splitn(2, char::is_whitespace);
    let key = parts.next()?.trim();
    match parts.next().map(str::trim) {
        None => valid_key(key).then(|| Requirement::Exists(key.into())),
        Some(rest) => {
            if let Some(set) = rest.strip_prefix("notin") {
                valid_key(key).then_some(())?;
                Some(Requirement::NotIn(key.into(), parse_set(set)?))
            } else if let Some(set) = rest.strip_prefix("in") {
                valid_key(key).then_some(())?;
                Some(Requirement::In(key.into(), parse_set(set)?))
            } else {
                None
            }
        }
    }
}

/// A parsed `fieldSelector` over dotted paths: every term must hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    /// Parses `a.b=v,c!=w`, allowing only the fields in `supported`.
    pub fn parse(s: &str, supported: &[&str]) -> Result<Self> {
        let mut terms = Vec::new();
        for t in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, neg, value) = if let Some((f, v)) = t.split_once("!=") {
                (f, true, v)
            } else if let Some((f, v)) = t.split_once("==") {
                (f, false, v)
            } else if let Some((f, v)) = t.split_once('=') {
                (f, false, v)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{t}'"
                )));
            };
            let field = field.trim();
            if !supported.contains(&field) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            terms.push((field.to_string(), neg, value.trim().to_string()));
        }
        Ok(Self(terms))
    }

    /// Whether the object satisfies the selector.
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(field, neg, want)| {
            let got = field.split('.').try_fold(obj, |v, part| v.get(part));
            let got = match got {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (got == *want) != *neg
        })
    }

    /// True when the selector selects everything.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selector_forms() {
        let labels = json!({"app": "web", "tier": "front"});
        let m = |s: &str| LabelSelector::parse(s).expect(s).matches(Some(&labels));
        assert!(m("app=web"));
        assert!(m("app==web,tier"));
        assert!(!m("app!=web"));
        assert!(m("app in (web, api)"));
        assert!(!m("app notin (web)"));
        assert!(m("!missing"));
        assert!(!m("missing"));
        assert!(m(""));
        assert!(LabelSelector::parse("app=(").is_err());
        assert!(!LabelSelector::parse("app=web").expect("parse").matches(None));
    }

    #[test]
    fn field_selector_checks_supported_fields() {
        let obj = json!({"metadata": {"name": "a", "namespace": "ns"}});
        let sel = FieldSelector::parse(
            "metadata.name=a,metadata.namespace!=x",
            &["metadata.name", "metadata.namespace"],
        )
        .expect("parse");
        assert!(sel.matches(&obj));
        let err = FieldSelector::parse("spec.foo=1", &["metadata.name"]).expect_err("unsupported");
        assert_eq!(err.code, 400);
        assert!(err.message.contains("field label not supported: spec.foo"));
    }
}
