//! People's passwords: Argon2id with the OWASP parameters (19 MiB, 2 iterations, 1 lane), stored
//! as PHC strings so that the parameters can change without breaking stored hashes.

use crate::{Error, Result};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 1024;

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks the length rules; the message names the rule, never the password.
pub fn check_policy(password: &str) -> Result<()> {
    let n = password.chars().count();
    if !(MIN_LEN..=MAX_LEN).contains(&n) {
        return Err(Error::InvalidRequest(format!(
            "a password must be {MIN_LEN} to {MAX_LEN} characters long"
        )));
    }
    Ok(())
}

/// Hashes a password that passed [`check_policy`]. CPU-heavy (tens of milliseconds): callers
/// on an async runtime run it off the async workers.
pub fn hash(password: &str) -> Result<String> {
    check_policy(password)?;
    let salt = SaltString::encode_b64(&crate::crypto::random_bytes::<16>())
        .map_err(|e| Error::Internal(format!("salt: {e}")))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("password hashing: {e}")))
}

/// Verifies a password against a stored PHC string (constant-time inside argon2).
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_salted_and_verify() {
        let a = hash("correct horse").unwrap();
        let b = hash("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify("correct horse", &a));
        assert!(!verify("correct horsE", &a));
        assert!(!verify("correct horse", "not a phc string"));
    }

    #[test]
    fn the_policy_names_the_rule() {
        assert!(hash("short").unwrap_err().to_string().contains("8 to 1024"));
        assert!(check_policy(&"x".repeat(1025)).is_err());
        assert!(check_policy("eight ch").is_ok());
    }
}
