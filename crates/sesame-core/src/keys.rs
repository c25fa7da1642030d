//! Signing keys: generation, sealing at rest, the per-tenant keyring, and the JWKS.
//!
//! Life of a key (per tenant and algorithm): created `next` (published, not signing); at a
//! rotation the `next` key becomes `active` (signing), the old `active` key becomes `retired`
//! with a `publish_until` past the expiry of every token it signed, and a new `next` key is
//! created. So a key is in the JWKS before its first token and after its last one expires.

use crate::crypto::MasterKey;
use crate::ids::TenantId;
use crate::model::{KeyState, SigningAlg, StoredKey};
use crate::{Error, Result};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, ParsedPublicKey, RsaKeyPair, RsaPublicKeyComponents,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use zeroize::Zeroize;

/// A private key ready to sign.
pub enum SigningKeyPair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

impl SigningKeyPair {
    pub fn generate(alg: SigningAlg) -> Result<Self> {
        let failed = |_| Error::Internal(format!("{alg} key generation failed"));
        Ok(match alg {
            SigningAlg::RS256 => SigningKeyPair::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).map_err(failed)?),
            SigningAlg::ES256 => SigningKeyPair::Ec(
                EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).map_err(failed)?,
            ),
            SigningAlg::EdDSA => SigningKeyPair::Ed(Ed25519KeyPair::generate().map_err(failed)?),
        })
    }

    pub fn from_pkcs8(alg: SigningAlg, der: &[u8]) -> Result<Self> {
        let rejected = |e: aws_lc_rs::error::KeyRejected| Error::Internal(format!("{alg} key rejected: {e}"));
        Ok(match alg {
            SigningAlg::RS256 => SigningKeyPair::Rsa(RsaKeyPair::from_pkcs8(der).map_err(rejected)?),
            SigningAlg::ES256 => SigningKeyPair::Ec(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(rejected)?,
            ),
            SigningAlg::EdDSA => SigningKeyPair::Ed(Ed25519KeyPair::from_pkcs8(der).map_err(rejected)?),
        })
    }

    pub fn to_pkcs8(&self) -> Result<Vec<u8>> {
        let failed = |_| Error::Internal("PKCS#8 export failed".into());
        Ok(match self {
            SigningKeyPair::Rsa(k) => k.as_der().map_err(failed)?.as_ref().to_vec(),
            SigningKeyPair::Ec(k) => k.to_pkcs8v1().map_err(failed)?.as_ref().to_vec(),
            SigningKeyPair::Ed(k) => k.to_pkcs8v1().map_err(failed)?.as_ref().to_vec(),
        })
    }

    pub fn alg(&self) -> SigningAlg {
        match self {
            SigningKeyPair::Rsa(_) => SigningAlg::RS256,
            SigningKeyPair::Ec(_) => SigningAlg::ES256,
            SigningKeyPair::Ed(_) => SigningAlg::EdDSA,
        }
    }

    pub fn sign(&self, msg: &[u8]) -> Result<Vec<u8>> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let failed = |_| Error::Internal("signing failed".into());
        Ok(match self {
            SigningKeyPair::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &rng, msg, &mut sig)
                    .map_err(failed)?;
                sig
            }
            SigningKeyPair::Ec(k) => k.sign(&rng, msg).map_err(failed)?.as_ref().to_vec(),
            SigningKeyPair::Ed(k) => k.sign(msg).as_ref().to_vec(),
        })
    }

    /// The public members of the JWK (RFC 7517 §4, RFC 7518 §6, RFC 8037 §2), in the
    /// lexicographic order that RFC 7638 §3.2 hashes for the thumbprint.
    fn public_members(&self) -> Vec<(&'static str, String)> {
        match self {
            SigningKeyPair::Rsa(k) => {
                let pk = k.public_key();
                vec![
                    ("e", B64.encode(pk.exponent().big_endian_without_leading_zero())),
                    ("kty", "RSA".into()),
                    ("n", B64.encode(pk.modulus().big_endian_without_leading_zero())),
                ]
            }
            SigningKeyPair::Ec(k) => {
                // Uncompressed point: 0x04 || x (32 bytes) || y (32 bytes).
                let point = k.public_key().as_ref();
                vec![
                    ("crv", "P-256".into()),
                    ("kty", "EC".into()),
                    ("x", B64.encode(&point[1..33])),
                    ("y", B64.encode(&point[33..65])),
                ]
            }
            SigningKeyPair::Ed(k) => vec![
                ("crv", "Ed25519".into()),
                ("kty", "OKP".into()),
                ("x", B64.encode(k.public_key().as_ref())),
            ],
        }
    }

    /// RFC 7638 thumbprint, used as the `kid`: stable, and unique per key.
    pub fn thumbprint(&self) -> String {
        let members = self.public_members();
        let mut canonical = serde_json::Map::new();
        for (k, v) in members {
            canonical.insert(k.to_owned(), v.into());
        }
        // serde_json's Map is ordered by key (BTreeMap), which is the order RFC 7638 wants.
        let json = serde_json::to_vec(&canonical).expect("map serializes");
        B64.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &json))
    }

    /// The verifier for this key's signatures, as the keyring builds it from the JWK.
    pub fn verifier(&self) -> Verifier {
        let jwk: serde_json::Map<_, _> = self
            .public_members()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.into()))
            .collect();
        Verifier::from_jwk(&serde_json::Value::Object(jwk)).expect("our own public key parses")
    }

    /// The public JWK with `kid`, `alg` and `use` (what a JWKS publishes).
    pub fn public_jwk(&self, kid: &str) -> String {
        let mut jwk = serde_json::Map::new();
        for (k, v) in self.public_members() {
            jwk.insert(k.to_owned(), v.into());
        }
        jwk.insert("kid".into(), kid.into());
        jwk.insert("alg".into(), self.alg().as_str().into());
        jwk.insert("use".into(), "sig".into());
        serde_json::to_string(&jwk).expect("map serializes")
    }
}

fn seal_aad(tenant: &TenantId, kid: &str) -> String {
    format!("sesame:signing-key:{tenant}:{kid}")
}

/// Generates a key and seals it for the store. The private key is never returned in the clear.
pub fn new_stored_key(
    master: &MasterKey,
    tenant: &TenantId,
    alg: SigningAlg,
    state: KeyState,
    now: i64,
) -> Result<StoredKey> {
    let pair = SigningKeyPair::generate(alg)?;
    let kid = pair.thumbprint();
    let mut der = pair.to_pkcs8()?;
    let sealed = master.seal(&seal_aad(tenant, &kid), &der);
    der.zeroize();
    Ok(StoredKey {
        tenant_id: tenant.clone(),
        public_jwk: pair.public_jwk(&kid),
        kid,
        alg,
        state,
        sealed_private_key: sealed,
        created_at: now,
        activated_at: (state == KeyState::Active).then_some(now),
        publish_until: None,
    })
}

/// The key that signs a tenant's tokens for one algorithm, with its JWS header pre-encoded.
pub struct ActiveKey {
    pub kid: String,
    pub pair: SigningKeyPair,
    /// base64url of `{"alg":…,"typ":"at+jwt","kid":…}` (RFC 9068 §2.1).
    pub at_jwt_header_b64: String,
    /// base64url of `{"alg":…,"typ":"JWT","kid":…}`, for ID tokens.
    pub jwt_header_b64: String,
    /// base64url of `{"alg":…,"typ":"logout+jwt","kid":…}` (Back-Channel Logout §2.4).
    pub logout_header_b64: String,
}

impl ActiveKey {
    /// The key with its JWS headers encoded once, one per kind of token.
    pub fn new(kid: String, pair: SigningKeyPair) -> ActiveKey {
        let header =
            |typ: &str| B64.encode(json!({"alg": pair.alg().as_str(), "typ": typ, "kid": kid}).to_string());
        ActiveKey {
            at_jwt_header_b64: header("at+jwt"),
            jwt_header_b64: header("JWT"),
            logout_header_b64: header("logout+jwt"),
            kid,
            pair,
        }
    }

    pub fn alg(&self) -> SigningAlg {
        self.pair.alg()
    }
}

/// A published public key, parsed once (re-parsing per verification costs more than the
/// Ed25519 verification itself).
pub struct Verifier {
    alg: SigningAlg,
    key: ParsedPublicKey,
}

impl Verifier {
    pub(crate) fn from_jwk(jwk: &serde_json::Value) -> Option<Verifier> {
        let member = |k: &str| {
            jwk.get(k)
                .and_then(|v| v.as_str())
                .and_then(|s| B64.decode(s).ok())
        };
        let (alg, key) = match jwk.get("kty")?.as_str()? {
            "RSA" => {
                let components = RsaPublicKeyComponents {
                    n: member("n")?,
                    e: member("e")?,
                };
                let der = components.as_der().ok()?;
                let key = ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, der.as_ref()).ok()?;
                (SigningAlg::RS256, key)
            }
            "EC" => {
                let mut point = vec![4u8];
                point.extend(member("x")?);
                point.extend(member("y")?);
                (
                    SigningAlg::ES256,
                    ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point).ok()?,
                )
            }
            "OKP" => (
                SigningAlg::EdDSA,
                ParsedPublicKey::new(&signature::ED25519, member("x")?).ok()?,
            ),
            _ => return None,
        };
        Some(Verifier { alg, key })
    }

    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.key.verify_sig(msg, sig).is_ok()
    }
}

/// A tenant's keys in memory: the active key per algorithm, a verifier per published key, and
/// the JWKS document (RFC 7517 §5) as bytes, built once when the keys change.
pub struct Keyring {
    active: HashMap<SigningAlg, Arc<ActiveKey>>,
    verifiers: HashMap<String, Verifier>,
    jwks: Vec<u8>,
}

impl Keyring {
    /// Opens the active keys with the master key; `keys` are the tenant's stored keys.
    pub fn load(master: &MasterKey, keys: &[StoredKey], now: i64) -> Result<Keyring> {
        let mut active = HashMap::new();
        let mut verifiers = HashMap::new();
        let mut published = Vec::new();
        for key in keys {
            if key.state == KeyState::Retired && key.publish_until.is_some_and(|t| t < now) {
                continue;
            }
            let jwk: serde_json::Value = serde_json::from_str(&key.public_jwk)
                .map_err(|e| Error::Store(format!("key {}: public JWK: {e}", key.kid)))?;
            let verifier = Verifier::from_jwk(&jwk)
                .ok_or_else(|| Error::Store(format!("key {}: public JWK is incomplete", key.kid)))?;
            verifiers.insert(key.kid.clone(), verifier);
            published.push(jwk);
            if key.state == KeyState::Active {
                let mut der = master
                    .open(&seal_aad(&key.tenant_id, &key.kid), &key.sealed_private_key)
                    .map_err(|_| {
                        Error::Internal(format!(
                            "signing key {} of tenant {} does not open with the master key",
                            key.kid, key.tenant_id
                        ))
                    })?;
                let pair = SigningKeyPair::from_pkcs8(key.alg, &der);
                der.zeroize();
                active.insert(key.alg, Arc::new(ActiveKey::new(key.kid.clone(), pair?)));
            }
        }
        let jwks = serde_json::to_vec(&json!({ "keys": published })).expect("value serializes");
        Ok(Keyring {
            active,
            verifiers,
            jwks,
        })
    }

    pub fn active(&self, alg: SigningAlg) -> Result<&Arc<ActiveKey>> {
        self.active
            .get(&alg)
            .ok_or_else(|| Error::Internal(format!("the tenant has no active {alg} key")))
    }

    pub fn verifier(&self, kid: &str) -> Option<&Verifier> {
        self.verifiers.get(kid)
    }

    pub fn jwks(&self) -> &[u8] {
        &self.jwks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_round_trips_through_the_store_form() {
        let (master, _) = MasterKey::generate();
        let tenant = TenantId::parse("t1").unwrap();
        for alg in SigningAlg::ALL {
            let stored = new_stored_key(&master, &tenant, alg, KeyState::Active, 100).unwrap();
            let next = new_stored_key(&master, &tenant, alg, KeyState::Next, 100).unwrap();
            assert!(!String::from_utf8_lossy(&stored.sealed_private_key).contains("PRIVATE"));
            let ring = Keyring::load(&master, &[stored.clone(), next.clone()], 100).unwrap();
            let key = ring.active(alg).unwrap();
            assert_eq!(key.kid, stored.kid);
            let sig = key.pair.sign(b"msg").unwrap();
            assert!(ring.verifier(&stored.kid).unwrap().verify(b"msg", &sig));
            assert!(!ring.verifier(&stored.kid).unwrap().verify(b"other", &sig));
            assert!(ring.verifier(&next.kid).is_some(), "next key is published");
            let jwks: serde_json::Value = serde_json::from_slice(ring.jwks()).unwrap();
            assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
            assert!(
                jwks["keys"][0].get("d").is_none(),
                "no private members in the JWKS"
            );
        }
    }

    #[test]
    fn a_wrong_master_key_cannot_open_keys() {
        let (master, _) = MasterKey::generate();
        let (other, _) = MasterKey::generate();
        let tenant = TenantId::parse("t1").unwrap();
        let stored = new_stored_key(&master, &tenant, SigningAlg::EdDSA, KeyState::Active, 1).unwrap();
        assert!(Keyring::load(&other, &[stored], 1).is_err());
    }

    #[test]
    fn expired_retired_keys_are_not_published() {
        let (master, _) = MasterKey::generate();
        let tenant = TenantId::parse("t1").unwrap();
        let mut old = new_stored_key(&master, &tenant, SigningAlg::EdDSA, KeyState::Retired, 1).unwrap();
        old.publish_until = Some(50);
        let ring = Keyring::load(&master, std::slice::from_ref(&old), 49).unwrap();
        assert!(ring.verifier(&old.kid).is_some());
        let ring = Keyring::load(&master, &[old.clone()], 51).unwrap();
        assert!(ring.verifier(&old.kid).is_none());
    }
}
