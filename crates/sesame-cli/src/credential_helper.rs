//! `sesame credential-helper`: git's credential helper protocol (git-credential(1),
//! gitcredentials(7)) on a profile's cached sign-in, so that `git` sends a fresh access token to
//! hosts that accept Sesame's tokens:
//!
//! ```text
//! git config --global credential.https://git.example.com.helper '!sesame credential-helper --profile work'
//! ```
//!
//! git runs the helper with the action last (`get`, `store`, `erase`) and writes `key=value`
//! lines to its stdin, ending with a blank line.

use crate::output::clean;
use crate::Failure;
use clap::Args;
use sesame_client::{Cache, Session, DEFAULT_PROFILE};
use std::io::BufRead;

/// What `get` answers as the user name when neither the option nor git's request names one:
/// GitLab's convention for OAuth access tokens, accepted by servers that check only the token.
pub const DEFAULT_USERNAME: &str = "oauth2";

#[derive(Debug, Args)]
pub struct HelperArgs {
    /// Profile whose access token is handed to git
    #[arg(long, default_value = DEFAULT_PROFILE, value_name = "NAME")]
    pub profile: String,
    /// User name sent with the token [default: the one in git's request, else oauth2]
    #[arg(long, value_name = "NAME")]
    pub username: Option<String>,
    /// Given by git: get, store or erase (anything else is ignored, as git asks of helpers)
    pub action: String,
}

/// The attributes git wrote, in order; unknown ones (`capability[]`, `wwwauth[]`, …) are kept
/// and ignored.
fn read_request(input: impl BufRead) -> Result<Vec<(String, String)>, Failure> {
    let mut attributes = Vec::new();
    for line in input.lines() {
        let line = line.map_err(|e| Failure(format!("cannot read git's request: {e}")))?;
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if line.is_empty() {
            break;
        }
        if let Some((key, value)) = line.split_once('=') {
            attributes.push((key.to_owned(), value.to_owned()));
        }
    }
    Ok(attributes)
}

fn attribute<'a>(request: &'a [(String, String)], key: &str) -> Option<&'a str> {
    request
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A token goes only over TLS, or to this machine.
fn safe_to_send(protocol: Option<&str>, host: Option<&str>) -> bool {
    match protocol {
        Some("https") => true,
        Some("http") => {
            let host = host.unwrap_or("");
            // `host` may carry a port.
            let name = match host.rsplit_once(':') {
                Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
                _ => host,
            };
            matches!(name, "127.0.0.1" | "localhost" | "[::1]")
        }
        _ => false,
    }
}

pub fn run(args: HelperArgs) -> Result<(), Failure> {
    let request = read_request(std::io::stdin().lock())?;
    sesame_client::check_profile_name(&args.profile).map_err(|e| Failure(e.to_string()))?;
    match args.action.as_str() {
        "get" => get(&args, &request),
        "erase" => {
            // git erases a credential a server refused. The next `get` then refreshes, unless
            // the refused token is an older one than the cache holds now.
            let cache = Cache::from_env().map_err(|e| Failure(e.to_string()))?;
            cache
                .expire_access_token(&args.profile, attribute(&request, "password"))
                .map_err(|e| Failure(e.to_string()))?;
            Ok(())
        }
        // Nothing to keep: the token came from the cache. Other actions: git-credential(1)
        // asks helpers to ignore what they do not know.
        _ => Ok(()),
    }
}

fn get(args: &HelperArgs, request: &[(String, String)]) -> Result<(), Failure> {
    let protocol = attribute(request, "protocol");
    let host = attribute(request, "host");
    if !safe_to_send(protocol, host) {
        eprintln!(
            "sesame credential-helper: no token for {}://{}: tokens go over https only",
            clean(protocol.unwrap_or("?")),
            clean(host.unwrap_or("?"))
        );
        return Ok(());
    }
    let cache = Cache::from_env().map_err(|e| Failure(e.to_string()))?;
    let credentials = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(format!("cannot start the async runtime: {e}")))?
        .block_on(cache.fresh_credentials(&args.profile, Session::MARGIN))
        .map_err(|e| Failure(e.to_string()))?;
    let username = args
        .username
        .as_deref()
        .or(attribute(request, "username"))
        .unwrap_or(DEFAULT_USERNAME);
    let mut answer = String::new();
    // A value with a newline would smuggle in another attribute.
    for (key, value) in [
        ("username", username),
        ("password", credentials.tokens.access_token.as_str()),
    ] {
        if value.contains(['\n', '\0']) {
            return Err(Failure(format!("the {key} contains a line break")));
        }
        answer.push_str(&format!("{key}={value}\n"));
    }
    // git 2.41+: the credential is not reused past this time (older versions ignore it).
    if let Some(at) = credentials.tokens.expires_at {
        answer.push_str(&format!("password_expiry_utc={at}\n"));
    }
    crate::print(&answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_ends_at_a_blank_line_and_unknown_keys_are_kept() {
        let input = b"protocol=https\nhost=git.example.com\ncapability[]=authtype\nwwwauth[]=Bearer x=y\n\nignored=1\n";
        let r = read_request(&input[..]).unwrap();
        assert_eq!(attribute(&r, "host"), Some("git.example.com"));
        assert_eq!(attribute(&r, "wwwauth[]"), Some("Bearer x=y"));
        assert_eq!(attribute(&r, "ignored"), None);
        // EOF ends it too.
        let r = read_request(&b"protocol=https\r\nhost=h"[..]).unwrap();
        assert_eq!(attribute(&r, "protocol"), Some("https"));
        assert_eq!(attribute(&r, "host"), Some("h"));
    }

    #[test]
    fn tokens_go_over_https_or_to_this_machine_only() {
        assert!(safe_to_send(Some("https"), Some("git.example.com")));
        assert!(safe_to_send(Some("http"), Some("127.0.0.1:8080")));
        assert!(safe_to_send(Some("http"), Some("localhost")));
        assert!(!safe_to_send(Some("http"), Some("git.example.com")));
        assert!(!safe_to_send(Some("http"), Some("127.0.0.1.evil.example")));
        assert!(!safe_to_send(Some("ssh"), Some("127.0.0.1")));
        assert!(!safe_to_send(None, Some("git.example.com")));
    }
}
