//! When each gateway of a cluster was forwarding, read from the gateways' own logs, and how long
//! two of them were at once (the split brain the election must never allow).
//!
//! A span opens at "became the active gateway" (logged before any tunnel peer or route is set)
//! and closes at "stepped down" (logged once peers and routes are gone), so a span covers the
//! whole time the gateway could forward: no overlap of spans means no overlap of forwarding.
//! A process SIGKILLed by the suite forwards nothing after the kill (its TUN device goes with
//! it), so a span still open at a kill the suite made closes there.

/// Opening and closing log messages.
const OPEN: &str = "became the active gateway";
const CLOSE: &str = "stepped down";

/// One stretch of forwarding, in seconds since the epoch; `end` is `None` while it lasts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Span {
    pub start: f64,
    pub end: Option<f64>,
}

fn timestamp(line: &str) -> Option<f64> {
    let ts: jiff::Timestamp = line.split_whitespace().next()?.parse().ok()?;
    Some(ts.as_microsecond() as f64 / 1e6)
}

/// The spans in one gateway's log (`tracing`'s default format: an RFC 3339 time first), given
/// the times the suite SIGKILLed that gateway.
pub fn spans(log: &str, kills: &[f64]) -> Vec<Span> {
    let mut out: Vec<Span> = Vec::new();
    let close = |out: &mut Vec<Span>, at: f64| {
        if let Some(s) = out.last_mut().filter(|s| s.end.is_none()) {
            s.end = Some(at);
        }
    };
    let mut kills: Vec<f64> = kills.to_vec();
    kills.sort_by(f64::total_cmp);
    let mut kills = kills.into_iter().peekable();
    for line in log.lines() {
        let Some(t) = timestamp(line) else { continue };
        while let Some(k) = kills.next_if(|k| *k <= t) {
            close(&mut out, k);
        }
        if line.contains(OPEN) {
            close(&mut out, t);
            out.push(Span { start: t, end: None });
        } else if line.contains(CLOSE) {
            close(&mut out, t);
        }
    }
    if let Some(k) = kills.next() {
        close(&mut out, k);
    }
    out
}

/// Seconds within `[from, to]` during which at least two of the gateways' spans overlap (open
/// spans last until `to`).
pub fn overlap(gateways: &[Vec<Span>], from: f64, to: f64) -> f64 {
    let mut edges: Vec<(f64, i32)> = Vec::new();
    for s in gateways.iter().flatten() {
        let (a, b) = (s.start.max(from), s.end.unwrap_or(to).min(to));
        if a < b {
            edges.push((a, 1));
            edges.push((b, -1));
        }
    }
    // Closings before openings at the same instant: a hand-over at one microsecond is not two
    // leaders.
    edges.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
    let (mut active, mut last, mut both) = (0, from, 0.0);
    for (t, d) in edges {
        if active >= 2 {
            both += t - last;
        }
        active += d;
        last = t;
    }
    both
}

#[cfg(test)]
mod tests {
    use super::*;

    const GW1: &str = "\
2026-12-07T10:00:00.000000Z  INFO subsea_gateway: gateway starting
2026-12-07T10:00:01.000000Z  INFO subsea_gateway::engine::election: became the active gateway
2026-12-07T10:00:05.000000Z  WARN subsea_gateway::engine::election: gateway election round failed
2026-12-07T10:00:05.500000Z  WARN subsea_gateway::engine::election: lost the gateway lease; withdrawing routes and stopping publishing
2026-12-07T10:00:05.510000Z  INFO subsea_gateway::engine::election: stepped down: no tunnel peers, no routes
";
    const GW2: &str = "\
2026-12-07T10:00:00.100000Z  INFO subsea_gateway: gateway starting
2026-12-07T10:00:05.700000Z  INFO subsea_gateway::engine::election: became the active gateway
";

    fn at(s: &str) -> f64 {
        timestamp(s).expect("time")
    }

    #[test]
    fn spans_follow_the_log_and_the_kills() {
        let s = spans(GW1, &[]);
        assert_eq!(
            s,
            [Span {
                start: at("2026-12-07T10:00:01Z"),
                end: Some(at("2026-12-07T10:00:05.51Z"))
            }]
        );
        let killed = at("2026-12-07T10:00:03Z");
        assert_eq!(spans(GW1, &[killed])[0].end, Some(killed));
        assert_eq!(spans(GW2, &[])[0].end, None);
        let restarted = format!("{GW2}2026-12-07T10:00:09.000000Z  INFO x: became the active gateway\n");
        let s = spans(&restarted, &[at("2026-12-07T10:00:08Z")]);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].end, Some(at("2026-12-07T10:00:08Z")));
        assert_eq!(spans("no times here\n", &[1.0]), []);
    }

    #[test]
    fn overlap_counts_only_two_at_once() {
        let (from, to) = (at("2026-12-07T10:00:00Z"), at("2026-12-07T10:00:10Z"));
        let clean = [spans(GW1, &[]), spans(GW2, &[])];
        assert_eq!(overlap(&clean, from, to), 0.0);
        // The same hand-over with the old leader stepping down late: 0.3 s of split brain.
        let late = GW1.replace("10:00:05.510000Z", "10:00:06.000000Z");
        let both = overlap(&[spans(&late, &[]), spans(GW2, &[])], from, to);
        assert!((both - 0.3).abs() < 1e-6, "{both}");
        // Only the window counts.
        let w = overlap(
            &[spans(&late, &[]), spans(GW2, &[])],
            from,
            at("2026-12-07T10:00:05.8Z"),
        );
        assert!((w - 0.1).abs() < 1e-6, "{w}");
        // Hand-over at one instant is not an overlap.
        let a = [Span {
            start: 1.0,
            end: Some(2.0),
        }];
        let b = [Span {
            start: 2.0,
            end: None,
        }];
        assert_eq!(overlap(&[a.to_vec(), b.to_vec()], 0.0, 3.0), 0.0);
    }
}
