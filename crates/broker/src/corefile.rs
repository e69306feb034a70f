//! The CoreDNS forwarding block for `clusterset.local` (and custom domains), kept between
//! `#lighthouse-start` and `#lighthouse-end` markers as Submariner's operator writes it.

const START: &str = "#lighthouse-start AUTO-GENERATED SECTION. DO NOT EDIT";
const END: &str = "#lighthouse-end";

/// The forward blocks for the zones, pointing at the lighthouse DNS server.
pub fn forward_blocks(zones: &[String], dns_ip: &str) -> String {
    zones
        .iter()
        .map(|z| format!("{z}:53 {{\n    forward . {dns_ip}\n}}\n"))
        .collect()
}

/// Returns `corefile` with the lighthouse block prepended, replacing an existing one.
pub fn with_lighthouse_block(corefile: &str, zones: &[String], dns_ip: &str) -> String {
    let rest = match (corefile.find("#lighthouse-start"), corefile.find(END)) {
        (Some(s), Some(e)) if e > s => {
            let after = &corefile[e + END.len()..];
            format!("{}{}", &corefile[..s], after.strip_prefix('\n').unwrap_or(after))
        }
        _ => corefile.to_string(),
    };
    format!("{START}\n{}{END}\n{rest}", forward_blocks(zones, dns_ip))
}

/// Removes the lighthouse block (uninstall).
pub fn without_lighthouse_block(corefile: &str) -> String {
    match (corefile.find("#lighthouse-start"), corefile.find(END)) {
        (Some(s), Some(e)) if e > s => {
            let after = &corefile[e + END.len()..];
            format!("{}{}", &corefile[..s], after.strip_prefix('\n').unwrap_or(after))
        }
        _ => corefile.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = ".:53 {\n    errors\n    kubernetes cluster.local\n}\n";

    #[test]
    fn block_is_prepended_once_and_replaced_on_rerun() {
        let zones = vec!["clusterset.local".to_string()];
        let once = with_lighthouse_block(BASE, &zones, "100.66.0.10");
        assert!(once.starts_with("#lighthouse-start"));
        assert!(
            once.contains("clusterset.local:53 {\n    forward . 100.66.0.10\n}\n#lighthouse-end\n.:53 {")
        );
        let twice = with_lighthouse_block(&once, &zones, "100.66.0.11");
        assert_eq!(twice.matches("#lighthouse-start").count(), 1);
        assert!(twice.contains("100.66.0.11") && !twice.contains("100.66.0.10"));
        assert_eq!(without_lighthouse_block(&twice), BASE);
    }
}
