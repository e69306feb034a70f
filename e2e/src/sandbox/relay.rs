//! A byte relay between a TCP or Unix listener and a TCP or Unix target, so the root
//! namespace can reach API servers inside the sandbox's namespaces without any address or
//! route of its own changing.

use anyhow::{Context, Result, anyhow};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};

/// One `LISTEN=TARGET` mapping; `unix:PATH` or `HOST:PORT` on either side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    /// Where to listen.
    pub listen: String,
    /// Where to connect.
    pub target: String,
}

/// Parses `LISTEN=TARGET`.
pub fn parse(text: &str) -> Result<Mapping> {
    let (listen, target) = text.split_once('=').ok_or_else(|| {
        anyhow!("relay mapping {text:?} must look like LISTEN=TARGET, e.g. 127.0.0.1:7000=unix:/run/x.sock")
    })?;
    Ok(Mapping {
        listen: listen.into(),
        target: target.into(),
    })
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn connect(target: &str) -> std::io::Result<Box<dyn Io>> {
    Ok(match target.strip_prefix("unix:") {
        Some(path) => Box::new(UnixStream::connect(path).await?),
        None => Box::new(TcpStream::connect(target).await?),
    })
}

async fn pipe(mut a: Box<dyn Io>, target: String) {
    if let Ok(mut b) = connect(&target).await {
        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
    }
}

/// Serves one mapping forever.
pub async fn serve(m: Mapping) -> Result<()> {
    match m.listen.strip_prefix("unix:") {
        Some(path) => {
            let _ = std::fs::remove_file(path);
            let l = UnixListener::bind(path).with_context(|| format!("cannot listen on {path}"))?;
            loop {
                let (s, _) = l.accept().await?;
                tokio::spawn(pipe(Box::new(s), m.target.clone()));
            }
        }
        None => {
            let l = TcpListener::bind(&m.listen)
                .await
                .with_context(|| format!("cannot listen on {}", m.listen))?;
            loop {
                let (s, _) = l.accept().await?;
                tokio::spawn(pipe(Box::new(s), m.target.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mappings_need_an_equals_sign() {
        assert_eq!(
            parse("127.0.0.1:1=unix:/x").expect("valid"),
            Mapping {
                listen: "127.0.0.1:1".into(),
                target: "unix:/x".into()
            }
        );
        assert!(
            parse("127.0.0.1:1")
                .unwrap_err()
                .to_string()
                .contains("LISTEN=TARGET")
        );
    }
}
