//! Per-type watch history: the recent events a watch may resume from.
//!
//! Like kube-apiserver's watch cache, each type keeps its own window, so a quiet type never
//! expires a client's resourceVersion just because other types were busy. A resume point older
//! than the window is answered with 410 Expired and the client relists.

use std::collections::{HashMap, VecDeque};

use crate::error::ApiError;
use crate::store::Event;

#[derive(Debug, Default)]
struct Window {
    events: VecDeque<Event>,
    /// Events at or below this resourceVersion may be missing from the window.
    floor: u64,
}

/// Recent events of every type.
#[derive(Debug)]
pub struct History {
    capacity: usize,
    start: u64,
    windows: HashMap<String, Window>,
}

impl History {
    /// Keeps up to `capacity` events per type. `start` is the resourceVersion the server started
    /// at: history before it is unknown.
    pub fn new(capacity: usize, start: u64) -> Self {
        Self {
            capacity: capacity.max(1),
            start,
            windows: HashMap::new(),
        }
    }

    /// Records an event (events arrive in resourceVersion order).
    pub fn push(&mut self, ev: Event) {
        let start = self.start;
        let w = self.windows.entry(ev.ty.clone()).or_insert_with(|| Window {
            events: VecDeque::new(),
            floor: start,
        });
        w.events.push_back(ev);
        while w.events.len() > self.capacity {
            if let Some(old) = w.events.pop_front() {
                w.floor = old.rev;
            }
        }
    }

    /// Events of `ty` after `rev`, or 410 Expired when the window no longer reaches back to it.
    pub fn since(&self, ty: &str, rev: u64) -> Result<Vec<Event>, ApiError> {
        let floor = self.windows.get(ty).map_or(self.start, |w| w.floor);
        if rev < floor {
            return Err(ApiError::expired(format!(
                "too old resource version: {rev} ({})",
                floor + 1
            )));
        }
        Ok(self
            .windows
            .get(ty)
            .map(|w| w.events.iter().filter(|e| e.rev > rev).cloned().collect())
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EventType;
    use serde_json::json;
    use std::sync::Arc;

    fn ev(ty: &str, rev: u64) -> Event {
        Event {
            ty: ty.into(),
            kind: EventType::Added,
            object: Arc::new(json!({})),
            prev: None,
            rev,
        }
    }

    #[test]
    fn resumes_inside_the_window_and_expires_outside() {
        let mut h = History::new(3, 10);
        for r in 11..=15 {
            h.push(ev("/configmaps", r));
        }
        let revs: Vec<u64> = h
            .since("/configmaps", 13)
            .expect("inside")
            .iter()
            .map(|e| e.rev)
            .collect();
        assert_eq!(revs, vec![14, 15]);
        assert!(
            h.since("/configmaps", 12).is_ok(),
            "12 is the floor: 13.. are all present"
        );
        let err = h.since("/configmaps", 11).expect_err("expired");
        assert_eq!(err.code, 410);
        assert_eq!(err.message, "too old resource version: 11 (13)");
    }

    #[test]
    fn quiet_types_only_expire_before_start() {
        let mut h = History::new(2, 100);
        for r in 101..=110 {
            h.push(ev("/busy", r));
        }
        assert!(h.since("/quiet", 105).expect("quiet type").is_empty());
        assert_eq!(h.since("/quiet", 99).expect_err("before start").code, 410);
    }
}
