//! End-to-end tools and benchmarks: the multi-cluster [`sandbox`] (binary `subsea-sandbox`)
//! and `apiserver-bench`.

pub mod bench;
pub mod faults;
pub mod flood;
pub mod sandbox;
