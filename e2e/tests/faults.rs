//! The fault suite in CI (needs root): every fault twice over a 3-cluster sandbox. Every round
//! must recover and leave no stale broker objects; the table is printed (the full run, 10
//! rounds, is `fault-suite`; figures in e2e/bench/README.md).

use subsea_e2e::sandbox::harness::is_root;

#[test]
fn every_fault_is_recovered_from_and_leaves_nothing_behind() {
    assert!(
        is_root(),
        "the fault suite needs root: run the suite as root, as .ci/run does"
    );
    let rounds = 2;
    let rows = subsea_e2e::faults::run(rounds).expect("the fault suite runs");
    for r in &rows {
        assert_eq!(r.recovered, rounds, "{}", r.line(rounds));
        assert!(r.stale.is_empty(), "{}", r.line(rounds));
        assert_eq!(r.outages.len(), rounds);
    }
    assert!(rows.len() >= 7, "{} faults ran", rows.len());
}
