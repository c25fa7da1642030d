//! `sesamed`: the Sesame server.

use clap::{Parser, Subcommand};
use sesame_server::bootstrap::AdminToken;
use sesame_server::config::{Config, LogFormat, Overrides};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "sesamed", version, about = "Sesame identity server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Ask a running sesamed whether it is ready (`GET /readyz` over plain HTTP); exits 0 when
    /// it answers 200. For container health checks, where no curl is installed.
    Probe(ProbeArgs),
    /// Copy the SQLite store to a new file while sesamed runs (a consistent snapshot). Back up
    /// the master key too, separately: the copy is useless without it. PostgreSQL: use pg_dump.
    Backup(BackupArgs),
    /// Operators' admin tokens, managed in the store directly (needs the store and master key).
    #[command(subcommand)]
    AdminToken(AdminTokenCommand),
}

#[derive(clap::Args)]
struct BackupArgs {
    #[command(flatten)]
    store: StoreArgs,
    /// The new file to write (must not exist).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(clap::Args)]
struct ProbeArgs {
    /// The URL to ask (plain http only).
    #[arg(long, default_value = "http://127.0.0.1:8080/readyz")]
    url: String,
    /// Seconds to wait for the answer.
    #[arg(long, default_value_t = 3)]
    timeout: u64,
}

/// Where the store is, as for `serve`.
#[derive(clap::Args)]
struct StoreArgs {
    /// TOML configuration file (fields may also come from SESAME_* environment variables).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Data directory [default: ./sesame-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Store URL: sqlite:PATH or postgres://USER@HOST/DB [default: SQLite in the data directory].
    #[arg(long)]
    store: Option<String>,
}

impl StoreArgs {
    /// The configuration these flags name; a bad one is reported (exit code 2).
    fn config(&self) -> Result<Config, ExitCode> {
        let overrides = Overrides {
            data_dir: self.data_dir.clone(),
            store: self.store.clone(),
            ..Overrides::default()
        };
        Config::load(self.config.as_deref(), &overrides).map_err(|e| {
            eprintln!("sesamed: {e}");
            ExitCode::from(2)
        })
    }
}

#[derive(Subcommand)]
enum AdminTokenCommand {
    /// Create a token and print it (shown once).
    Create {
        #[command(flatten)]
        store: StoreArgs,
        /// A unique name (the audit log names the token by it).
        #[arg(long)]
        name: String,
        /// How long it works, e.g. 30d, 12h [default: until revoked].
        #[arg(long)]
        expires_in: Option<String>,
        /// Limit the token to one tenant (then give --permission).
        #[arg(long)]
        tenant: Option<String>,
        /// A permission within --tenant (repeatable), e.g. clients:read.
        #[arg(long = "permission", requires = "tenant")]
        permissions: Vec<String>,
    },
    /// List tokens: names, scope and times (never the tokens).
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a token by name: it stops working at once.
    Revoke {
        #[command(flatten)]
        store: StoreArgs,
        name: String,
    },
}

fn admin_token(command: AdminTokenCommand) -> ExitCode {
    use sesame_server::admin_tokens;
    let store_args = match &command {
        AdminTokenCommand::Create { store, .. }
        | AdminTokenCommand::List { store }
        | AdminTokenCommand::Revoke { store, .. } => store,
    };
    let config = match store_args.config() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sesamed: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let store = admin_tokens::open_store(&config).await?;
        let now = sesame_core::now();
        match command {
            AdminTokenCommand::Create {
                name,
                expires_in,
                tenant,
                permissions,
                ..
            } => {
                let new = admin_tokens::NewToken {
                    name,
                    expires_in,
                    tenant,
                    permissions,
                };
                let (token, _) = admin_tokens::create(&*store, new, now).await?;
                println!("{}", token.expose());
                eprintln!("(shown once: keep it safe)");
            }
            AdminTokenCommand::List { .. } => {
                print!(
                    "{}",
                    admin_tokens::render_list(&admin_tokens::list(&*store).await?, now)
                );
            }
            AdminTokenCommand::Revoke { name, .. } => {
                admin_tokens::revoke(&*store, &name).await?;
                eprintln!("revoked admin token '{name}'");
            }
        }
        Ok::<(), String>(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sesamed: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Development mode: embedded SQLite in the data directory, a generated master key, tenant
    /// `default`, and the admin token saved in the data directory (`admin-token` for its own
    /// SQLite store, one file per other store).
    #[arg(long)]
    dev: bool,
    /// TOML configuration file (fields may also come from SESAME_* environment variables).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// A separate address for /admin/v1 and /metrics (then not served on --listen).
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Data directory [default: ./sesame-data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Store URL: sqlite:PATH or postgres://USER@HOST/DB [default: SQLite in the data directory].
    #[arg(long)]
    store: Option<String>,
    /// Public URL of this server [default: http://LISTEN].
    #[arg(long)]
    public_url: Option<String>,
    /// Log format.
    #[arg(long, value_enum)]
    log_format: Option<LogFormat>,
}

fn main() -> ExitCode {
    let args = match Cli::parse().command {
        Command::Serve(args) => args,
        Command::Probe(p) => return probe(&p),
        Command::Backup(b) => return backup(b),
        Command::AdminToken(command) => return admin_token(command),
    };
    let overrides = Overrides {
        listen: args.listen,
        admin_listen: args.admin_listen,
        data_dir: args.data_dir,
        store: args.store,
        public_url: args.public_url,
        log_format: args.log_format,
    };
    let config = match Config::load(args.config.as_deref(), &overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("sesamed: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sesamed: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let running = match sesame_server::start(&config, args.dev).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("sesamed: {e}");
                return ExitCode::FAILURE;
            }
        };
        print_banner(&running, args.dev);
        match running.serve_until(shutdown_signal()).await {
            Ok(()) => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("sesamed: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

/// `sesamed backup`: `VACUUM INTO` a new file, from the store the same settings would open.
fn backup(b: BackupArgs) -> ExitCode {
    let config = match b.store.config() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let url = config.store_url();
    let db = match &url {
        sesame_store::StoreUrl::Sqlite(u) => sesame_server::lock::sqlite_path(u),
        sesame_store::StoreUrl::Postgres(_) => None,
    };
    let Some(db) = db else {
        eprintln!(
            "sesamed backup: {url} is not an SQLite file; back up PostgreSQL with pg_dump \
             (and the master key with it: docs/production.md)"
        );
        return ExitCode::FAILURE;
    };
    match sesame_store::backup::sqlite_backup(&db, &b.out) {
        Ok(()) => {
            println!(
                "backed up {} to {}; keep the master key with it (restore needs both)",
                db.display(),
                b.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sesamed backup: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `sesamed probe`: one `GET` with the standard library (the image has no HTTP client).
fn probe(p: &ProbeArgs) -> ExitCode {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    let fail = |why: String| {
        eprintln!("sesamed probe: {why}");
        ExitCode::FAILURE
    };
    let Some(rest) = p.url.strip_prefix("http://") else {
        return fail(format!("{}: only http:// URLs can be probed", p.url));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let timeout = std::time::Duration::from_secs(p.timeout.max(1));
    let addr = match authority.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(a)) => a,
        Ok(None) | Err(_) => return fail(format!("{authority}: not a host:port that resolves")),
    };
    let mut stream = match std::net::TcpStream::connect_timeout(&addr, timeout) {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot connect to {addr}: {e}")),
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    if let Err(e) = stream.write_all(request.as_bytes()) {
        return fail(format!("cannot send to {addr}: {e}"));
    }
    let mut answer = Vec::new();
    let _ = stream.take(64 * 1024).read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.lines().next().unwrap_or("");
    if status.split(' ').nth(1) == Some("200") {
        ExitCode::SUCCESS
    } else {
        fail(format!(
            "{}: {}",
            p.url,
            if status.is_empty() { "no answer" } else { status }
        ))
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::new(&config.log_level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

/// `sesame --url`'s default: the banner's hint leaves `--url` out when it is this.
const CLI_DEFAULT_URL: &str = "http://127.0.0.1:8080";

fn print_banner(r: &sesame_server::Running, dev: bool) {
    let issuer = r.issuer(sesame_server::bootstrap::DEFAULT_TENANT);
    let mut out = format!(
        "Sesame is listening on {} ({} store, started in {} ms)\n  issuer:     {issuer}\n  discovery:  {issuer}/.well-known/openid-configuration\n",
        r.addr,
        r.app.store.backend(),
        r.started_in.as_millis()
    );
    // Absolute, so that a start from another directory (which means another store) shows.
    match &r.store_lock {
        Some(lock) => out.push_str(&format!(
            "  data:       {}{}\n",
            lock.path.parent().unwrap_or(&r.data_dir).display(),
            match (r.new_store, r.new_master_key) {
                (true, true) => " (a new store, created now: new master key, tenants and admin token)",
                (true, false) => " (a new store, created now: tenants and admin token; the master key is the configured one)",
                _ => "",
            }
        )),
        None => {
            out.push_str(&format!("  store:      {}\n", r.store_url));
            if r.new_store {
                out.push_str("  (a new store, initialised now)\n");
            }
        }
    }
    if let Some(admin) = r.admin_addr {
        out.push_str(&format!(
            "  admin API and metrics: http://{admin} (not on the public listener)\n"
        ));
    }
    // How the CLI finds the admin token, from any directory.
    let mut token_line = None;
    match &r.admin_token {
        AdminToken::Created(token, file) => {
            out.push_str(&format!("  admin token (shown once): {}\n", token.expose()));
            match file {
                Some(f) => {
                    out.push_str(&format!("  admin token saved to {} (mode 0600)\n", f.display()));
                    token_line = Some(format!("export SESAME_ADMIN_TOKEN_FILE={}", shell_word(f)));
                }
                None => {
                    token_line = Some("export SESAME_ADMIN_TOKEN=<the admin token above>".to_owned());
                }
            }
        }
        AdminToken::Exists(Some(f)) => {
            out.push_str(&format!("  admin token: in {}\n", f.display()));
            token_line = Some(format!("export SESAME_ADMIN_TOKEN_FILE={}", shell_word(f)));
        }
        AdminToken::Exists(None) => {}
    }
    // The CLI speaks to the admin API, which is on the admin listener when there is one.
    let admin_url = match r.admin_addr {
        Some(a) => format!("http://{a}"),
        None => r.public_url.clone(),
    };
    let url = if admin_url == CLI_DEFAULT_URL {
        String::new()
    } else {
        format!(" --url {admin_url}")
    };
    out.push_str("Next: create a client and get a token:\n");
    if let Some(line) = token_line {
        out.push_str(&format!("  {line}\n"));
    }
    out.push_str(&format!(
        "  sesame admin{url} clients create --tenant default --name my-service\n  \
         curl -u CLIENT_ID:CLIENT_SECRET -d grant_type=client_credentials {issuer}/token\n"
    ));
    if !dev {
        out.push_str("(not in --dev mode: keep the master key and the admin token safe)\n");
    }
    print!("{out}");
}

/// A path as one word for a POSIX shell (quoted only when it needs to be).
fn shell_word(path: &std::path::Path) -> String {
    let s = path.display().to_string();
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@%".contains(&b))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}
