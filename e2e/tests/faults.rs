//! The fault suite in CI (needs root): every fault twice over a 3-cluster sandbox. Every round
//! must recover, leave no stale broker objects and never have two active gateways in one
//! cluster; the table is printed (the full run, 10 rounds, is `fault-suite`; figures in
//! e2e/bench/README.md).

use subsea_e2e::sandbox::harness::is_root;

#[test]
fn every_fault_is_recovered_from_and_leaves_nothing_behind() {
    assert!(
        is_root(),
        "the fault suite needs root: run the suite as root, as .ci/run does"
    );
    let rounds = 2;
    // The broker outage is shortened to 10 s here (60 s in the full run).
    let rows = subsea_e2e::faults::run(rounds, 10, None).expect("the fault suite runs");
    for r in &rows {
        let n = r.outages.len();
        assert_eq!(r.recovered, n, "{}", r.line(n));
        assert!(r.stale.is_empty(), "{}", r.line(n));
        assert_eq!(
            r.dns_wrong,
            0,
            "an answer that is not the service's address: {}",
            r.line(n)
        );
        assert_eq!(
            r.both_active,
            0.0,
            "two of cluster1's gateways were active at once: {}",
            r.line(n)
        );
    }
    assert!(rows.len() >= 11, "{} faults ran", rows.len());
    let uninstall = rows.last().expect("rows");
    assert_eq!(
        uninstall.outages,
        [0.0],
        "traffic between the other clusters stops when one leaves: {}",
        uninstall.line(1)
    );
}
