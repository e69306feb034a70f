//! Go's `time.Duration.String()` format, which Submariner writes into `latencyRTT`.

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

#[cfg(test)]
mod tests {
    use super::*;

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
