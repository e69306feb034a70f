//! `subsea nettest`: the small servers and clients `subctl verify` and `subctl benchmark` run in
//! pods. Each client ends with a `RESULT <json>` line (see `subsea_nettest::report`) and exits
//! non-zero when its check failed.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::json;
use subsea_nettest::{echo, http, latency, report, throughput};

#[derive(Args)]
pub struct NettestArgs {
    #[command(subcommand)]
    command: Nettest,
}

#[derive(Subcommand)]
enum Nettest {
    /// TCP echo server; it first sends `from <client address>` so clients can check that source
    /// addresses survive the path.
    EchoServer {
        #[arg(long, default_value_t = 7000)]
        port: u16,
    },
    /// Send BYTES to an echo server and verify every byte of the echo; the result names the
    /// source address the server saw.
    ///
    /// Example: subsea nettest echo-check 10.130.4.11:7000 --bytes 1048576
    EchoCheck {
        /// ADDRESS:PORT of the echo server.
        addr: SocketAddr,
        #[arg(long, default_value_t = 1 << 20)]
        bytes: usize,
        /// Per-operation timeout, seconds.
        #[arg(long, default_value_t = 10)]
        timeout: u64,
    },
    /// HTTP server whose GET /health answers `ok pod=<POD> cluster=<CLUSTER>`.
    HttpServer {
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Pod name to report (default: $POD_NAME or the hostname).
        #[arg(long, env = "POD_NAME", default_value = "")]
        pod: String,
        /// Cluster name to report.
        #[arg(long, env = "CLUSTER_ID", default_value = "")]
        cluster: String,
    },
    /// GET a URL, resolving its host with the pod's DNS configuration (retries until TIMEOUT).
    ///
    /// Example: subsea nettest http-get http://payment-service.default.svc.clusterset.local/health
    HttpGet {
        url: String,
        /// Keep retrying for this many seconds (DNS and tunnels may still be converging).
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// Fail unless the body contains this text.
        #[arg(long)]
        expect: Option<String>,
    },
    /// Resolve a name with the pod's DNS configuration, until it resolves (or, with --absent,
    /// until it stops resolving) or TIMEOUT passes.
    ///
    /// Example: subsea nettest resolve payment-service.default.svc.clusterset.local
    Resolve {
        name: String,
        /// Succeed when the name does not resolve (an unexported service).
        #[arg(long)]
        absent: bool,
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Print this node's network state for `subctl gather` (rules, table 150, `wg show`,
    /// addresses, routes), at most 4 KiB so it fits a termination message. Run it in a
    /// host-network pod.
    NodeInfo,
    /// UDP echo server (for the MTU probe).
    UdpEchoServer {
        #[arg(long, default_value_t = 7002)]
        port: u16,
    },
    /// Find the path MTU to a UDP echo server with Don't-Fragment datagrams, and whether
    /// larger packets are refused with ICMP (healthy) or silently dropped (a black hole).
    ///
    /// Example: subsea nettest mtu-probe 10.130.4.11:7002
    MtuProbe {
        addr: SocketAddr,
        /// Smallest IP packet size tried.
        #[arg(long, default_value_t = 576)]
        min: usize,
        /// Largest IP packet size tried (the pod interface MTU).
        #[arg(long, default_value_t = 1500)]
        max: usize,
        /// Keep retrying until the smallest size is echoed, seconds.
        #[arg(long, default_value_t = 30)]
        wait: u64,
    },
    /// Request-response latency server (1-byte transactions, like netperf TCP_RR).
    LatencyServer {
        #[arg(long, default_value_t = 7001)]
        port: u16,
    },
    /// Measure request-response latency to a latency server.
    ///
    /// Example: subsea nettest latency 10.130.4.11:7001 --seconds 5
    Latency {
        addr: SocketAddr,
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Keep retrying the connection for this many seconds.
        #[arg(long, default_value_t = 30)]
        wait: u64,
        /// A new connection per transaction (netperf TCP_CRR): measures connection setup.
        #[arg(long)]
        new_connections: bool,
    },
    /// Measure TCP throughput with iperf3 to an `iperf3 -s` server and summarize its report.
    ///
    /// Example: subsea nettest throughput 10.130.4.11 --seconds 5
    Throughput {
        target: IpAddr,
        #[arg(long, default_value_t = 5201)]
        port: u16,
        #[arg(long, default_value_t = 5)]
        seconds: u32,
        /// Keep retrying while the server is busy or not yet up, seconds.
        #[arg(long, default_value_t = 60)]
        wait: u64,
    },
}

/// Retries `f` until it succeeds or `wait` has passed.
/// The result line, with the library's error in this binary's chain.
fn emit<T: serde::Serialize>(result: &T) -> Result<()> {
    Ok(report::emit(result)?)
}

fn retrying<T>(wait: Duration, mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let start = std::time::Instant::now();
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(e) if start.elapsed() >= wait => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

pub fn run(args: NettestArgs) -> Result<()> {
    let r = checks(args);
    if let Err(e) = &r {
        // The failure travels back to subctl the same way as a result.
        emit(&json!({"error": format!("{e:#}")}))?;
    }
    r
}

fn checks(args: NettestArgs) -> Result<()> {
    let secs = Duration::from_secs;
    match args.command {
        Nettest::EchoServer { port } => Ok(echo::serve(port)?),
        Nettest::EchoCheck { addr, bytes, timeout } => {
            let source = retrying(secs(timeout), || Ok(echo::check(addr, bytes, secs(timeout))?))?;
            emit(&json!({"bytes": bytes, "source": source}))
        }
        Nettest::HttpServer { port, pod, cluster } => {
            let pod = if pod.is_empty() {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            } else {
                pod
            };
            Ok(http::serve(port, &pod, &cluster)?)
        }
        Nettest::HttpGet { url, timeout, expect } => {
            let got = retrying(secs(timeout), || {
                let got = http::get(&url, secs(5))?;
                if got.status != 200 {
                    anyhow::bail!("GET {url} answered {}", got.status);
                }
                if let Some(want) = &expect
                    && !got.body.contains(want.as_str())
                {
                    anyhow::bail!(
                        "GET {url} answered {:?}, expected it to contain {want:?}",
                        got.body
                    );
                }
                Ok(got)
            })?;
            emit(&got)
        }
        Nettest::Resolve {
            name,
            absent,
            timeout,
        } => {
            let addresses = retrying(secs(timeout), || {
                use std::net::ToSocketAddrs;
                let found: Vec<String> = (name.as_str(), 0)
                    .to_socket_addrs()
                    .map(|a| a.map(|a| a.ip().to_string()).collect())
                    .unwrap_or_default();
                match (found.is_empty(), absent) {
                    (false, false) | (true, true) => Ok(found),
                    (true, false) => anyhow::bail!("{name} does not resolve"),
                    (false, true) => anyhow::bail!("{name} still resolves to {}", found.join(", ")),
                }
            })?;
            emit(&json!({"name": name, "addresses": addresses}))
        }
        Nettest::NodeInfo => {
            let text =
                subsea_nettest::node::assemble(&subsea_nettest::node::collect(), report::MESSAGE_LIMIT - 96);
            report::emit_text(&text);
            Ok(())
        }
        Nettest::UdpEchoServer { port } => Ok(subsea_nettest::mtu::serve(port)?),
        Nettest::MtuProbe { addr, min, max, wait } => {
            if min < 68 || max > 65535 || min >= max {
                anyhow::bail!("--min {min} and --max {max} must satisfy 68 <= min < max <= 65535");
            }
            let f = retrying(secs(wait), || {
                let f = subsea_nettest::mtu::probe(addr, min, max)?;
                if f.largest == 0 {
                    anyhow::bail!(
                        "no {min}-byte datagram came back from {addr}: is the echo server up and the path open?"
                    );
                }
                Ok(f)
            })?;
            emit(&f)
        }
        Nettest::LatencyServer { port } => Ok(latency::serve(port)?),
        Nettest::Latency {
            addr,
            seconds,
            wait,
            new_connections,
        } => {
            retrying(secs(wait), || {
                std::net::TcpStream::connect_timeout(&addr, secs(2)).map_err(Into::into)
            })?;
            let s = if new_connections {
                latency::run_new_connections(addr, secs(seconds), 10_000_000)?
            } else {
                latency::run(addr, secs(seconds), 10_000_000)?
            };
            emit(&s)
        }
        Nettest::Throughput {
            target,
            port,
            seconds,
            wait,
        } => emit(&throughput::run(target, port, seconds, secs(wait))?),
    }
}
