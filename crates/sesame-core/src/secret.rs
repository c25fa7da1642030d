//! Client secrets and admin tokens: generated here, stored as SHA-256, compared in constant time.
//!
//! A fast hash is right for these: they are 256-bit random values, so a slow hash would add no
//! guessing resistance and would burn CPU on the token endpoint.

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A secret in the clear: printed once to whoever created it, never logged, wiped on drop.
/// Not `Clone`: one-shot values are passed, not copied.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Secret(String);

impl Secret {
    /// 256 bits from the system CSPRNG, base64url without padding (43 characters).
    pub fn generate() -> Secret {
        Secret(B64.encode(crate::crypto::random_bytes::<32>()))
    }

    pub fn from_string(s: String) -> Secret {
        Secret(s)
    }

    /// The only way to read the secret.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> [u8; 32] {
        hash_secret(self.0.as_bytes())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

pub fn hash_secret(secret: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, secret);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Hashes `presented` and compares it with `stored` in constant time.
pub fn verify_secret(presented: &[u8], stored: &[u8; 32]) -> bool {
    hash_secret(presented).ct_eq(stored).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_256_bit_and_distinct() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert_eq!(B64.decode(a.expose()).unwrap().len(), 32);
        assert_ne!(a.expose(), b.expose());
        assert_eq!(format!("{a:?}"), "Secret(<redacted>)");
    }

    #[test]
    fn verify_accepts_only_the_secret() {
        let s = Secret::generate();
        let h = s.hash();
        assert!(verify_secret(s.expose().as_bytes(), &h));
        assert!(!verify_secret(b"wrong", &h));
        assert!(!verify_secret(b"", &h));
    }
}
