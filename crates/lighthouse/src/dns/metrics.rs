//! DNS metrics: queries by type and response code, and the programming latency (watch event
//! to answer-ready snapshot).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

const TYPES: [(u16, &str); 5] = [(1, "A"), (28, "AAAA"), (33, "SRV"), (16, "TXT"), (6, "SOA")];
const RCODES: [&str; 6] = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];

/// The question type of a request, read by the fast path's question parser (one reading of
/// the wire format for both); junk, compression or a class other than IN count as "other".
pub fn question_type(req: &[u8]) -> Option<u16> {
    super::fast::question_type(req)
}

/// One set of counters, on cache lines of its own.
#[derive(Debug, Default)]
#[repr(align(128))]
struct Shard([[AtomicU64; RCODES.len() + 1]; TYPES.len() + 1]);

/// Counter sets: each UDP loop counts into its own, so the loops never contend for a cache
/// line; the exposition sums them.
pub const SHARDS: usize = 9;

/// Query counters and the programming-latency histogram.
#[derive(Debug, Default)]
pub struct Metrics {
    queries: [Shard; SHARDS],
    /// Watch event → snapshot swapped.
    pub programming: subsea_metrics::Histogram,
}

impl Metrics {
    /// Counts one answered request (on the shared counter set).
    pub fn count(&self, req: &[u8], resp: &[u8]) {
        self.count_on(SHARDS - 1, req, resp);
    }

    /// Counts one answered request on counter set `shard` (a UDP loop's own).
    pub fn count_on(&self, shard: usize, req: &[u8], resp: &[u8]) {
        let t = question_type(req)
            .and_then(|t| TYPES.iter().position(|(code, _)| *code == t))
            .unwrap_or(TYPES.len());
        let r = resp
            .get(3)
            .map(|b| usize::from(b & 0x0f))
            .filter(|r| *r < RCODES.len())
            .unwrap_or(RCODES.len());
        self.queries[shard % SHARDS].0[t][r].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests counted on one shard so far (a UDP loop's total).
    pub fn shard_total(&self, shard: usize) -> u64 {
        self.queries
            .get(shard)
            .map(|sh| sh.0.iter().flatten().map(|c| c.load(Ordering::Relaxed)).sum())
            .unwrap_or(0)
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut s = String::from(
            "# HELP subsea_dns_queries_total DNS queries answered, by query type and response code\n# TYPE subsea_dns_queries_total counter\n",
        );
        for ti in 0..=TYPES.len() {
            let t = TYPES.get(ti).map_or("other", |t| t.1);
            for ri in 0..=RCODES.len() {
                let n: u64 = self
                    .queries
                    .iter()
                    .map(|sh| sh.0[ti][ri].load(Ordering::Relaxed))
                    .sum();
                if n > 0 {
                    let r = RCODES.get(ri).copied().unwrap_or("other");
                    let _ = writeln!(s, "subsea_dns_queries_total{{type=\"{t}\",rcode=\"{r}\"}} {n}");
                }
            }
        }
        s.push_str(&self.programming.render(
            "subsea_dns_programming_duration_seconds",
            "Time from a watch event to the snapshot that answers with it",
        ));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_and_answers_are_counted_by_type_and_rcode() {
        // Header, then "a.b" A IN.
        let mut req = vec![0u8; 12];
        req.extend_from_slice(&[1, b'a', 1, b'b', 0, 0, 1, 0, 1]);
        assert_eq!(question_type(&req), Some(1));
        assert_eq!(question_type(&req[..14]), None);
        let mut resp = req.clone();
        resp[3] = 3;
        let m = Metrics::default();
        m.count(&req, &resp);
        m.count(&req, &resp);
        m.count(&[0; 5], &[0; 5]);
        let text = m.render();
        assert!(
            text.contains("subsea_dns_queries_total{type=\"A\",rcode=\"NXDOMAIN\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("subsea_dns_queries_total{type=\"other\",rcode=\"NOERROR\"} 1\n"));
        assert!(text.contains("subsea_dns_programming_duration_seconds_count 0\n"));
    }
}
