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
    cost: Cost,
}

/// What a paced loop paces on: a pass's wall time, unless the pass reports the part that is
/// its own work. A pass that plans and then waits for its writes reports the planning, so a
/// slow server (a durable write under load) does not lengthen the wait before the next pass:
/// the pass cannot start again before its writes are done anyway, and planning stays at most
/// about a quarter of the loop's time.
#[derive(Clone, Debug)]
pub struct Cost(Arc<AtomicU64>);

/// CPU time this thread has run, from the scheduler's statistics (nanoseconds, first field).
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    parse_schedstat(&text)
}

/// The run time in a `schedstat` line (`<ns on cpu> <ns waiting> <timeslices>`).
pub fn parse_schedstat(text: &str) -> Option<Duration> {
    text.split_whitespace()
        .next()?
        .parse()
        .ok()
        .map(Duration::from_nanos)
}

/// [`Cost`]'s "nothing reported".
const UNREPORTED: u64 = u64::MAX;

impl Cost {
    fn new() -> Self {
        Self(Arc::new(AtomicU64::new(UNREPORTED)))
    }

    /// Adds `d` to this pass's cost.
    pub fn report(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(UNREPORTED - 1);
        let _ = self.0.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
            Some(if c == UNREPORTED {
                nanos
            } else {
                c.saturating_add(nanos).min(UNREPORTED - 1)
            })
        });
    }

    /// Runs `work` (synchronous: it stays on this thread) and reports the CPU time it took,
    /// not its wall time: on a loaded machine a preempted pass would otherwise look costly and
    /// slow the loop down just when every process is slowed. Wall time where the kernel does
    /// not say (no `/proc/thread-self/schedstat`).
    pub fn measure<T>(&self, work: impl FnOnce() -> T) -> T {
        let (cpu, wall) = (thread_cpu(), std::time::Instant::now());
        let out = work();
        let spent = match (cpu, thread_cpu()) {
            (Some(a), Some(b)) => b.saturating_sub(a),
            _ => wall.elapsed(),
        };
        self.report(spent);
        out
    }

    /// This pass's reported cost (none: `None`), clearing it for the next.
    fn take(&self) -> Option<Duration> {
        match self.0.swap(UNREPORTED, Ordering::Relaxed) {
            UNREPORTED => None,
            n => Some(Duration::from_nanos(n)),
        }
    }
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
            cost: Cost::new(),
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

    /// The handle a pass reports its own cost through (see [`Cost`]).
    pub fn cost(&self) -> Cost {
        self.cost.clone()
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
            self.cost.take();
            let result = reconcile(pass).instrument(span).await;
            let took = began.elapsed();
            let cost = self.cost.take().unwrap_or(took);
            tracing::debug!(controller = %self.name, pass = pass.number, took_ms = took.as_secs_f64() * 1e3, cost_ms = cost.as_secs_f64() * 1e3, "pass done");
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
                settle_after(self.settle, cost)
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
    fn a_reported_cost_adds_up_and_clears() {
        let c = Cost::new();
        assert_eq!(c.take(), None);
        c.report(Duration::from_millis(3));
        c.report(Duration::from_millis(4));
        assert_eq!(c.take(), Some(Duration::from_millis(7)));
        assert_eq!(c.take(), None);
        c.report(Duration::from_secs(u64::MAX));
        assert!(
            c.take()
                .is_some_and(|d| d > Duration::from_secs(500 * 365 * 86400))
        );
    }

    #[test]
    fn schedstat_gives_the_run_time_and_a_busy_thread_measures_its_cpu() {
        assert_eq!(
            parse_schedstat("437929 12 1\n"),
            Some(Duration::from_nanos(437929))
        );
        assert_eq!(parse_schedstat(""), None);
        assert_eq!(parse_schedstat("x 1 2"), None);
        let c = Cost::new();
        // Sleeping costs no CPU: measured by CPU time, far below the 100 ms of wall time.
        c.measure(|| std::thread::sleep(Duration::from_millis(100)));
        let slept = c.take().expect("reported");
        assert!(slept < Duration::from_millis(50), "{slept:?}");
        let spun = c.measure(|| {
            let t = std::time::Instant::now();
            let mut n = 0u64;
            while t.elapsed() < Duration::from_millis(30) {
                n = n.wrapping_add(1);
            }
            n
        });
        assert!(spun > 0);
        assert!(c.take().is_some_and(|d| d >= Duration::from_millis(5)));
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
    async fn a_paced_loop_waits_after_its_reported_cost_not_its_wall_time() {
        for (report, at_least, below) in [(true, 0, 300), (false, 600, 5000)] {
            let (tx, mut rx) = mpsc::channel(1);
            let l = Loop::new("paced").resync(Duration::from_secs(3600)).paced();
            let cost = l.cost();
            let starts = Arc::new(std::sync::Mutex::new(Vec::new()));
            let s = starts.clone();
            let run = tokio::spawn(async move {
                l.run(&mut rx, std::future::pending(), move |_| {
                    s.lock().expect("lock").push(std::time::Instant::now());
                    let cost = cost.clone();
                    async move {
                        // 200 ms waiting on "writes", 1 ms of own work.
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        if report {
                            cost.report(Duration::from_millis(1));
                        }
                        Ok::<(), &str>(())
                    }
                })
                .await
            });
            tokio::time::sleep(Duration::from_millis(300)).await;
            let woken = std::time::Instant::now();
            tx.send(()).await.expect("wake");
            for _ in 0..300 {
                if starts.lock().expect("lock").len() >= 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let second = starts
                .lock()
                .expect("lock")
                .get(1)
                .copied()
                .expect("a second pass");
            let waited = second.duration_since(woken);
            assert!(
                waited >= Duration::from_millis(at_least) && waited < Duration::from_millis(below),
                "reporting {report}: the pass after a wake-up began {waited:?} later"
            );
            run.abort();
        }
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
