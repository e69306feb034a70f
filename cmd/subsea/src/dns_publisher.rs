//! `subsea dns-publisher`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use subsea_extdns_core::plan::Policy;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum PolicyArg {
    /// Create, update and delete the records this owner registered.
    Sync,
    /// Create and update, never delete.
    UpsertOnly,
}

#[derive(clap::Args)]
pub struct DnsPublisherArgs {
    /// Kubeconfig of the broker (an admin or a role that reads ServiceImports and Leases and
    /// writes ConfigMaps in the broker namespace).
    #[arg(long, env = "KUBECONFIG", value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig.
    #[arg(long)]
    context: Option<String>,
    /// The broker namespace.
    #[arg(long, default_value = subsea_api::labels::BROKER_NAMESPACE, value_name = "NS")]
    broker_namespace: String,
    /// The authoritative DNS server that takes RFC 2136 updates and zone transfers (TCP).
    #[arg(long, value_name = "IP:PORT")]
    server: SocketAddr,
    /// The zone to publish into, e.g. clusters.example.com. Names default to
    /// <service>.<namespace>.<zone>; the Service annotation
    /// external-dns.alpha.kubernetes.io/hostname names them instead.
    #[arg(long, value_name = "ZONE")]
    zone: String,
    /// BIND key file with the TSIG key (hmac-sha256/384/512), as `tsig-keygen` writes it. Mode 0600.
    #[arg(long, value_name = "FILE")]
    tsig_key_file: PathBuf,
    /// Owner ID in ExternalDNS's TXT registry: only records registered to it are changed.
    /// Give every publisher or ExternalDNS sharing the zone its own.
    #[arg(long, default_value = "subsea", value_name = "ID")]
    txt_owner_id: String,
    /// sync removes records whose export is gone; upsert-only never deletes.
    #[arg(long, value_enum, default_value = "sync")]
    policy: PolicyArg,
    /// Only manage names within this domain (repeatable; default: the whole zone).
    #[arg(long = "domain-filter", value_name = "DOMAIN")]
    domain_filter: Vec<String>,
    /// TTL of the records in seconds (the Service annotation external-dns.alpha.kubernetes.io/ttl overrides).
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    ttl: u32,
    /// Port of /metrics (0: off).
    #[arg(long, default_value_t = 0, value_name = "PORT")]
    metrics_port: u16,
}

pub async fn run(a: DnsPublisherArgs) -> Result<()> {
    subsea_extdns::run(subsea_extdns::Options {
        kubeconfig: a.kubeconfig,
        context: a.context,
        broker_namespace: a.broker_namespace,
        server: a.server,
        zone: a.zone,
        key_file: a.tsig_key_file,
        owner: a.txt_owner_id,
        policy: match a.policy {
            PolicyArg::Sync => Policy::Sync,
            PolicyArg::UpsertOnly => Policy::UpsertOnly,
        },
        domain_filter: a.domain_filter,
        ttl: a.ttl,
        metrics_port: a.metrics_port,
    })
    .await
    .map_err(Into::into)
}
