//! `subsea nettest node-info`: a node's network state for `subctl gather`, run in a
//! host-network pod: policy rules, subsea's routing table 150, the WireGuard device (public
//! information only: wireguard-tools never prints private or preshared keys), addresses and
//! the main table. Most important first, so what must be cut to fit a termination message is
//! the least useful.

use std::process::Command;

/// The sections, in order: (title, program, arguments).
pub const SECTIONS: &[(&str, &str, &[&str])] = &[
    ("ip rule", "ip", &["rule", "show"]),
    ("ip -6 rule", "ip", &["-6", "rule", "show"]),
    (
        "ip route show table 150",
        "ip",
        &["route", "show", "table", "150"],
    ),
    (
        "ip -6 route show table 150",
        "ip",
        &["-6", "route", "show", "table", "150"],
    ),
    ("wg show all", "wg", &["show", "all"]),
    (
        "nft list table ip subsea-globalnet",
        "nft",
        &["list", "table", "ip", "subsea-globalnet"],
    ),
    ("ip -brief address", "ip", &["-brief", "address"]),
    ("ip route", "ip", &["route", "show"]),
    ("ip -6 route", "ip", &["-6", "route", "show"]),
];

/// Joins sections under `### title` headers, stopping before `limit` bytes with a note.
pub fn assemble(sections: &[(String, String)], limit: usize) -> String {
    let mut out = String::new();
    for (i, (title, body)) in sections.iter().enumerate() {
        let part = format!("### {title}\n{}\n", body.trim_end());
        let note = format!(
            "### … {} more section(s) cut to fit {limit} bytes\n",
            sections.len() - i
        );
        if out.len() + part.len() + note.len() > limit {
            out.push_str(&note);
            break;
        }
        out.push_str(&part);
    }
    out
}

/// Runs every section's command; a missing program or a failure is reported in its section.
pub fn collect() -> Vec<(String, String)> {
    SECTIONS
        .iter()
        .map(|(title, program, args)| {
            let body = match Command::new(program).args(*args).output() {
                Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
                Ok(o) => format!("(failed: {})", String::from_utf8_lossy(&o.stderr).trim()),
                Err(e) => format!("({program} not available: {e})"),
            };
            (title.to_string(), body)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_are_cut_whole_with_a_note() {
        let s = vec![
            ("a".to_string(), "x".repeat(10)),
            ("b".to_string(), "y".repeat(100)),
            ("c".to_string(), "z".to_string()),
        ];
        let all = assemble(&s, 4096);
        assert_eq!(
            all,
            format!(
                "### a\n{}\n### b\n{}\n### c\nz\n",
                "x".repeat(10),
                "y".repeat(100)
            )
        );
        let cut = assemble(&s, 80);
        assert!(cut.starts_with("### a\n"), "{cut}");
        assert!(
            cut.ends_with("### … 2 more section(s) cut to fit 80 bytes\n"),
            "{cut}"
        );
        assert!(cut.len() <= 80);
    }
}
