//! The health checker's per-connection state: RTT statistics over a rolling window and the
//! rule that more than `max_loss` unanswered pings since the last reply mean `error`.

use std::collections::VecDeque;
use std::time::Duration;

use crate::duration::go_duration;

/// RTTs kept for the statistics (Submariner's window).
const WINDOW: usize = 1000;

/// Connection state as the Gateway status spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// No reply yet.
    Connecting,
    /// Replies arrive.
    Connected,
    /// Too many pings lost.
    Error,
}

impl Status {
    /// The status string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connecting => "connecting",
            Self::Connected => "connected",
            Self::Error => "error",
        }
    }
}

/// `latencyRTT` of the Gateway status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rtt {
    /// Last RTT.
    pub last: String,
    /// Minimum.
    pub min: String,
    /// Mean.
    pub average: String,
    /// Maximum.
    pub max: String,
    /// Standard deviation.
    pub std_dev: String,
}

/// One remote health-check target.
#[derive(Clone, Debug)]
pub struct Pinger {
    max_loss: u32,
    unanswered: u32,
    replied: bool,
    rtts: VecDeque<Duration>,
}

impl Pinger {
    /// A pinger that reports `error` after more than `max_loss` consecutive losses.
    pub fn new(max_loss: u32) -> Self {
        Self {
            max_loss,
            unanswered: 0,
            replied: false,
            rtts: VecDeque::new(),
        }
    }

    /// A ping went out.
    pub fn sent(&mut self) {
        self.unanswered = self.unanswered.saturating_add(1);
    }

    /// A reply came back after `rtt`.
    pub fn replied(&mut self, rtt: Duration) {
        self.unanswered = 0;
        self.replied = true;
        if self.rtts.len() == WINDOW {
            self.rtts.pop_front();
        }
        self.rtts.push_back(rtt);
    }

    /// The current status.
    pub fn status(&self) -> Status {
        if self.unanswered > self.max_loss {
            Status::Error
        } else if self.replied {
            Status::Connected
        } else {
            Status::Connecting
        }
    }

    /// The last RTT, if any.
    pub fn last(&self) -> Option<Duration> {
        self.rtts.back().copied()
    }

    /// RTT statistics over the window.
    pub fn rtt(&self) -> Option<Rtt> {
        let last = *self.rtts.back()?;
        let n = self.rtts.len() as f64;
        let nanos: Vec<f64> = self.rtts.iter().map(|d| d.as_nanos() as f64).collect();
        let mean = nanos.iter().sum::<f64>() / n;
        let var = nanos.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let d = |x: f64| go_duration(Duration::from_nanos(x.round() as u64));
        Some(Rtt {
            last: go_duration(last),
            min: d(nanos.iter().copied().fold(f64::INFINITY, f64::min)),
            average: d(mean),
            max: d(nanos.iter().copied().fold(0.0, f64::max)),
            std_dev: d(var.sqrt()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn losses_beyond_the_limit_mean_error_and_a_reply_heals() {
        let mut p = Pinger::new(5);
        assert_eq!(p.status(), Status::Connecting);
        p.sent();
        p.replied(Duration::from_millis(1));
        assert_eq!(p.status(), Status::Connected);
        for _ in 0..5 {
            p.sent();
        }
        assert_eq!(p.status(), Status::Connected, "five losses are tolerated");
        p.sent();
        assert_eq!(p.status(), Status::Error);
        p.replied(Duration::from_millis(2));
        assert_eq!(p.status(), Status::Connected);
    }

    #[test]
    fn statistics_in_go_format() {
        let mut p = Pinger::new(5);
        assert!(p.rtt().is_none());
        for ms in [1u64, 2, 3] {
            p.replied(Duration::from_millis(ms));
        }
        let r = p.rtt().expect("stats");
        assert_eq!(
            (
                r.last.as_str(),
                r.min.as_str(),
                r.average.as_str(),
                r.max.as_str()
            ),
            ("3ms", "1ms", "2ms", "3ms")
        );
        assert_eq!(r.std_dev, "816.497µs");
        for _ in 0..2000 {
            p.replied(Duration::from_millis(5));
        }
        assert_eq!(
            p.rtt().expect("stats").min,
            "5ms",
            "the window forgets old samples"
        );
    }
}
