//! Go's `time.Duration` text format, which Submariner writes into `latencyRTT`: formatting and
//! parsing.

use std::time::Duration;

fn trim(mut s: String) -> String {
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    s
}

/// Formats like Go: `0s`, `388ns`, `388.079µs`, `1.234ms`, `1.5s`, `2m10s`, `1h0m0s`.
pub fn go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return trim(format!("{:.3}", ns as f64 / 1e3)) + "µs";
    }
    if ns < 1_000_000_000 {
        return trim(format!("{:.6}", ns as f64 / 1e6)) + "ms";
    }
    let secs = d.as_secs();
    let frac = d.subsec_nanos();
    let s_part = trim(format!("{}.{:09}", secs % 60, frac));
    match (secs / 3600, (secs / 60) % 60) {
        (0, 0) => format!("{s_part}s"),
        (0, m) => format!("{m}m{s_part}s"),
        (h, m) => format!("{h}h{m}m{s_part}s"),
    }
}

/// Parses Go's `time.ParseDuration` syntax (`388.079µs`, `2m10s`, `1.5h`); `None` for anything
/// else, including negative durations, which an RTT never is.
pub fn parse_go_duration(text: &str) -> Option<Duration> {
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest.is_empty() {
        return None;
    }
    let mut secs = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() || num == "." {
            return None;
        }
        let n: f64 = num.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        secs += n * scale;
        rest = next;
    }
    Duration::try_from_secs_f64(secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_go_writes() {
        for d in [
            Duration::from_nanos(388),
            Duration::from_nanos(388_079),
            Duration::from_millis(1500),
            Duration::from_secs(130),
            Duration::from_secs(3600),
        ] {
            let back = parse_go_duration(&go_duration(d)).expect("own format");
            assert!(back.abs_diff(d) < Duration::from_nanos(2), "{d:?} -> {back:?}");
        }
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("3μs"), Some(Duration::from_micros(3)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        for bad in ["", "5", "ms", "-1s", "1x", "1.2.3s", "."] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn matches_go_formatting() {
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_nanos(388)), "388ns");
        assert_eq!(go_duration(Duration::from_nanos(388_079)), "388.079µs");
        assert_eq!(go_duration(Duration::from_nanos(1_234_000)), "1.234ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(130)), "2m10s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(go_duration(Duration::from_nanos(1_000_000)), "1ms");
    }
}
