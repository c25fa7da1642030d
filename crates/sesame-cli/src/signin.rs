//! `sesame login`, `token`, `whoami`, `logout` and `profiles`: a person signs in from the
//! terminal and hands fresh tokens to other tools. All protocol work is in `sesame-client`;
//! this module parses, prompts and prints.

use crate::output::{clean, rfc3339};
use crate::Failure;
use clap::{Args, Subcommand, ValueEnum};
use sesame_client::{Cache, Client, Credentials, Error, Profile, Session, DEFAULT_PROFILE, DEFAULT_SCOPES};
use std::time::Duration;

/// How many pasted codes are tried before giving up.
const PASTE_ATTEMPTS: usize = 3;

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Issuer URL, as Sesame prints it (`https://id.example.com/t/TENANT`) [default: the profile's]
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// The public client registered for terminal sign-in [default: the profile's]
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Profile to sign in and remember issuer, client and scopes under
    #[arg(long, default_value = DEFAULT_PROFILE, value_name = "NAME")]
    pub profile: String,
    /// Scopes to ask for (repeat or space-separate)
    /// [default: the profile's, else openid profile email offline_access]
    #[arg(long = "scope", value_name = "SCOPE", value_delimiter = ' ')]
    pub scopes: Vec<String>,
    /// Do not use a browser on this machine: print the URL, sign in anywhere, and paste the code
    /// shown at the end at a hidden prompt
    #[arg(long)]
    pub no_browser: bool,
    /// Use the device authorization grant (RFC 8628): print a URL and a short code to enter
    /// there from any device, and wait for the approval
    #[arg(long, conflicts_with = "no_browser")]
    pub device: bool,
    /// Seconds to wait for the browser to come back
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    pub timeout: u64,
}

#[derive(Debug, Args)]
pub struct ProfileArg {
    /// Profile
    #[arg(long, default_value = DEFAULT_PROFILE, value_name = "NAME")]
    pub profile: String,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub profile: ProfileArg,
    /// Print JSON (`json`) or a Kubernetes `ExecCredential` (`k8s`, for a kubectl exec plugin)
    /// instead of the bare token
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<TokenFormat>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TokenFormat {
    Json,
    K8s,
}

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    pub profile: ProfileArg,
    /// Print the userinfo answer as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ProfilesCommand {
    /// List profiles and whether each is signed in
    List,
    /// Show one profile
    Show(ProfileName),
    /// Forget a profile and its cached credentials (without revoking them; see `sesame logout`)
    Remove(ProfileName),
}

#[derive(Debug, Args)]
pub struct ProfileName {
    /// Profile name
    pub name: String,
}

fn fail(e: Error) -> Failure {
    Failure(e.to_string())
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure(format!("cannot start the async runtime: {e}")))
}

fn cache_for(profile: &str) -> Result<Cache, Failure> {
    sesame_client::check_profile_name(profile).map_err(fail)?;
    Cache::from_env().map_err(fail)
}

pub fn login(args: LoginArgs) -> Result<(), Failure> {
    let cache = cache_for(&args.profile)?;
    let saved = cache.profile(&args.profile).map_err(fail)?;
    let missing = |flag: &str| {
        Failure(format!(
            "{flag} is needed: profile {:?} does not remember one yet",
            args.profile
        ))
    };
    let issuer = match (&args.issuer, &saved) {
        (Some(i), _) => i.clone(),
        (None, Some(p)) => p.issuer.clone(),
        (None, None) => return Err(missing("--issuer URL")),
    };
    let client_id = match (&args.client_id, &saved) {
        (Some(c), _) => c.clone(),
        (None, Some(p)) => p.client_id.clone(),
        (None, None) => return Err(missing("--client-id ID")),
    };
    let scopes: Vec<String> = if !args.scopes.is_empty() {
        args.scopes.iter().filter(|s| !s.is_empty()).cloned().collect()
    } else if let Some(p) = saved.as_ref().filter(|p| p.issuer == issuer) {
        p.scopes.clone()
    } else {
        DEFAULT_SCOPES.iter().map(|s| s.to_string()).collect()
    };

    let rt = runtime()?;
    let client = rt.block_on(Client::discover(&issuer, &client_id)).map_err(fail)?;
    let tokens = if args.device {
        device(&rt, &client, &scopes)?
    } else if args.no_browser {
        pasted(&rt, &client, &scopes)?
    } else {
        let timeout = Duration::from_secs(args.timeout);
        rt.block_on(client.login_loopback(&scopes, timeout, |url| {
            eprintln!("Sign in to {issuer} in your browser. If it does not open, visit:\n\n  {url}\n");
            open_browser(url.as_str());
            eprintln!("Waiting for the browser (up to {} s)...", timeout.as_secs());
        }))
        .map_err(fail)?
    };
    if tokens.refresh_token.is_none() {
        eprintln!(
            "warning: no refresh token was issued (ask for the offline_access scope); `sesame token` \
             will stop working when the access token expires"
        );
    }
    cache
        .store_credentials(
            &args.profile,
            Credentials {
                issuer: issuer.clone(),
                client_id: client_id.clone(),
                tokens,
            },
        )
        .map_err(fail)?;
    cache
        .save_profile(
            &args.profile,
            &Profile {
                issuer: issuer.clone(),
                client_id,
                scopes,
            },
        )
        .map_err(fail)?;
    if let Some(why) = cache.keyring_fallback() {
        eprintln!(
            "note: no OS keyring answered ({}); the tokens are kept in {}, readable by you only",
            clean(&why),
            cache.credentials_path().display()
        );
    }
    eprintln!(
        "Signed in to {issuer} (profile {}). `sesame token` prints an access token.",
        args.profile
    );
    Ok(())
}

/// The seed's flow: the person signs in wherever they like and pastes the code `{issuer}/oob`
/// shows. A mistyped code can be pasted again; the request stays valid until a code is used.
fn pasted(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    scopes: &[String],
) -> Result<sesame_client::TokenSet, Failure> {
    let request = client.pasted_code_request(scopes).map_err(fail)?;
    eprintln!(
        "Open this URL in a browser on any device, sign in, and copy the code shown at the end:\n\n  {}\n",
        request.url
    );
    for attempt in 1..=PASTE_ATTEMPTS {
        let code = crate::password::hidden_line("Paste the code: ")?;
        if code.trim().is_empty() {
            eprintln!("The code is empty.");
            continue;
        }
        match rt.block_on(client.finish(&request, &code)) {
            Ok(tokens) => return Ok(tokens),
            Err(Error::InvalidGrant(_)) if attempt < PASTE_ATTEMPTS => eprintln!(
                "That code was not accepted: it is mistyped, has expired (codes last a minute), was \
                 already used, or is for another application. Paste it again."
            ),
            Err(Error::InvalidGrant(d)) => {
                return Err(Failure(format!(
                    "the code was not accepted{}; run `sesame login --no-browser` again for a new one",
                    d.map(|d| format!(" ({})", clean(&d))).unwrap_or_default()
                )))
            }
            Err(e) => return Err(fail(e)),
        }
    }
    Err(Failure(
        "no code accepted; run `sesame login --no-browser` again".into(),
    ))
}

/// RFC 8628: the person enters the printed code at the printed URL, on any device, and
/// approves; meanwhile this polls.
fn device(
    rt: &tokio::runtime::Runtime,
    client: &Client,
    scopes: &[String],
) -> Result<sesame_client::TokenSet, Failure> {
    let shown = |a: &sesame_client::DeviceAuthorization| {
        eprintln!(
            "To sign in, open this URL in a browser on any device:\n\n  {}\n\nand enter the code:\n\n  {}\n",
            a.verification_uri, a.user_code
        );
        if let Some(complete) = &a.verification_uri_complete {
            eprintln!(
                "Or open this link, which fills in the code (check that it matches):\n\n  {complete}\n"
            );
        }
        eprintln!(
            "Waiting for the approval (the code expires in {} min)...",
            a.expires_in.div_ceil(60)
        );
    };
    match rt.block_on(client.login_device(scopes, shown)) {
        Ok(tokens) => Ok(tokens),
        Err(Error::AccessDenied(_)) => Err(Failure(
            "the sign-in was denied in the browser; run `sesame login --device` again to start over".into(),
        )),
        Err(Error::OAuth { error, .. }) if error == "unauthorized_client" => Err(Failure(format!(
            "the client {:?} may not use the device flow; an administrator can allow it with \
             `sesame admin clients update {} --grant-type device_code` (with its other grants, \
             which the option replaces)",
            client.client_id(),
            client.client_id()
        ))),
        Err(e) => Err(fail(e)),
    }
}

/// Opens `url` with `$BROWSER` (the usual convention: a command, `%s` for the URL), else the
/// desktop's opener when there is a desktop. Best effort: the URL is printed anyway.
fn open_browser(url: &str) {
    use std::process::{Command, Stdio};
    let spawn = |program: &str, args: Vec<String>| {
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .is_ok()
    };
    if let Some(browser) = std::env::var("BROWSER").ok().filter(|b| !b.trim().is_empty()) {
        for command in browser.split(':') {
            let mut words = command.split_whitespace();
            let Some(program) = words.next() else { continue };
            let mut args: Vec<String> = words.map(|w| w.replace("%s", url)).collect();
            if !command.contains("%s") {
                args.push(url.to_owned());
            }
            if spawn(program, args) {
                return;
            }
        }
        return;
    }
    if cfg!(target_os = "macos") {
        spawn("open", vec![url.to_owned()]);
    } else if cfg!(windows) {
        spawn("explorer", vec![url.to_owned()]);
    } else if std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some() {
        // Without a desktop, xdg-open may start a text browser in this very terminal.
        spawn("xdg-open", vec![url.to_owned()]);
    }
}

pub fn token(args: TokenArgs) -> Result<(), Failure> {
    let profile = &args.profile.profile;
    let cache = cache_for(profile)?;
    let credentials = runtime()?
        .block_on(cache.fresh_credentials(profile, Session::MARGIN))
        .map_err(fail)?;
    let t = &credentials.tokens;
    let text = match args.format {
        None => format!("{}\n", t.access_token),
        Some(TokenFormat::Json) => {
            let mut v = serde_json::json!({
                "access_token": t.access_token,
                "token_type": t.token_type,
                "issuer": credentials.issuer,
            });
            if let Some(at) = t.expires_at {
                v["expires_at"] = at.into();
            }
            if let Some(scope) = &t.scope {
                v["scope"] = scope.as_str().into();
            }
            format!("{v}\n")
        }
        // client.authentication.k8s.io/v1 ExecCredential: kubectl caches the token until
        // `expirationTimestamp` (RFC 3339) and runs the plugin again after.
        Some(TokenFormat::K8s) => {
            let mut status = serde_json::json!({ "token": t.access_token });
            if let Some(at) = t.expires_at {
                status["expirationTimestamp"] = rfc3339(at).into();
            }
            let v = serde_json::json!({
                "apiVersion": "client.authentication.k8s.io/v1",
                "kind": "ExecCredential",
                "status": status,
            });
            format!("{v}\n")
        }
    };
    crate::print(&text)
}

pub fn whoami(args: WhoamiArgs) -> Result<(), Failure> {
    let profile = &args.profile.profile;
    let cache = cache_for(profile)?;
    let session = Session::new(cache.clone(), profile).map_err(fail)?;
    let info = runtime()?.block_on(session.userinfo()).map_err(fail)?;
    if args.json {
        return crate::print(&format!("{info:#}\n"));
    }
    let issuer = cache
        .credentials(profile)
        .map_err(fail)?
        .map(|c| c.issuer)
        .unwrap_or_default();
    let mut text = format!("issuer:   {}\nprofile:  {profile}\n", clean(&issuer));
    for (label, claim) in [
        ("subject", "sub"),
        ("username", "preferred_username"),
        ("name", "name"),
        ("email", "email"),
    ] {
        if let Some(v) = info.get(claim).and_then(|v| v.as_str()) {
            text.push_str(&format!("{:<10}{}\n", format!("{label}:"), clean(v)));
        }
    }
    crate::print(&text)
}

pub fn logout(args: ProfileArg) -> Result<(), Failure> {
    let profile = &args.profile;
    let cache = cache_for(profile)?;
    let Some(credentials) = cache.credentials(profile).map_err(fail)? else {
        eprintln!("Profile {profile:?} is not signed in.");
        return Ok(());
    };
    // RFC 7009: revoking the refresh token ends the whole grant at Sesame, including the
    // access tokens issued under it.
    let (token, hint) = match &credentials.tokens.refresh_token {
        Some(r) => (r.clone(), "refresh_token"),
        None => (credentials.tokens.access_token.clone(), "access_token"),
    };
    let revoked = runtime()?.block_on(async {
        let client = Client::discover(&credentials.issuer, &credentials.client_id).await?;
        client.revoke(&token, hint).await
    });
    if let Err(e) = revoked {
        eprintln!(
            "warning: could not revoke the sign-in at the issuer ({e}); its tokens stay valid there \
             until they expire. Deleting the local copy."
        );
    }
    cache.remove_credentials(profile).map_err(fail)?;
    eprintln!("Signed out of profile {profile:?}.");
    Ok(())
}

pub fn profiles(command: ProfilesCommand) -> Result<(), Failure> {
    let cache = Cache::from_env().map_err(fail)?;
    match command {
        ProfilesCommand::List => {
            let profiles = cache.profiles().map_err(fail)?;
            if profiles.is_empty() {
                eprintln!("No profiles yet; `sesame login --issuer URL --client-id ID` makes one.");
                return Ok(());
            }
            let mut text = String::new();
            for (name, p) in profiles {
                let state = signed_in(&cache, &name)?;
                text.push_str(&format!(
                    "{name}\t{}\t{}\t{state}\n",
                    clean(&p.issuer),
                    clean(&p.client_id)
                ));
            }
            crate::print(&text)
        }
        ProfilesCommand::Show(ProfileName { name }) => {
            sesame_client::check_profile_name(&name).map_err(fail)?;
            let Some(p) = cache.profile(&name).map_err(fail)? else {
                return Err(Failure(format!("no profile {name:?}")));
            };
            let state = signed_in(&cache, &name)?;
            crate::print(&format!(
                "profile:   {name}\nissuer:    {}\nclient id: {}\nscopes:    {}\nstatus:    {state}\n",
                clean(&p.issuer),
                clean(&p.client_id),
                clean(&p.scopes.join(" "))
            ))
        }
        ProfilesCommand::Remove(ProfileName { name }) => {
            sesame_client::check_profile_name(&name).map_err(fail)?;
            if !cache.remove_profile(&name).map_err(fail)? {
                return Err(Failure(format!("no profile {name:?}")));
            }
            eprintln!("Removed profile {name:?} and its local credentials.");
            Ok(())
        }
    }
}

fn signed_in(cache: &Cache, name: &str) -> Result<String, Failure> {
    Ok(match cache.credentials(name).map_err(fail)? {
        None => "signed out".into(),
        Some(c) => match (c.tokens.expires_at, c.tokens.refresh_token.is_some()) {
            (_, true) => "signed in".into(),
            (Some(at), false) if at > sesame_client::now() => {
                format!("signed in until {} (no refresh token)", rfc3339(at))
            }
            (None, false) => "signed in (no refresh token)".into(),
            (Some(_), false) => "expired".into(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn unix_times_print_as_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_172_245), "2026-12-02T00:44:05Z");
    }
}
