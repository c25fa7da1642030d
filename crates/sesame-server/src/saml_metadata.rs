//! IdP metadata of SAML connections fetched from a URL, with Sesame's outbound HTTP rules for
//! IdPs: no redirects (an answer must not point Sesame's requests elsewhere), 5 s to connect,
//! 10 s in all, at most 256 KiB. Fetched when a connection is created or updated with an
//! `idp_metadata_url` (the admin API, `[[tenants.sso]]`), never on a sign-in.

use sesame_core::federation::ConnectionSpec;
use sesame_core::{Error, Result};
use std::time::Duration;

const MAX_METADATA: usize = sesame_core::saml::MAX_XML;

/// The metadata document at `url`.
pub async fn fetch(url: &str) -> Result<String> {
    let failed =
        |why: String| Error::InvalidRequest(format!("the IdP metadata at {url} cannot be fetched: {why}"));
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| failed(e.to_string()))?;
    let mut resp = client
        .get(url)
        .header(
            reqwest::header::ACCEPT,
            "application/samlmetadata+xml, application/xml, text/xml",
        )
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !resp.status().is_success() {
        return Err(failed(format!("HTTP {}", resp.status().as_u16())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| failed(e.to_string()))? {
        if body.len() + chunk.len() > MAX_METADATA {
            return Err(failed("larger than 256 KiB".into()));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| failed("not UTF-8".into()))
}

/// A saml spec naming `idp_metadata_url` without inline metadata gets the document fetched.
pub async fn fill(spec: &mut ConnectionSpec) -> Result<()> {
    if spec.kind == "saml" && spec.idp_metadata_xml.is_none() {
        if let Some(url) = &spec.idp_metadata_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(Error::invalid_request("idp_metadata_url is not an http(s) URL"));
            }
            spec.idp_metadata_xml = Some(fetch(url).await?);
        }
    }
    Ok(())
}
