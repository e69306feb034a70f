//! The sandbox's workload: a tiny HTTP server whose `/health` names the pod and cluster that
//! answered, so a test can tell which cluster served a request, and whose `/source` tells the
//! client's address as the server saw it (Globalnet's egress IPs, source preservation).

use std::io::{BufRead, BufReader, Write};

use crate::error::{Error, IoContext, Result, peer};

/// The `/health` body.
pub fn health_body(pod: &str, cluster: &str) -> String {
    format!("ok pod={pod} cluster={cluster}\n")
}

/// Serves until killed.
pub fn serve(port: u16, pod: &str, cluster: &str) -> Result<()> {
    let body = health_body(pod, cluster);
    crate::serve_tcp(port, move |conn| {
        let body = body.clone();
        {
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
            let source = conn
                .peer_addr()
                .map(|a| format!("source={}\n", a.ip().to_canonical()))
                .unwrap_or_default();
            let port = format!("port={port}\n");
            let (status, text) = match path {
                "/health" => ("200 OK", body.as_str()),
                "/source" => ("200 OK", source.as_str()),
                // Which of a pod's ports a connection reached (multi-port services).
                "/port" => ("200 OK", port.as_str()),
                _ => ("404 Not Found", "not found\n"),
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = (&conn).write_all(reply.as_bytes());
        }
    })
}

/// What a GET returned.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Fetched {
    /// The address the name resolved to and the connection went to.
    pub address: String,
    /// HTTP status code.
    pub status: u16,
    /// Body (at most 4 KiB).
    pub body: String,
}

/// Splits `http://host[:port]/path` into host, port and path.
pub fn parse_url(url: &str) -> Result<(String, u16, String)> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| Error::Invalid(format!("{url:?} is not an http:// URL")))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let port_of = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| Error::Invalid(format!("bad port {p:?} in {url:?}")))
    };
    // An IPv6 literal is bracketed (`[fd00::1]`, `[fd00::1]:8080`); any other host has no colon.
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| Error::Invalid(format!("unclosed '[' in {url:?}")))?;
        match after {
            "" => (h, 80),
            _ => match after.strip_prefix(':') {
                Some(p) => (h, port_of(p)?),
                None => return Err(Error::Invalid(format!("junk after ']' in {url:?}"))),
            },
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, port_of(p)?),
            None => (authority, 80),
        }
    };
    if host.is_empty() {
        return Err(Error::Invalid(format!("{url:?} has no host")));
    }
    Ok((host.to_string(), port, path.to_string()))
}

/// GETs `url`, resolving its host with the system resolver (the pod's resolv.conf), so a
/// `clusterset.local` name exercises cluster DNS exactly as an application would.
pub fn get(url: &str, timeout: std::time::Duration) -> Result<Fetched> {
    use std::io::Read;
    use std::net::ToSocketAddrs;
    let (host, port, path) = parse_url(url)?;
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .doing(|| format!("cannot resolve {host}"))?
        .next()
        .ok_or_else(|| peer!("{host} has no address"))?;
    let mut c = std::net::TcpStream::connect_timeout(&addr, timeout)
        .doing(|| format!("cannot connect to {addr} ({host})"))?;
    c.set_read_timeout(Some(timeout))?;
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nUser-Agent: subsea-nettest\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    c.take(64 * 1024)
        .read_to_end(&mut raw)
        .doing(|| format!("reading the response from {addr}"))?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| peer!("{addr} did not answer HTTP"))?;
    Ok(Fetched {
        address: addr.ip().to_string(),
        status,
        body: body.chars().take(4096).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn urls_split_into_host_port_and_path() {
        let p = |u: &str| parse_url(u).expect(u);
        assert_eq!(
            p("http://payment-service.default.svc.clusterset.local/health"),
            (
                "payment-service.default.svc.clusterset.local".into(),
                80,
                "/health".into()
            )
        );
        assert_eq!(p("http://10.0.0.1:8080"), ("10.0.0.1".into(), 8080, "/".into()));
        assert_eq!(
            p("http://[fd00::1]:8080/x"),
            ("fd00::1".into(), 8080, "/x".into())
        );
        assert_eq!(
            p("http://[fd00:243::9f:3e46]/health"),
            ("fd00:243::9f:3e46".into(), 80, "/health".into()),
            "a bracketed address without a port"
        );
        assert!(parse_url("http://[fd00::1/").is_err());
        assert!(parse_url("http://[fd00::1]x/").is_err());
        assert!(
            parse_url("http://fd00::1/").is_err(),
            "an unbracketed IPv6 literal"
        );
        assert!(parse_url("https://x/").is_err());
        assert!(parse_url("http://x:port/").is_err());
        assert!(parse_url("http:///health").is_err());
    }

    #[test]
    fn get_reads_status_and_body_from_the_health_server() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        drop(l);
        std::thread::spawn(move || serve(port, "web-0", "cluster1"));
        let url = format!("http://localhost:{port}/health");
        let got = (0..50)
            .find_map(|_| {
                std::thread::sleep(std::time::Duration::from_millis(20));
                get(&url, std::time::Duration::from_secs(2)).ok()
            })
            .expect("an answer");
        assert_eq!(got.status, 200);
        assert_eq!(got.body, health_body("web-0", "cluster1"));
        let missing = get(
            &format!("http://127.0.0.1:{port}/nope"),
            std::time::Duration::from_secs(2),
        )
        .expect("an answer");
        assert_eq!(missing.status, 404);
    }
}
