//! `sesame-bench`: sesamed's hot paths on one core, next to the raw cost of their signatures.
//!
//! ```text
//! cargo build --release -p sesame-server -p sesame-bench
//! cargo run --release -p sesame-bench [-- --connections 32 --seconds 3]
//! ```
//!
//! The bench pins itself to CPU 1 and the server under test to CPU 0 (taskset), measures the
//! raw single-core signing rate of RS256, ES256 and EdDSA (and verification, and one Argon2id
//! password check), starts a fresh `sesamed serve --dev` on a loopback port, and drives it with
//! keep-alive HTTP/1.1 connections from one thread: client-credentials tokens, discovery, JWKS,
//! introspection, and the authorization-code flow of a signed-in browser (`GET /authorize` with
//! the session cookie, then `POST /token` with the code and PKCE verifier; two signatures per
//! flow, the ID token's and the access token's). It then does the same against a bare axum
//! token handler (`--baseline-server`) doing the same client authentication and signature, and
//! prints one table with the targets marked.

// Authorization checks in-process (`--authz`).
mod authz;
mod baseline;
mod burst;
mod load;
mod server;
mod sign;
// Brokered SSO: the sign-in callback against an IdP in the bench.
mod sso;

use crate::load::{CodeFlow, Load, LoadConfig, LoadResult, Template};
use crate::server::{Pinning, ServerProcess};
use crate::sign::{PasswordRate, SignRate};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use clap::Parser;
use hyper::header::{AUTHORIZATION, COOKIE, LOCATION, SET_COOKIE};
use sesame_core::model::SigningAlg;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "sesame-bench", about = "Single-core benchmark of sesamed's hot paths")]
struct Cli {
    /// The sesamed binary [default: `sesamed` next to this executable, i.e. target/release/sesamed].
    #[arg(long)]
    sesamed: Option<PathBuf>,
    /// Keep-alive HTTP/1.1 connections of the load generator.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measurement window of each load, in seconds.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Warm-up before each window, in seconds (answers in it are not counted).
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// Time spent measuring the raw signing rate of each algorithm, in seconds.
    #[arg(long, default_value_t = 1.5)]
    sign_seconds: f64,
    /// Upper bound on the requests of one load, over all connections.
    #[arg(long, default_value_t = 20_000_000)]
    max_requests: u64,
    /// Skip the bare-axum baseline.
    #[arg(long)]
    no_baseline: bool,
    /// How many times to time a start: sesamed restarting on its existing store, and the
    /// baseline server (the median is reported).
    #[arg(long, default_value_t = 3)]
    starts: usize,
    /// Run only these loads (comma-separated): token-eddsa, token-es256, token-rs256,
    /// discovery, jwks, introspect-eddsa, introspect-es256, introspect-rs256, code-flow-eddsa, code-flow-es256,
    /// introspect-eddsa-distinct, device-poll, code-flow-rs256, sign-in-burst, baseline. For profiling one path.
    /// introspect-eddsa-distinct, token-exchange-eddsa, private-key-jwt-eddsa,
    /// private-key-jwt-policy-eddsa, code-flow-rs256,
    /// introspect-eddsa-distinct, code-flow-rs256, session-bind-eddsa, session-refresh-eddsa,
    /// sign-in-burst, baseline, sso-callback, refresh-token-eddsa. For profiling one path.
    #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(LOADS))]
    only: Vec<String>,
    /// Run as the baseline server on 127.0.0.1:PORT (the bench starts this itself).
    #[arg(long, value_name = "PORT")]
    baseline_server: Option<u16>,
    /// Only authorization: checks (cached, uncached, after a change) and list on 10^5
    /// resources and 10^3 teams, in-process on one core, next to the raw EdDSA signing rate.
    #[arg(long)]
    authz: bool,
}

/// Distinct tokens of the `introspect-eddsa-distinct` load: more than the verified-token cache holds.
const DISTINCT_TOKENS: usize = 5_000;

/// Device codes of the `device-poll` load, polled in turn: enough that none is polled twice within
/// RFC 8628's 5 s interval below 16,000 polls/s (a `slow_down`, counted as an error).
const DEVICE_CODES: usize = 80_000;
/// A device code's issuance counts as its first poll, so the load starts one interval after the
/// last code was issued.
const DEVICE_FIRST_POLL_WAIT: Duration = Duration::from_secs(6);
/// The public client of the `device-poll` load, at sesamed and at the baseline.
const DEVICE_CLIENT: &str = "bench-device";
/// RFC 8628 §3.4, form-encoded.
const DEVICE_GRANT_FORM: &str = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code";

/// The loads, in the order they run.
const LOADS: [&str; 22] = [
    "token-eddsa",
    "token-es256",
    "token-rs256",
    "discovery",
    "jwks",
    "introspect-eddsa",
    "introspect-es256",
    "introspect-rs256",
    "introspect-eddsa-distinct",
    "device-poll",
    "token-exchange-eddsa",
    "private-key-jwt-eddsa",
    "private-key-jwt-policy-eddsa",
    "code-flow-eddsa",
    "code-flow-es256",
    "code-flow-rs256",
    "session-bind-eddsa",
    "session-refresh-eddsa",
    "sign-in-burst",
    "baseline",
    // Brokered SSO, and the refresh-token grant it hooks into.
    "sso-callback",
    "refresh-token-eddsa",
];

/// Single-use client assertions made for the `private-key-jwt-eddsa` load (each is accepted
/// once; a run that sends more sees the rest refused as replays, counted as errors). They are
/// valid for 5 minutes (10 for the outside tokens), so the load must run within 5 minutes of its
/// set-up.
const ASSERTIONS: usize = 100_000;

/// The algorithms of the three-way loads, in the order they run.
const LOAD_ALGS: [SigningAlg; 3] = [SigningAlg::EdDSA, SigningAlg::ES256, SigningAlg::RS256];

/// Where the code-flow clients are sent back to. Nothing listens there: the bench reads the
/// code from the 303's Location and never follows it.
const REDIRECT_URI: &str = "http://127.0.0.1:1/cb";
/// A fixed PKCE verifier (RFC 7636 §4.1: 43 to 128 unreserved characters). A real client makes
/// a fresh one per flow; the server's work is the same.
const CODE_VERIFIER: &str = "sesame-bench-fixed-pkce-code-verifier-0123456789";
const BENCH_USER: &str = "bench";
const BENCH_PASSWORD: &str = "sesame-bench password";

impl Cli {
    fn wants(&self, load: &str) -> bool {
        (self.only.is_empty() || self.only.iter().any(|o| o == load))
            && !(load == "baseline" && self.no_baseline)
    }
}

fn load_name(prefix: &str, alg: SigningAlg) -> String {
    format!("{prefix}-{}", alg.as_str().to_ascii_lowercase())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(port) = cli.baseline_server {
        return baseline::serve(port);
    }
    // Read before pinning, which narrows what this process may use.
    let machine = Machine::read();
    // Then, before any thread exists: every thread of the bench inherits CPU 1.
    let pinning = server::pin_self();
    if cli.authz {
        let core = matches!(pinning, Pinning::Pinned).then_some(1);
        return match authz::run(cli.seconds, core) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sesame-bench --authz: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if cli.connections == 0 || cli.seconds <= 0.0 || cli.warmup < 0.0 || cli.sign_seconds <= 0.0 {
        eprintln!("sesame-bench: --connections, --seconds and --sign-seconds must be positive");
        return ExitCode::from(2);
    }
    let sesamed = match &cli.sesamed {
        Some(p) => p.clone(),
        None => match std::env::current_exe() {
            Ok(exe) => exe.with_file_name("sesamed"),
            Err(e) => {
                eprintln!("sesame-bench: cannot find my own executable ({e}); pass --sesamed PATH");
                return ExitCode::from(2);
            }
        },
    };
    if !sesamed.is_file() {
        eprintln!(
            "sesame-bench: no sesamed at {}.\n  Build it with `cargo build --release -p sesame-server`, or pass --sesamed PATH.",
            sesamed.display()
        );
        return ExitCode::from(2);
    }
    if cfg!(debug_assertions) {
        eprintln!(
            "sesame-bench: WARNING: this is a debug build; run with `cargo run --release -p sesame-bench`"
        );
    }

    eprintln!("sesame-bench: {}", machine.describe());
    eprintln!("pinning: {}", pinning.describe());

    // Raw signing first, while no server runs: CPU 0 is idle and CPU 1 is ours.
    let bench_core = matches!(pinning, Pinning::Pinned).then_some(1);
    let mut signs = Vec::new();
    for alg in SigningAlg::ALL {
        let rate = sign::measure(alg, Duration::from_secs_f64(cli.sign_seconds), bench_core);
        eprintln!(
            "raw sign {:<5} {:>10}/s  (others on this core {})",
            alg.as_str(),
            thousands(rate.per_second),
            rate.others.map_or("?".into(), percent)
        );
        signs.push(rate);
    }
    // Verification, the crypto of introspection: shorter, it is context rather than a target.
    let mut verifies = Vec::new();
    for alg in SigningAlg::ALL {
        let rate = sign::measure_verify(alg, Duration::from_secs_f64(cli.sign_seconds / 2.0), bench_core);
        eprintln!(
            "raw verify {:<5} {:>8}/s  (others on this core {})",
            alg.as_str(),
            thousands(rate.per_second),
            rate.others.map_or("?".into(), percent)
        );
        verifies.push(rate);
    }
    // One password check, the CPU cost of a sign-in attempt: context for the code flow, which
    // starts from a session and so pays it once per sign-in, not per flow.
    let password = sign::measure_password(Duration::from_secs_f64(cli.sign_seconds), bench_core);
    eprintln!(
        "password verify {:>6}/s  ({:.1} ms each; others on this core {})",
        thousands(password.per_second),
        1e3 / password.per_second,
        password.others.map_or("?".into(), percent)
    );

    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sesame-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            r = run(&cli, &sesamed, &pinning) => r,
            // Dropping `run` drops the ServerProcess guards, which stop the servers.
            _ = tokio::signal::ctrl_c() => Err("interrupted (ctrl-c); servers stopped".to_owned()),
        }
    });
    match outcome {
        Ok(results) => {
            print!(
                "{}",
                report(&cli, &machine, &pinning, &signs, &verifies, &password, &results)
            );
            if results.total_errors() > 0 {
                eprintln!(
                    "sesame-bench: {} REQUESTS FAILED (see the table)",
                    results.total_errors()
                );
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("sesame-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Machine {
    nproc: String,
    cpu_model: String,
}

impl Machine {
    fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let online = cpuinfo.lines().filter(|l| l.starts_with("processor")).count();
        let vm = cpuinfo
            .lines()
            .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "hypervisor"));
        let nproc = std::thread::available_parallelism().map_or("?".into(), |n| n.to_string());
        Machine {
            nproc: format!("nproc {nproc} ({online} CPUs in /proc/cpuinfo)"),
            cpu_model: if vm {
                format!("{cpu_model}, virtual machine")
            } else {
                cpu_model
            },
        }
    }

    fn describe(&self) -> String {
        format!("{}, {}", self.nproc, self.cpu_model)
    }
}

/// One load run, labelled.
struct Row {
    label: String,
    result: LoadResult,
}

struct Results {
    startup: Duration,
    /// sesamed restarted on the store of the first start (after the loads), each time.
    restarts: Vec<Duration>,
    /// The baseline server's starts, each time.
    baseline_starts: Vec<Duration>,
    idle_rss_kb: Option<u64>,
    peak_rss_kb: Option<u64>,
    /// VmHWM before the code flow's set-up (its password hashing), if it ran.
    peak_rss_before_sign_in_kb: Option<u64>,
    threads: Option<String>,
    server_cpus: Option<String>,
    token: Vec<(SigningAlg, Row)>,
    discovery: Option<Row>,
    jwks: Option<Row>,
    introspect: Vec<(SigningAlg, Row)>,
    /// Introspection of distinct tokens in turn: the verified-token cache never helps.
    introspect_distinct: Option<Row>,
    /// Device-code polls answered `authorization_pending`, codes in turn.
    device_poll: Option<Row>,
    baseline_device_poll: Option<Row>,
    /// RFC 8693 token exchange of an outside EdDSA JWT (a trust policy with an inline JWKS).
    token_exchange: Option<Row>,
    /// Client credentials with private_key_jwt (a fresh EdDSA assertion per request).
    private_key_jwt: Option<Row>,
    /// The same with outside tokens through the client's trust policy (a Kubernetes-like token).
    private_key_jwt_policy: Option<Row>,
    /// The authorization-code flow with a signed-in session, per algorithm.
    code_flow: Vec<(SigningAlg, Row)>,
    /// Delegated sessions: create + bind a nonce, and session-key refresh (EdDSA).
    sessions: Vec<Row>,
    /// The bare-axum token endpoint, per algorithm.
    baseline: Vec<(SigningAlg, Row)>,
    baseline_discovery: Option<Row>,
    baseline_jwks: Option<Row>,
    baseline_introspect: Vec<(SigningAlg, Row)>,
    /// 200 sign-ins at once (after every other load: it sets the peak RSS).
    burst: Vec<burst::Round>,
    /// Brokered SSO sign-ins (start + callback) with an ES256 IdP in the bench.
    sso_callback: Option<Row>,
    /// The refresh-token grant (rotation, sealed answer) of a password sign-in, EdDSA.
    refresh_token: Option<Row>,
}

impl Results {
    fn rows(&self) -> impl Iterator<Item = &Row> {
        self.token
            .iter()
            .map(|(_, r)| r)
            .chain(self.discovery.iter().chain(self.jwks.iter()))
            .chain(self.introspect.iter().map(|(_, r)| r))
            .chain(self.introspect_distinct.iter())
            .chain(self.device_poll.iter().chain(self.baseline_device_poll.iter()))
            .chain(self.token_exchange.iter().chain(self.private_key_jwt.iter()))
            .chain(self.private_key_jwt_policy.iter())
            .chain(self.code_flow.iter().map(|(_, r)| r))
            .chain(self.sessions.iter())
            .chain(self.baseline.iter().map(|(_, r)| r))
            .chain(self.baseline_discovery.iter().chain(self.baseline_jwks.iter()))
            .chain(self.baseline_introspect.iter().map(|(_, r)| r))
            .chain(self.sso_callback.iter())
            .chain(self.refresh_token.iter())
    }

    fn total_errors(&self) -> u64 {
        self.rows().map(|r| r.result.errors).sum()
    }
}

struct BenchClient {
    alg: SigningAlg,
    id: String,
    secret: String,
}

/// Everything that needs a server, in order. Any `?` drops the servers, which stops them.
async fn run(cli: &Cli, sesamed: &std::path::Path, pinning: &Pinning) -> Result<Results, String> {
    let tmp = tempfile::Builder::new()
        .prefix("sesame-bench-")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let data_dir = tmp.path().join("data");
    let addr = SocketAddr::from((
        [127, 0, 0, 1],
        server::free_port().map_err(|e| format!("no free port: {e}"))?,
    ));
    let args: Vec<String> = vec![
        "serve".into(),
        "--dev".into(),
        "--listen".into(),
        addr.to_string(),
        "--data-dir".into(),
        data_dir.display().to_string(),
    ];
    eprintln!("starting {} {}", sesamed.display(), args.join(" "));
    let spawned_at = Instant::now();
    let mut sesame = ServerProcess::spawn(
        "sesamed",
        sesamed,
        &args,
        &[],
        addr,
        pinning,
        &tmp.path().join("sesamed.log"),
    )?;
    let startup = sesame.wait_ready(spawned_at, Duration::from_secs(60)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss_kb = sesame.status_kb("VmRSS");
    let server_cpus = sesame.cpus_allowed();
    eprintln!(
        "sesamed ready in {} ms; idle RSS {}; pid {} on CPUs {}",
        startup.as_millis(),
        idle_rss_kb.map_or("?".into(), mb),
        sesame.pid,
        server_cpus.as_deref().unwrap_or("?")
    );

    // Set-up through the admin API: one confidential client per algorithm.
    let admin_token = std::fs::read_to_string(data_dir.join("admin-token"))
        .map_err(|e| format!("cannot read {}: {e}", data_dir.join("admin-token").display()))?;
    let admin_token = admin_token.trim();
    let mut clients = Vec::new();
    for alg in SigningAlg::ALL {
        let mut spec = serde_json::json!({
            "name": format!("bench-{}", alg.as_str().to_ascii_lowercase()),
            "signing_alg": alg.as_str(),
            "allowed_scopes": ["read"],
            "allowed_audiences": ["api"],
            // The EdDSA client introspects every algorithm's token, as a resource server.
            "introspect_any": true,
        });
        let client = match create_client(addr, admin_token, alg, &spec).await {
            // An older sesamed (before `introspect_any`) lets any client introspect, and has no such field.
            Err(e) if e.contains("unknown field `introspect_any`") => {
                spec.as_object_mut().map(|o| o.remove("introspect_any"));
                create_client(addr, admin_token, alg, &spec).await?
            }
            other => other?,
        };
        clients.push(client);
    }

    // Check every request once before measuring it, so a wrong set-up fails loudly here.
    let token_template = |c: &BenchClient| {
        Template::post_form(
            addr,
            "/t/default/token",
            "grant_type=client_credentials",
            Some((&c.id, &c.secret)),
        )
    };
    let mut tokens = Vec::new();
    for c in &clients {
        let token = fetch_token(addr, &token_template(c)).await?;
        let alg = jws_alg(&token);
        if alg != c.alg.as_str() {
            return Err(format!("the {} client got a token signed with {alg}", c.alg));
        }
        tokens.push((c.alg, token));
    }
    let discovery = Template::get(addr, "/t/default/.well-known/openid-configuration");
    let jwks = Template::get(addr, "/t/default/jwks");
    // The baseline serves these very bytes.
    let discovery_file = tmp.path().join("discovery.json");
    let jwks_file = tmp.path().join("jwks.json");
    for (t, file) in [(&discovery, &discovery_file), (&jwks, &jwks_file)] {
        let body = load::once_ok(addr, t).await?;
        std::fs::write(file, &body).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    }
    let eddsa = clients
        .iter()
        .find(|c| c.alg == SigningAlg::EdDSA)
        .expect("an EdDSA client");
    let mut introspections = Vec::new();
    for alg in LOAD_ALGS {
        let token = &tokens
            .iter()
            .find(|(a, _)| *a == alg)
            .expect("a token per algorithm")
            .1;
        let t = Template::post_form(
            addr,
            "/t/default/introspect",
            &format!("token={}", load::form_encode(token)),
            Some((&eddsa.id, &eddsa.secret)),
        );
        let body = load::once_ok(addr, &t).await?;
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if v["active"] != true {
            return Err(format!(
                "introspection of the {alg} token did not answer active: {v}"
            ));
        }
        introspections.push((alg, t));
    }

    let cfg = LoadConfig {
        addr,
        connections: cli.connections,
        warmup: Duration::from_secs_f64(cli.warmup),
        window: Duration::from_secs_f64(cli.seconds),
        max_requests: cli.max_requests,
        server_pid: Some(sesame.pid),
        server_core: matches!(pinning, Pinning::Pinned).then_some(0),
    };
    let mut token_rows = Vec::new();
    for alg in LOAD_ALGS {
        if !cli.wants(&load_name("token", alg)) {
            continue;
        }
        let c = clients
            .iter()
            .find(|c| c.alg == alg)
            .expect("a client per algorithm");
        let row = measure(cfg, format!("token {}", alg.as_str()), token_template(c)).await;
        token_rows.push((alg, row));
    }
    let discovery = match cli.wants("discovery") {
        true => Some(measure(cfg, "discovery".into(), discovery).await),
        false => None,
    };
    let jwks = match cli.wants("jwks") {
        true => Some(measure(cfg, "JWKS".into(), jwks).await),
        false => None,
    };
    let mut introspect_rows = Vec::new();
    for (alg, t) in introspections {
        if !cli.wants(&load_name("introspect", alg)) {
            continue;
        }
        introspect_rows.push((alg, measure(cfg, format!("introspect {}", alg.as_str()), t).await));
    }
    // More distinct tokens than sesamed's verified-token cache holds (4,096 a tenant), sent in
    // turn: every introspection misses the cache and verifies the signature, as the baseline does.
    let introspect_distinct = match cli.wants("introspect-eddsa-distinct") {
        true => {
            let mut templates = Vec::with_capacity(DISTINCT_TOKENS);
            for _ in 0..DISTINCT_TOKENS {
                let token = fetch_token(addr, &token_template(eddsa)).await?;
                templates.push(Template::post_form(
                    addr,
                    "/t/default/introspect",
                    &format!("token={}", load::form_encode(&token)),
                    Some((&eddsa.id, &eddsa.secret)),
                ));
            }
            let load = Load::Rotate(templates, Default::default());
            Some(measure(cfg, "introspect EdDSA, distinct".into(), load).await)
        }
        false => None,
    };
    // Polls of pending device codes: client lookup, the device code's SHA-256 and the one
    // conditional UPDATE that holds the polling rate in the store (RFC 8628 §3.5).
    let device_poll = match cli.wants("device-poll") {
        true => {
            let spec = serde_json::json!({
                "client_id": DEVICE_CLIENT, "client_type": "public", "grant_types": ["device_code"],
            });
            let t = Template::post_json(addr, "/admin/v1/tenants/default/clients", &spec, admin_token);
            load::once_ok(addr, &t).await?;
            let load = device_poll_load(addr).await?;
            Some(measure(cfg, "device poll (pending)".into(), load).await)
        }
        false => None,
    };
    let token_exchange = match cli.wants("token-exchange-eddsa") {
        true => {
            let t = token_exchange_setup(addr, admin_token).await?;
            Some(measure(cfg, "token exchange EdDSA".into(), t).await)
        }
        false => None,
    };
    let private_key_jwt = match cli.wants("private-key-jwt-eddsa") {
        true => {
            let load = private_key_jwt_setup(addr, admin_token, false).await?;
            Some(measure(cfg, "private_key_jwt token EdDSA".into(), load).await)
        }
        false => None,
    };
    let private_key_jwt_policy = match cli.wants("private-key-jwt-policy-eddsa") {
        true => {
            let load = private_key_jwt_setup(addr, admin_token, true).await?;
            Some(measure(cfg, "private_key_jwt via trust policy EdDSA".into(), load).await)
        }
        false => None,
    };
    // Brokered SSO: no password is checked, so it may come before the code flow's set-up.
    let sso_callback = match cli.wants("sso-callback") {
        true => {
            let load = sso::setup(addr, admin_token, REDIRECT_URI).await?;
            Some(measure(cfg, "SSO sign-in ES256".into(), load).await)
        }
        false => None,
    };
    // The code flow's set-up comes last: creating the user and signing in run Argon2id (19 MiB
    // each) in the server, which would otherwise be the peak RSS of every load.
    let code_flow_algs: Vec<SigningAlg> = LOAD_ALGS
        .into_iter()
        .filter(|alg| cli.wants(&load_name("code-flow", *alg)))
        .collect();
    let session_loads: Vec<&str> = ["session-bind-eddsa", "session-refresh-eddsa"]
        .into_iter()
        .filter(|l| cli.wants(l))
        .collect();
    let mut peak_rss_before_sign_in_kb = None;
    let mut code_flows = Vec::new();
    let mut refresh_token = None;
    if !code_flow_algs.is_empty() || !session_loads.is_empty() || cli.wants("refresh-token-eddsa") {
        peak_rss_before_sign_in_kb = sesame.status_kb("VmHWM");
        // The sessions' loads need a person's access token: one EdDSA code flow gives it.
        let algs = match code_flow_algs.is_empty() {
            true => vec![SigningAlg::EdDSA],
            false => code_flow_algs.clone(),
        };
        code_flows = code_flow_setup(addr, admin_token, &algs).await?;
        if cli.wants("refresh-token-eddsa") {
            let load = refresh_setup(addr, admin_token, cfg.connections * 4).await?;
            refresh_token = Some(measure(cfg, "refresh token EdDSA".into(), load).await);
        }
    }
    let mut session_rows = Vec::new();
    if !session_loads.is_empty() {
        let person = code_flows
            .iter()
            .find(|(a, _)| *a == SigningAlg::EdDSA)
            .or(code_flows.first())
            .expect("a code flow");
        let body = person.1.once(addr).await?;
        let token = load::json_str(&body, "access_token").ok_or("the code flow gave no access token")?;
        let (bind, refresh) = sessions_setup(addr, admin_token, &token, cfg.connections * 4).await?;
        if cli.wants("session-bind-eddsa") {
            session_rows.push(measure(cfg, "session bind EdDSA".into(), bind).await);
        }
        if cli.wants("session-refresh-eddsa") {
            session_rows.push(measure(cfg, "session refresh EdDSA".into(), refresh).await);
        }
    }
    let mut code_flow_rows = Vec::new();
    for (alg, flow) in code_flows {
        if !code_flow_algs.contains(&alg) {
            continue;
        }
        let row = measure(cfg, format!("code flow {}", alg.as_str()), flow).await;
        code_flow_rows.push((alg, row));
    }
    let peak_rss_kb = sesame.status_kb("VmHWM");
    let threads = sesame.threads();
    let mut bursts = Vec::new();
    if cli.wants("sign-in-burst") {
        for (label, tenants) in [("at one tenant", 1), ("over 10 tenants, 20 each", 10)] {
            eprint!("sign-in burst {label:<26} ");
            let r = burst::round(addr, admin_token, label, tenants, &sesame).await?;
            eprintln!(
                "{:>6.0} sign-ins/s; checked {}, throttled {}, busy {}, errors {}; VmHWM {}",
                r.rate(),
                r.refused,
                r.throttled,
                r.busy,
                r.errors,
                r.peak_rss_kb.map_or("?".into(), mb)
            );
            bursts.push(r);
        }
    }
    sesame.stop();

    // A restart on the store the first start made: keys, migrations and tenant exist.
    let mut restarts = Vec::new();
    for i in 0..cli.starts {
        let spawned_at = Instant::now();
        let mut again = ServerProcess::spawn(
            "sesamed",
            sesamed,
            &args,
            &[],
            addr,
            pinning,
            &tmp.path().join(format!("sesamed-restart-{i}.log")),
        )?;
        restarts.push(again.wait_ready(spawned_at, Duration::from_secs(60)).await?);
        again.stop();
    }
    eprintln!("sesamed restarts on its store: {}", millis(&restarts));

    let mut baseline = Vec::new();
    let mut baseline_discovery = None;
    let mut baseline_jwks = None;
    let mut baseline_introspect = Vec::new();
    let mut baseline_starts = Vec::new();
    let mut baseline_device_poll = None;
    if cli.wants("baseline") {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find my own executable: {e}"))?;
        let addr = SocketAddr::from((
            [127, 0, 0, 1],
            server::free_port().map_err(|e| format!("no free port: {e}"))?,
        ));
        let args = vec!["--baseline-server".to_owned(), addr.port().to_string()];
        let store_file = tmp.path().join("baseline.db");
        let (discovery_file, jwks_file, store_file) = (
            discovery_file.display().to_string(),
            jwks_file.display().to_string(),
            store_file.display().to_string(),
        );
        let env = [
            (baseline::ENV_CLIENT_ID, eddsa.id.as_str()),
            (baseline::ENV_CLIENT_SECRET, eddsa.secret.as_str()),
            (baseline::ENV_DISCOVERY, discovery_file.as_str()),
            (baseline::ENV_JWKS, jwks_file.as_str()),
            (baseline::ENV_STORE, store_file.as_str()),
        ];
        // Timed starts first; the last one stays up for the loads.
        let mut base = None;
        for i in 0..cli.starts.max(1) {
            if let Some(mut b) = base.take() {
                ServerProcess::stop(&mut b);
            }
            let spawned_at = Instant::now();
            let mut b = ServerProcess::spawn(
                "baseline",
                &exe,
                &args,
                &env,
                addr,
                pinning,
                &tmp.path().join(format!("baseline-{i}.log")),
            )?;
            baseline_starts.push(b.wait_ready(spawned_at, Duration::from_secs(30)).await?);
            base = Some(b);
        }
        let mut base = base.expect("at least one start");
        eprintln!("baseline starts: {}", millis(&baseline_starts));
        let cfg = LoadConfig {
            addr,
            server_pid: Some(base.pid),
            ..cfg
        };
        // `--only baseline` alone runs every baseline load; with other loads named, their own.
        let base_wants = |load: &str| cli.only.iter().all(|o| o == "baseline") || cli.wants(load);
        let mut baseline_tokens = Vec::new();
        for alg in LOAD_ALGS {
            let t = Template::post_form(
                addr,
                baseline::token_path(alg),
                "grant_type=client_credentials",
                Some((&eddsa.id, &eddsa.secret)),
            );
            baseline_tokens.push((alg, fetch_token(addr, &t).await?));
            if !base_wants(&load_name("token", alg)) {
                continue;
            }
            let label = format!("baseline token {}", alg.as_str());
            baseline.push((alg, measure(cfg, label, t).await));
        }
        let discovery = Template::get(addr, "/t/default/.well-known/openid-configuration");
        let jwks = Template::get(addr, "/t/default/jwks");
        load::once_ok(addr, &discovery).await?;
        load::once_ok(addr, &jwks).await?;
        if base_wants("discovery") {
            baseline_discovery = Some(measure(cfg, "baseline discovery".into(), discovery).await);
        }
        if base_wants("jwks") {
            baseline_jwks = Some(measure(cfg, "baseline JWKS".into(), jwks).await);
        }
        for (alg, token) in baseline_tokens {
            if !base_wants(&load_name("introspect", alg)) {
                continue;
            }
            let t = Template::post_form(
                addr,
                "/t/default/introspect",
                &format!("token={}", load::form_encode(&token)),
                Some((&eddsa.id, &eddsa.secret)),
            );
            let body = load::once_ok(addr, &t).await?;
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            if v["active"] != true {
                return Err(format!("the baseline's introspection of its {alg} token: {v}"));
            }
            let label = format!("baseline introspect {}", alg.as_str());
            baseline_introspect.push((alg, measure(cfg, label, t).await));
        }
        if base_wants("device-poll") {
            let load = device_poll_load(addr).await?;
            baseline_device_poll = Some(measure(cfg, "baseline device poll".into(), load).await);
        }
        base.stop();
    }

    Ok(Results {
        startup,
        restarts,
        baseline_starts,
        baseline_discovery,
        baseline_jwks,
        baseline_introspect,
        idle_rss_kb,
        peak_rss_kb,
        peak_rss_before_sign_in_kb,
        threads,
        server_cpus,
        token: token_rows,
        discovery,
        jwks,
        introspect: introspect_rows,
        introspect_distinct,
        device_poll,
        baseline_device_poll,
        token_exchange,
        private_key_jwt,
        private_key_jwt_policy,
        code_flow: code_flow_rows,
        sessions: session_rows,
        baseline,
        burst: bursts,
        sso_callback,
        refresh_token,
    })
}

/// [`DEVICE_CODES`] device authorizations of [`DEVICE_CLIENT`] at `addr`, and the load that
/// polls them in turn.
async fn device_poll_load(addr: SocketAddr) -> Result<Load, String> {
    let start = Template::post_form(
        addr,
        "/t/default/device_authorization",
        &format!("client_id={DEVICE_CLIENT}&scope=openid"),
        None,
    );
    let mut templates = Vec::with_capacity(DEVICE_CODES);
    for body in load::repeat_ok(addr, &start, DEVICE_CODES).await? {
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("device authorization is not JSON: {e}"))?;
        let code = v["device_code"]
            .as_str()
            .ok_or_else(|| format!("device authorization without device_code: {v}"))?;
        templates.push(Template::post_form(
            addr,
            "/t/default/token",
            &format!(
                "{DEVICE_GRANT_FORM}&device_code={}&client_id={DEVICE_CLIENT}",
                load::form_encode(code)
            ),
            None,
        ));
    }
    tokio::time::sleep(DEVICE_FIRST_POLL_WAIT).await;
    Ok(Load::DevicePoll(templates, Default::default()))
}

/// Creates a confidential client through the admin API.
async fn create_client(
    addr: SocketAddr,
    admin_token: &str,
    alg: SigningAlg,
    spec: &serde_json::Value,
) -> Result<BenchClient, String> {
    let t = Template::post_json(addr, "/admin/v1/tenants/default/clients", spec, admin_token);
    let body = load::once_ok(addr, &t).await?;
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("client creation answer is not JSON: {e}"))?;
    let id = v["client"]["client_id"]
        .as_str()
        .ok_or("client creation answer has no client.client_id")?;
    let secret = v["client_secret"]
        .as_str()
        .ok_or("client creation answer has no client_secret")?;
    Ok(BenchClient {
        alg,
        id: id.to_owned(),
        secret: secret.to_owned(),
    })
}

/// A compact JWS of `claims` signed by `pair` (EdDSA) under `kid`.
fn sign_jws(
    pair: &sesame_core::keys::SigningKeyPair,
    kid: &str,
    claims: &serde_json::Value,
) -> Result<String, String> {
    let header = serde_json::json!({"alg": pair.alg().as_str(), "typ": "JWT", "kid": kid});
    let mut out = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let sig = pair.sign(out.as_bytes()).map_err(|e| e.to_string())?;
    out.push('.');
    out.push_str(&B64.encode(sig));
    Ok(out)
}

fn public_jwks(pair: &sesame_core::keys::SigningKeyPair, kid: &str) -> serde_json::Value {
    let jwk: serde_json::Value = serde_json::from_str(&pair.public_jwk(kid)).unwrap_or_default();
    serde_json::json!({ "keys": [jwk] })
}

async fn admin_post(
    addr: SocketAddr,
    admin_token: &str,
    path: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let t = Template::post_json(addr, path, body, admin_token);
    let answer = load::once_ok(addr, &t).await?;
    serde_json::from_slice(&answer).map_err(|e| format!("{path}: the answer is not JSON: {e}"))
}

/// The token-exchange load's set-up: an outside issuer's EdDSA key trusted inline by a policy,
/// an exchanging client, and one outside token (valid for an hour; outside tokens are not
/// single use), checked once.
async fn token_exchange_setup(addr: SocketAddr, admin_token: &str) -> Result<Template, String> {
    let pair = sesame_core::keys::SigningKeyPair::generate(SigningAlg::EdDSA).map_err(|e| e.to_string())?;
    let issuer = "https://ci.bench.example";
    admin_post(
        addr,
        admin_token,
        "/admin/v1/tenants/default/trust-policies",
        &serde_json::json!({
            "name": "bench-ci",
            "issuer": issuer,
            "jwks": public_jwks(&pair, "ci-1"),
            "audience": "sesame-bench",
            "subject": "repo:bench/*",
            "claims": { "ref": "refs/heads/main" },
            "identity": "bench-workload",
            "scopes": ["read"],
        }),
    )
    .await?;
    let v = admin_post(
        addr,
        admin_token,
        "/admin/v1/tenants/default/clients",
        &serde_json::json!({
            "name": "bench-broker",
            "signing_alg": "EdDSA",
            "grant_types": ["urn:ietf:params:oauth:grant-type:token-exchange"],
        }),
    )
    .await?;
    let (id, secret) = (
        v["client"]["client_id"]
            .as_str()
            .ok_or("no client_id")?
            .to_owned(),
        v["client_secret"].as_str().ok_or("no client_secret")?.to_owned(),
    );
    let now = sesame_core::now();
    let outside = sign_jws(
        &pair,
        "ci-1",
        &serde_json::json!({
            "iss": issuer, "aud": "sesame-bench", "sub": "repo:bench/app", "ref": "refs/heads/main",
            "iat": now, "nbf": now, "exp": now + 3600, "jti": "bench",
        }),
    )?;
    let t = Template::post_form(
        addr,
        "/t/default/token",
        &format!(
            "grant_type={}&subject_token={}&subject_token_type={}",
            load::form_encode("urn:ietf:params:oauth:grant-type:token-exchange"),
            load::form_encode(&outside),
            load::form_encode("urn:ietf:params:oauth:token-type:jwt"),
        ),
        Some((&id, &secret)),
    );
    let token = fetch_token(addr, &t).await?;
    if jws_alg(&token) != "EdDSA" {
        return Err("the exchanged token is not signed with EdDSA".into());
    }
    Ok(t)
}

/// The private_key_jwt loads' set-up: a client with an inline EdDSA JWKS, or (`policy`) a
/// client naming a trust policy whose inline JWKS signs Kubernetes-like service-account tokens,
/// and [`ASSERTIONS`] distinct assertions (each is single use), the last one checked.
async fn private_key_jwt_setup(addr: SocketAddr, admin_token: &str, policy: bool) -> Result<Load, String> {
    let pair = sesame_core::keys::SigningKeyPair::generate(SigningAlg::EdDSA).map_err(|e| e.to_string())?;
    let aud = format!("http://{addr}/t/default/token");
    let outside_issuer = "https://k8s.bench.example";
    let client = if policy {
        admin_post(
            addr,
            admin_token,
            "/admin/v1/tenants/default/trust-policies",
            &serde_json::json!({
                "name": "bench-k8s",
                "issuer": outside_issuer,
                "jwks": public_jwks(&pair, "k8s-1"),
                "audience": aud,
                "subject": "system:serviceaccount:bench:*",
                "claims": { "kubernetes.io.namespace": "bench" },
                "max_age": 3600,
                "identity": "bench-k8s",
            }),
        )
        .await?;
        serde_json::json!({ "name": "bench-k8s", "signing_alg": "EdDSA", "trust_policy": "bench-k8s" })
    } else {
        serde_json::json!({
            "name": "bench-keyed",
            "signing_alg": "EdDSA",
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": public_jwks(&pair, "c-1"),
        })
    };
    let v = admin_post(addr, admin_token, "/admin/v1/tenants/default/clients", &client).await?;
    let id = v["client"]["client_id"]
        .as_str()
        .ok_or("no client_id")?
        .to_owned();
    let now = sesame_core::now();
    let mut templates = Vec::with_capacity(ASSERTIONS);
    for i in 0..ASSERTIONS {
        let (kid, claims, client_id) = if policy {
            let claims = serde_json::json!({
                "iss": outside_issuer, "sub": "system:serviceaccount:bench:deployer", "aud": [aud],
                "iat": now, "nbf": now, "exp": now + 600, "jti": format!("bench-k8s-{i}"),
                "kubernetes.io": { "namespace": "bench", "serviceaccount": { "name": "deployer" } },
            });
            ("k8s-1", claims, format!("&client_id={}", load::form_encode(&id)))
        } else {
            let claims = serde_json::json!({"iss": id, "sub": id, "aud": aud, "iat": now, "exp": now + 300, "jti": format!("bench-{i}")});
            ("c-1", claims, String::new())
        };
        let assertion = sign_jws(&pair, kid, &claims)?;
        templates.push(Template::post_form(
            addr,
            "/t/default/token",
            &format!(
                "grant_type=client_credentials&client_assertion_type={}&client_assertion={}{client_id}",
                load::form_encode("urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                load::form_encode(&assertion),
            ),
            None,
        ));
    }
    // Checked with the last one, so the load starts at the first.
    let token = fetch_token(addr, templates.last().expect("assertions")).await?;
    if jws_alg(&token) != "EdDSA" {
        return Err("the private_key_jwt client's token is not signed with EdDSA".into());
    }
    templates.pop();
    Ok(Load::Rotate(templates, Default::default()))
}

/// The `alg` of a JWS's header ("" if it has none).
fn jws_alg(jws: &str) -> String {
    let header = jws
        .split('.')
        .next()
        .and_then(|h| B64.decode(h).ok())
        .unwrap_or_default();
    let header: serde_json::Value = serde_json::from_slice(&header).unwrap_or_default();
    header["alg"].as_str().unwrap_or_default().to_owned()
}

/// The code-flow loads' set-up: a user, one first-party client per algorithm (no consent
/// page), and one browser session, signed in through the login page. Each flow runs once here,
/// and both of its tokens must be signed with the client's algorithm.
async fn code_flow_setup(
    addr: SocketAddr,
    admin_token: &str,
    algs: &[SigningAlg],
) -> Result<Vec<(SigningAlg, CodeFlow)>, String> {
    let user = serde_json::json!({"username": BENCH_USER, "password": BENCH_PASSWORD});
    let t = Template::post_json(addr, "/admin/v1/tenants/default/users", &user, admin_token);
    load::once_ok(addr, &t).await?;
    let mut clients = Vec::new();
    for &alg in algs {
        let spec = serde_json::json!({
            "name": format!("bench-code-{}", alg.as_str().to_ascii_lowercase()),
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code"],
            "first_party": true,
            "signing_alg": alg.as_str(),
            "allowed_scopes": [],
        });
        clients.push(create_client(addr, admin_token, alg, &spec).await?);
    }
    // PKCE S256 (RFC 7636 §4.2): the challenge of the fixed verifier.
    let challenge = B64.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        CODE_VERIFIER.as_bytes(),
    ));
    let authorize_path = |c: &BenchClient| {
        format!(
            "/t/default/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid\
             &state=bench-state&nonce=bench-nonce&code_challenge={challenge}&code_challenge_method=S256",
            load::form_encode(&c.id),
            load::form_encode(REDIRECT_URI)
        )
    };
    let session = sign_in(addr, &authorize_path(&clients[0])).await?;
    let token_form = format!(
        "grant_type=authorization_code&redirect_uri={}&code_verifier={}",
        load::form_encode(REDIRECT_URI),
        load::form_encode(CODE_VERIFIER)
    );
    let mut flows = Vec::new();
    for c in &clients {
        let authorize =
            Template::get(addr, &authorize_path(c)).with_header(COOKIE, &format!("sesame_session={session}"));
        let token = Template::post_form(addr, "/t/default/token", &token_form, Some((&c.id, &c.secret)));
        let flow = CodeFlow::new(authorize, token, REDIRECT_URI);
        let body = flow
            .once(addr)
            .await
            .map_err(|e| format!("the {} code flow failed: {e}", c.alg))?;
        let v: serde_json::Value =
            serde_json::from_slice(&body).map_err(|e| format!("token answer is not JSON: {e}"))?;
        for field in ["id_token", "access_token"] {
            let alg = jws_alg(v[field].as_str().unwrap_or_default());
            if alg != c.alg.as_str() {
                return Err(format!(
                    "the {} code-flow client got an {field} signed with {alg:?}",
                    c.alg
                ));
            }
        }
        flows.push((c.alg, flow));
    }
    Ok(flows)
}

/// The refresh-token grant (RFC 6749 §6) of a person's password sign-in: `pool` grants of a
/// first-party EdDSA client, each refresh token used once (the load puts each successor back).
async fn refresh_setup(addr: SocketAddr, admin_token: &str, pool: usize) -> Result<Load, String> {
    let spec = serde_json::json!({
        "name": "bench-refresh-eddsa",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "first_party": true,
        "refresh_without_offline_access": true,
        "signing_alg": "EdDSA",
        "allowed_scopes": [],
    });
    let c = create_client(addr, admin_token, SigningAlg::EdDSA, &spec).await?;
    let challenge = B64.encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        CODE_VERIFIER.as_bytes(),
    ));
    let authorize_path = format!(
        "/t/default/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid\
         &state=bench-state&nonce=bench-nonce&code_challenge={challenge}&code_challenge_method=S256",
        load::form_encode(&c.id),
        load::form_encode(REDIRECT_URI)
    );
    let session = sign_in(addr, &authorize_path).await?;
    let authorize =
        Template::get(addr, &authorize_path).with_header(COOKIE, &format!("sesame_session={session}"));
    let token_form = format!(
        "grant_type=authorization_code&redirect_uri={}&code_verifier={}",
        load::form_encode(REDIRECT_URI),
        load::form_encode(CODE_VERIFIER)
    );
    let token = Template::post_form(addr, "/t/default/token", &token_form, Some((&c.id, &c.secret)));
    let flow = CodeFlow::new(authorize, token, REDIRECT_URI);
    let mut keys = Vec::with_capacity(pool);
    for _ in 0..pool {
        let body = flow.once(addr).await?;
        keys.push(load::json_str(&body, "refresh_token").ok_or("the code flow gave no refresh token")?);
    }
    let refresh = Template::post_form(
        addr,
        "/t/default/token",
        "grant_type=refresh_token&refresh_token=",
        Some((&c.id, &c.secret)),
    );
    Ok(Load::SessionRefresh {
        refresh,
        keys: std::sync::Mutex::new(keys),
    })
}

/// The delegated sessions' loads: a job client with the nonce and session-key grants; the bind
/// load creates a session with the person's `token` and binds it; the refresh load starts with
/// `pool` bound sessions' keys.
async fn sessions_setup(
    addr: SocketAddr,
    admin_token: &str,
    token: &str,
    pool: usize,
) -> Result<(Load, Load), String> {
    let spec = serde_json::json!({
        "name": "bench-session-job",
        "grant_types": [
            "urn:sesame:params:oauth:grant-type:session-nonce",
            "urn:sesame:params:oauth:grant-type:session-key",
        ],
        "signing_alg": "EdDSA",
    });
    let job = create_client(addr, admin_token, SigningAlg::EdDSA, &spec).await?;
    let create = Template::post_form(
        addr,
        "/t/default/sessions",
        &format!("client_id={}&scope=openid", load::form_encode(&job.id)),
        None,
    )
    .with_header(AUTHORIZATION, &format!("Bearer {token}"));
    let bind = Template::post_form(
        addr,
        "/t/default/token",
        &format!(
            "grant_type={}&nonce=",
            load::form_encode("urn:sesame:params:oauth:grant-type:session-nonce")
        ),
        Some((&job.id, &job.secret)),
    );
    let refresh = Template::post_form(
        addr,
        "/t/default/token",
        &format!(
            "grant_type={}&session_key=",
            load::form_encode("urn:sesame:params:oauth:grant-type:session-key")
        ),
        Some((&job.id, &job.secret)),
    );
    let mut keys = Vec::with_capacity(pool);
    for _ in 0..pool {
        let created = load::once_ok(addr, &create).await?;
        let nonce = load::json_str(&created, "nonce").ok_or("session creation gave no nonce")?;
        let bound = load::once_ok(addr, &bind.clone().with_body(&nonce)).await?;
        keys.push(load::json_str(&bound, "refresh_token").ok_or("binding gave no session key")?);
    }
    Ok((
        Load::SessionBind { create, bind },
        Load::SessionRefresh {
            refresh,
            keys: std::sync::Mutex::new(keys),
        },
    ))
}

/// Signs the bench user in as a browser does: `GET /authorize` without a session shows the
/// login page (hidden `csrf` and `request` fields, a `sesame_csrf` cookie), and posting it to
/// `/login` answers 303 with a `sesame_session` cookie. Returns that cookie's value.
async fn sign_in(addr: SocketAddr, authorize_path: &str) -> Result<String, String> {
    let page = load::exchange(addr, &Template::get(addr, authorize_path)).await?;
    let html = String::from_utf8_lossy(&page.body);
    let (Some(csrf_cookie), Some(csrf), Some(request)) = (
        set_cookie(&page, "sesame_csrf"),
        hidden_input(&html, "csrf"),
        hidden_input(&html, "request"),
    ) else {
        return Err(format!(
            "GET {authorize_path} without a session did not show the login page ({}): {}",
            page.status,
            html.chars().take(300).collect::<String>()
        ));
    };
    let form = format!(
        "csrf={}&request={}&username={}&password={}",
        load::form_encode(csrf),
        load::form_encode(request),
        load::form_encode(BENCH_USER),
        load::form_encode(BENCH_PASSWORD)
    );
    let login = Template::post_form(addr, "/t/default/login", &form, None)
        .with_header(COOKIE, &format!("sesame_csrf={csrf_cookie}"));
    let a = load::exchange(addr, &login).await?;
    let location = a.header(LOCATION).unwrap_or_default();
    // A first-party client needs no consent: the sign-in goes straight back with a code.
    match set_cookie(&a, "sesame_session") {
        Some(session) if load::code_in(location, &format!("{REDIRECT_URI}?")).is_some() => Ok(session),
        _ => Err(format!(
            "signing in answered {} (Location {location:?}): {}",
            a.status,
            String::from_utf8_lossy(&a.body)
                .chars()
                .take(300)
                .collect::<String>()
        )),
    }
}

/// The value of cookie `name` set by an answer.
fn set_cookie(a: &load::Answer, name: &str) -> Option<String> {
    a.headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix(name)?.strip_prefix('=')?.split(';').next())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// The value of `<input type="hidden" name="NAME" value="…">` in a page.
fn hidden_input<'a>(html: &'a str, name: &str) -> Option<&'a str> {
    let marker = format!(r#"name="{name}" value=""#);
    let rest = &html[html.find(&marker)? + marker.len()..];
    Some(&rest[..rest.find('"')?])
}

async fn fetch_token(addr: SocketAddr, t: &Template) -> Result<String, String> {
    let body = load::once_ok(addr, t).await?;
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("token answer is not JSON: {e}"))?;
    v["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("token answer has no access_token: {v}"))
}

async fn measure(cfg: LoadConfig, label: String, load: impl Into<Load>) -> Row {
    eprint!("{label:<22} ");
    let result = load::run(cfg, load.into()).await;
    eprintln!(
        "{:>10} {}/s  (server CPU {}, others on its core {}, load generator CPU {}, errors {})",
        thousands(result.rate()),
        result.unit,
        result.server_cpu.map_or("?".into(), percent),
        others(&result).map_or("?".into(), percent),
        result.client_cpu.map_or("?".into(), percent),
        result.errors
    );
    if let Some(e) = &result.first_error {
        eprintln!("  !!! {} ERRORS in {label}; first: {e}", result.errors);
    }
    Row { label, result }
}

// ---------------------------------------------------------------------------------------------
// The report

fn thousands(x: f64) -> String {
    let digits = (x.round() as u64).to_string();
    // Right to left, a comma before every fourth digit.
    let mut reversed = Vec::with_capacity(digits.len() * 4 / 3 + 1);
    let mut in_group = 0;
    for c in digits.chars().rev() {
        if in_group == 3 {
            reversed.push(',');
            in_group = 0;
        }
        reversed.push(c);
        in_group += 1;
    }
    reversed.into_iter().rev().collect()
}

/// What other processes (and the hypervisor) took from the server's core during the window.
fn others(r: &LoadResult) -> Option<f64> {
    Some((r.core_busy? - r.server_cpu?).max(0.0))
}

/// "(baseline 40,000 req/s: 95 %; per server CPU-second 98 %)". The second ratio divides each
/// rate by the share of its core the server got, which takes out most of what other processes
/// on a busy machine took from one row and not the other.
fn vs_baseline(r: &LoadResult, b: &LoadResult) -> String {
    let mut out = format!(
        "   (baseline {} req/s: {:.0} %",
        thousands(b.rate()),
        r.rate() / b.rate() * 100.0
    );
    if let (Some(c), Some(bc)) = (r.server_cpu, b.server_cpu) {
        if c > 0.0 && bc > 0.0 {
            out.push_str(&format!(
                "; per server CPU-second {:.0} %",
                (r.rate() / c) / (b.rate() / bc) * 100.0
            ));
        }
    }
    out.push(')');
    out
}

/// "41, 38, 40 ms (median 40)".
fn millis(times: &[Duration]) -> String {
    let list: Vec<String> = times.iter().map(|d| d.as_millis().to_string()).collect();
    format!("{} ms (median {})", list.join(", "), median(times).as_millis())
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

fn percent(share: f64) -> String {
    format!("{:.0} %", share * 100.0)
}

/// kB (as /proc reports, i.e. KiB) to "12.3 MB" (10^6 bytes).
fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 * 1024.0 / 1e6)
}

fn verdict(met: bool) -> String {
    if met { "MET" } else { "MISSED" }.into()
}

struct Table {
    rows: Vec<[String; 7]>,
}

impl Table {
    fn push(&mut self, cells: [&str; 7]) {
        self.rows.push(cells.map(str::to_owned));
    }

    fn render(&self) -> String {
        let mut widths = [0usize; 7];
        for r in &self.rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in &self.rows {
            let mut line = String::new();
            for (i, (c, w)) in r.iter().zip(widths).enumerate() {
                // The figure column is right-aligned, the others left-aligned.
                if i == 1 {
                    line.push_str(&format!("{c:>w$}   "));
                } else {
                    line.push_str(&format!("{c:<w$}   "));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

fn report(
    cli: &Cli,
    machine: &Machine,
    pinning: &Pinning,
    signs: &[SignRate],
    verifies: &[SignRate],
    password: &PasswordRate,
    r: &Results,
) -> String {
    let sign_rate = |alg: SigningAlg| signs.iter().find(|s| s.alg == alg).map_or(0.0, |s| s.per_second);
    let verify_rate = |alg: SigningAlg| {
        verifies
            .iter()
            .find(|s| s.alg == alg)
            .map_or(0.0, |s| s.per_second)
    };
    let raw_cpu = |others: Option<f64>| match others {
        Some(o) => format!("bench ({})", percent(o)),
        None => "bench".to_owned(),
    };
    let mut t = Table { rows: Vec::new() };
    t.push([
        "measure",
        "figure",
        "detail",
        "CPU (others)",
        "errors",
        "target",
        "status",
    ]);
    for s in signs {
        t.push([
            &format!("raw sign {}", s.alg.as_str()),
            &format!("{}/s", thousands(s.per_second)),
            &format!(
                "SigningKeyPair::sign, {}-byte JWS input, {} s",
                s.input_len, cli.sign_seconds
            ),
            &raw_cpu(s.others),
            "",
            "",
            "",
        ]);
    }
    for s in verifies {
        t.push([
            &format!("raw verify {}", s.alg.as_str()),
            &format!("{}/s", thousands(s.per_second)),
            &format!("Verifier::verify of one token, {} s", cli.sign_seconds / 2.0),
            &raw_cpu(s.others),
            "",
            "",
            "",
        ]);
    }
    t.push([
        &format!("password verify (Argon2id {})", password.params.replace(',', " ")),
        &format!("{}/s", thousands(password.per_second)),
        &format!(
            "login::verify_password of a wrong password, {:.1} ms each, {} s; once per sign-in, not per flow",
            1e3 / password.per_second,
            cli.sign_seconds
        ),
        &raw_cpu(password.others),
        "",
        "",
        "",
    ]);
    let errors = |row: &Row| {
        if row.result.errors == 0 {
            "0".to_owned()
        } else {
            format!("{} !!!", row.result.errors)
        }
    };
    let cpu = |row: &Row| {
        let own = row.result.server_cpu.map_or("?".into(), percent);
        match others(&row.result) {
            Some(o) => format!("{own} ({})", percent(o)),
            None => own,
        }
    };
    for (alg, row) in &r.token {
        let rate = row.result.rate();
        let raw = sign_rate(*alg);
        let mut detail = format!("raw sign {}/s   ratio {:.2}", thousands(raw), rate / raw);
        if let Some(b) = r.baseline.iter().find(|(a, _)| a == alg).map(|(_, b)| b) {
            detail.push_str(&vs_baseline(&row.result, &b.result));
        }
        let (target, status) = match alg {
            SigningAlg::EdDSA => (">= 20,000 req/s".to_owned(), verdict(rate >= 20_000.0)),
            SigningAlg::RS256 => (
                format!(">= 0.9 x raw sign = {}", thousands(0.9 * raw)),
                verdict(rate >= 0.9 * raw),
            ),
            SigningAlg::ES256 => ("(none)".to_owned(), String::new()),
        };
        t.push([
            &row.label,
            &format!("{} req/s", thousands(rate)),
            &detail,
            &cpu(row),
            &errors(row),
            &target,
            &status,
        ]);
    }
    let of_baseline = |row: &Row, base: Option<&Row>| match base {
        Some(b) => vs_baseline(&row.result, &b.result),
        None => String::new(),
    };
    let static_rows = [(&r.discovery, &r.baseline_discovery), (&r.jwks, &r.baseline_jwks)];
    for (row, base) in static_rows
        .iter()
        .filter_map(|(row, b)| Some((row.as_ref()?, b.as_ref())))
    {
        let rate = row.result.rate();
        t.push([
            &row.label,
            &format!("{} req/s", thousands(rate)),
            &format!("GET, prepared bytes{}", of_baseline(row, base)),
            &cpu(row),
            &errors(row),
            ">= 50,000 req/s",
            &verdict(rate >= 50_000.0),
        ]);
    }
    for (alg, row) in &r.introspect {
        let rate = row.result.rate();
        t.push([
            &row.label,
            &format!("{} req/s", thousands(rate)),
            &format!(
                "active {alg} token, Basic auth; raw verify {}/s{}",
                thousands(verify_rate(*alg)),
                of_baseline(
                    row,
                    r.baseline_introspect
                        .iter()
                        .find(|(a, _)| a == alg)
                        .map(|(_, b)| b)
                )
            ),
            &cpu(row),
            &errors(row),
            ">= 20,000 req/s",
            &verdict(rate >= 20_000.0),
        ]);
    }
    for (row, what) in [
        (
            &r.token_exchange,
            "outside EdDSA JWT: trust policy match, verify, sign; raw verify + sign",
        ),
        (
            &r.private_key_jwt,
            "a fresh EdDSA assertion each: verify, jti insert, sign; raw verify + sign",
        ),
        (
            &r.private_key_jwt_policy,
            "a fresh outside EdDSA token each: policy conditions, verify, jti insert, sign; raw verify + sign",
        ),
    ] {
        let Some(row) = row else { continue };
        // The raw cost of the two signature operations each request makes.
        let (v, s) = (verify_rate(SigningAlg::EdDSA), sign_rate(SigningAlg::EdDSA));
        let raw = if v > 0.0 && s > 0.0 {
            1.0 / (1.0 / v + 1.0 / s)
        } else {
            0.0
        };
        t.push([
            &row.label,
            &format!("{} req/s", thousands(row.result.rate())),
            &format!("{what} {}/s", thousands(raw)),
            &cpu(row),
            &errors(row),
            "(none)",
            "",
        ]);
    }
    if let Some(row) = &r.introspect_distinct {
        let rate = row.result.rate();
        t.push([
            &row.label,
            &format!("{} req/s", thousands(rate)),
            &format!(
                "{} EdDSA tokens in turn (cache misses); raw verify {}/s{}",
                thousands(DISTINCT_TOKENS as f64),
                thousands(verify_rate(SigningAlg::EdDSA)),
                of_baseline(
                    row,
                    r.baseline_introspect
                        .iter()
                        .find(|(a, _)| *a == SigningAlg::EdDSA)
                        .map(|(_, b)| b)
                )
            ),
            &cpu(row),
            &errors(row),
            "(none)",
            "",
        ]);
    }
    if let Some(row) = &r.device_poll {
        t.push([
            &row.label,
            &format!("{} req/s", thousands(row.result.rate())),
            &format!(
                "{} device codes in turn, public client; one conditional UPDATE each{}",
                thousands(DEVICE_CODES as f64),
                of_baseline(row, r.baseline_device_poll.as_ref())
            ),
            &cpu(row),
            &errors(row),
            "(none)",
            "",
        ]);
    }
    for (alg, row) in &r.code_flow {
        let rate = row.result.rate();
        // Two signatures per flow: the ID token's and the access token's.
        let ceiling = sign_rate(*alg) / 2.0;
        let (target, status) = match alg {
            SigningAlg::EdDSA => (">= 3,000 flows/s".to_owned(), verdict(rate >= 3_000.0)),
            _ => ("(none)".to_owned(), String::new()),
        };
        t.push([
            &row.label,
            &format!("{} flows/s", thousands(rate)),
            &format!(
                "authorize + token = {} req/s; 2 signatures (ID + access token): raw sign / 2 = {}/s   \
                 ratio {:.2}",
                thousands(row.result.request_rate()),
                thousands(ceiling),
                rate / ceiling
            ),
            &cpu(row),
            &errors(row),
            &target,
            &status,
        ]);
    }
    for row in &r.sessions {
        let rate = row.result.rate();
        // One signature per bind or refresh: the access token's (plus store writes).
        let ceiling = sign_rate(SigningAlg::EdDSA);
        t.push([
            &row.label,
            &format!("{} {}/s", thousands(rate), row.result.unit),
            &format!(
                "{} req/s; 1 signature each: raw sign {}/s   ratio {:.2}",
                thousands(row.result.request_rate()),
                thousands(ceiling),
                rate / ceiling
            ),
            &cpu(row),
            &errors(row),
            "(none)",
            "",
        ]);
    }
    if let Some(row) = &r.sso_callback {
        let rate = row.result.rate();
        // One verification per sign-in (the IdP's ES256 ID token); Sesame signs nothing (the
        // code is opaque), but writes the link, profile, groups, session and code.
        let ceiling = verify_rate(SigningAlg::ES256);
        t.push([
            &row.label,
            &format!("{} sign-ins/s", thousands(rate)),
            &format!(
                "start + callback = {} req/s, code exchange at an IdP on the bench's CPU; \
                 1 ES256 verify: raw verify {}/s   ratio {:.2}",
                thousands(row.result.request_rate()),
                thousands(ceiling),
                rate / ceiling
            ),
            &cpu(row),
            &errors(row),
            "(none)",
            "",
        ]);
    }
    if let Some(row) = &r.refresh_token {
        let rate = row.result.rate();
        // Two signatures per refresh: the ID token's and the access token's.
        let ceiling = sign_rate(SigningAlg::EdDSA) / 2.0;
        t.push([
            &row.label,
            &format!("{} refreshes/s", thousands(rate)),
            &format!(
                "{} req/s, each refresh token used once; 2 signatures (ID + access token): raw sign / 2 = {}/s   ratio {:.2}",
                thousands(row.result.request_rate()),
                thousands(ceiling),
                rate / ceiling
            ),
            &cpu(row),
            &errors(row),
            "(none)",
            "",
        ]);
    }
    for (alg, b) in &r.baseline {
        let rate = b.result.rate();
        t.push([
            &b.label,
            &format!("{} req/s", thousands(rate)),
            &format!(
                "bare axum: parse_basic + verify_secret + jwt::sign; ratio to raw sign {:.2}",
                rate / sign_rate(*alg)
            ),
            &cpu(b),
            &errors(b),
            "",
            "",
        ]);
    }
    for row in r.baseline_discovery.iter().chain(r.baseline_jwks.iter()) {
        t.push([
            &row.label,
            &format!("{} req/s", thousands(row.result.rate())),
            "bare axum: sesamed's bytes, ETag and If-None-Match check",
            &cpu(row),
            &errors(row),
            "",
            "",
        ]);
    }
    for (alg, row) in &r.baseline_introspect {
        t.push([
            &row.label,
            &format!("{} req/s", thousands(row.result.rate())),
            &format!(
                "bare axum: parse_basic + verify_secret + validate_access_token ({alg} verify) + revocation read (SQLite)"
            ),
            &cpu(row),
            &errors(row),
            "",
            "",
        ]);
    }
    if let Some(row) = &r.baseline_device_poll {
        t.push([
            &row.label,
            &format!("{} req/s", thousands(row.result.rate())),
            "bare axum: form + SHA-256 of the device code + the same poll UPDATE (SQLite)",
            &cpu(row),
            &errors(row),
            "",
            "",
        ]);
    }
    t.push([
        "start-up",
        &format!("{} ms", r.startup.as_millis()),
        "spawn -> first 200 from /readyz, empty store (keys, migrations, master key)",
        "",
        "",
        "",
        "",
    ]);
    if !r.restarts.is_empty() {
        t.push([
            "restart",
            &format!("{} ms", median(&r.restarts).as_millis()),
            &format!(
                "spawn -> first 200 from /readyz on the existing store; {}",
                millis(&r.restarts)
            ),
            "",
            "",
            "",
            "",
        ]);
    }
    if !r.baseline_starts.is_empty() {
        t.push([
            "baseline start-up",
            &format!("{} ms", median(&r.baseline_starts).as_millis()),
            &format!("spawn -> first 200 from /readyz; {}", millis(&r.baseline_starts)),
            "",
            "",
            "",
            "",
        ]);
    }
    let idle_bytes = r.idle_rss_kb.map(|kb| kb as f64 * 1024.0);
    t.push([
        "idle RSS",
        &r.idle_rss_kb.map_or("?".into(), mb),
        "VmRSS 1 s after ready",
        "",
        "",
        "<= 20 MB",
        &idle_bytes.map_or("?".into(), |b| verdict(b <= 20e6)),
    ]);
    let mut peak_detail = format!(
        "VmHWM after all loads; {} threads",
        r.threads.as_deref().unwrap_or("?")
    );
    if let Some(kb) = r.peak_rss_before_sign_in_kb {
        peak_detail.push_str(&format!(
            "; {} before the code flow's user and sign-in (Argon2id, 19 MiB each)",
            mb(kb)
        ));
    }
    t.push([
        "peak RSS",
        &r.peak_rss_kb.map_or("?".into(), mb),
        &peak_detail,
        "",
        "",
        "",
        "",
    ]);

    let mut out = String::new();
    out.push_str(&format!("sesame-bench   machine: {}\n", machine.describe()));
    out.push_str(&format!("pinning: {}", pinning.describe()));
    if let Some(cpus) = &r.server_cpus {
        out.push_str(&format!("; sesamed Cpus_allowed_list = {cpus}"));
    }
    out.push('\n');
    out.push_str(&format!(
        "load: {} keep-alive HTTP/1.1 connections from one current-thread tokio runtime; {} s warm-up + {} s window per row\n",
        cli.connections, cli.warmup, cli.seconds
    ));
    out.push_str(
        "CPU: the server's CPU time / window (100 % = its core busy), or \"bench\" for the raw crypto on the bench's core;\n\
         (others): what other processes, interrupts and the hypervisor took from that core meanwhile\n\n",
    );
    out.push_str(&t.render());

    if !r.burst.is_empty() {
        out.push_str(&burst::report(&r.burst, r.idle_rss_kb));
    }

    let mut notes = Vec::new();
    for row in r.rows() {
        if let Some(e) = &row.result.first_error {
            notes.push(format!(
                "!!! {}: {} errors; statuses {:?}; first: {e}",
                row.label, row.result.errors, row.result.statuses
            ));
        }
        if row.result.hit_request_cap {
            notes.push(format!(
                "{}: stopped at --max-requests before the window ended; the rate is low",
                row.label
            ));
        }
        if row.result.server_cpu.is_some_and(|c| c < 0.85) {
            let why = match others(&row.result) {
                Some(o) if o >= 0.05 => format!("other processes took {} of that core", percent(o)),
                _ => format!(
                    "it waited (on I/O, a lock, or the load generator, which used {} of its core)",
                    row.result.client_cpu.map_or("?".into(), percent)
                ),
            };
            notes.push(format!(
                "{}: the server used only {} of its core: {why}; the figure is low by about as much",
                row.label,
                row.result.server_cpu.map_or("?".into(), percent),
            ));
        }
    }
    let raw = signs
        .iter()
        .chain(verifies)
        .map(|s| (s.alg.as_str(), s.others))
        .chain([("password verify", password.others)]);
    for (what, others) in raw {
        if let Some(o) = others.filter(|o| *o >= 0.05) {
            notes.push(format!(
                "raw crypto {what}: other processes took {} of the bench's core: this rate, and the \
                 ratios built on it, are low; rerun on a quiet machine",
                percent(o)
            ));
        }
    }
    if let Pinning::Unpinned(_) = pinning {
        notes.push("not pinned: the server and the load generator compete for the same CPUs".into());
    }
    if !notes.is_empty() {
        out.push('\n');
        for n in notes {
            out.push_str(&n);
            out.push('\n');
        }
    }
    out
}
