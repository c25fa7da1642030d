//! Signs a person in through the browser (loopback redirect) unless the cache already holds a
//! sign-in for the profile, then calls the issuer's userinfo endpoint with a `Session`, the
//! authenticated HTTP client that refreshes the access token by itself.
//!
//! ```sh
//! cargo run -p sesame-client --example whoami -- http://127.0.0.1:8080/t/default sesame-cli
//! ```
//!
//! The client must be public, with the redirect URI `http://127.0.0.1/callback`.

use sesame_client::{Cache, Client, Credentials, Session, DEFAULT_SCOPES};
use std::time::Duration;

const PROFILE: &str = "example";

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(issuer), Some(client_id)) = (args.next(), args.next()) else {
        eprintln!("usage: whoami ISSUER CLIENT_ID");
        std::process::exit(2);
    };
    let cache = Cache::from_env()?;
    let signed_in = cache
        .credentials(PROFILE)?
        .is_some_and(|c| c.issuer == issuer && c.client_id == client_id);
    if !signed_in {
        let client = Client::discover(&issuer, &client_id).await?;
        let scopes: Vec<String> = DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect();
        let tokens = client
            .login_loopback(&scopes, Duration::from_secs(300), |url| {
                eprintln!("Open this URL to sign in:\n\n  {url}\n");
            })
            .await?;
        cache.store_credentials(
            PROFILE,
            Credentials {
                issuer: issuer.clone(),
                client_id: client_id.clone(),
                tokens,
            },
        )?;
    }
    // Any API that accepts the access token is called the same way: the session sends a
    // token valid for at least a minute, refreshed through the cache (and its lock) when
    // needed, and retries once with a fresh one if the server answers 401.
    let client = Client::discover(&issuer, &client_id).await?;
    let Some(userinfo) = client.metadata().userinfo_endpoint.clone() else {
        return Err("the issuer has no userinfo endpoint".into());
    };
    let session = Session::new(cache, PROFILE)?;
    let response = session.get(&userinfo).await?;
    let status = response.status();
    let body: serde_json::Value = response.json().await?;
    if !status.is_success() {
        return Err(format!("userinfo answered {status}: {body}").into());
    }
    println!("{body:#}");
    Ok(())
}
