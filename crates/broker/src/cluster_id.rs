//! Cluster IDs: DNS-1123 labels, sanitised from kubeconfig cluster names as Submariner does.

/// Makes a kubeconfig cluster name usable as an ID: lowercase, runs of characters outside
/// `[a-z0-9-]` become `-`, and a leading or trailing `-` becomes `0` (Submariner's rule).
pub fn sanitize(name: &str) -> String {
    let lower = name.to_lowercase();
    let mut out = String::new();
    let mut in_run = false;
    for c in lower.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    if out.starts_with('-') {
        out.replace_range(0..1, "0");
    }
    if out.ends_with('-') {
        let n = out.len();
        out.replace_range(n - 1..n, "0");
    }
    out
}

/// Why `id` is not a valid cluster ID, if it is not.
pub fn validate(id: &str) -> Result<(), crate::Invalid> {
    if id.is_empty() {
        return Err(crate::Invalid("the cluster ID is empty".into()));
    }
    if id.len() > 63 {
        return Err(crate::Invalid(format!(
            "the cluster ID {id:?} is longer than 63 characters"
        )));
    }
    let b = id.as_bytes();
    let ok = b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric();
    if !ok {
        return Err(crate::Invalid(format!(
            "the cluster ID {id:?} is not a valid DNS-1123 label: use lowercase letters, digits and '-', starting and ending with a letter or digit (e.g. \"cluster1\")"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitises_like_submariner() {
        assert_eq!(sanitize("kind-Cluster_1"), "kind-cluster-1");
        assert_eq!(
            sanitize("arn:aws:eks:us-east-1:1:cluster/prod"),
            "arn-aws-eks-us-east-1-1-cluster-prod"
        );
        assert_eq!(sanitize("-edge-"), "0edge0");
        assert_eq!(sanitize("a..b"), "a-b");
    }

    #[test]
    fn validates_dns1123_labels() {
        assert!(validate("cluster1").is_ok());
        assert!(validate("Cluster1").is_err());
        assert!(validate("-c").is_err());
        assert!(validate("").is_err());
        assert!(validate(&"a".repeat(64)).is_err());
        assert!(validate("c.1").unwrap_err().0.contains("DNS-1123"));
    }
}
