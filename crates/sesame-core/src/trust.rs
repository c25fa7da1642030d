//! Tokens from outside issuers: their keys (a JWKS from a discovery document, a URL, or given
//! inline), the verification of their signatures, and trust policies — the conditions under
//! which a tenant accepts such a token and the Sesame service identity it maps to.
//!
//! Fetching keys is I/O, so core asks a [`KeyFetcher`] (the server's cache) for them; every
//! decision is made here.

use crate::ids::TenantId;
use crate::keys::Verifier;
use crate::model::validate_scope_token;
use crate::{Error, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Clock skew tolerated on `exp`, `nbf` and `iat` between us and an outside issuer.
pub const LEEWAY: i64 = 30;
/// Longest outside JWT we read.
const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Most keys one JWKS may hold.
const MAX_KEYS: usize = 100;

/// Where the keys of an outside issuer (or of a `private_key_jwt` client) come from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeySource {
    /// An OpenID Provider configuration document (its URL); its `issuer` must be the one the
    /// policy trusts, and its `jwks_uri` names the keys.
    Discovery(String),
    /// A JWKS document at a URL.
    JwksUri(String),
    /// A JWKS document given inline (JSON text).
    Inline(String),
}

impl KeySource {
    /// For logs and refusals: the URL, or "inline".
    pub fn describe(&self) -> &str {
        match self {
            KeySource::Discovery(u) | KeySource::JwksUri(u) => u,
            KeySource::Inline(_) => "inline JWKS",
        }
    }
}

/// The server's cache of outside keys. `refresh` asks for a fresh copy (a token named a key
/// the cached copy lacks); the cache decides how often it really fetches again.
#[async_trait::async_trait]
pub trait KeyFetcher: Send + Sync {
    /// `issuer`: for a discovery document, the `issuer` it must state.
    async fn keys(
        &self,
        source: &KeySource,
        issuer: Option<&str>,
        refresh: bool,
    ) -> std::result::Result<Arc<OutsideJwks>, String>;
}

/// A parsed JWKS (RFC 7517 §5) of an outside party: one verifier per usable signing key. Each
/// key's algorithm is fixed by the key itself (RSA → RS256, EC P-256 → ES256, Ed25519 → EdDSA).
pub struct OutsideJwks {
    keys: Vec<(Option<String>, Verifier)>,
}

impl std::fmt::Debug for OutsideJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<_> = self.keys.iter().map(|(k, _)| k.as_deref()).collect();
        f.debug_struct("OutsideJwks").field("kids", &kids).finish()
    }
}

impl OutsideJwks {
    /// Parses a JWKS document. Keys not for signatures (`use` other than `sig`), of another
    /// type or curve, or whose `alg` is not the one their type implies are left out; a
    /// document with no usable key is an error.
    pub fn parse(bytes: &[u8]) -> std::result::Result<OutsideJwks, String> {
        let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
        let list = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("the JWKS has no \"keys\" array")?;
        let mut keys = Vec::new();
        for jwk in list.iter().take(MAX_KEYS) {
            if jwk.get("use").and_then(Value::as_str).is_some_and(|u| u != "sig") {
                continue;
            }
            let crv = jwk.get("crv").and_then(Value::as_str);
            let curve_ok = match jwk.get("kty").and_then(Value::as_str) {
                Some("RSA") => true,
                Some("EC") => crv == Some("P-256"),
                Some("OKP") => crv == Some("Ed25519"),
                _ => false,
            };
            if !curve_ok {
                continue;
            }
            let Some(verifier) = Verifier::from_jwk(jwk) else {
                continue;
            };
            if jwk
                .get("alg")
                .and_then(Value::as_str)
                .is_some_and(|a| a != verifier.alg().as_str())
            {
                continue;
            }
            let kid = jwk.get("kid").and_then(Value::as_str).map(str::to_owned);
            keys.push((kid, verifier));
        }
        if keys.is_empty() {
            return Err("the JWKS has no usable signing key (RSA, EC P-256 or Ed25519)".into());
        }
        Ok(OutsideJwks { keys })
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key a token's `kid` names; without a `kid`, the only key, if there is one only.
    fn find(&self, kid: Option<&str>) -> Option<&Verifier> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|(k, _)| k.as_deref() == Some(kid))
                .map(|(_, v)| v),
            None if self.keys.len() == 1 => Some(&self.keys[0].1),
            None => None,
        }
    }
}

/// Why an outside JWT was not accepted. `UnknownKey` is told apart because a fresh copy of the
/// keys may have it (the issuer rotated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    UnknownKey(String),
    Invalid(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::UnknownKey(m) | Refusal::Invalid(m) => f.write_str(m),
        }
    }
}

/// A JWT whose signature verified with an outside key.
#[derive(Debug, Clone)]
pub struct VerifiedJwt {
    pub typ: Option<String>,
    pub claims: Map<String, Value>,
}

#[derive(Deserialize)]
struct Header {
    alg: Option<String>,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<Value>,
}

fn split(token: &str) -> std::result::Result<(&str, &str, &str), Refusal> {
    let bad = || Refusal::Invalid("the token is not a JWS in compact serialization".into());
    if token.len() > MAX_TOKEN_LEN {
        return Err(Refusal::Invalid(format!(
            "the token is longer than {MAX_TOKEN_LEN} bytes"
        )));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    Ok((h, p, s))
}

/// The claims of a JWT before any check: only to choose which keys and policies apply. Nothing
/// read here is trusted until [`verify_jws`] has checked the signature.
pub fn unverified_claims(token: &str) -> std::result::Result<Map<String, Value>, Refusal> {
    let (_, p, _) = split(token)?;
    let payload = B64
        .decode(p)
        .map_err(|_| Refusal::Invalid("the token's payload is not base64url".into()))?;
    serde_json::from_slice(&payload)
        .map_err(|_| Refusal::Invalid("the token's payload is not a JSON object".into()))
}

/// Verifies a JWS (RFC 7515) with `jwks`. RFC 8725 §3.1: the algorithm is the key's, never
/// the token's: `alg: none` and the HMAC algorithms (which would let the public key be used as
/// a shared secret) are refused before any key is looked at, and a token whose `alg` differs
/// from its key's is refused. Time, issuer and audience are the caller's to check.
pub fn verify_jws(jwks: &OutsideJwks, token: &str) -> std::result::Result<VerifiedJwt, Refusal> {
    let (h, p, s) = split(token)?;
    let header: Header = B64
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| Refusal::Invalid("the token's header is not a JSON object".into()))?;
    let alg = header
        .alg
        .ok_or_else(|| Refusal::Invalid("the token's header has no alg".into()))?;
    if alg.eq_ignore_ascii_case("none") {
        return Err(Refusal::Invalid(
            "alg 'none' is refused: the token is not signed".into(),
        ));
    }
    if alg.to_ascii_uppercase().starts_with("HS") {
        return Err(Refusal::Invalid(format!(
            "alg '{}' is refused: HMAC would take a public key for a shared secret",
            alg.escape_debug()
        )));
    }
    // RFC 7515 §4.1.11: we understand no extension, so a critical one refuses the token.
    if header.crit.is_some() {
        return Err(Refusal::Invalid(
            "the token's header has 'crit' extensions we do not understand".into(),
        ));
    }
    let verifier = jwks.find(header.kid.as_deref()).ok_or_else(|| {
        Refusal::UnknownKey(match &header.kid {
            Some(kid) => format!("unknown kid '{}'", kid.escape_debug()),
            None => "the token names no kid and the issuer has several keys".into(),
        })
    })?;
    if alg != verifier.alg().as_str() {
        return Err(Refusal::Invalid(format!(
            "alg '{}' is not the algorithm of the key it names ({})",
            alg.escape_debug(),
            verifier.alg()
        )));
    }
    let sig = B64
        .decode(s)
        .map_err(|_| Refusal::Invalid("the signature is not base64url".into()))?;
    if !verifier.verify(&token.as_bytes()[..h.len() + 1 + p.len()], &sig) {
        return Err(Refusal::Invalid("the signature does not verify".into()));
    }
    let payload = B64
        .decode(p)
        .map_err(|_| Refusal::Invalid("the token's payload is not base64url".into()))?;
    let claims = serde_json::from_slice(&payload)
        .map_err(|_| Refusal::Invalid("the token's payload is not a JSON object".into()))?;
    Ok(VerifiedJwt {
        typ: header.typ,
        claims,
    })
}

/// RFC 7519 §4.1.4, §4.1.5, §4.1.6: `exp` is required and passed, `nbf` reached, `iat` not in
/// the future; with `max_age`, `iat` is required and at most that old.
pub fn check_times(
    claims: &Map<String, Value>,
    now: i64,
    max_age: Option<i64>,
) -> std::result::Result<(), String> {
    let num = |name: &str| claims.get(name).and_then(Value::as_i64);
    let exp = num("exp").ok_or("the token has no exp")?;
    if now >= exp + LEEWAY {
        return Err("expired: exp has passed".into());
    }
    if num("nbf").is_some_and(|nbf| nbf > now + LEEWAY) {
        return Err("not yet valid: nbf is in the future".into());
    }
    let iat = num("iat");
    if iat.is_some_and(|iat| iat > now + LEEWAY) {
        return Err("iat is in the future".into());
    }
    if let Some(max_age) = max_age {
        let iat = iat.ok_or("condition 'max_age' failed: the token has no iat")?;
        if now - iat > max_age {
            return Err(format!(
                "condition 'max_age' failed: the token is older than {max_age} s"
            ));
        }
    }
    Ok(())
}

/// Whether `aud` (a string or an array, RFC 7519 §4.1.3) names `wanted`.
pub fn has_audience(claims: &Map<String, Value>, wanted: &str) -> bool {
    match claims.get("aud") {
        Some(Value::String(a)) => a == wanted,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(wanted)),
        _ => false,
    }
}

/// A claim condition: equal to one value, or to one of a set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ClaimRule {
    Equals(String),
    OneOf(Vec<String>),
}

impl ClaimRule {
    fn allows(&self, value: &str) -> bool {
        match self {
            ClaimRule::Equals(v) => v == value,
            ClaimRule::OneOf(set) => set.iter().any(|v| v == value),
        }
    }
}

/// A trust policy as an admin writes it (admin API, CLI, config file). The conditions are
/// `audience`, `subject`, `claims`, `max_age` and `typ`; the mapping is `identity`, `scopes`
/// and `audiences`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustPolicySpec {
    pub name: String,
    /// The outside issuer, compared exactly with the token's `iss`.
    pub issuer: String,
    /// One key source: a discovery document URL, a JWKS URL, or a JWKS inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// A JWKS document, as JSON text or as an object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    /// Condition: `aud` names this (required: a token for someone else is never accepted).
    pub audience: String,
    /// Condition: `sub` equals this, or matches it as a glob when it holds `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Condition: each claim (a dotted path reaches into nested objects) equals the value or
    /// one of the set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, ClaimRule>,
    /// Condition: `iat` at most this many seconds ago.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
    /// Condition: the JWS header's `typ` (compared without case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
    /// The Sesame service identity a matching token becomes (the `sub` of the exchanged token),
    /// e.g. a name or a source's resource id `ri.sesame.<tenant>.source.<uuid>`.
    pub identity: String,
    /// The most the exchanged token may carry.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The audiences an exchanged token may be for.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Client authentication only (a client naming this policy, `private_key_jwt`): a token may
    /// authenticate more than once, and needs no `jti`. For issuers whose tokens are reused
    /// until they are rotated (Kubernetes projected service-account tokens); such a token is
    /// then bounded only by its `exp` and the policy's `max_age`, which is required. Off: each
    /// `jti` authenticates once on every replica.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub assertion_reuse: bool,
}

/// A trust policy of a tenant, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustPolicy {
    pub tenant_id: TenantId,
    pub spec: TrustPolicySpec,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TrustPolicy {
    /// The admin API's and CLI's view: the spec with its tenant and times.
    pub fn view(&self) -> Value {
        let mut v = serde_json::to_value(&self.spec).expect("spec serializes");
        let obj = v.as_object_mut().expect("object");
        obj.insert("tenant_id".into(), self.tenant_id.as_str().into());
        obj.insert("created_at".into(), self.created_at.into());
        obj.insert("updated_at".into(), self.updated_at.into());
        v
    }
}

fn printable(field: &str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() || value.len() > max || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::InvalidRequest(format!(
            "{field} '{}' is not valid: 1 to {max} printable characters without spaces",
            value.escape_debug()
        )));
    }
    Ok(())
}

/// Where keys are fetched from (a policy's `discovery_url` or `jwks_uri`, a client's
/// `jwks_uri`): https, or plain http only to this machine (`localhost`, `127.0.0.0/8`, `[::1]`),
/// where no one on the network can swap the keys. Development and tests use the latter.
pub fn validate_key_url(field: &str, url: &str) -> Result<()> {
    printable(field, url, 2000)?;
    let refused = || {
        Error::InvalidRequest(format!(
            "{field} '{}' is not an https URL (plain http only to localhost, 127.0.0.0/8 or [::1])",
            url.escape_debug()
        ))
    };
    if url.starts_with("https://") {
        return Ok(());
    }
    let rest = url.strip_prefix("http://").ok_or_else(refused)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(refused());
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback {
        Ok(())
    } else {
        Err(refused())
    }
}

/// A trust policy's name: 1 to 64 of `A-Z a-z 0-9 - _ .`.
pub fn validate_policy_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if !ok {
        return Err(Error::InvalidRequest(format!(
            "trust policy name '{}' is not valid: 1 to 64 of A-Z a-z 0-9 - _ .",
            name.escape_debug()
        )));
    }
    Ok(())
}

impl TrustPolicySpec {
    pub fn validate(&self) -> Result<()> {
        validate_policy_name(&self.name)?;
        printable("issuer", &self.issuer, 2000)?;
        let sources = [
            self.discovery_url.is_some(),
            self.jwks_uri.is_some(),
            self.jwks.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() != 1 {
            return Err(Error::invalid_request(
                "a trust policy needs exactly one key source: discovery_url, jwks_uri or jwks",
            ));
        }
        if let Some(u) = &self.discovery_url {
            validate_key_url("discovery_url", u)?;
        }
        if let Some(u) = &self.jwks_uri {
            validate_key_url("jwks_uri", u)?;
        }
        if self.jwks.is_some() {
            let text = self
                .inline_jwks()
                .ok_or_else(|| Error::invalid_request("jwks must be a JWKS object or its JSON text"))?;
            OutsideJwks::parse(text.as_bytes()).map_err(|e| Error::InvalidRequest(format!("jwks: {e}")))?;
        }
        printable("audience", &self.audience, 512)?;
        if let Some(s) = &self.subject {
            if s.is_empty() || s.len() > 512 || s.chars().any(char::is_control) {
                return Err(Error::invalid_request(
                    "subject must be 1 to 512 printable characters",
                ));
            }
        }
        if self.claims.len() > 32 {
            return Err(Error::invalid_request(
                "a trust policy has at most 32 claim conditions",
            ));
        }
        for (name, rule) in &self.claims {
            printable("claim name", name, 256)?;
            if matches!(rule, ClaimRule::OneOf(set) if set.is_empty()) {
                return Err(Error::InvalidRequest(format!(
                    "claim '{}' has an empty set of allowed values",
                    name.escape_debug()
                )));
            }
        }
        if let Some(age) = self.max_age {
            if !(1..=7 * 24 * 3600).contains(&age) {
                return Err(Error::InvalidRequest(format!(
                    "max_age must be between 1 and 604800 seconds, not {age}"
                )));
            }
        }
        if let Some(t) = &self.typ {
            printable("typ", t, 64)?;
        }
        if self.assertion_reuse && self.max_age.is_none() {
            return Err(Error::invalid_request(
                "assertion_reuse needs max_age: a token that may authenticate many times must have a bounded age",
            ));
        }
        printable("identity", &self.identity, 256)?;
        for s in &self.scopes {
            validate_scope_token(s)?;
        }
        for a in &self.audiences {
            printable("audience", a, 512)?;
        }
        Ok(())
    }

    /// The inline JWKS as JSON text (it may have been given as an object or as text).
    fn inline_jwks(&self) -> Option<String> {
        match self.jwks.as_ref()? {
            Value::String(s) => Some(s.clone()),
            v @ Value::Object(_) => Some(v.to_string()),
            _ => None,
        }
    }

    pub fn key_source(&self) -> KeySource {
        if let Some(u) = &self.discovery_url {
            KeySource::Discovery(u.clone())
        } else if let Some(u) = &self.jwks_uri {
            KeySource::JwksUri(u.clone())
        } else {
            KeySource::Inline(self.inline_jwks().unwrap_or_default())
        }
    }

    /// Checks the conditions on a token whose signature verified with this policy's keys.
    /// The refusal names the condition that failed (never the token).
    pub fn check(&self, token: &VerifiedJwt, now: i64) -> std::result::Result<(), String> {
        let claims = &token.claims;
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err("condition 'issuer' failed".into());
        }
        if let Some(typ) = &self.typ {
            if !token.typ.as_deref().is_some_and(|t| t.eq_ignore_ascii_case(typ)) {
                return Err(format!("condition 'typ' failed: the token's typ is not '{typ}'"));
            }
        }
        check_times(claims, now, self.max_age)?;
        if !has_audience(claims, &self.audience) {
            return Err(format!(
                "condition 'audience' failed: aud does not name '{}'",
                self.audience
            ));
        }
        if let Some(pattern) = &self.subject {
            let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("");
            let ok = if pattern.contains('*') {
                glob(pattern, sub)
            } else {
                pattern == sub
            };
            if !ok {
                return Err("condition 'subject' failed: sub does not match".into());
            }
        }
        for (name, rule) in &self.claims {
            let value = claim_at(claims, name).and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
                _ => None,
            });
            if !value.is_some_and(|v| rule.allows(&v)) {
                return Err(format!("condition 'claims.{name}' failed"));
            }
        }
        Ok(())
    }
}

/// A claim by a dotted path into nested objects. Claim names may hold dots themselves
/// (Kubernetes' `kubernetes.io`), so each split is tried, the whole name first.
fn claim_at<'a>(obj: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = obj.get(path) {
        return Some(v);
    }
    for (i, _) in path.match_indices('.') {
        if let Some(Value::Object(inner)) = obj.get(&path[..i]) {
            if let Some(v) = claim_at(inner, &path[i + 1..]) {
                return Some(v);
            }
        }
    }
    None
}

/// `*` matches any run of characters (also none); everything else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if parts.len() == 1 {
        return pattern == text;
    }
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

/// What a trusted outside token became.
#[derive(Debug)]
pub struct Matched<'p> {
    pub policy: &'p TrustPolicy,
    pub token: VerifiedJwt,
}

/// Verifies `token` against the tenant's trust policies for its issuer: the signature with the
/// policy's keys (fetched again once when the token names an unknown key), then the policy's
/// conditions. The first policy whose conditions hold wins. Every refusal is `invalid_grant`
/// naming what failed, for each policy tried.
pub async fn match_policy<'p>(
    policies: &'p [TrustPolicy],
    keys: &dyn KeyFetcher,
    token: &str,
    now: i64,
) -> Result<Matched<'p>> {
    let refused = |why: String| Error::InvalidGrant(why);
    let unverified = unverified_claims(token).map_err(|r| refused(format!("the token is not valid: {r}")))?;
    let iss = unverified.get("iss").and_then(Value::as_str).unwrap_or("");
    let candidates: Vec<&TrustPolicy> = policies.iter().filter(|p| p.spec.issuer == iss).collect();
    if candidates.is_empty() {
        let shown: String = iss.chars().take(200).collect();
        return Err(refused(format!(
            "untrusted issuer: no trust policy of this tenant trusts '{}'",
            shown.escape_debug()
        )));
    }
    let mut failures = Vec::new();
    for policy in candidates {
        let source = policy.spec.key_source();
        let why = match verify_with(keys, &source, Some(&policy.spec.issuer), token).await {
            Ok(verified) => match policy.spec.check(&verified, now) {
                Ok(()) => {
                    return Ok(Matched {
                        policy,
                        token: verified,
                    })
                }
                Err(why) => why,
            },
            Err(why) => why,
        };
        failures.push(format!("trust policy '{}': {why}", policy.spec.name));
    }
    Err(refused(failures.join("; ")))
}

/// Verifies a JWS with the keys of `source`, asking once for fresh keys on an unknown `kid`.
pub async fn verify_with(
    keys: &dyn KeyFetcher,
    source: &KeySource,
    issuer: Option<&str>,
    token: &str,
) -> std::result::Result<VerifiedJwt, String> {
    let jwks = keys.keys(source, issuer, false).await?;
    match verify_jws(&jwks, token) {
        Err(Refusal::UnknownKey(_)) => {
            let fresh = keys.keys(source, issuer, true).await?;
            verify_jws(&fresh, token).map_err(|r| r.to_string())
        }
        other => other.map_err(|r| r.to_string()),
    }
}

// Admin rules --------------------------------------------------------------------------------

/// Creates a trust policy in a tenant; `Conflict` if the name is taken.
pub async fn create_policy(
    store: &dyn crate::store::Store,
    tenant: &TenantId,
    spec: TrustPolicySpec,
    now: i64,
) -> Result<TrustPolicy> {
    crate::admin::require_tenant(store, tenant).await?;
    spec.validate()?;
    let policy = TrustPolicy {
        tenant_id: tenant.clone(),
        spec,
        created_at: now,
        updated_at: now,
    };
    store.create_trust_policy(&policy).await?;
    Ok(policy)
}

/// Replaces a policy's spec; `None` if the tenant has no policy of that name.
pub async fn replace_policy(
    store: &dyn crate::store::Store,
    tenant: &TenantId,
    spec: TrustPolicySpec,
    now: i64,
) -> Result<Option<TrustPolicy>> {
    spec.validate()?;
    let Some(old) = store.get_trust_policy(tenant, &spec.name).await? else {
        return Ok(None);
    };
    let policy = TrustPolicy {
        tenant_id: tenant.clone(),
        spec,
        created_at: old.created_at,
        updated_at: now,
    };
    Ok(store.update_trust_policy(&policy).await?.then_some(policy))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKeyPair;
    use crate::model::SigningAlg;
    use serde_json::json;

    fn sign(pair: &SigningKeyPair, header: Value, claims: Value) -> String {
        let mut out = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let sig = pair.sign(out.as_bytes()).unwrap();
        out.push('.');
        out.push_str(&B64.encode(sig));
        out
    }

    fn jwks_of(pair: &SigningKeyPair, kid: &str) -> OutsideJwks {
        let jwk: Value = serde_json::from_str(&pair.public_jwk(kid)).unwrap();
        OutsideJwks::parse(json!({ "keys": [jwk] }).to_string().as_bytes()).unwrap()
    }

    #[test]
    fn each_algorithm_verifies_with_the_key_and_only_its_own_alg() {
        for alg in SigningAlg::ALL {
            let pair = SigningKeyPair::generate(alg).unwrap();
            let jwks = jwks_of(&pair, "k1");
            let ok = sign(
                &pair,
                json!({"alg": alg.as_str(), "kid": "k1"}),
                json!({"sub": "x"}),
            );
            assert_eq!(verify_jws(&jwks, &ok).unwrap().claims["sub"], "x");
            let other = if alg == SigningAlg::EdDSA {
                "ES256"
            } else {
                "EdDSA"
            };
            let lying = sign(&pair, json!({"alg": other, "kid": "k1"}), json!({"sub": "x"}));
            assert!(matches!(verify_jws(&jwks, &lying), Err(Refusal::Invalid(_))));
        }
    }

    #[test]
    fn none_hmac_and_unknown_kids_are_refused() {
        let pair = SigningKeyPair::generate(SigningAlg::RS256).unwrap();
        let jwks = jwks_of(&pair, "k1");
        let none = format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none","kid":"k1"}"#),
            B64.encode(r#"{"sub":"x"}"#)
        );
        assert!(verify_jws(&jwks, &none).unwrap_err().to_string().contains("none"));
        // The HS256 attack: the public key's JWK text as the HMAC secret.
        let signing_input = format!(
            "{}.{}",
            B64.encode(r#"{"alg":"HS256","kid":"k1"}"#),
            B64.encode(r#"{"sub":"x"}"#)
        );
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, pair.public_jwk("k1").as_bytes());
        let tag = aws_lc_rs::hmac::sign(&key, signing_input.as_bytes());
        let hs = format!("{signing_input}.{}", B64.encode(tag.as_ref()));
        assert!(verify_jws(&jwks, &hs).unwrap_err().to_string().contains("HMAC"));
        let unknown = sign(&pair, json!({"alg": "RS256", "kid": "k2"}), json!({}));
        assert!(matches!(verify_jws(&jwks, &unknown), Err(Refusal::UnknownKey(_))));
    }

    fn spec() -> TrustPolicySpec {
        serde_json::from_value(json!({
            "name": "ci",
            "issuer": "https://ci.example",
            "jwks_uri": "https://ci.example/jwks",
            "audience": "sesame",
            "subject": "repo:acme/*:ref:refs/heads/main",
            "claims": { "repository": "acme/app", "ref": ["refs/heads/main", "refs/heads/release"],
                        "kubernetes.io.namespace": "prod" },
            "max_age": 600,
            "identity": "ri.sesame.acme.source.1",
            "scopes": ["deploy"],
        }))
        .unwrap()
    }

    #[test]
    fn conditions_name_what_failed() {
        let s = spec();
        s.validate().unwrap();
        let good = json!({
            "iss": "https://ci.example", "aud": ["x", "sesame"], "sub": "repo:acme/app:ref:refs/heads/main",
            "repository": "acme/app", "ref": "refs/heads/release", "kubernetes.io": {"namespace": "prod"},
            "iat": 1000, "exp": 1300,
        });
        let tok = |v: Value| VerifiedJwt {
            typ: None,
            claims: v.as_object().unwrap().clone(),
        };
        assert_eq!(s.check(&tok(good.clone()), 1100), Ok(()));
        let with = |k: &str, v: Value| {
            let mut g = good.clone();
            g[k] = v;
            g
        };
        let cases = [
            (with("aud", json!("other")), 1100, "audience"),
            (
                with("sub", json!("repo:evil/app:ref:refs/heads/main")),
                1100,
                "subject",
            ),
            (with("ref", json!("refs/heads/dev")), 1100, "claims.ref"),
            (
                with("kubernetes.io", json!({"namespace": "dev"})),
                1100,
                "claims.kubernetes.io.namespace",
            ),
            (good.clone(), 1400, "expired"),
            (with("nbf", json!(2000)), 1100, "nbf"),
            (with("exp", json!(99999)), 1900, "max_age"),
            (with("iss", json!("https://other")), 1100, "issuer"),
        ];
        for (claims, now, want) in cases {
            let err = s.check(&tok(claims), now).unwrap_err();
            assert!(err.contains(want), "{err} should name {want}");
        }
        let mut typed = s.clone();
        typed.typ = Some("at+jwt".into());
        assert!(typed.check(&tok(good), 1100).unwrap_err().contains("typ"));
    }

    #[test]
    fn keys_come_over_https_or_from_this_machine() {
        for ok in [
            "https://ci.example/jwks",
            "http://127.0.0.1:9100/static/jwks.json",
            "http://localhost/jwks",
            "http://[::1]:8080/jwks",
            "http://127.8.9.1/jwks",
        ] {
            assert!(validate_key_url("jwks_uri", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://ci.example/jwks",
            "http://127.0.0.1.evil.example/jwks",
            "http://localhost@evil.example/jwks",
            "http://10.0.0.1/jwks",
            "ftp://127.0.0.1/jwks",
            "https://ci.example/ jwks",
        ] {
            assert!(validate_key_url("jwks_uri", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob("repo:*:ref:main", "repo:a/b:ref:main"));
        assert!(glob("a*", "a"));
        assert!(glob("*b*d", "abcd"));
        assert!(!glob("a*c", "ab"));
        assert!(!glob("repo:*:ref:main", "repo:a:ref:mainx"));
    }

    #[test]
    fn a_policy_needs_one_key_source_and_an_audience() {
        let mut s = spec();
        s.discovery_url = Some("https://ci.example/.well-known/openid-configuration".into());
        assert!(s.validate().is_err());
        let mut s = spec();
        s.jwks_uri = None;
        assert!(s.validate().is_err());
        s.jwks = Some(json!({"keys": []}));
        assert!(s.validate().is_err());
        let mut s = spec();
        s.audience = String::new();
        assert!(s.validate().is_err());
    }
}
