//! `/metrics`: updates sent, failures, the last success and how many RRsets are published.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use subsea_metrics::Registry;

#[derive(Default)]
pub(crate) struct State {
    updates: AtomicU64,
    failures: AtomicU64,
    last_success: AtomicU64,
    records: AtomicU64,
}

impl State {
    pub(crate) fn updated(&self) {
        self.updates.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn succeeded(&self, records: usize) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        self.last_success.store(now, Ordering::Relaxed);
        self.records.store(records as u64, Ordering::Relaxed);
    }

    pub(crate) fn render(&self) -> String {
        let mut r = Registry::with_prefix("subsea_dns_publisher");
        let counter = |v: &AtomicU64| {
            let c = Counter::<u64>::default();
            c.inc_by(v.load(Ordering::Relaxed));
            c
        };
        let gauge = |v: &AtomicU64| {
            let g = Gauge::<i64>::default();
            g.set(v.load(Ordering::Relaxed) as i64);
            g
        };
        r.register(
            "updates",
            "RFC 2136 updates the server accepted",
            counter(&self.updates),
        );
        r.register(
            "failures",
            "Zone transfers and updates that failed",
            counter(&self.failures),
        );
        r.register(
            "last_success_timestamp_seconds",
            "When the zone last matched the exports (Unix time)",
            gauge(&self.last_success),
        );
        r.register("records", "RRsets the exports call for", gauge(&self.records));
        subsea_metrics::encode(&r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_show_in_the_exposition() {
        let s = State::default();
        s.updated();
        s.updated();
        s.failed();
        s.succeeded(3);
        let text = s.render();
        assert!(text.contains("subsea_dns_publisher_updates_total 2"), "{text}");
        assert!(text.contains("subsea_dns_publisher_failures_total 1"), "{text}");
        assert!(text.contains("subsea_dns_publisher_records 3"), "{text}");
        assert!(
            text.contains("subsea_dns_publisher_last_success_timestamp_seconds "),
            "{text}"
        );
    }
}
