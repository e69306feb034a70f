//! Connection health and gateway leadership as pure state machines: round-trip statistics in
//! Submariner's Gateway-status format, the ping-loss rule that marks a connection `error`, and
//! the Lease-based leader election decision, ICMP echo encoding. Time is always an argument. No I/O.
#![deny(missing_docs)]

pub mod duration;
pub mod icmp;
pub mod lease;
pub mod pinger;
