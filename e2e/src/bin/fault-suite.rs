//! `fault-suite [ROUNDS] [BROKER_SECONDS]`: every fault of `subsea_e2e::faults` ROUNDS times (10
//! by default; the broker outage lasting BROKER_SECONDS, 60 by default) over a 3-cluster
//! sandbox, one table row per fault, then cluster3 uninstalled. Needs root. Exits non-zero when
//! a round did not recover, objects were left behind or two gateways of a cluster were active
//! at once. `FAULTS=text[,text…]` runs only the faults whose name contains one of the texts
//! (`FAULTS=broker,WAN,uninstalled`).

fn arg<T: std::str::FromStr>(n: usize, default: T) -> anyhow::Result<T>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    Ok(std::env::args()
        .nth(n)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(default))
}

fn main() -> anyhow::Result<()> {
    let only = std::env::var("FAULTS").ok();
    let rows = subsea_e2e::faults::run(arg(1, 10)?, arg(2, 60)?, only.as_deref())?;
    if rows
        .iter()
        .any(|r| r.recovered < r.outages.len() || !r.stale.is_empty() || r.both_active > 0.0)
    {
        anyhow::bail!("a fault was not recovered from, left objects behind or had two active gateways");
    }
    Ok(())
}
