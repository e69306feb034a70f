//! JUnit XML for `subctl verify --junit-report`, the format CI systems read.

use std::fmt::Write;

/// One check's outcome.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// What was checked.
    pub name: String,
    /// Seconds it took.
    pub seconds: f64,
    /// Why it failed (`None`: passed).
    pub failure: Option<String>,
    /// Why it was skipped (`None`: it ran).
    pub skipped: Option<String>,
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 forbids most control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// The report of one suite.
pub fn render(suite: &str, cases: &[Case]) -> String {
    let failures = cases.iter().filter(|c| c.failure.is_some()).count();
    let skipped = cases.iter().filter(|c| c.skipped.is_some()).count();
    let time: f64 = cases.iter().map(|c| c.seconds).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\" time=\"{time:.3}\">",
        cases.len()
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time:.3}\">",
        escape(suite),
        cases.len()
    );
    for c in cases {
        let _ = write!(
            x,
            "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
            escape(&c.name),
            escape(suite),
            c.seconds
        );
        match (&c.failure, &c.skipped) {
            (Some(f), _) => {
                let _ = writeln!(
                    x,
                    ">\n      <failure message=\"{}\" type=\"Failure\">{}</failure>\n    </testcase>",
                    escape(f.lines().next().unwrap_or_default()),
                    escape(f)
                );
            }
            (None, Some(s)) => {
                let _ = writeln!(
                    x,
                    ">\n      <skipped message=\"{}\"/>\n    </testcase>",
                    escape(s)
                );
            }
            (None, None) => x.push_str("/>\n"),
        }
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_failures_and_escapes_text() {
        let cases = vec![
            Case {
                name: "pods <a> & b".into(),
                seconds: 1.5,
                failure: None,
                skipped: None,
            },
            Case {
                name: "svc".into(),
                seconds: 0.25,
                failure: Some("got \"x\"\nsecond line\u{1}".into()),
                skipped: None,
            },
            Case {
                name: "v6".into(),
                seconds: 0.0,
                failure: None,
                skipped: Some("no IPv6".into()),
            },
        ];
        let x = render("subctl verify", &cases);
        assert!(
            x.contains("<testsuites tests=\"3\" failures=\"1\" skipped=\"1\" time=\"1.750\">"),
            "{x}"
        );
        assert!(x.contains("name=\"pods &lt;a&gt; &amp; b\""), "{x}");
        assert!(x.contains("<failure message=\"got &quot;x&quot;\" type=\"Failure\">got &quot;x&quot;\nsecond line?</failure>"), "{x}");
        assert!(x.contains("<skipped message=\"no IPv6\"/>"), "{x}");
        assert_eq!(x.matches("<testcase").count(), 3);
        assert_eq!(x.matches("</testcase>").count(), 2);
    }
}
