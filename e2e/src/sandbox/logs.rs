//! The kubelet's log endpoint for one sandbox node (`GET /containerLogs/{ns}/{pod}/{container}`,
//! plain HTTP on the node's address, port 10250), which `subsea apiserver` proxies
//! `kubectl logs` and `subctl gather` to. A pod's log is the file
//! `<dir>/logs/pods/<cluster>-<ns>-<pod>.log`: written by the kubelet stand-in for pods it
//! runs, and a link to the process log for the components the sandbox runs itself.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Where a pod's log lives.
pub fn log_path(dir: &Path, cluster: &str, ns: &str, pod: &str) -> PathBuf {
    dir.join("logs")
        .join("pods")
        .join(format!("{cluster}-{ns}-{pod}.log"))
}

/// A log request: namespace, pod, and how many lines from the end (all when `None`).
#[derive(Debug, PartialEq, Eq)]
pub struct Wanted {
    pub namespace: String,
    pub pod: String,
    pub tail: Option<usize>,
    pub limit: Option<usize>,
}

fn safe(seg: &str) -> bool {
    !seg.is_empty()
        && seg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && seg != ".."
}

/// Parses `/containerLogs/{ns}/{pod}/{container}[?tailLines=N&limitBytes=N]`; names must be
/// DNS labels, so no path can leave the log directory.
pub fn parse(target: &str) -> Option<Wanted> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let ["containerLogs", ns, pod, container] = segs.as_slice() else {
        return None;
    };
    if !(safe(ns) && safe(pod) && safe(container)) {
        return None;
    }
    let param = |k: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .and_then(|v| v.parse().ok())
    };
    Some(Wanted {
        namespace: ns.to_string(),
        pod: pod.to_string(),
        tail: param("tailLines"),
        limit: param("limitBytes"),
    })
}

/// The last `n` lines of `text` (all of it when `None`), then at most `limit` bytes of that
/// from its start, as the kubelet applies them.
pub fn select(text: &str, tail: Option<usize>, limit: Option<usize>) -> &str {
    let mut out = text;
    if let Some(n) = tail {
        let trimmed = text.strip_suffix('\n').unwrap_or(text);
        out = match trimmed.rmatch_indices('\n').nth(n.saturating_sub(1)) {
            _ if n == 0 => "",
            Some((i, _)) => &text[i + 1..],
            None => text,
        };
    }
    if let Some(l) = limit.filter(|l| *l < out.len()) {
        let mut end = l;
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out = &out[..end];
    }
    out
}

/// Serves until killed.
pub fn serve(dir: &Path, cluster: &str, listen: SocketAddr) -> Result<()> {
    let l = TcpListener::bind(listen).with_context(|| format!("cannot listen on {listen}"))?;
    for conn in l.incoming().flatten() {
        let (dir, cluster) = (dir.to_path_buf(), cluster.to_string());
        std::thread::spawn(move || {
            let mut reader = BufReader::new(&conn);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                return;
            }
            let target = line.split_whitespace().nth(1).unwrap_or("");
            let (status, body) = match parse(target) {
                None => (
                    "400 Bad Request",
                    "expected /containerLogs/{namespace}/{pod}/{container}\n".to_string(),
                ),
                Some(w) => match std::fs::read(log_path(&dir, &cluster, &w.namespace, &w.pod)) {
                    Ok(bytes) => {
                        let text = String::from_utf8_lossy(&bytes);
                        ("200 OK", select(&text, w.tail, w.limit).to_string())
                    }
                    Err(_) => (
                        "404 Not Found",
                        format!("no log for pod {}/{} on this node", w.namespace, w.pod),
                    ),
                },
            };
            let reply = format!(
                "HTTP/1.0 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = (&conn).write_all(reply.as_bytes());
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_a_pod_and_never_a_path_outside() {
        assert_eq!(
            parse("/containerLogs/submariner-operator/gw-1/gateway?tailLines=20"),
            Some(Wanted {
                namespace: "submariner-operator".into(),
                pod: "gw-1".into(),
                tail: Some(20),
                limit: None
            })
        );
        assert_eq!(parse("/containerLogs/../etc/passwd"), None);
        assert_eq!(parse("/containerLogs/ns/..%2f/c"), None);
        assert_eq!(parse("/stats/summary"), None);
    }

    #[test]
    fn tail_and_limit_cut_like_the_kubelet() {
        let text = "a\nb\nc\n";
        assert_eq!(select(text, None, None), text);
        assert_eq!(select(text, Some(2), None), "b\nc\n");
        assert_eq!(select(text, Some(10), None), text);
        assert_eq!(select(text, Some(0), None), "");
        assert_eq!(select(text, Some(2), Some(3)), "b\nc");
        assert_eq!(select("héllo", None, Some(2)), "h");
    }
}
