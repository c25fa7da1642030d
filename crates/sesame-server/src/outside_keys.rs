//! The keys of outside issuers (trust policies) and of `private_key_jwt` clients, fetched and
//! cached: the [`KeyFetcher`] of core.
//!
//! A fetched JWKS is kept as long as its `Cache-Control: max-age` says, within
//! [`TTL_FLOOR`]..=[`TTL_CEILING`] (a discovery document and the JWKS it names: the shorter of
//! the two). A token naming a key the cached copy lacks asks for a fresh copy, which is fetched
//! at most once per [`REFETCH_INTERVAL`] per source, so tokens with made-up `kid`s cannot make
//! us hammer an issuer. Fetches time out after 5 s, read at most [`MAX_BYTES`], follow no
//! redirect, and a failed fetch keeps serving the copy it had. Logs name URLs, never tokens.

use sesame_core::trust::{KeyFetcher, KeySource, OutsideJwks};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TTL_FLOOR: Duration = Duration::from_secs(60);
pub const TTL_CEILING: Duration = Duration::from_secs(24 * 3600);
/// Without caching headers.
const TTL_DEFAULT: Duration = Duration::from_secs(300);
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
pub const MAX_BYTES: usize = 256 * 1024;

struct Entry {
    jwks: Arc<OutsideJwks>,
    fresh_until: Instant,
    /// When a fresh copy was last fetched because a token named an unknown key.
    forced_at: Option<Instant>,
}

pub struct OutsideKeys {
    http: reqwest::Client,
    entries: Mutex<HashMap<KeySource, Entry>>,
}

impl Default for OutsideKeys {
    fn default() -> Self {
        OutsideKeys {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .connect_timeout(Duration::from_secs(3))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("the HTTP client builds"),
            entries: Mutex::default(),
        }
    }
}

/// `Cache-Control: max-age` (RFC 9111 §5.2.2.1), within the floor and the ceiling; `no-store`
/// and `no-cache` get the floor.
pub fn cache_ttl(header: Option<&str>) -> Duration {
    let Some(value) = header else {
        return TTL_DEFAULT;
    };
    let mut ttl = None;
    for directive in value.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return TTL_FLOOR;
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            ttl = n.trim_matches('"').parse::<u64>().ok().map(Duration::from_secs);
        }
    }
    ttl.unwrap_or(TTL_DEFAULT).clamp(TTL_FLOOR, TTL_CEILING)
}

impl OutsideKeys {
    async fn get(&self, url: &str) -> Result<(Vec<u8>, Duration), String> {
        let failed = |e: &dyn std::fmt::Display| format!("cannot fetch {url}: {e}");
        let mut resp = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| failed(&e))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(format!("cannot fetch {url}: status {}", resp.status()));
        }
        if resp.content_length().is_some_and(|n| n > MAX_BYTES as u64) {
            return Err(format!("{url} is larger than {MAX_BYTES} bytes"));
        }
        let ttl = cache_ttl(
            resp.headers()
                .get(reqwest::header::CACHE_CONTROL)
                .and_then(|v| v.to_str().ok()),
        );
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| failed(&e))? {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(format!("{url} is larger than {MAX_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((body, ttl))
    }

    async fn fetch(
        &self,
        source: &KeySource,
        issuer: Option<&str>,
    ) -> Result<(OutsideJwks, Duration), String> {
        match source {
            KeySource::Inline(text) => Ok((OutsideJwks::parse(text.as_bytes())?, TTL_CEILING)),
            KeySource::JwksUri(url) => {
                let (body, ttl) = self.get(url).await?;
                Ok((OutsideJwks::parse(&body).map_err(|e| format!("{url}: {e}"))?, ttl))
            }
            KeySource::Discovery(url) => {
                let (body, doc_ttl) = self.get(url).await?;
                let doc: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| format!("{url} is not JSON: {e}"))?;
                // OpenID Connect Discovery §4.3: the document's issuer is the one expected, exactly.
                let stated = doc.get("issuer").and_then(|v| v.as_str()).unwrap_or("");
                if issuer.is_some_and(|i| i != stated) {
                    return Err(format!("the discovery document at {url} states another issuer"));
                }
                let jwks_uri = doc
                    .get("jwks_uri")
                    .and_then(|v| v.as_str())
                    .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                    .ok_or_else(|| format!("the discovery document at {url} has no http(s) jwks_uri"))?;
                let (body, ttl) = self.get(jwks_uri).await?;
                let jwks = OutsideJwks::parse(&body).map_err(|e| format!("{jwks_uri}: {e}"))?;
                Ok((jwks, ttl.min(doc_ttl)))
            }
        }
    }
}

#[async_trait::async_trait]
impl KeyFetcher for OutsideKeys {
    async fn keys(
        &self,
        source: &KeySource,
        issuer: Option<&str>,
        refresh: bool,
    ) -> Result<Arc<OutsideJwks>, String> {
        let now = Instant::now();
        let cached = {
            let mut entries = self.entries.lock().expect("lock");
            match entries.get_mut(source) {
                Some(e) if matches!(source, KeySource::Inline(_)) => return Ok(e.jwks.clone()),
                Some(e) if !refresh && now < e.fresh_until => return Ok(e.jwks.clone()),
                Some(e)
                    if refresh
                        && e.forced_at
                            .is_some_and(|t| now.duration_since(t) < REFETCH_INTERVAL) =>
                {
                    return Ok(e.jwks.clone())
                }
                Some(e) => {
                    if refresh {
                        e.forced_at = Some(now);
                    }
                    Some(e.jwks.clone())
                }
                None => None,
            }
        };
        match self.fetch(source, issuer).await {
            Ok((jwks, ttl)) => {
                let jwks = Arc::new(jwks);
                let mut entries = self.entries.lock().expect("lock");
                let forced_at = entries
                    .get(source)
                    .and_then(|e| e.forced_at)
                    .or(refresh.then_some(now));
                entries.insert(
                    source.clone(),
                    Entry {
                        jwks: jwks.clone(),
                        fresh_until: Instant::now() + ttl,
                        forced_at,
                    },
                );
                Ok(jwks)
            }
            Err(why) => {
                tracing::warn!(source = source.describe(), error = %why, "outside keys: fetch failed");
                // A copy we had still serves: an issuer that is down for a moment does not stop
                // every exchange.
                cached.ok_or_else(|| format!("the keys could not be fetched: {why}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_is_honoured_within_bounds() {
        assert_eq!(cache_ttl(Some("public, max-age=600")), Duration::from_secs(600));
        assert_eq!(cache_ttl(Some("max-age=1")), TTL_FLOOR);
        assert_eq!(cache_ttl(Some("max-age=99999999")), TTL_CEILING);
        assert_eq!(cache_ttl(Some("no-store")), TTL_FLOOR);
        assert_eq!(cache_ttl(None), TTL_DEFAULT);
        assert_eq!(cache_ttl(Some("max-age=junk")), TTL_DEFAULT);
    }
}
