//! ClusterIP allocation for Services from the configured service CIDRs, with Kubernetes'
//! errors for out-of-range, taken or changed addresses. Join discovers the service CIDR from
//! the "range of valid IPs" message, as Submariner does on clusters that hide it.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{Value, json};
use subsea_cidr::Cidr;

use crate::error::Cause;

fn ips_of(svc: &Value) -> Vec<String> {
    let spec = &svc["spec"];
    let mut out: Vec<String> = spec["clusterIPs"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
        .unwrap_or_default();
    if out.is_empty() {
        if let Some(ip) = spec["clusterIP"].as_str().filter(|s| !s.is_empty()) {
            out.push(ip.to_string());
        }
    }
    out
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

fn list(ips: &[String]) -> String {
    format!(
        "[]string{{{}}}",
        ips.iter()
            .map(|i| format!("{i:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// Assigns (or checks) the ClusterIPs of a Service being written. `others` are the other
/// Services; `previous` is the stored version on update.
pub fn assign(
    obj: &mut Value,
    others: &[Arc<Value>],
    ranges: &[Cidr],
    previous: Option<&Value>,
) -> Result<(), Vec<Cause>> {
    if ranges.is_empty()
        || obj["spec"]["type"] == "ExternalName"
        || !obj["spec"].is_object() && previous.is_none()
    {
        return Ok(());
    }
    if !obj["spec"].is_object() {
        obj["spec"] = json!({});
    }
    let wanted = ips_of(obj);
    if let Some(prev) = previous {
        let before = ips_of(prev);
        if wanted.is_empty() {
            if !before.is_empty() {
                obj["spec"]["clusterIP"] = json!(before[0]);
                obj["spec"]["clusterIPs"] = json!(before);
            }
            return Ok(());
        }
        if wanted != before {
            return Err(vec![Cause::invalid(
                "spec.clusterIPs",
                &json!(list(&wanted)),
                "may not change once set",
            )]);
        }
        return Ok(());
    }
    if wanted.first().is_some_and(|ip| ip == "None") {
        obj["spec"]["clusterIPs"] = json!(["None"]);
        return Ok(());
    }
    let used: HashSet<String> = others.iter().flat_map(|o| ips_of(o)).collect();
    let valid: Vec<String> = ranges.iter().map(ToString::to_string).collect();
    let mut assigned = Vec::new();
    if !wanted.is_empty() {
        for ip in &wanted {
            let parsed: IpAddr = ip.parse().map_err(|_| {
                vec![Cause::invalid(
                    "spec.clusterIPs",
                    &json!(list(&wanted)),
                    "must be a valid IP address",
                )]
            })?;
            if !ranges.iter().any(|r| r.contains(parsed)) {
                return Err(vec![Cause::new(
                    "FieldValueInvalid",
                    "spec.clusterIPs",
                    format!(
                        "Invalid value: {}: failed to allocate IP {ip}: provided IP is not in the valid range. The range of valid IPs is {}",
                        list(&wanted),
                        valid.join(",")
                    ),
                )]);
            }
            if used.contains(ip) {
                return Err(vec![Cause::new(
                    "FieldValueInvalid",
                    "spec.clusterIPs",
                    format!(
                        "Invalid value: {}: failed to allocate IP {ip}: provided IP is already allocated",
                        list(&wanted)
                    ),
                )]);
            }
            assigned.push(parsed);
        }
    } else {
        let dual = matches!(
            obj["spec"]["ipFamilyPolicy"].as_str(),
            Some("PreferDualStack" | "RequireDualStack")
        );
        let wanted_ranges: Vec<&Cidr> = if dual {
            ranges.iter().take(2).collect()
        } else {
            ranges.iter().take(1).collect()
        };
        for r in wanted_ranges {
            // Skip the network address; allocate the lowest free one, bounded by the block size.
            let ip = (1..r.size().min(1 << 20))
                .filter_map(|n| r.nth(n))
                .find(|ip| !used.contains(&ip.to_string()))
                .ok_or_else(|| {
                    vec![Cause::new(
                        "FieldValueInvalid",
                        "spec.clusterIPs",
                        format!("Internal error: range {r} is full"),
                    )]
                })?;
            assigned.push(ip);
        }
    }
    let strs: Vec<String> = assigned.iter().map(ToString::to_string).collect();
    obj["spec"]["clusterIP"] = json!(strs[0]);
    obj["spec"]["clusterIPs"] = json!(strs);
    obj["spec"]["ipFamilies"] = json!(assigned.iter().map(family).collect::<Vec<_>>());
    if obj["spec"]["ipFamilyPolicy"].is_null() {
        obj["spec"]["ipFamilyPolicy"] = json!("SingleStack");
    }
    if obj["spec"]["type"].is_null() {
        obj["spec"]["type"] = json!("ClusterIP");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges() -> Vec<Cidr> {
        vec![
            Cidr::parse("100.66.0.0/16").expect("v4"),
            Cidr::parse("fd00:66::/112").expect("v6"),
        ]
    }

    #[test]
    fn allocates_lowest_free_address() {
        let taken = Arc::new(json!({"spec": {"clusterIP": "100.66.0.1"}}));
        let mut svc = json!({"spec": {"ports": [{"port": 80}]}});
        assign(&mut svc, &[taken], &ranges(), None).expect("allocates");
        assert_eq!(svc["spec"]["clusterIP"], "100.66.0.2");
        assert_eq!(svc["spec"]["ipFamilies"], json!(["IPv4"]));
        let mut dual = json!({"spec": {"ipFamilyPolicy": "PreferDualStack"}});
        assign(&mut dual, &[], &ranges(), None).expect("dual");
        assert_eq!(dual["spec"]["clusterIPs"], json!(["100.66.0.1", "fd00:66::1"]));
    }

    #[test]
    fn out_of_range_message_names_the_valid_range() {
        let mut svc = json!({"spec": {"clusterIP": "1.1.1.1"}});
        let err = assign(&mut svc, &[], &ranges()[..1], None).expect_err("out of range");
        assert!(
            err[0]
                .message
                .ends_with("The range of valid IPs is 100.66.0.0/16"),
            "{}",
            err[0].message
        );
    }

    #[test]
    fn headless_external_and_immutable() {
        let mut headless = json!({"spec": {"clusterIP": "None"}});
        assign(&mut headless, &[], &ranges(), None).expect("headless");
        assert_eq!(headless["spec"]["clusterIPs"], json!(["None"]));
        let mut ext = json!({"spec": {"type": "ExternalName", "externalName": "x.example"}});
        assign(&mut ext, &[], &ranges(), None).expect("external");
        assert!(ext["spec"].get("clusterIP").is_none());
        let prev = json!({"spec": {"clusterIP": "100.66.0.5", "clusterIPs": ["100.66.0.5"]}});
        let mut keep = json!({"spec": {}});
        assign(&mut keep, &[], &ranges(), Some(&prev)).expect("kept");
        assert_eq!(keep["spec"]["clusterIP"], "100.66.0.5");
        let mut change = json!({"spec": {"clusterIP": "100.66.0.6"}});
        assert!(assign(&mut change, &[], &ranges(), Some(&prev)).is_err());
    }
}
