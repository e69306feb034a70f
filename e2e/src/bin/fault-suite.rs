//! `fault-suite [ROUNDS]`: every fault of `subsea_e2e::faults` ROUNDS times (10 by default) over
//! a 3-cluster sandbox, one table row per fault. Needs root. Exits non-zero when a round did
//! not recover or objects were left behind.

fn main() -> anyhow::Result<()> {
    let rounds: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(10);
    let rows = subsea_e2e::faults::run(rounds)?;
    if rows.iter().any(|r| r.recovered < rounds || !r.stale.is_empty()) {
        anyhow::bail!("a fault was not recovered from, or left objects behind");
    }
    Ok(())
}
