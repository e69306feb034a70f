//! The checks `subctl verify` and `subctl benchmark` run inside pods (`subsea nettest …`), and
//! the workloads the sandbox deploys. Every client ends with one line `RESULT <json>` on stdout
//! (and the same JSON in `/dev/termination-log` when the kubelet provides one), which is how the
//! result travels back to subctl through the Pod's status: no exec, no log streaming needed.

pub mod echo;
pub mod http;
pub mod latency;
pub mod mtu;
pub mod node;
pub mod report;
pub mod throughput;
