//! The master key that seals signing keys at rest, and randomness.

use crate::{Error, Result};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use zeroize::Zeroize;

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .expect("the system CSPRNG failed");
    out
}

/// N random bytes as base64url without padding, drawn again while the first character is `-` or
/// `_`: an id that starts with `-` reads as an option to every command line that takes it
/// (`sesame sessions create --client -Cx…`). Costs under 6 bits of the entropy at most once in 32.
pub fn random_id<const N: usize>() -> String {
    use base64::Engine;
    loop {
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<N>());
        if id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return id;
        }
    }
}

/// A plaintext sealed by [`MasterKey::seal`] with this associated data proves the key is the
/// one the store was initialised with, before any signing key is touched.
const CHECK_PLAINTEXT: &[u8] = b"sesame master key check v1";
const CHECK_AAD: &str = "sesame:master-key-check";

/// 256-bit key for AES-256-GCM. Sealed blobs are `nonce || ciphertext || tag`; the associated
/// data names what is sealed, so a blob cannot be moved to another row and still open.
pub struct MasterKey {
    key: LessSafeKey,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<MasterKey> {
        if bytes.len() != 32 {
            return Err(Error::InvalidRequest(format!(
                "the master key must be 32 bytes (44 characters of base64), not {} bytes",
                bytes.len()
            )));
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| Error::Internal("AES key".into()))?;
        Ok(MasterKey {
            key: LessSafeKey::new(key),
        })
    }

    /// Parses the base64 form kept in a file or an environment variable.
    pub fn from_base64(text: &str) -> Result<MasterKey> {
        let mut bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| Error::invalid_request("the master key is not valid base64"))?;
        let key = Self::from_bytes(&bytes);
        bytes.zeroize();
        key
    }

    /// A new random key and its base64 form (to be written to the key file once).
    pub fn generate() -> (MasterKey, String) {
        let mut bytes = random_bytes::<32>();
        let text = STANDARD.encode(bytes);
        let key = Self::from_bytes(&bytes).expect("32 bytes");
        bytes.zeroize();
        (key, text)
    }

    pub fn seal(&self, aad: &str, plaintext: &[u8]) -> Vec<u8> {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad.as_bytes()),
                &mut buf,
            )
            .expect("AES-GCM seal");
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&buf);
        buf.zeroize();
        out
    }

    /// Opens a sealed blob; fails (without detail) for a wrong key, wrong `aad` or damage.
    pub fn open(&self, aad: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(Error::Internal("sealed value is truncated".into()));
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| Error::Internal("nonce".into()))?;
        let mut buf = ct.to_vec();
        let len = self
            .key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut buf)
            .map_err(|_| Error::Internal("sealed value does not open with this master key".into()))?
            .len();
        buf.truncate(len);
        Ok(buf)
    }

    /// The value stored beside the keys to recognise this master key later.
    pub fn check_value(&self) -> Vec<u8> {
        self.seal(CHECK_AAD, CHECK_PLAINTEXT)
    }

    pub fn matches_check_value(&self, check: &[u8]) -> bool {
        matches!(self.open(CHECK_AAD, check), Ok(p) if p == CHECK_PLAINTEXT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_never_start_like_an_option() {
        for _ in 0..2000 {
            let id = random_id::<12>();
            assert_eq!(id.len(), 16);
            assert!(id.starts_with(|c: char| c.is_ascii_alphanumeric()), "{id}");
        }
    }

    #[test]
    fn seal_open_round_trip_and_bindings() {
        let (k, text) = MasterKey::generate();
        let sealed = k.seal("a", b"secret");
        assert_eq!(k.open("a", &sealed).unwrap(), b"secret");
        assert!(k.open("b", &sealed).is_err(), "aad binds the blob to its row");
        let (other, _) = MasterKey::generate();
        assert!(other.open("a", &sealed).is_err());
        let again = MasterKey::from_base64(&text).unwrap();
        assert!(again.matches_check_value(&k.check_value()));
        assert!(!other.matches_check_value(&k.check_value()));
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(k.open("a", &tampered).is_err());
    }

    #[test]
    fn bad_master_keys_are_named() {
        assert!(MasterKey::from_base64("not base64!")
            .unwrap_err()
            .to_string()
            .contains("base64"));
        assert!(MasterKey::from_base64("AAAA")
            .unwrap_err()
            .to_string()
            .contains("32 bytes"));
    }
}
