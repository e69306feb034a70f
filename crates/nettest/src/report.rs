//! The `RESULT <json>` line: written by the clients, found again by subctl in a terminated
//! container's message.

use std::io::Write;

use serde::Serialize;
use serde::de::DeserializeOwned;

const PREFIX: &str = "RESULT ";

/// Where Kubernetes' kubelet collects a container's termination message.
const TERMINATION_LOG: &str = "/dev/termination-log";

/// Prints the result line, and writes the JSON to the termination log when the kubelet made one
/// (never creates it: outside a pod it does not exist).
pub fn emit<T: Serialize>(result: &T) -> crate::Result<()> {
    let json = serde_json::to_string(result).map_err(|source| crate::Error::Json {
        context: "cannot encode the result".into(),
        source,
    })?;
    println!("{PREFIX}{json}");
    if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(TERMINATION_LOG) {
        let _ = f.write_all(json.as_bytes());
    }
    Ok(())
}

/// Kubernetes keeps at most this much of a termination message.
pub const MESSAGE_LIMIT: usize = 4096;

/// Prints a text result whole and writes it to the termination log when there is one; the
/// caller keeps it under [`MESSAGE_LIMIT`] so nothing is cut on the way.
pub fn emit_text(text: &str) {
    print!("{text}");
    if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(TERMINATION_LOG) {
        let _ = f.write_all(text.as_bytes());
    }
}

/// The result in a container's termination message: the last `RESULT` line, or the whole
/// message when it is bare JSON (the termination-log form).
pub fn find<T: DeserializeOwned>(message: &str) -> Option<T> {
    message
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix(PREFIX))
        .and_then(|j| serde_json::from_str(j).ok())
        .or_else(|| serde_json::from_str(message.trim()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct R {
        ok: bool,
    }

    #[test]
    fn finds_the_last_result_line_or_bare_json() {
        let msg = "starting\nRESULT {\"ok\":false}\nnoise\nRESULT {\"ok\":true}\ntrailing\n";
        assert_eq!(find::<R>(msg), Some(R { ok: true }));
        assert_eq!(find::<R>("{\"ok\":false}\n"), Some(R { ok: false }));
        assert_eq!(find::<R>("error: cannot connect"), None);
        assert_eq!(find::<R>("RESULT {not json"), None);
    }
}
