//! Throughput with iperf3, as Submariner's benchmark measures it: a single TCP stream from a
//! client pod to an `iperf3 -s` pod. This module runs the client and reduces its JSON report
//! to the figures subctl prints.

use std::net::IpAddr;
use std::process::Command;
use std::time::Duration;

use crate::error::{Error, IoContext, Result, peer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What one iperf3 run measured.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Received by the server, bits per second.
    pub bits_per_second: f64,
    /// Sender's TCP retransmissions.
    pub retransmits: u64,
    /// Seconds measured.
    pub seconds: f64,
}

/// Reads iperf3's `-J` report.
pub fn parse(json: &str) -> Result<Summary> {
    let v: Value = serde_json::from_str(json).map_err(|source| Error::Json {
        context: "iperf3 printed no JSON report".into(),
        source,
    })?;
    if let Some(e) = v.get("error").and_then(Value::as_str) {
        return Err(peer!("iperf3: {e}"));
    }
    let recv = v
        .pointer("/end/sum_received")
        .ok_or_else(|| peer!("iperf3's report has no end.sum_received"))?;
    Ok(Summary {
        bits_per_second: recv["bits_per_second"].as_f64().unwrap_or(0.0),
        retransmits: v
            .pointer("/end/sum_sent/retransmits")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        seconds: recv["seconds"].as_f64().unwrap_or(0.0),
    })
}

/// Runs `iperf3 -c target` for `seconds`; retries while the server is busy with another client
/// (iperf3 serves one test at a time) or not yet listening, for up to `wait`.
pub fn run(target: IpAddr, port: u16, seconds: u32, wait: Duration) -> Result<Summary> {
    let start = std::time::Instant::now();
    loop {
        let out = Command::new("iperf3")
            .args(["-c", &target.to_string(), "-p", &port.to_string()])
            .args(["-t", &seconds.to_string(), "-J"])
            .output()
            .doing(|| "cannot run iperf3 (install the iperf3 package)".into())?;
        let text = String::from_utf8_lossy(&out.stdout);
        match parse(&text) {
            Ok(s) => return Ok(s),
            Err(e) if start.elapsed() < wait && retryable(&e.to_string()) => {
                std::thread::sleep(Duration::from_millis(500));
            }
            Err(e) => return Err(peer!("iperf3 to {target}:{port}: {e}")),
        }
    }
}

fn retryable(error: &str) -> bool {
    error.contains("busy") || error.contains("Connection refused") || error.contains("unable to connect")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_received_rate_and_retransmits() {
        let report = r#"{"start":{},"intervals":[],"end":{"sum_sent":{"seconds":5.0,"bytes":1,"bits_per_second":2.1e9,"retransmits":7},
            "sum_received":{"seconds":5.01,"bytes":1,"bits_per_second":2.0e9}}}"#;
        let s = parse(report).expect("report");
        assert_eq!(s.bits_per_second, 2.0e9);
        assert_eq!(s.retransmits, 7);
        assert_eq!(s.seconds, 5.01);
        let busy = r#"{"start":{},"intervals":[],"end":{},"error":"the server is busy running a test. try again later"}"#;
        let e = parse(busy).unwrap_err().to_string();
        assert!(e.contains("busy") && retryable(&e), "{e}");
        assert!(parse("").is_err());
    }
}
