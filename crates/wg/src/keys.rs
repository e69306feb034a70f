//! Keys in WireGuard's text form and Submariner's pre-shared-key convention.

use base64::Engine;
use sha2::{Digest, Sha256};

/// A 32-byte Curve25519 key.
pub type Key = [u8; 32];

/// A new random private key.
pub fn generate_private() -> Key {
    rand::random()
}

/// The public key of a private key.
pub fn public_of(private: &Key) -> Key {
    let secret = boringtun::x25519::StaticSecret::from(*private);
    boringtun::x25519::PublicKey::from(&secret).to_bytes()
}

/// A key as standard base64, as `wg` and Submariner's `backend_config.publicKey` write it.
pub fn to_base64(key: &Key) -> String {
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// Parses a standard-base64 key; `None` unless it decodes to exactly 32 bytes.
pub fn from_base64(text: &str) -> Option<Key> {
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?
        .try_into()
        .ok()
}

/// Submariner's WireGuard pre-shared key: SHA-256 of the PSK text it is configured with (the
/// std-base64 text of the broker's 48-byte PSK, `CE_IPSEC_PSK`).
pub fn psk_from_text(psk_text: &str) -> Key {
    Sha256::digest(psk_text.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_psk_is_sha256_of_the_text() {
        let private = generate_private();
        let public = public_of(&private);
        assert_eq!(from_base64(&to_base64(&public)), Some(public));
        assert_eq!(from_base64("c2hvcnQ="), None, "wrong length");
        assert_eq!(from_base64("not base64!"), None);
        // echo -n abc | sha256sum
        assert_eq!(
            psk_from_text("abc")
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
