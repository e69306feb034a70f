//! DNS metrics: queries by type and response code, and the programming latency (watch event
//! to answer-ready snapshot).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use subsea_metrics::Registry;

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
#[derive(Debug)]
pub struct Metrics {
    queries: [Shard; SHARDS],
    /// Watch event → snapshot swapped.
    programming: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            queries: Default::default(),
            programming: subsea_metrics::latency_histogram(),
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueryLabels {
    r#type: &'static str,
    rcode: &'static str,
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

    /// Records how long a watch event took to reach an answering snapshot.
    pub fn programmed(&self, d: Duration) {
        self.programming.observe(d.as_secs_f64());
    }

    /// The registry of one scrape: the shards summed into one counter family (the hot path
    /// stays on plain per-loop atomics; prometheus-client only sees the totals).
    pub fn registry(&self) -> Registry {
        let queries = Family::<QueryLabels, Counter>::default();
        for ti in 0..=TYPES.len() {
            for ri in 0..=RCODES.len() {
                let n: u64 = self
                    .queries
                    .iter()
                    .map(|sh| sh.0[ti][ri].load(Ordering::Relaxed))
                    .sum();
                if n > 0 {
                    let labels = QueryLabels {
                        r#type: TYPES.get(ti).map_or("other", |t| t.1),
                        rcode: RCODES.get(ri).copied().unwrap_or("other"),
                    };
                    queries.get_or_create(&labels).inc_by(n);
                }
            }
        }
        let mut r = Registry::default();
        r.register(
            "subsea_dns_queries",
            "DNS queries answered, by query type and response code",
            queries,
        );
        r.register(
            "subsea_dns_programming_duration_seconds",
            "Time from a watch event to the snapshot that answers with it",
            self.programming.clone(),
        );
        r
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        subsea_metrics::encode(&self.registry())
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
