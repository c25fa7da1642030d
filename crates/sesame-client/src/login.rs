//! Signing a person in from a terminal with the authorization code flow and PKCE (RFC 7636):
//! through a loopback redirect (RFC 8252 §7.3) or a code the person pastes from `{issuer}/oob`.
//!
//! The device authorization grant (RFC 8628) is the third way, in `device`.

use crate::client::{from_code, Client};
use crate::error::{clean, Error, Result};
use crate::tokens::TokenSet;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use reqwest::Url;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The path of the loopback redirect URI; the client registers `http://127.0.0.1/callback`
/// (any port is accepted for it, RFC 8252 §7.3).
pub const LOOPBACK_PATH: &str = "/callback";

/// An authorization request ready for the browser, and what is needed to finish it.
/// `Debug` does not show the PKCE verifier.
pub struct AuthorizationRequest {
    /// The URL to open in a browser.
    pub url: Url,
    /// The redirect URI the request names; sent again with the code.
    pub redirect_uri: String,
    state: String,
    verifier: String,
}

impl std::fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("url", &self.url.as_str())
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

fn random(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    // The system's generator; without it there is nothing safe to do.
    aws_lc_rs::rand::fill(&mut b).expect("the system random number generator works");
    B64.encode(b)
}

impl Client {
    /// Builds a code request for `redirect_uri` with `scopes`, a fresh `state` and a PKCE S256
    /// challenge (RFC 7636 §4.1-4.2: 32 random bytes, base64url, hashed with SHA-256).
    pub fn authorization_request(
        &self,
        redirect_uri: &str,
        scopes: &[String],
    ) -> Result<AuthorizationRequest> {
        let endpoint = &self.metadata().authorization_endpoint;
        let mut url = Url::parse(endpoint).map_err(|e| Error::Protocol {
            url: self.issuer().to_owned(),
            problem: format!("authorization_endpoint is not a URL: {e}"),
        })?;
        let verifier = random(32);
        let challenge = B64.encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            verifier.as_bytes(),
        ));
        let state = random(16);
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", self.client_id())
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        Ok(AuthorizationRequest {
            url,
            redirect_uri: redirect_uri.to_owned(),
            state,
            verifier,
        })
    }

    /// The pasted-code way: a request whose redirect URI is `{issuer}/oob`, where Sesame shows
    /// the code for the person to copy. Finish it with [`Client::finish`].
    pub fn pasted_code_request(&self, scopes: &[String]) -> Result<AuthorizationRequest> {
        let redirect = format!("{}/oob", self.issuer().trim_end_matches('/'));
        self.authorization_request(&redirect, scopes)
    }

    /// Redeems the code that came back for `request`. With a pasted code this may be called
    /// again after [`Error::InvalidGrant`] (a mistyped code): the verifier stays valid until a
    /// code is redeemed.
    pub async fn finish(&self, request: &AuthorizationRequest, code: &str) -> Result<TokenSet> {
        self.exchange_code(code.trim(), &request.redirect_uri, &request.verifier)
            .await
    }

    /// The loopback way, start to end: listens on `127.0.0.1` on a random port, builds the
    /// request, hands its URL to `open` (which opens a browser or prints it), waits up to
    /// `timeout` for the browser to come back, checks `state` and `iss`, and redeems the code.
    pub async fn login_loopback(
        &self,
        scopes: &[String],
        timeout: Duration,
        open: impl FnOnce(&Url),
    ) -> Result<TokenSet> {
        let listener = Loopback::bind().await?;
        let request = self.authorization_request(&listener.redirect_uri(), scopes)?;
        open(&request.url);
        let code = listener.wait(self, &request, timeout).await?;
        self.finish(&request, &code).await
    }
}

/// A one-shot HTTP listener on `127.0.0.1:<random port>` that receives the browser's redirect.
#[derive(Debug)]
pub struct Loopback {
    listener: TcpListener,
    port: u16,
}

/// The most of a request the listener reads: a request line with a code and state is far less.
const MAX_REQUEST: usize = 16 * 1024;
/// How long one connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

impl Loopback {
    /// Binds `127.0.0.1:0`. The IP literal, not `localhost`, so that the browser cannot reach
    /// some other interface (RFC 8252 §8.3).
    pub async fn bind() -> Result<Loopback> {
        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| Error::Invalid(format!("cannot listen on 127.0.0.1: {e}")))?;
        let port = listener
            .local_addr()
            .map_err(|e| Error::Invalid(format!("cannot listen on 127.0.0.1: {e}")))?
            .port();
        Ok(Loopback { listener, port })
    }

    /// `http://127.0.0.1:{port}/callback`.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{LOOPBACK_PATH}", self.port)
    }

    /// Waits for the redirect that answers `request` and returns its code. Requests for other
    /// paths (a favicon) and redirects with another `state` (a stale tab, or another local
    /// program guessing) are answered and ignored; an error response ends the wait.
    pub async fn wait(
        self,
        client: &Client,
        request: &AuthorizationRequest,
        timeout: Duration,
    ) -> Result<String> {
        let wait = async {
            loop {
                let Ok((stream, _)) = self.listener.accept().await else {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                if let Some(result) = handle(stream, client, request).await {
                    return result;
                }
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| Error::BrowserTimeout(timeout))?
    }
}

/// One connection: `None` to keep waiting, else the outcome of the sign-in.
async fn handle(
    mut stream: TcpStream,
    client: &Client,
    request: &AuthorizationRequest,
) -> Option<Result<String>> {
    let target = match tokio::time::timeout(READ_TIMEOUT, request_target(&mut stream)).await {
        Ok(Some(target)) => target,
        _ => {
            respond(&mut stream, "400 Bad Request", "This is not a sign-in response.").await;
            return None;
        }
    };
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    if path != LOOPBACK_PATH {
        respond(&mut stream, "404 Not Found", "Nothing here.").await;
        return None;
    }
    let params: Vec<(String, String)> = reqwest::Url::parse(&format!("http://x/?{query}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default();
    let get = |name: &str| -> Result<Option<&str>, ()> {
        let mut values = params.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let first = values.next();
        // RFC 6749 §3.1: a parameter appears at most once.
        if values.next().is_some() {
            return Err(());
        }
        Ok(first)
    };
    let (Ok(state), Ok(iss), Ok(code), Ok(error), Ok(description)) = (
        get("state"),
        get("iss"),
        get("code"),
        get("error"),
        get("error_description"),
    ) else {
        respond(
            &mut stream,
            "400 Bad Request",
            "This sign-in response repeats a parameter.",
        )
        .await;
        return None;
    };
    // RFC 6749 §10.12: only the answer to our own request counts.
    if state != Some(request.state.as_str()) {
        respond(
            &mut stream,
            "400 Bad Request",
            "This sign-in response is not the one the terminal is waiting for; start again there if this was you.",
        )
        .await;
        return None;
    }
    // RFC 9207 §2.4: the response names its issuer; another one is a mix-up.
    match iss {
        Some(iss) if iss != client.issuer() => {
            respond(
                &mut stream,
                "400 Bad Request",
                "The sign-in came from another issuer and was not used. You may close this tab.",
            )
            .await;
            return Some(Err(Error::Callback(format!(
                "it came from the issuer {:?}, not {} (RFC 9207 mix-up defence), so its code was not used",
                clean(iss),
                client.issuer()
            ))));
        }
        None if client.metadata().authorization_response_iss_parameter_supported => {
            respond(
                &mut stream,
                "400 Bad Request",
                "The sign-in response does not name its issuer and was not used. You may close this tab.",
            )
            .await;
            return Some(Err(Error::Callback(
                "the redirect has no `iss` although the issuer sends one (RFC 9207)".into(),
            )));
        }
        _ => {}
    }
    if let Some(error) = error {
        let message = if error == "access_denied" {
            "You declined the request. You may close this tab."
        } else {
            "The sign-in did not complete; the terminal says why. You may close this tab."
        };
        respond(&mut stream, "200 OK", message).await;
        return Some(Err(from_code(error, description.map(str::to_owned))));
    }
    let Some(code) = code else {
        respond(
            &mut stream,
            "400 Bad Request",
            "This sign-in response has no code.",
        )
        .await;
        return Some(Err(Error::Callback(
            "the redirect has neither a code nor an error".into(),
        )));
    };
    respond(
        &mut stream,
        "200 OK",
        "You are signed in. You may close this tab and return to the terminal.",
    )
    .await;
    Some(Ok(code.to_owned()))
}

/// The request target of a `GET`, once the whole head has arrived.
async fn request_target(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 || head.len() + n > MAX_REQUEST {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = head.split(|b| *b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("GET"), Some(target), Some(v)) if v.starts_with("HTTP/1.") => Some(target.to_owned()),
        _ => None,
    }
}

async fn respond(stream: &mut TcpStream, status: &str, message: &str) {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sesame</title></head>\
         <body><p>{message}</p></body></html>\n"
    );
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n\
         Content-Security-Policy: default-src 'none'\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Metadata;

    fn client() -> Client {
        let metadata: Metadata = serde_json::from_value(serde_json::json!({
            "issuer": "https://id.example/t/acme",
            "authorization_endpoint": "https://id.example/t/acme/authorize",
            "token_endpoint": "https://id.example/t/acme/token",
            "authorization_response_iss_parameter_supported": true,
        }))
        .unwrap();
        Client::new(crate::http_client().unwrap(), metadata, "cli")
    }

    #[test]
    fn requests_carry_an_s256_challenge_of_their_verifier_and_a_fresh_state() {
        let c = client();
        let scopes = vec!["openid".to_owned(), "offline_access".to_owned()];
        let a = c.pasted_code_request(&scopes).unwrap();
        let b = c.pasted_code_request(&scopes).unwrap();
        let q: std::collections::HashMap<_, _> = a.url.query_pairs().into_owned().collect();
        assert_eq!(q["redirect_uri"], "https://id.example/t/acme/oob");
        assert_eq!(q["scope"], "openid offline_access");
        assert_eq!(q["code_challenge_method"], "S256");
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, a.verifier.as_bytes());
        assert_eq!(q["code_challenge"], B64.encode(digest));
        // RFC 7636 §4.1: 43 characters from 32 random bytes.
        assert_eq!(a.verifier.len(), 43);
        assert_ne!(a.verifier, b.verifier);
        assert_ne!(a.state, b.state);
        assert!(!format!("{a:?}").contains(&a.verifier));
    }

    async fn get(port: u16, target: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.write_all(format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn the_listener_ignores_strays_and_takes_only_its_own_answer() {
        let c = client();
        let l = Loopback::bind().await.unwrap();
        let port = l.port;
        let req = c.authorization_request(&l.redirect_uri(), &[]).unwrap();
        let state = req.state.clone();
        let iss = "https%3A%2F%2Fid.example%2Ft%2Facme";
        let waiting = tokio::spawn(async move {
            let c = client();
            l.wait(&c, &req, Duration::from_secs(10)).await
        });
        assert!(get(port, "/favicon.ico").await.starts_with("HTTP/1.1 404"));
        let forged = get(port, &format!("/callback?code=evil&state=other&iss={iss}")).await;
        assert!(forged.starts_with("HTTP/1.1 400"), "{forged}");
        let twice = format!("/callback?code=a&code=b&state={state}&iss={iss}");
        assert!(get(port, &twice).await.starts_with("HTTP/1.1 400"));
        let ok = get(port, &format!("/callback?code=good&state={state}&iss={iss}")).await;
        assert!(ok.contains("You may close this tab"), "{ok}");
        assert_eq!(waiting.await.unwrap().unwrap(), "good");
    }

    #[tokio::test]
    async fn an_answer_without_iss_is_refused_when_the_issuer_sends_it() {
        let c = client();
        let l = Loopback::bind().await.unwrap();
        let port = l.port;
        let req = c.authorization_request(&l.redirect_uri(), &[]).unwrap();
        let target = format!("/callback?code=x&state={}", req.state);
        let waiting = tokio::spawn(async move { l.wait(&client(), &req, Duration::from_secs(10)).await });
        assert!(get(port, &target).await.starts_with("HTTP/1.1 400"));
        let err = waiting.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("RFC 9207"), "{err}");
    }
}
