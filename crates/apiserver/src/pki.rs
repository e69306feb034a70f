//! The server's certificate authority, serving certificate, admin token and kubeconfig, all kept
//! in the data directory. Files holding keys or tokens are written with mode 0600.

use std::fs;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::error::{Context, Result};
use base64::Engine;
use rand::Rng;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

/// Everything TLS and authentication need.
pub struct Pki {
    /// PEM of the CA certificate (what clients trust).
    pub ca_pem: String,
    /// PEM chain of the serving certificate.
    pub cert_pem: String,
    /// PEM of the serving key.
    pub key_pem: String,
    /// The admin bearer token.
    pub admin_token: String,
    /// The key bound service-account tokens are signed with.
    pub signing_key: Vec<u8>,
}

/// Writes `contents` to `path` with mode 0600, replacing it atomically.
pub fn write_secret(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("failed to create {}", tmp.display()))?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    f.write_all(contents)?;
    f.sync_all()?;
    fs::rename(&tmp, path).with_context(|| format!("failed to write {}", path.display()))?;
    Ok(())
}

fn hostname() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

fn ca_params() -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "subsea-apiserver-ca");
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    Ok(params)
}

/// Loads the CA and token from `dir`, creating them on first start, and issues a fresh serving
/// certificate for the current listen address and SANs.
pub fn ensure(dir: &Path, listen: SocketAddr, extra_sans: &[String]) -> Result<Pki> {
    let ca_cert_path = dir.join("ca.crt");
    let ca_key_path = dir.join("ca.key");
    let (ca_pem, ca_key) = if ca_cert_path.exists() && ca_key_path.exists() {
        let pem = fs::read_to_string(&ca_cert_path).context("failed to read ca.crt")?;
        let key = KeyPair::from_pem(&fs::read_to_string(&ca_key_path).context("failed to read ca.key")?)
            .context("ca.key is not a valid PEM private key")?;
        (pem, key)
    } else {
        let key = KeyPair::generate().context("failed to generate the CA key")?;
        let cert = ca_params()?
            .self_signed(&key)
            .context("failed to self-sign the CA")?;
        write_secret(&ca_key_path, key.serialize_pem().as_bytes())?;
        fs::write(&ca_cert_path, cert.pem()).context("failed to write ca.crt")?;
        (cert.pem(), key)
    };
    // The issuer is rebuilt from the same parameters: a leaf only needs the CA's subject and key.
    let issuer = Issuer::new(ca_params()?, &ca_key);

    let mut sans: Vec<SanType> = Vec::new();
    let mut add = |s: &str| {
        let san = match s.parse::<IpAddr>() {
            Ok(ip) => Some(SanType::IpAddress(ip)),
            Err(_) => s.to_string().try_into().ok().map(SanType::DnsName),
        };
        if let Some(san) = san.filter(|s| !sans.contains(s)) {
            sans.push(san);
        }
    };
    if !listen.ip().is_unspecified() {
        add(&listen.ip().to_string());
    }
    add("127.0.0.1");
    add("::1");
    add("localhost");
    if let Some(h) = hostname() {
        add(&h);
    }
    for s in extra_sans {
        add(s);
    }
    let leaf_key = KeyPair::generate().context("failed to generate the serving key")?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params
        .distinguished_name
        .push(DnType::CommonName, "subsea-apiserver");
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    let leaf = params
        .signed_by(&leaf_key, &issuer)
        .context("failed to sign the serving certificate")?;
    let cert_pem = leaf.pem();
    let key_pem = leaf_key.serialize_pem();
    fs::write(dir.join("apiserver.crt"), &cert_pem).context("failed to write apiserver.crt")?;
    write_secret(&dir.join("apiserver.key"), key_pem.as_bytes())?;

    let admin_token = random_secret(&dir.join("admin.token"))?;
    // Kept across restarts, so tokens issued before a restart stay valid until they expire.
    let signing_key = random_secret(&dir.join("sa-signing.key"))?.into_bytes();
    Ok(Pki {
        ca_pem,
        cert_pem,
        key_pem,
        admin_token,
        signing_key,
    })
}

/// A 256-bit random secret (hex) kept in `path`, made on first use.
fn random_secret(path: &Path) -> Result<String> {
    match fs::read_to_string(path) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_string()),
        _ => {
            let bytes: [u8; 32] = rand::rng().random();
            let t: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            write_secret(path, t.as_bytes())?;
            Ok(t)
        }
    }
}

/// The URL clients use for a listen address (`0.0.0.0` and `::` mean loopback).
pub fn server_url(listen: SocketAddr) -> String {
    let ip = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
        ip if ip.is_unspecified() => "[::1]".to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    };
    format!("https://{ip}:{}", listen.port())
}

/// A kubeconfig with one context, `context`, for `url` with the given CA and token.
pub fn kubeconfig(context: &str, url: &str, ca_pem: &str, token: &str) -> String {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: {context}\n  cluster:\n    server: {url}\n    certificate-authority-data: {ca}\nusers:\n- name: {context}-admin\n  user:\n    token: {token}\ncontexts:\n- name: {context}\n  context:\n    cluster: {context}\n    user: {context}-admin\n    namespace: default\ncurrent-context: {context}\n"
    )
}
