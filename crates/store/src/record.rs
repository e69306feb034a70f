//! The write-ahead log's record format, without I/O: `[len: u32 LE][crc32: u32 LE][JSON
//! {rev, ty, t, obj}]`. Decoding stops at the first torn or corrupt record, so a log cut short by
//! a crash replays to its last good record.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::store::{Event, EventType};

fn event_kind(s: &str) -> Option<EventType> {
    match s {
        "A" => Some(EventType::Added),
        "M" => Some(EventType::Modified),
        "D" => Some(EventType::Deleted),
        _ => None,
    }
}

fn kind_code(k: EventType) -> &'static str {
    match k {
        EventType::Added => "A",
        EventType::Modified => "M",
        EventType::Deleted => "D",
    }
}

/// Encodes one event as a log record.
pub fn encode(ev: &Event, out: &mut Vec<u8>) {
    let payload =
        json!({"rev": ev.rev, "ty": ev.ty, "t": kind_code(ev.kind), "obj": &*ev.object}).to_string();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload.as_bytes()).to_le_bytes());
    out.extend_from_slice(payload.as_bytes());
}

/// Decodes records from `bytes`; stops at the first incomplete or corrupt one and returns the
/// byte length of the valid prefix.
pub fn decode_all(bytes: &[u8]) -> (Vec<Event>, usize) {
    let mut out = Vec::new();
    let mut pos = 0;
    while bytes.len() - pos >= 8 {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap_or_default()) as usize;
        let crc = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap_or_default());
        let Some(payload) = bytes.get(pos + 8..pos + 8 + len) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        let Ok(v) = serde_json::from_slice::<Value>(payload) else {
            break;
        };
        let (Some(rev), Some(ty), Some(kind)) = (
            v["rev"].as_u64(),
            v["ty"].as_str(),
            v["t"].as_str().and_then(event_kind),
        ) else {
            break;
        };
        out.push(Event {
            ty: ty.to_string(),
            kind,
            object: Arc::new(v["obj"].clone()),
            prev: None,
            rev,
        });
        pos += 8 + len;
    }
    (out, pos)
}
