//! Checks of what users pass to `deploy-broker` and `join`, run before the first write so that a
//! bad flag changes nothing. Each error names the input and the fix.

use crate::{Cidr, Invalid};

/// A DNS-1123 label (namespaces, cluster IDs): lower-case letters, digits and `-`, 1–63 long,
/// starting and ending alphanumeric.
pub fn dns_label(value: &str, what: &str) -> Result<(), Invalid> {
    let b = value.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(Invalid(format!(
            "{what} {value:?} is not a valid name: use 1-63 lower-case letters, digits or '-', starting and ending with a letter or digit"
        )))
    }
}

/// A DNS domain (`--custom-domains`): dot-separated labels, each a DNS-1123 label.
pub fn domain(value: &str, flag: &str) -> Result<(), Invalid> {
    let name = value.strip_suffix('.').unwrap_or(value);
    let ok = !name.is_empty() && name.len() <= 253 && name.split('.').all(|l| dns_label(l, "label").is_ok());
    if ok {
        Ok(())
    } else {
        Err(Invalid(format!(
            "{flag}: {value:?} is not a DNS domain (expected lower-case labels separated by dots, e.g. example.org)"
        )))
    }
}

/// An image repository (`--repository`): `host[:port]/path` or `path`, no tag, no spaces.
pub fn repository(value: &str) -> Result<(), Invalid> {
    let bad = || {
        Err(Invalid(format!(
            "--repository {value:?} is not an image repository (expected e.g. quay.io/subsea or registry.local:5000/team, without a tag)"
        )))
    };
    if value.is_empty() || value.len() > 255 || value.starts_with('/') || value.ends_with('/') {
        return bad();
    }
    for (i, part) in value.split('/').enumerate() {
        // The first part may be a registry host with a port.
        let host_port = i == 0 && (part.contains('.') || part.contains(':') || part == "localhost");
        let allowed = |c: char| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(c, '.' | '_' | '-')
                || (host_port && (c == ':' || c.is_ascii_uppercase()))
        };
        if part.is_empty() || !part.chars().all(allowed) {
            return bad();
        }
    }
    Ok(())
}

/// An image tag (`--version`).
pub fn image_tag(value: &str) -> Result<(), Invalid> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !value.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(Invalid(format!(
            "--version {value:?} is not an image tag (letters, digits, '.', '_' and '-', e.g. 0.1.0)"
        )))
    }
}

/// An API server URL (`--broker-url`): `https://host[:port]` with an optional path.
pub fn broker_url(value: &str) -> Result<(), Invalid> {
    let bad = |why: &str| {
        Err(Invalid(format!(
            "--broker-url {value:?} is not a usable URL ({why}); give the broker's API server as https://HOST:PORT"
        )))
    };
    let Some(rest) = value.strip_prefix("https://") else {
        return bad("it must start with https://");
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains(char::is_whitespace) || authority.contains('@') {
        return bad("no host");
    }
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, _)) if !h.ends_with(']') && h.contains(':') => (authority, None), // bare IPv6
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    if let Some(p) = port {
        if !p.parse::<u16>().is_ok_and(|p| p > 0) {
            return bad("bad port");
        }
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host_ok = host.parse::<std::net::IpAddr>().is_ok()
        || (host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        }));
    if !host_ok {
        return bad("bad host name");
    }
    Ok(())
}

/// A CIDR given by a user: it must be the network address, not a host inside it.
pub fn exact_cidr(value: &str, flag: &str) -> Result<Cidr, Invalid> {
    let c = Cidr::parse(value).map_err(|e| Invalid(format!("{flag}: {e}")))?;
    let given: std::net::IpAddr = value
        .trim()
        .split_once('/')
        .and_then(|(ip, _)| ip.parse().ok())
        .unwrap_or(c.addr);
    if given != c.addr {
        return Err(Invalid(format!(
            "{flag}: {value:?} has host bits set; did you mean {}/{}?",
            c.addr, c.prefix
        )));
    }
    Ok(c)
}

/// A cluster's service and pod CIDRs must not overlap each other.
pub fn distinct(services: &[Cidr], pods: &[Cidr]) -> Result<(), Invalid> {
    match subsea_cidr::overlaps(services, pods).first() {
        None => Ok(()),
        Some((s, p)) => Err(Invalid(format!(
            "the service CIDR {s} overlaps the pod CIDR {p} of the same cluster; pass distinct ranges with --servicecidr and --clustercidr"
        ))),
    }
}

/// `--coredns-custom-configmap [NAMESPACE/]NAME` as (namespace, name).
pub fn configmap_ref(value: &str) -> Result<(String, String), Invalid> {
    let (ns, name) = match value.split_once('/') {
        Some((ns, name)) => (ns, name),
        None => ("kube-system", value),
    };
    let fix = "expected NAME or NAMESPACE/NAME, e.g. kube-system/coredns-custom";
    dns_label(ns, "namespace")
        .map_err(|e| Invalid(format!("--coredns-custom-configmap {value:?}: {e} ({fix})")))?;
    let name_ok =
        !name.is_empty() && name.len() <= 253 && name.split('.').all(|l| dns_label(l, "name").is_ok());
    if !name_ok {
        return Err(Invalid(format!(
            "--coredns-custom-configmap {value:?}: {name:?} is not a ConfigMap name ({fix})"
        )));
    }
    Ok((ns.to_string(), name.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_domains_and_images() {
        assert!(dns_label("submariner-k8s-broker", "namespace").is_ok());
        let e = dns_label("BAD NS", "namespace").expect_err("bad");
        assert!(e.0.contains("\"BAD NS\""), "{e}");
        assert!(domain("example.org", "--custom-domains").is_ok());
        assert!(domain("not a domain", "--custom-domains").is_err());
        assert!(domain("a..b", "--custom-domains").is_err());
        for ok in [
            "quay.io/subsea",
            "localhost:5000/x",
            "subsea",
            "registry.local:5000/team/sub_sea",
        ] {
            assert!(repository(ok).is_ok(), "{ok}");
        }
        for bad in ["quay.io/subsea:v1 ; rm", "", "/x", "Quay/Subsea", "a b"] {
            assert!(repository(bad).is_err(), "{bad}");
        }
        assert!(image_tag("0.1.0").is_ok());
        assert!(image_tag("a b").is_err());
    }

    #[test]
    fn urls() {
        for ok in [
            "https://172.18.0.4:6443",
            "https://broker.example.org",
            "https://[fd00::1]:6443",
            "https://h:443/prefix",
        ] {
            assert!(broker_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "not a url",
            "http://x:1",
            "https://",
            "https://h:0",
            "https://h:99999",
            "https://bad host",
        ] {
            assert!(broker_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cidrs_and_configmaps() {
        assert!(exact_cidr("10.0.0.0/16", "--clustercidr").is_ok());
        let e = exact_cidr("10.0.0.1/16", "--clustercidr").expect_err("host bits");
        assert!(e.0.contains("did you mean 10.0.0.0/16"), "{e}");
        let s = [Cidr::parse("10.0.0.0/16").expect("cidr")];
        let p = [Cidr::parse("10.0.128.0/17").expect("cidr")];
        assert!(distinct(&s, &p).is_err());
        assert!(distinct(&s, &[Cidr::parse("10.1.0.0/16").expect("cidr")]).is_ok());
        assert_eq!(
            configmap_ref("coredns-custom"),
            Ok(("kube-system".into(), "coredns-custom".into()))
        );
        assert_eq!(configmap_ref("dns/custom"), Ok(("dns".into(), "custom".into())));
        assert!(configmap_ref("a/b/c").is_err());
    }
}
