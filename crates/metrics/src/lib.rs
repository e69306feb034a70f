//! Prometheus metrics without a metrics framework: components render their own text (pure
//! functions over their state) and [`serve`] answers `GET /metrics` with it. [`Histogram`] is a
//! lock-free fixed-bucket histogram for latencies.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of latency buckets, from 1 ms to 5 s.
pub const LATENCY_BUCKETS: [f64; 11] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// A histogram over [`LATENCY_BUCKETS`].
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; LATENCY_BUCKETS.len()],
    total: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.total.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// The exposition lines of metric `name` (cumulative buckets, `+Inf`, sum, count).
    pub fn render(&self, name: &str, help: &str) -> String {
        let mut s = format!("# HELP {name} {help}\n# TYPE {name} histogram\n");
        let mut acc = 0;
        for (b, c) in LATENCY_BUCKETS.iter().zip(&self.counts) {
            acc += c.load(Ordering::Relaxed);
            let _ = writeln!(s, "{name}_bucket{{le=\"{b}\"}} {acc}");
        }
        let total = self.total.load(Ordering::Relaxed);
        let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let _ = writeln!(
            s,
            "{name}_sum {}",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(s, "{name}_count {total}");
        s
    }
}

/// Serves `render()` at `/metrics` until the task is dropped.
pub async fn serve(addr: SocketAddr, render: Arc<dyn Fn() -> String + Send + Sync>) {
    match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => serve_on(l, render).await,
        Err(e) => tracing::warn!(error = %e, %addr, "cannot serve metrics"),
    }
}

/// [`serve`] on a bound listener: HTTP/1.1 through hyper (keep-alive, header timeout), `GET
/// /metrics` answered with the exposition text, anything else 404.
pub async fn serve_on(listener: tokio::net::TcpListener, render: Arc<dyn Fn() -> String + Send + Sync>) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::{Method, Response, StatusCode};
    loop {
        let Ok((conn, _)) = listener.accept().await else {
            continue;
        };
        let render = render.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let (code, body) = if req.method() == Method::GET && req.uri().path() == "/metrics" {
                    (StatusCode::OK, render())
                } else {
                    (StatusCode::NOT_FOUND, "only GET /metrics is served\n".to_string())
                };
                let reply = Response::builder()
                    .status(code)
                    .header("Content-Type", "text/plain; version=0.0.4")
                    .body(Full::new(Bytes::from(body)))
                    .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())));
                async move { Ok::<_, std::convert::Infallible>(reply) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .serve_connection(hyper_util::rt::TokioIo::new(conn), service)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_count_everything() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(20));
        h.observe(Duration::from_secs(10));
        let text = h.render("x_seconds", "help");
        assert!(text.contains("x_seconds_bucket{le=\"0.001\"} 1\n"), "{text}");
        assert!(text.contains("x_seconds_bucket{le=\"0.025\"} 2\n"));
        assert!(text.contains("x_seconds_bucket{le=\"5\"} 2\n"));
        assert!(text.contains("x_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("x_seconds_count 3\n"));
    }

    #[tokio::test]
    async fn metrics_are_served_over_http_with_keep_alive() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(serve_on(listener, Arc::new(|| "up 1\n".to_string())));
        let mut c = tokio::net::TcpStream::connect(addr).await.expect("connect");
        c.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut text = String::new();
        c.read_to_string(&mut text).await.expect("read");
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(text.contains("up 1\n"), "{text}");
        assert!(
            text.contains("HTTP/1.1 404 Not Found"),
            "two requests on one connection: {text}"
        );
        task.abort();
    }
}
