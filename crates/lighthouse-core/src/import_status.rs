//! The status an importing cluster gives its aggregated ServiceImport (MCS v1beta1): whether
//! the service's EndpointSlices are here (`endpointSliceObjects`) and the `Ready` condition,
//! in the MCS API's words (Lighthouse sets no ServiceImport conditions to stay compatible with).

use std::collections::BTreeSet;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use subsea_api::mcs::Condition;

use crate::export::condition;

/// `endpointSliceObjects` once the service's slices are copied here.
pub const PRESENT: &str = "Present";
/// `endpointSliceObjects` before.
pub const ABSENT: &str = "Absent";

/// The address families this cluster serves: those of its Services that have cluster IPs
/// (every cluster has at least the `kubernetes` Service); IPv4 when it has none to tell.
pub fn cluster_families(services: &[&Service]) -> BTreeSet<&'static str> {
    let mut out = BTreeSet::new();
    let has_ip = |s: &Service| {
        s.spec
            .as_ref()
            .and_then(|s| s.cluster_ips.as_ref())
            .is_some_and(|ips| ips.iter().any(|ip| ip.parse::<IpAddr>().is_ok()))
    };
    for (v4, v6) in services
        .iter()
        .filter(|s| has_ip(s))
        .map(|s| crate::export::families(s))
    {
        if v4 {
            out.insert("IPv4");
        }
        if v6 {
            out.insert("IPv6");
        }
    }
    if out.is_empty() {
        out.insert("IPv4");
    }
    out
}

/// `endpointSliceObjects` and the `Ready` condition of an import of families `import_families`
/// (empty: unknown, any) in a cluster serving `families`; `old` keeps transition times.
pub fn of(
    old: &[Condition],
    import_families: &[String],
    families: &BTreeSet<&str>,
    slices_present: bool,
    now: &str,
) -> (String, Condition) {
    let objects = if slices_present { PRESENT } else { ABSENT };
    let served = import_families.is_empty() || import_families.iter().any(|f| families.contains(f.as_str()));
    let ready = if !served {
        condition(
            old,
            now,
            "Ready",
            false,
            "IPFamilyNotSupported",
            &format!(
                "The service's IP families ({}) are not among this cluster's ({})",
                import_families.join(", "),
                families.iter().copied().collect::<Vec<_>>().join(", ")
            ),
        )
    } else if !slices_present {
        condition(
            old,
            now,
            "Ready",
            false,
            "Pending",
            "Awaiting the exporting clusters' EndpointSlices",
        )
    } else {
        condition(
            old,
            now,
            "Ready",
            true,
            "Ready",
            "The service is imported and its endpoints are known here",
        )
    };
    (objects.to_string(), ready)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ServiceSpec;

    fn svc(ips: &[&str]) -> Service {
        Service {
            spec: Some(ServiceSpec {
                cluster_ips: Some(ips.iter().map(|s| s.to_string()).collect()),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn families_come_from_the_cluster_ips_and_default_to_ipv4() {
        let v4 = svc(&["10.96.0.1"]);
        let dual = svc(&["10.96.0.2", "fd00:96::2"]);
        let headless = svc(&["None"]);
        assert_eq!(cluster_families(&[&v4]), BTreeSet::from(["IPv4"]));
        assert_eq!(cluster_families(&[&v4, &dual]), BTreeSet::from(["IPv4", "IPv6"]));
        assert_eq!(cluster_families(&[&headless]), BTreeSet::from(["IPv4"]));
        assert_eq!(cluster_families(&[]), BTreeSet::from(["IPv4"]));
    }

    #[test]
    fn ready_follows_the_slices_and_the_families() {
        let v4 = BTreeSet::from(["IPv4"]);
        let (objects, c) = of(&[], &["IPv4".into()], &v4, false, "t0");
        assert_eq!(
            (objects.as_str(), c.status.as_str(), c.reason.as_deref()),
            (ABSENT, "False", Some("Pending"))
        );
        let (objects, c) = of(&[c], &["IPv4".into(), "IPv6".into()], &v4, true, "t1");
        assert_eq!(
            (objects.as_str(), c.status.as_str(), c.reason.as_deref()),
            (PRESENT, "True", Some("Ready"))
        );
        assert_eq!(c.last_transition_time.as_deref(), Some("t1"));
        let (_, again) = of(&[c], &[], &v4, true, "t2");
        assert_eq!(
            again.last_transition_time.as_deref(),
            Some("t1"),
            "unchanged status keeps its time"
        );
        let (_, c) = of(&[again], &["IPv6".into()], &v4, true, "t3");
        assert_eq!(
            (c.status.as_str(), c.reason.as_deref()),
            ("False", Some("IPFamilyNotSupported"))
        );
        assert!(
            c.message
                .as_deref()
                .is_some_and(|m| m.contains("IPv6") && m.contains("IPv4")),
            "{c:?}"
        );
    }
}
