//! `subctl benchmark throughput|latency`: as Submariner's benchmark, a server pod in one cluster
//! and a client pod in the other, once between gateway nodes and once between non-gateway
//! nodes (tunnel plus route agent hop). Throughput is a single iperf3 TCP stream; latency is
//! 1-byte request-response transactions (netperf TCP_RR's measure).

use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};
use subsea_nettest::{latency, throughput};

use crate::cluster::Target;
use crate::pods::{self, Side, Workload, nettest};
use crate::progress::Progress;
use crate::table::{self, Output};

/// What to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Throughput,
    Latency,
}

/// How to measure.
#[derive(Clone, Debug)]
pub struct Options {
    pub image: String,
    pub namespace: String,
    /// Seconds each measurement runs.
    pub seconds: u32,
    /// Time a pod may take to start or finish (beyond the measurement).
    pub timeout: Duration,
    pub output: Output,
}

const IPERF_PORT: u16 = 5201;
const LATENCY_PORT: u16 = 7001;

/// Human units for bits per second.
pub fn rate(bits_per_second: f64) -> String {
    if bits_per_second >= 1e9 {
        format!("{:.2} Gbit/s", bits_per_second / 1e9)
    } else {
        format!("{:.1} Mbit/s", bits_per_second / 1e6)
    }
}

/// A summary row of a throughput run.
pub fn throughput_row(test: &str, from: &str, to: &str, s: &throughput::Summary) -> Value {
    json!({"TEST": test, "FROM": from, "TO": to, "THROUGHPUT": rate(s.bits_per_second),
        "RETRANSMITS": s.retransmits, "SECONDS": format!("{:.1}", s.seconds)})
}

/// A summary row of a latency run.
pub fn latency_row(test: &str, from: &str, to: &str, s: &latency::Summary) -> Value {
    let us = |v: f64| format!("{v:.0} µs");
    json!({"TEST": test, "FROM": from, "TO": to, "P50": us(s.p50_us), "P90": us(s.p90_us),
        "P99": us(s.p99_us), "MEAN": us(s.mean_us), "TRANSACTIONS/S": format!("{:.0}", s.per_second)})
}

/// The table's columns.
pub fn columns(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Throughput => &["TEST", "FROM", "TO", "THROUGHPUT", "RETRANSMITS", "SECONDS"],
        Kind::Latency => &[
            "TEST",
            "FROM",
            "TO",
            "P50",
            "P90",
            "P99",
            "MEAN",
            "TRANSACTIONS/S",
        ],
    }
}

/// Runs the benchmark from `from` to `to` and returns the summary table. Pods are removed
/// afterwards, whatever the outcome.
pub async fn run(
    kind: Kind,
    from: &Target,
    to: &Target,
    opts: &Options,
    p: &mut Progress<'_>,
) -> Result<String> {
    let (a, b) = (Side::new(from).await?, Side::new(to).await?);
    if a.id == b.id {
        anyhow::bail!(
            "--context and --tocontext are the same cluster ({}): pick two different clusters",
            a.id
        );
    }
    for side in [&a, &b] {
        pods::namespace(&side.client, &opts.namespace).await?;
        pods::cleanup(&side.client, &opts.namespace).await;
    }
    let r = measure(kind, &a, &b, opts, p).await;
    for side in [&a, &b] {
        pods::cleanup(&side.client, &opts.namespace).await;
    }
    let rows = r?;
    Ok(table::render(columns(kind), &rows, opts.output))
}

async fn measure(kind: Kind, a: &Side, b: &Side, opts: &Options, p: &mut Progress<'_>) -> Result<Vec<Value>> {
    let secs = opts.seconds.to_string();
    let mut rows = Vec::new();
    let runs = [
        ("gateway to gateway", true),
        ("non-gateway to non-gateway", false),
    ];
    for (i, (test, gateway)) in runs.iter().enumerate() {
        let (from_node, to_node) = (a.node(*gateway)?, b.node(*gateway)?);
        let pod = |role: &str, node: String, command: Vec<String>| Workload {
            name: format!("benchmark-{role}-{i}"),
            namespace: opts.namespace.clone(),
            node,
            image: opts.image.clone(),
            command,
            labels: vec![],
            host_network: false,
        };
        let server = match kind {
            Kind::Throughput => pod(
                "server",
                to_node.clone(),
                ["iperf3", "-s", "-p", &IPERF_PORT.to_string()]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            ),
            Kind::Latency => pod(
                "server",
                to_node.clone(),
                nettest(&["latency-server", "--port", &LATENCY_PORT.to_string()]),
            ),
        };
        p.info(format!(
            "[{}/{}] {test}: server pod on {to_node} ({})",
            i + 1,
            runs.len(),
            b.id
        ));
        pods::start(&b.client, &server).await?;
        let ips = pods::wait_running(&b.client, &server.namespace, &server.name, opts.timeout).await?;
        let ip = ips[0].clone();
        p.info(format!(
            "[{}/{}] {test}: client pod on {from_node} ({}) measuring for {secs} s against {ip}",
            i + 1,
            runs.len(),
            a.id
        ));
        let budget = opts.timeout + Duration::from_secs(u64::from(opts.seconds));
        let total = u64::from(opts.seconds);
        let from = format!("{} ({from_node})", a.id);
        let to = format!("{} ({to_node})", b.id);
        let cmd = match kind {
            Kind::Throughput => nettest(&["throughput", &ip, "--seconds", &secs]),
            Kind::Latency => {
                let addr = std::net::SocketAddr::new(ip.parse()?, LATENCY_PORT).to_string();
                nettest(&["latency", &addr, "--seconds", &secs])
            }
        };
        let result: Value = pods::run_ticking(
            &a.client,
            &pod("client", from_node.clone(), cmd),
            budget,
            &mut |waited| {
                p.info(format!(
                    "… {test}: {} s of {total} s",
                    waited.as_secs().min(total)
                ))
            },
        )
        .await?;
        let row = match kind {
            Kind::Throughput => {
                let s: throughput::Summary = serde_json::from_value(result)?;
                p.done(format!("{test}: {}", rate(s.bits_per_second)));
                throughput_row(test, &from, &to, &s)
            }
            Kind::Latency => {
                let s: latency::Summary = serde_json::from_value(result)?;
                p.done(format!("{test}: p50 {:.0} µs, p99 {:.0} µs", s.p50_us, s.p99_us));
                latency_row(test, &from, &to, &s)
            }
        };
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_carry_every_column_in_readable_units() {
        let t = throughput::Summary {
            bits_per_second: 2.345e9,
            retransmits: 3,
            seconds: 5.0,
        };
        let row = throughput_row("gateway to gateway", "c1 (gw1)", "c2 (gw1)", &t);
        assert_eq!(row["THROUGHPUT"], "2.35 Gbit/s");
        assert_eq!(rate(940e6), "940.0 Mbit/s");
        for c in columns(Kind::Throughput) {
            assert!(!row[*c].is_null(), "{c}");
        }
        let l = latency::Summary {
            transactions: 10,
            per_second: 5000.4,
            mean_us: 210.2,
            p50_us: 180.0,
            p90_us: 250.0,
            p99_us: 900.0,
        };
        let row = latency_row("non-gateway to non-gateway", "a", "b", &l);
        assert_eq!(row["P99"], "900 µs");
        assert_eq!(row["TRANSACTIONS/S"], "5000");
        for c in columns(Kind::Latency) {
            assert!(!row[*c].is_null(), "{c}");
        }
        let text = table::render(columns(Kind::Latency), &[row], Output::Table);
        assert!(text.starts_with("TEST"), "{text}");
    }
}
