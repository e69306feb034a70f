//! `subsea wireguard`: the gateway's userspace WireGuard data path as a standalone interface,
//! configured by flags, so it can be measured against wireguard-go and boringtun-cli on the
//! same bed (`e2e/bench/datapath.sh`) and inspected with `wg show`.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};

#[derive(clap::Args)]
pub struct WireguardArgs {
    /// Interface (TUN device) name.
    name: String,
    /// UDP port to listen on.
    #[arg(long, default_value_t = 51820)]
    listen_port: u16,
    /// File holding the private key (as `wg genkey` writes it).
    #[arg(long, value_name = "FILE")]
    private_key: PathBuf,
    /// File holding a pre-shared key (as `wg genpsk` writes it), used with every peer.
    #[arg(long, value_name = "FILE")]
    preshared_key: Option<PathBuf>,
    /// A peer: `PUBLIC_KEY,ENDPOINT,ALLOWED_IP[;ALLOWED_IP...][,KEEPALIVE]` (repeatable),
    /// e.g. `xTIB...=,192.168.77.2:51820,10.2.0.0/24;10.99.0.2/32,25`.
    #[arg(long = "peer", value_name = "SPEC")]
    peers: Vec<String>,
    /// MTU of the interface.
    #[arg(long, default_value_t = subsea_datapath::DEFAULT_MTU)]
    mtu: u16,
    /// Directory of the UAPI socket for `wg show`.
    #[arg(long, default_value = subsea_datapath::uapi::SOCKET_DIR, value_name = "DIR")]
    uapi_dir: PathBuf,
}

fn key_file(path: &PathBuf, what: &str) -> Result<subsea_wg::keys::Key> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))?;
    subsea_wg::keys::from_base64(text.trim()).ok_or_else(|| {
        anyhow!(
            "{} does not hold a base64 WireGuard key (make one with `wg genkey`)",
            path.display()
        )
    })
}

fn peer(spec: &str) -> Result<subsea_wg::PeerConfig> {
    let parts: Vec<&str> = spec.split(',').collect();
    if !(3..=4).contains(&parts.len()) {
        bail!("--peer {spec:?}: expected PUBLIC_KEY,ENDPOINT,ALLOWED_IPS[,KEEPALIVE]");
    }
    let public_key = subsea_wg::keys::from_base64(parts[0])
        .ok_or_else(|| anyhow!("--peer {spec:?}: {:?} is not a base64 WireGuard key", parts[0]))?;
    let endpoint = parts[1]
        .parse()
        .map_err(|e| anyhow!("--peer {spec:?}: endpoint {:?}: {e}", parts[1]))?;
    let allowed_ips = parts[2]
        .split(';')
        .map(|c| subsea_cidr::Cidr::parse(c).map_err(|e| anyhow!("--peer {spec:?}: allowed IP {c:?}: {e}")))
        .collect::<Result<Vec<_>>>()?;
    let keepalive = parts
        .get(3)
        .map(|k| {
            k.parse::<u16>()
                .map_err(|e| anyhow!("--peer {spec:?}: keepalive {k:?}: {e}"))
        })
        .transpose()?;
    Ok(subsea_wg::PeerConfig {
        public_key,
        endpoint: Some(endpoint),
        allowed_ips,
        keepalive,
    })
}

pub async fn run(a: WireguardArgs) -> Result<()> {
    let peers = a.peers.iter().map(|p| peer(p)).collect::<Result<Vec<_>>>()?;
    let cfg = subsea_datapath::Config {
        name: a.name.clone(),
        mtu: a.mtu,
        port: a.listen_port,
        private_key: key_file(&a.private_key, "private key")?,
        psk: a
            .preshared_key
            .as_ref()
            .map(|p| key_file(p, "pre-shared key"))
            .transpose()?,
    };
    let d = std::sync::Arc::new(subsea_datapath::Datapath::start(&cfg)?);
    d.set_peers(&peers);
    let get = {
        let d = d.clone();
        std::sync::Arc::new(move || d.uapi_get())
    };
    let sock = subsea_datapath::uapi::serve(&a.uapi_dir, &a.name, get)?;
    tracing::info!(interface = %a.name, port = d.port(), peers = peers.len(), "userspace WireGuard interface up");
    subsea_runtime::shutdown::signal().await;
    let _ = std::fs::remove_file(sock);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_specs_parse_and_bad_ones_name_the_part() {
        let key = subsea_wg::keys::to_base64(&[3; 32]);
        let p = peer(&format!("{key},192.168.77.2:51820,10.2.0.0/24;10.99.0.2/32,25")).expect("valid");
        assert_eq!(p.allowed_ips.len(), 2);
        assert_eq!(p.keepalive, Some(25));
        assert!(
            peer("nokey,1.2.3.4:1,10.0.0.0/8")
                .unwrap_err()
                .to_string()
                .contains("not a base64 WireGuard key")
        );
        assert!(
            peer(&format!("{key},nowhere,10.0.0.0/8"))
                .unwrap_err()
                .to_string()
                .contains("endpoint")
        );
        assert!(
            peer(&format!("{key},1.2.3.4:1"))
                .unwrap_err()
                .to_string()
                .contains("expected")
        );
    }
}
