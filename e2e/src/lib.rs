//! End-to-end tools and benchmarks: `apiserver-bench` measures `subsea apiserver`.
