//! URL paths and query strings of the Kubernetes API, parsed into plain data.

use std::collections::HashMap;

/// A resource request's path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourcePath {
    /// API group; empty for core.
    pub group: String,
    /// Version segment.
    pub version: String,
    /// Namespace segment, if the path has one.
    pub namespace: Option<String>,
    /// Plural resource name.
    pub plural: String,
    /// Object name.
    pub name: Option<String>,
    /// Subresource (`status`, `scale`, ...).
    pub sub: Option<String>,
}

/// What a path asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz` (and their sub-checks).
    Health,
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/openapi/v3` (the index) or `/openapi/v3/<group-version path>`.
    OpenApiV3(String),
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/apis/{group}`.
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`.
    Resources(String, String),
    /// A resource collection, object or subresource.
    Resource(ResourcePath),
    /// Anything else.
    Unknown,
}

/// Parses a request path.
pub fn parse(path: &str) -> Route {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz" | "livez" | "readyz", ..] => Route::Health,
        ["openapi", "v2"] => Route::OpenApiV2,
        ["openapi", "v3", rest @ ..] => Route::OpenApiV3(rest.join("/")),
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["apis", g] => Route::Group(g.to_string()),
        ["api", v] => Route::Resources(String::new(), v.to_string()),
        ["apis", g, v] => Route::Resources(g.to_string(), v.to_string()),
        ["api", v, rest @ ..] => resource("", v, rest),
        ["apis", g, v, rest @ ..] => resource(g, v, rest),
        _ => Route::Unknown,
    }
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Route {
    let mk = |ns: Option<&str>, plural: &str, name: Option<&str>, sub: Option<&str>| {
        Route::Resource(ResourcePath {
            group: group.to_string(),
            version: version.to_string(),
            namespace: ns.map(String::from),
            plural: plural.to_string(),
            name: name.map(String::from),
            sub: sub.map(String::from),
        })
    };
    let is_ns_sub = |s: &str| matches!(s, "status" | "finalize");
    match rest {
        ["namespaces", ns, plural] if !(group.is_empty() && is_ns_sub(plural)) => {
            mk(Some(ns), plural, None, None)
        }
        ["namespaces", ns, plural, name] => mk(Some(ns), plural, Some(name), None),
        ["namespaces", ns, plural, name, sub] => mk(Some(ns), plural, Some(name), Some(sub)),
        [plural] => mk(None, plural, None, None),
        [plural, name] => mk(None, plural, Some(name), None),
        [plural, name, sub] => mk(None, plural, Some(name), Some(sub)),
        _ => Route::Unknown,
    }
}

/// Parses a query string (`application/x-www-form-urlencoded`), tolerating empty pairs and a
/// bare `?`; the first of a repeated key wins, as with Go's `url.Values.Get`.
pub fn query(q: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_paths() {
        let Route::Resource(p) = parse("/api/v1/namespaces/default/configmaps/a") else {
            panic!("resource")
        };
        assert_eq!(
            (
                p.group.as_str(),
                p.namespace.as_deref(),
                p.plural.as_str(),
                p.name.as_deref()
            ),
            ("", Some("default"), "configmaps", Some("a"))
        );
        let Route::Resource(p) = parse("/api/v1/namespaces/ns1") else {
            panic!("namespace object")
        };
        assert_eq!(
            (p.plural.as_str(), p.name.as_deref(), p.namespace),
            ("namespaces", Some("ns1"), None)
        );
        let Route::Resource(p) = parse("/api/v1/namespaces/ns1/status") else {
            panic!("ns status")
        };
        assert_eq!(
            (p.plural.as_str(), p.name.as_deref(), p.sub.as_deref()),
            ("namespaces", Some("ns1"), Some("status"))
        );
        let Route::Resource(p) = parse("/apis/submariner.io/v1/namespaces/x/endpoints/e/status") else {
            panic!("sub")
        };
        assert_eq!(
            (p.group.as_str(), p.sub.as_deref()),
            ("submariner.io", Some("status"))
        );
        let Route::Resource(p) = parse("/apis/submariner.io/v1/endpoints") else {
            panic!("all ns")
        };
        assert!(p.namespace.is_none() && p.name.is_none());
        assert_eq!(
            parse("/apis/submariner.io/v1"),
            Route::Resources("submariner.io".into(), "v1".into())
        );
        assert_eq!(parse("/livez/ping"), Route::Health);
        assert_eq!(parse("/nope"), Route::Unknown);
    }

    #[test]
    fn queries_tolerate_odd_forms() {
        let q = query(Some(
            "&limit=500&fieldSelector=metadata.name%3Dw1&labelSelector=a+in+(b)&watch",
        ));
        assert_eq!(q["limit"], "500");
        assert_eq!(q["fieldSelector"], "metadata.name=w1");
        assert_eq!(q["labelSelector"], "a in (b)");
        assert_eq!(q["watch"], "");
        assert!(query(Some("")).is_empty());
        assert_eq!(query(Some("a=100%"))["a"], "100%");
        assert_eq!(query(Some("a=b%3D&a=c"))["a"], "b=");
    }
}
