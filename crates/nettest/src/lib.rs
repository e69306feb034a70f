//! The checks `subctl verify` and `subctl benchmark` run inside pods (`subsea nettest …`), and
//! the workloads the sandbox deploys. Every client ends with one line `RESULT <json>` on stdout
//! (and the same JSON in `/dev/termination-log` when the kubelet provides one), which is how the
//! result travels back to subctl through the Pod's status: no exec, no log streaming needed.

pub mod echo;
pub mod error;
pub mod http;
pub mod latency;
pub mod mtu;
pub mod node;
pub mod report;
pub mod stats;
pub mod throughput;

use std::net::{TcpListener, TcpStream};

use error::IoContext;
pub use error::{Error, Result};

/// Listens on `port` on every address (IPv6 and IPv4, or IPv4 alone where IPv6 is off) and
/// runs `handle` on its own thread for each connection, forever.
pub fn serve_tcp(port: u16, handle: impl Fn(TcpStream) + Clone + Send + 'static) -> Result<()> {
    let l = TcpListener::bind(("::", port))
        .or_else(|_| TcpListener::bind(("0.0.0.0", port)))
        .doing(|| format!("cannot listen on port {port}"))?;
    for conn in l.incoming().flatten() {
        let handle = handle.clone();
        std::thread::spawn(move || handle(conn));
    }
    Ok(())
}
