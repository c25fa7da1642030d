//! Signing a person in with the device authorization grant (RFC 8628): ask for a code pair,
//! show the person where to go and which code to enter, and poll the token endpoint until
//! they approve or deny it, honouring `interval` and `slow_down`.

use crate::client::{oauth_error, Client};
use crate::error::{clean, Error, Result};
use crate::tokens::TokenSet;
use serde::Deserialize;
use std::time::Duration;

/// RFC 8628 §3.4 grant type.
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 8628 §3.2: the interval when the issuer names none.
const DEFAULT_INTERVAL: u64 = 5;
/// RFC 8628 §3.5: each `slow_down` adds 5 seconds.
const SLOW_DOWN_STEP: u64 = 5;

/// A device authorization (RFC 8628 §3.2): what to show the person, and the device code to
/// poll with. `Debug` does not show the device code.
#[derive(Clone, Deserialize)]
#[non_exhaustive]
pub struct DeviceAuthorization {
    device_code: String,
    /// The code the person enters on the verification page.
    pub user_code: String,
    /// The page where the person enters the code.
    pub verification_uri: String,
    /// The page with the code already filled in (the person still confirms it), if offered.
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    /// Seconds until the codes expire.
    pub expires_in: u64,
    /// Seconds to wait between polls.
    #[serde(default)]
    pub interval: Option<u64>,
}

impl std::fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Asks the issuer's device authorization endpoint (RFC 8628 §3.1) for a code pair. The
    /// client must have opted in to the device grant at the issuer.
    pub async fn device_authorization(&self, scopes: &[String]) -> Result<DeviceAuthorization> {
        let Some(url) = self.metadata().device_authorization_endpoint.clone() else {
            return Err(Error::Protocol {
                url: self.issuer().to_owned(),
                problem: "the issuer does not offer the device authorization grant".into(),
            });
        };
        let scope = scopes.join(" ");
        let mut form = Vec::new();
        if !scope.is_empty() {
            form.push(("scope", scope.as_str()));
        }
        let (status, body) = self.post(&url, &form).await?;
        if !status.is_success() {
            return Err(oauth_error(&url, status, &body));
        }
        let mut answer: DeviceAuthorization = serde_json::from_slice(&body).map_err(|e| Error::Protocol {
            url: url.clone(),
            problem: format!("not a device authorization response: {e}"),
        })?;
        // Printed to a terminal: nothing from the network reaches it unescaped.
        answer.user_code = clean(&answer.user_code);
        answer.verification_uri = clean(&answer.verification_uri);
        answer.verification_uri_complete = answer.verification_uri_complete.map(|u| clean(&u));
        Ok(answer)
    }

    /// One poll of the token endpoint (RFC 8628 §3.4). `Ok(None)` while the person has not
    /// decided (`authorization_pending`); [`Error::OAuth`] with `slow_down` when polled too
    /// fast; [`Error::AccessDenied`] or [`Error::DeviceCodeExpired`] when it is over.
    pub async fn poll_device(&self, authorization: &DeviceAuthorization) -> Result<Option<TokenSet>> {
        match self
            .token(&[
                ("grant_type", GRANT_TYPE),
                ("device_code", authorization.device_code.as_str()),
            ])
            .await
        {
            Ok(tokens) => Ok(Some(tokens)),
            Err(Error::OAuth { error, .. }) if error == "authorization_pending" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Waits for the person to approve `authorization`, polling every `interval` seconds and
    /// 5 seconds slower after each `slow_down` (RFC 8628 §3.5), until tokens come, the person
    /// denies ([`Error::AccessDenied`]) or the codes expire ([`Error::DeviceCodeExpired`]).
    pub async fn wait_for_device(&self, authorization: &DeviceAuthorization) -> Result<TokenSet> {
        let mut interval = authorization.interval.unwrap_or(DEFAULT_INTERVAL).max(1);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(authorization.expires_in);
        loop {
            tokio::time::sleep(Duration::from_secs(interval)).await;
            match self.poll_device(authorization).await {
                Ok(Some(tokens)) => return Ok(tokens),
                Ok(None) => {}
                Err(Error::OAuth { error, .. }) if error == "slow_down" => interval += SLOW_DOWN_STEP,
                Err(e) => return Err(e),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::DeviceCodeExpired);
            }
        }
    }

    /// The whole device flow: a code pair, `show` to tell the person where to go and what to
    /// enter, then [`Client::wait_for_device`].
    pub async fn login_device(
        &self,
        scopes: &[String],
        show: impl FnOnce(&DeviceAuthorization),
    ) -> Result<TokenSet> {
        let authorization = self.device_authorization(scopes).await?;
        show(&authorization);
        self.wait_for_device(&authorization).await
    }
}
