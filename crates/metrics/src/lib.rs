//! Prometheus metrics through `prometheus-client`: components build a [`Registry`] from their
//! state on each scrape (pure functions, testable without a socket), [`encode`] writes the
//! OpenMetrics text, and [`serve`] answers `GET /metrics` with it over hyper.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use prometheus_client;
use prometheus_client::metrics::histogram::Histogram;
pub use prometheus_client::registry::Registry;

/// Upper bounds (seconds) of latency buckets, from 1 ms to 5 s.
pub const LATENCY_BUCKETS: [f64; 11] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// A histogram over [`LATENCY_BUCKETS`]; clones share their counts, so a component keeps one
/// and registers a clone on each scrape.
pub fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The OpenMetrics text of `registry`, `# EOF` included.
pub fn encode(registry: &Registry) -> String {
    let mut s = String::new();
    // Writing into a String cannot fail; an encoder error would be a bug in a metric type.
    if let Err(e) = prometheus_client::encoding::text::encode(&mut s, registry) {
        tracing::warn!(error = %e, "metrics encoding failed");
    }
    s
}

/// The content type of [`encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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
                    .header(
                        "Content-Type",
                        if code == StatusCode::OK {
                            CONTENT_TYPE
                        } else {
                            "text/plain"
                        },
                    )
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
    fn latency_buckets_are_cumulative_and_count_everything() {
        let h = latency_histogram();
        h.observe(0.0005);
        h.observe(0.02);
        h.observe(10.0);
        let mut r = Registry::default();
        r.register("x_seconds", "help", h.clone());
        let text = encode(&r);
        assert!(text.contains("x_seconds_bucket{le=\"0.001\"} 1\n"), "{text}");
        assert!(text.contains("x_seconds_bucket{le=\"0.025\"} 2\n"), "{text}");
        assert!(text.contains("x_seconds_bucket{le=\"5.0\"} 2\n"), "{text}");
        assert!(text.contains("x_seconds_bucket{le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("x_seconds_count 3\n"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
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
