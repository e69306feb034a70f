//! The sandbox's workload: a tiny HTTP server whose `/health` names the pod and cluster that
//! answered, so a test can tell which cluster served a request.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use anyhow::{Context, Result};

/// The `/health` body.
pub fn health_body(pod: &str, cluster: &str) -> String {
    format!("ok pod={pod} cluster={cluster}\n")
}

/// Serves until killed.
pub fn serve(port: u16, pod: &str, cluster: &str) -> Result<()> {
    let l = TcpListener::bind(("::", port))
        .or_else(|_| TcpListener::bind(("0.0.0.0", port)))
        .with_context(|| format!("cannot listen on port {port}"))?;
    let body = health_body(pod, cluster);
    for conn in l.incoming().flatten() {
        let body = body.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(&conn);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                return;
            }
            // Drain the headers.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let path = request.split_whitespace().nth(1).unwrap_or("");
            let (status, text) = if path == "/health" {
                ("200 OK", body.as_str())
            } else {
                ("404 Not Found", "not found\n")
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = (&conn).write_all(reply.as_bytes());
        });
    }
    Ok(())
}
