//! The crypto alone: what one core can sign per second, for the access tokens sesamed issues;
//! what it can verify; and how many password checks (Argon2id) it can make.
//!
//! The key, header and claims are built the way sesame-core builds them (keys.rs `Keyring::load`,
//! token.rs `AccessClaims`), so the bytes signed here are the bytes the token endpoint signs.

use crate::load::CpuSample;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::Serialize;
use sesame_core::keys::{ActiveKey, SigningKeyPair, Verifier};
use sesame_core::model::SigningAlg;
use std::time::{Duration, Instant};

/// RFC 9068 §2.2 access-token claims, field for field as sesame-core's token.rs serializes them.
#[derive(Serialize)]
pub struct AccessClaims<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    pub aud: &'a str,
    pub client_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<&'a str>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: &'a str,
}

/// A fresh `jti`, as sesame-core's token.rs makes it (16 random bytes, base64url).
pub fn new_jti() -> String {
    B64.encode(sesame_core::crypto::random_bytes::<16>())
}

/// The claims of a client-credentials token for `client_id` at `issuer`, as JSON bytes.
pub fn claims_json(issuer: &str, client_id: &str, now: i64) -> Vec<u8> {
    let jti = new_jti();
    let claims = AccessClaims {
        iss: issuer,
        sub: client_id,
        aud: "api",
        client_id,
        scope: Some("read"),
        iat: now,
        nbf: now,
        exp: now + sesame_core::model::DEFAULT_ACCESS_TOKEN_TTL,
        jti: &jti,
    };
    serde_json::to_vec(&claims).expect("claims serialize")
}

/// A signing key with its JWS header pre-encoded, as `Keyring::load` prepares it.
pub fn active_key(alg: SigningAlg) -> ActiveKey {
    let pair = SigningKeyPair::generate(alg).unwrap_or_else(|e| panic!("{alg} key generation: {e}"));
    // The kid is an RFC 7638 thumbprint: 43 characters of base64url. Its value does not matter here.
    let kid = B64.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        alg.as_str().as_bytes(),
    ));
    ActiveKey::new(kid, pair)
}

pub struct SignRate {
    pub alg: SigningAlg,
    pub per_second: f64,
    /// Share of the bench's CPU that other processes took during the measurement.
    pub others: Option<f64>,
    /// Length of the JWS signing input, to show the payload is realistic.
    pub input_len: usize,
}

/// Signs the JWS signing input of a realistic access token for `duration` on this thread.
pub fn measure(alg: SigningAlg, duration: Duration, core: Option<usize>) -> SignRate {
    let key = active_key(alg);
    let input = signing_input(&key);
    // One signature outside the clock: first-use costs (tables, lazy init) are not the rate.
    key.pair.sign(input.as_bytes()).expect("signing works");
    let (per_second, others) = rate(duration, 1, core, || {
        std::hint::black_box(key.pair.sign(input.as_bytes()).expect("signing works"));
    });
    SignRate {
        alg,
        per_second,
        others,
        input_len: input.len(),
    }
}

/// `header_b64 '.' payload_b64` of a realistic access token: exactly what jwt::sign hands to
/// `SigningKeyPair::sign`.
fn signing_input(key: &ActiveKey) -> String {
    let claims = claims_json(
        "http://127.0.0.1:8080/t/default",
        "Yk3mQ0v8Xw2aZpLr",
        sesame_core::now(),
    );
    let mut input = key.at_jwt_header_b64.clone();
    input.push('.');
    B64.encode_string(&claims, &mut input);
    input
}

/// Runs `op` again and again on this thread for `duration` (and at least `min` times): its rate
/// per second, and the share of the core other processes took meanwhile.
fn rate(duration: Duration, min: u64, core: Option<usize>, mut op: impl FnMut()) -> (f64, Option<f64>) {
    let before = CpuSample::take(core);
    let start = Instant::now();
    let mut n = 0u64;
    let elapsed = loop {
        op();
        n += 1;
        let e = start.elapsed();
        if e >= duration && n >= min {
            break e;
        }
    };
    (
        n as f64 / elapsed.as_secs_f64(),
        CpuSample::take(core).others_since(&before),
    )
}

/// Verifies one signed access token again and again for `duration`: the signature check that
/// introspection does (`Verifier::verify`), without the JSON and HTTP around it.
pub fn measure_verify(alg: SigningAlg, duration: Duration, core: Option<usize>) -> SignRate {
    let key = active_key(alg);
    let input = signing_input(&key);
    let sig = key.pair.sign(input.as_bytes()).expect("signing works");
    let v: Verifier = key.pair.verifier();
    assert!(
        v.verify(input.as_bytes(), &sig),
        "{alg}: the signature does not verify"
    );
    let (per_second, others) = rate(duration, 1, core, || {
        std::hint::black_box(v.verify(std::hint::black_box(input.as_bytes()), &sig));
    });
    SignRate {
        alg,
        per_second,
        others,
        input_len: input.len(),
    }
}

pub struct PasswordRate {
    pub per_second: f64,
    /// Share of the bench's CPU that other processes took during the measurement.
    pub others: Option<f64>,
    /// The PHC parameter string of the hash checked, e.g. `m=19456,t=2,p=1`.
    pub params: String,
}

/// `login::verify_password` of a wrong password against a hash made by `password::hash` (the
/// production Argon2id parameters), again and again for `duration` on this thread: the CPU
/// cost of one sign-in attempt.
pub fn measure_password(duration: Duration, core: Option<usize>) -> PasswordRate {
    let phc = sesame_core::password::hash("sesame-bench password").expect("a valid password hashes");
    // `$argon2id$v=19$m=19456,t=2,p=1$salt$hash`: the fourth field.
    let params = phc.split('$').nth(3).unwrap_or("?").to_owned();
    // One outside the clock, which also checks that a wrong password is refused.
    assert!(
        !sesame_core::login::verify_password(Some(&phc), "wrong"),
        "a wrong password verified"
    );
    // At least a few, however short the duration: one check takes tens of milliseconds.
    let (per_second, others) = rate(duration, 5, core, || {
        std::hint::black_box(sesame_core::login::verify_password(
            Some(std::hint::black_box(&phc)),
            "wrong",
        ));
    });
    PasswordRate {
        per_second,
        others,
        params,
    }
}
