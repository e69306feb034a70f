//! The one level-triggered controller loop every subsea daemon runs: reconcile the whole state
//! on every wake-up (a reflector saw a change) and at least every resync period, retry a failed
//! pass with exponential backoff, and stop on a signal. Like kube-runtime's `Controller` with a
//! single object: the state is small, and re-planning from full lists needs no event
//! bookkeeping, so restarts and outages converge.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tracing::Instrument;

/// First retry after a failed pass; doubles up to the resync period.
const FIRST_RETRY: Duration = Duration::from_millis(100);

/// Why a loop returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// The stop future resolved (a signal, a lost lease).
    Stop,
    /// Every wake-up sender is gone (the reflectors were dropped).
    Closed,
}

/// What a pass is told.
#[derive(Clone, Copy, Debug)]
pub struct Pass {
    /// 1 for the first pass.
    pub number: u64,
    /// When the wake-up that started this pass arrived (`None`: first pass, resync or retry),
    /// to measure how long a change takes to be acted on.
    pub woken: Option<std::time::Instant>,
}

/// A named loop and its timing.
#[derive(Clone, Debug)]
pub struct Loop {
    name: Arc<str>,
    resync: Duration,
    settle: Duration,
    paced: bool,
    failures: Arc<AtomicU64>,
}

/// How long wake-ups settle before the next pass: the configured `settle`, or three times the
/// last pass when that is longer (capped at 1 s), so a loop whose pass grows with the data (a
/// DNS snapshot of 10,000 services, an agent's pass over them) spends at most about a quarter
/// of its time passing while changes stream in, and does more per pass, instead of taking a
/// core per process. Wall time: on a loaded machine passes take longer and loops back off more.
pub fn settle_after(settle: Duration, last_pass: Duration) -> Duration {
    settle.max(last_pass.saturating_mul(3).min(MAX_PACE))
}

/// The longest [`settle_after`] waits for pacing.
const MAX_PACE: Duration = Duration::from_secs(1);

/// The wait before the next pass: the resync period after a success, an exponential backoff
/// (capped at the resync period) after `failures` failures in a row.
pub fn next_wait(failures: u32, resync: Duration) -> Duration {
    if failures == 0 {
        return resync;
    }
    let factor = 1u32
        .checked_shl(failures.saturating_sub(1).min(20))
        .unwrap_or(u32::MAX);
    FIRST_RETRY.saturating_mul(factor).min(resync)
}

impl Loop {
    /// A loop named `name` (in logs and spans), resyncing every 10 s.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self {
            name: name.into(),
            resync: Duration::from_secs(10),
            settle: Duration::from_millis(20),
            paced: false,
            failures: Arc::default(),
        }
    }

    /// Sets the resync period.
    pub fn resync(mut self, d: Duration) -> Self {
        self.resync = d;
        self
    }

    /// Paces passes to their cost ([`settle_after`]): for loops whose pass grows with the data
    /// and that many processes run at once (DNS snapshots, the Lighthouse agent); not for
    /// loops on a failover path, where a pass's I/O must not delay the next.
    pub fn paced(mut self) -> Self {
        self.paced = true;
        self
    }

    /// Sets how long a burst of wake-ups may settle into one pass (0: none).
    pub fn settle(mut self, d: Duration) -> Self {
        self.settle = d;
        self
    }

    /// Failed passes so far (for metrics).
    pub fn failures(&self) -> Arc<AtomicU64> {
        self.failures.clone()
    }

    /// Runs `reconcile` until `stop` resolves or `wake` closes.
    pub async fn run<E, F, Fut>(
        &self,
        wake: &mut mpsc::Receiver<()>,
        stop: impl Future<Output = ()>,
        mut reconcile: F,
    ) -> Stopped
    where
        E: std::fmt::Display,
        F: FnMut(Pass) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        tokio::pin!(stop);
        let mut failed_in_a_row = 0u32;
        let mut pass = Pass {
            number: 0,
            woken: None,
        };
        loop {
            pass.number += 1;
            let span = tracing::info_span!("reconcile", controller = %self.name, pass = pass.number);
            let began = std::time::Instant::now();
            let result = reconcile(pass).instrument(span).await;
            let took = began.elapsed();
            match result {
                Ok(()) => failed_in_a_row = 0,
                Err(e) => {
                    failed_in_a_row = failed_in_a_row.saturating_add(1);
                    self.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(controller = %self.name, error = %e, retry_in = ?next_wait(failed_in_a_row, self.resync), "reconcile failed");
                }
            }
            let wait = next_wait(failed_in_a_row, self.resync);
            pass.woken = None;
            tokio::select! {
                biased;
                _ = &mut stop => return Stopped::Stop,
                woken = wake.recv() => {
                    if woken.is_none() {
                        return Stopped::Closed;
                    }
                    pass.woken = Some(std::time::Instant::now());
                }
                _ = tokio::time::sleep(wait) => {}
            }
            let settle = if self.paced {
                settle_after(self.settle, took)
            } else {
                self.settle
            };
            if !settle.is_zero() {
                tokio::time::sleep(settle).await;
            }
            while wake.try_recv().is_ok() {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_that_take_long_are_paced_to_about_a_quarter_of_the_time() {
        let settle = Duration::from_millis(20);
        assert_eq!(settle_after(settle, Duration::from_millis(1)), settle);
        assert_eq!(
            settle_after(settle, Duration::from_millis(30)),
            Duration::from_millis(90)
        );
        assert_eq!(
            settle_after(settle, Duration::from_secs(120)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn backoff_doubles_from_100ms_up_to_the_resync_period() {
        let resync = Duration::from_secs(10);
        assert_eq!(next_wait(0, resync), resync);
        assert_eq!(next_wait(1, resync), Duration::from_millis(100));
        assert_eq!(next_wait(2, resync), Duration::from_millis(200));
        assert_eq!(next_wait(4, resync), Duration::from_millis(800));
        assert_eq!(next_wait(10, resync), resync);
        assert_eq!(next_wait(u32::MAX, resync), resync);
    }

    #[tokio::test]
    async fn passes_run_on_wake_ups_retry_failures_and_stop() {
        let (tx, mut rx) = mpsc::channel(1);
        let l = Loop::new("test")
            .resync(Duration::from_secs(3600))
            .settle(Duration::ZERO);
        let passes = Arc::new(AtomicU64::new(0));
        let p = passes.clone();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let run = tokio::spawn({
            let l = l.clone();
            async move {
                l.run(
                    &mut rx,
                    async {
                        let _ = stop_rx.await;
                    },
                    move |_| {
                        let n = p.fetch_add(1, Ordering::SeqCst) + 1;
                        async move { if n == 2 { Err("second pass fails") } else { Ok(()) } }
                    },
                )
                .await
            }
        });
        tx.send(()).await.expect("wake");
        // Pass 1 at start, pass 2 on the wake-up fails, pass 3 retries after 100 ms.
        for _ in 0..100 {
            if passes.load(Ordering::SeqCst) >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(passes.load(Ordering::SeqCst) >= 3, "the failed pass was retried");
        assert_eq!(l.failures().load(Ordering::Relaxed), 1);
        let _ = stop_tx.send(());
        assert_eq!(run.await.expect("joins"), Stopped::Stop);
        drop(tx);
    }
}
