//! The load generator: a fixed number of keep-alive HTTP/1.1 connections on hyper's low-level
//! client, on the caller's (current-thread) runtime. Each connection repeats one [`Load`]: a
//! pre-built request, or the two dependent requests of the authorization-code flow. A warm-up,
//! then a fixed window in which completed iterations are counted. Loopback only.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST, LOCATION};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// One answer may take this long before it counts as an error (and the connection is replaced).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A request built once and cloned cheaply for every send (the body is a shared `Bytes`).
#[derive(Clone)]
pub struct Template {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl Template {
    pub fn get(addr: SocketAddr, path: &str) -> Template {
        let mut headers = HeaderMap::new();
        headers.insert(
            HOST,
            HeaderValue::from_str(&addr.to_string()).expect("an address is a valid header"),
        );
        Template {
            method: Method::GET,
            uri: path.parse().expect("the path is a valid URI"),
            headers,
            body: Bytes::new(),
        }
    }

    pub fn post_form(addr: SocketAddr, path: &str, form: &str, basic: Option<(&str, &str)>) -> Template {
        let mut t = Template::get(addr, path);
        t.method = Method::POST;
        t.headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        if let Some((id, secret)) = basic {
            t.headers.insert(AUTHORIZATION, basic_header(id, secret));
        }
        t.body = Bytes::from(form.to_owned());
        t
    }

    pub fn post_json(addr: SocketAddr, path: &str, json: &serde_json::Value, bearer: &str) -> Template {
        let mut t = Template::get(addr, path);
        t.method = Method::POST;
        t.headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        t.headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {bearer}")).expect("the admin token is a valid header"),
        );
        t.body = Bytes::from(json.to_string());
        t
    }

    /// The same request with one more header (a `Cookie`, say).
    /// The same request with `value` (form-encoded) appended to its form.
    pub fn with_body(mut self, value: &str) -> Template {
        self.body = with_value(&self.body, value);
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: &str) -> Template {
        let value = HeaderValue::from_str(value).expect("the header value is printable ASCII");
        self.headers.insert(name, value);
        self
    }

    fn request(&self) -> Request<Full<Bytes>> {
        self.request_with(self.body.clone())
    }

    /// This request with another body (the per-iteration part of a dependent request).
    fn request_with(&self, body: Bytes) -> Request<Full<Bytes>> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }

    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.uri)
    }
}

/// `Basic base64(urlencode(id) ':' urlencode(secret))` (RFC 6749 §2.3.1).
pub fn basic_header(id: &str, secret: &str) -> HeaderValue {
    use base64::Engine;
    let joined = format!("{}:{}", form_encode(id), form_encode(secret));
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(joined)
    );
    HeaderValue::from_str(&value).expect("base64 is a valid header")
}

/// application/x-www-form-urlencoded encoding of one value.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    // This is a load generator: it only ever talks to a server on this machine.
    if !addr.ip().is_loopback() {
        return Err(format!(
            "{addr} is not a loopback address; the bench only loads local servers"
        ));
    }
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        // The connection ends when its sender is dropped or the server closes it; an error
        // here shows up as a failed request on the sender side.
        let _ = conn.await;
    });
    Ok(sender)
}

/// A whole answer, its body read to the end.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// A header's value as text, if present and printable.
    pub fn header(&self, name: HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The start of the body, for error messages.
    fn body_excerpt(&self) -> String {
        String::from_utf8_lossy(&self.body[..self.body.len().min(300)]).into_owned()
    }
}

async fn send(sender: &mut SendRequest<Full<Bytes>>, req: Request<Full<Bytes>>) -> Result<Answer, String> {
    sender
        .ready()
        .await
        .map_err(|e| format!("connection not ready: {e}"))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("body read failed: {e}"))?
        .to_bytes();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// One request on a fresh connection, with its headers (set-up: the sign-in).
pub async fn exchange(addr: SocketAddr, t: &Template) -> Result<Answer, String> {
    exchange_within(addr, t, REQUEST_TIMEOUT).await
}

/// [`exchange`] with its own time limit (the sign-in burst's answers may take longer).
pub async fn exchange_within(addr: SocketAddr, t: &Template, limit: Duration) -> Result<Answer, String> {
    tokio::time::timeout(limit, async {
        let mut sender = connect(addr).await?;
        send(&mut sender, t.request()).await
    })
    .await
    .map_err(|_| format!("{}: no answer within {limit:?}", t.describe()))?
}

/// One request on a fresh connection (set-up, readiness polls, checks).
pub async fn once(addr: SocketAddr, t: &Template) -> Result<(StatusCode, Bytes), String> {
    exchange(addr, t).await.map(|a| (a.status, a.body))
}

/// Like [`once`], but anything other than 2xx is an error that shows the answer.
pub async fn once_ok(addr: SocketAddr, t: &Template) -> Result<Bytes, String> {
    let (status, body) = once(addr, t).await?;
    if !status.is_success() {
        return Err(format!(
            "{} answered {status}: {}",
            t.describe(),
            String::from_utf8_lossy(&body)
        ));
    }
    Ok(body)
}

/// The same request `n` times on one keep-alive connection, each answer 2xx (set-up of many
/// rows, without a connection, and a socket in TIME_WAIT, per row).
pub async fn repeat_ok(addr: SocketAddr, t: &Template, n: usize) -> Result<Vec<Bytes>, String> {
    let mut sender = connect(addr).await?;
    let mut bodies = Vec::with_capacity(n);
    for _ in 0..n {
        let a = tokio::time::timeout(REQUEST_TIMEOUT, send(&mut sender, t.request()))
            .await
            .map_err(|_| format!("{}: no answer within {REQUEST_TIMEOUT:?}", t.describe()))??;
        if !a.status.is_success() {
            return Err(unexpected(t, &a));
        }
        bodies.push(a.body);
    }
    Ok(bodies)
}

/// What every connection of a run repeats.
// One per run, shared by the connections behind an Arc: its size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Load {
    /// One pre-built request; an iteration is one 2xx answer.
    Request(Template),
    /// The authorization-code flow; an iteration is one flow (two requests).
    CodeFlow(CodeFlow),
    /// Pre-built requests taken in turn by all connections (the next index is shared), so that
    /// no request repeats until every other one was sent; an iteration is one 2xx answer.
    Rotate(Vec<Template>, AtomicUsize),
    /// Device-code polls (RFC 8628 §3.4), taken in turn like `Rotate`; an iteration is one
    /// 400 `authorization_pending` answer (a `slow_down` is an error: too few device codes for
    /// the rate, so some were polled again within their interval).
    DevicePoll(Vec<Template>, AtomicUsize),
    /// A delegated session created with a person's token (`create`), whose nonce is then bound
    /// (`bind`, the nonce appended to its form); an iteration is one bind (two requests).
    SessionBind { create: Template, bind: Template },
    /// Session-key refreshes: each iteration takes a key of one of many bound sessions from the
    /// pool, refreshes with it (the key appended to the form) and puts the next key back, so no
    /// key is sent twice; an iteration is one refresh.
    SessionRefresh {
        refresh: Template,
        keys: std::sync::Mutex<Vec<String>>,
    },
    /// Brokered SSO sign-ins; an iteration is one sign-in (two requests, see [`SsoSignIn`]).
    SsoSignIn(SsoSignIn),
}

impl From<Template> for Load {
    fn from(t: Template) -> Load {
        Load::Request(t)
    }
}

impl From<CodeFlow> for Load {
    fn from(flow: CodeFlow) -> Load {
        Load::CodeFlow(flow)
    }
}

impl Load {
    /// HTTP requests in one iteration.
    pub fn requests_per_iteration(&self) -> u64 {
        match self {
            Load::Request(_) | Load::Rotate(..) | Load::DevicePoll(..) | Load::SessionRefresh { .. } => 1,
            Load::CodeFlow(_) | Load::SessionBind { .. } => 2,
            Load::SsoSignIn(_) => 2,
        }
    }

    /// What an iteration is called in rates ("req/s", "flows/s").
    pub fn unit(&self) -> &'static str {
        match self {
            Load::Request(_) | Load::Rotate(..) | Load::DevicePoll(..) => "req",
            Load::CodeFlow(_) => "flows",
            Load::SessionBind { .. } => "binds",
            Load::SessionRefresh { .. } => "refreshes",
            Load::SsoSignIn(_) => "sign-ins",
        }
    }

    async fn iterate(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        stats: &mut ConnStats,
    ) -> Result<(), Failure> {
        match self {
            Load::Request(t) => {
                let a = step(sender, t.request(), t, stats).await?;
                if !a.status.is_success() {
                    return Err(Failure::Answer(unexpected(t, &a)));
                }
                Ok(())
            }
            Load::CodeFlow(flow) => flow.iterate(sender, stats).await.map(drop),
            Load::Rotate(templates, next) => {
                let t = &templates[next.fetch_add(1, Ordering::Relaxed) % templates.len()];
                let a = step(sender, t.request(), t, stats).await?;
                if !a.status.is_success() {
                    return Err(Failure::Answer(unexpected(t, &a)));
                }
                Ok(())
            }
            Load::DevicePoll(templates, next) => {
                let t = &templates[next.fetch_add(1, Ordering::Relaxed) % templates.len()];
                let a = step(sender, t.request(), t, stats).await?;
                if a.status != StatusCode::BAD_REQUEST || !contains(&a.body, b"\"authorization_pending\"") {
                    return Err(Failure::Answer(unexpected(t, &a)));
                }
                Ok(())
            }
            Load::SessionBind { create, bind } => {
                let a = step(sender, create.request(), create, stats).await?;
                let Some(nonce) = (a.status == StatusCode::CREATED)
                    .then(|| json_str(&a.body, "nonce"))
                    .flatten()
                else {
                    return Err(Failure::Answer(unexpected(create, &a)));
                };
                let a = step(
                    sender,
                    bind.request_with(with_value(&bind.body, &nonce)),
                    bind,
                    stats,
                )
                .await?;
                if a.status != StatusCode::OK {
                    return Err(Failure::Answer(unexpected(bind, &a)));
                }
                Ok(())
            }
            Load::SessionRefresh { refresh, keys } => {
                let Some(key) = keys.lock().expect("lock").pop() else {
                    return Err(Failure::Answer("no session key left in the pool".into()));
                };
                let a = step(
                    sender,
                    refresh.request_with(with_value(&refresh.body, &key)),
                    refresh,
                    stats,
                )
                .await?;
                let Some(next) = (a.status == StatusCode::OK)
                    .then(|| json_str(&a.body, "refresh_token"))
                    .flatten()
                else {
                    return Err(Failure::Answer(unexpected(refresh, &a)));
                };
                keys.lock().expect("lock").push(next);
                Ok(())
            }
            Load::SsoSignIn(sso) => sso.iterate(sender, stats).await,
        }
    }
}

/// A form ending in `name=`, with `value` (form-encoded) appended.
fn with_value(form: &Bytes, value: &str) -> Bytes {
    let mut body = Vec::with_capacity(form.len() + value.len() * 3);
    body.extend_from_slice(form);
    body.extend_from_slice(form_encode(value).as_bytes());
    body.into()
}

/// A string member of a JSON answer.
pub fn json_str(body: &[u8], name: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v[name].as_str().map(str::to_owned)
}

/// Why an iteration did not complete. Either way it is one error.
enum Failure {
    /// A wrong answer; the connection is still good.
    Answer(String),
    /// The connection failed or an answer timed out; the connection is replaced.
    Connection(String),
}

/// One request of an iteration, within [`REQUEST_TIMEOUT`]; every answer's status is counted.
async fn step(
    sender: &mut SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
    t: &Template,
    stats: &mut ConnStats,
) -> Result<Answer, Failure> {
    stats.sent += 1;
    match tokio::time::timeout(REQUEST_TIMEOUT, send(sender, req)).await {
        Ok(Ok(a)) => {
            *stats.statuses.entry(a.status.as_u16()).or_default() += 1;
            Ok(a)
        }
        Ok(Err(e)) => Err(Failure::Connection(format!("{}: {e}", t.describe()))),
        Err(_) => Err(Failure::Connection(format!(
            "{}: no answer within {REQUEST_TIMEOUT:?}",
            t.describe()
        ))),
    }
}

fn unexpected(t: &Template, a: &Answer) -> String {
    format!("{} answered {}: {}", t.describe(), a.status, a.body_excerpt())
}

/// The authorization-code flow of a signed-in browser (RFC 6749 §4.1, OpenID Connect Core
/// §3.1): `GET /authorize` with the session cookie answers 303 to the redirect URI with a code,
/// which `POST /token` exchanges for tokens. A flow counts only if the token endpoint answers
/// 200 with an `id_token`.
pub struct CodeFlow {
    authorize: Template,
    /// The token request; each flow sends its form followed by `&code=…`.
    token: Template,
    /// What the authorization response's Location starts with: the redirect URI and `?`.
    redirect_prefix: String,
}

impl CodeFlow {
    /// `authorize`: the GET with its query and Cookie; `token`: the POST with the client's
    /// authentication and every field but the code.
    pub fn new(authorize: Template, token: Template, redirect_uri: &str) -> CodeFlow {
        CodeFlow {
            authorize,
            token,
            redirect_prefix: format!("{redirect_uri}?"),
        }
    }

    /// One flow on a fresh connection, for the check before the load: the token answer's body.
    pub async fn once(&self, addr: SocketAddr) -> Result<Bytes, String> {
        let mut sender = connect(addr).await?;
        let mut stats = ConnStats::default();
        self.iterate(&mut sender, &mut stats).await.map_err(|f| match f {
            Failure::Answer(e) | Failure::Connection(e) => e,
        })
    }

    async fn iterate(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        stats: &mut ConnStats,
    ) -> Result<Bytes, Failure> {
        let a = step(sender, self.authorize.request(), &self.authorize, stats).await?;
        if a.status != StatusCode::SEE_OTHER {
            return Err(Failure::Answer(unexpected(&self.authorize, &a)));
        }
        let location = a.header(LOCATION).unwrap_or("");
        let Some(code) = code_in(location, &self.redirect_prefix) else {
            return Err(Failure::Answer(format!(
                "{} answered 303 without a code: Location {location:?}",
                self.authorize.describe()
            )));
        };
        let form = &self.token.body;
        let mut body = Vec::with_capacity(form.len() + 6 + code.len());
        body.extend_from_slice(form);
        body.extend_from_slice(b"&code=");
        body.extend_from_slice(code.as_bytes());
        let a = step(sender, self.token.request_with(body.into()), &self.token, stats).await?;
        if a.status != StatusCode::OK || !contains(&a.body, br#""id_token":""#) {
            return Err(Failure::Answer(unexpected(&self.token, &a)));
        }
        Ok(a.body)
    }
}

/// A brokered SSO sign-in of a browser (see `sso.rs`): `GET {issuer}/sso/{c}/start?request=…`
/// answers 303 to the IdP with `state` and `nonce` and sets the sealed SSO cookie; the IdP's
/// page is skipped (the bench's IdP takes the nonce itself as the code), and
/// `GET {issuer}/sso/{c}/callback?code=…&state=…` with that cookie must answer 303 to the
/// redirect URI with a code (a first-party client: no consent).
pub struct SsoSignIn {
    start: Template,
    callback: Template,
    redirect_prefix: String,
}

impl SsoSignIn {
    /// `callback`: a GET of the callback path (its query is set per sign-in).
    pub fn new(start: Template, callback: Template, redirect_uri: &str) -> SsoSignIn {
        SsoSignIn {
            start,
            callback,
            redirect_prefix: format!("{redirect_uri}?"),
        }
    }

    /// One sign-in on a fresh connection, for the check before the load.
    pub async fn once(&self, addr: SocketAddr) -> Result<(), String> {
        let mut sender = connect(addr).await?;
        let mut stats = ConnStats::default();
        self.iterate(&mut sender, &mut stats).await.map_err(|f| match f {
            Failure::Answer(e) | Failure::Connection(e) => e,
        })
    }

    async fn iterate(
        &self,
        sender: &mut SendRequest<Full<Bytes>>,
        stats: &mut ConnStats,
    ) -> Result<(), Failure> {
        let a = step(sender, self.start.request(), &self.start, stats).await?;
        let location = a.header(LOCATION).unwrap_or("");
        let param = |name: &str| {
            location
                .split_once('?')?
                .1
                .split('&')
                .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_owned)
        };
        let cookie = a
            .headers
            .get_all(hyper::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("sesame_sso=")?.split(';').next())
            .map(str::to_owned);
        let (Some(state), Some(nonce), Some(cookie), StatusCode::SEE_OTHER) =
            (param("state"), param("nonce"), cookie, a.status)
        else {
            return Err(Failure::Answer(unexpected(&self.start, &a)));
        };
        let mut req = self.callback.request();
        let uri = format!("{}?code={nonce}&state={state}", self.callback.uri.path());
        *req.uri_mut() = uri
            .parse()
            .map_err(|e| Failure::Answer(format!("callback URI: {e}")))?;
        req.headers_mut().insert(
            hyper::header::COOKIE,
            HeaderValue::from_str(&format!("sesame_sso={cookie}"))
                .map_err(|e| Failure::Answer(format!("cookie: {e}")))?,
        );
        let a = step(sender, req, &self.callback, stats).await?;
        let location = a.header(LOCATION).unwrap_or("");
        if a.status != StatusCode::SEE_OTHER || code_in(location, &self.redirect_prefix).is_none() {
            return Err(Failure::Answer(unexpected(&self.callback, &a)));
        }
        Ok(())
    }
}

impl From<SsoSignIn> for Load {
    fn from(s: SsoSignIn) -> Load {
        Load::SsoSignIn(s)
    }
}

/// The `code` parameter of an authorization response to `prefix` (the redirect URI and `?`),
/// still form-encoded, as it goes into the token request's form.
pub fn code_in<'a>(location: &'a str, prefix: &str) -> Option<&'a str> {
    location
        .strip_prefix(prefix)?
        .split('&')
        .find_map(|pair| pair.strip_prefix("code="))
        .filter(|code| !code.is_empty())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[derive(Clone, Copy)]
pub struct LoadConfig {
    pub addr: SocketAddr,
    pub connections: usize,
    pub warmup: Duration,
    pub window: Duration,
    /// Upper bound on the requests sent in one run, over all connections.
    pub max_requests: u64,
    /// The server's pid, to sample its CPU time over the window.
    pub server_pid: Option<u32>,
    /// The CPU the server is pinned to, to see what else ran on it during the window.
    pub server_core: Option<usize>,
}

#[derive(Default)]
struct ConnStats {
    /// Iterations (2xx answers, or whole flows) completed inside the window.
    ok: u64,
    /// Failed iterations at any time (warm-up included): wrong answers, transport errors, timeouts.
    errors: u64,
    /// Requests sent.
    sent: u64,
    statuses: BTreeMap<u16, u64>,
    first_error: Option<String>,
}

impl ConnStats {
    fn error(&mut self, what: String) {
        self.errors += 1;
        self.first_error.get_or_insert(what);
    }
}

pub struct LoadResult {
    /// Iterations completed inside the window.
    pub ok: u64,
    pub errors: u64,
    /// Requests sent, over the whole run.
    pub sent: u64,
    /// Requests in one iteration (2 for the code flow).
    pub requests_per_iteration: u64,
    /// "req" or "flows".
    pub unit: &'static str,
    pub window: Duration,
    /// Count of answers by status, over the whole run.
    pub statuses: BTreeMap<u16, u64>,
    pub first_error: Option<String>,
    /// Server CPU time over the window / window (1.0 = one core busy).
    pub server_cpu: Option<f64>,
    /// This process's CPU time over the window / window.
    pub client_cpu: Option<f64>,
    /// Share of the window in which the server's CPU was busy (with anything) or stolen by the
    /// hypervisor; minus `server_cpu`, what other processes took from the server.
    pub core_busy: Option<f64>,
    pub hit_request_cap: bool,
}

impl LoadResult {
    /// Iterations per second: requests, or flows.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }

    /// HTTP requests per second of the completed iterations.
    pub fn request_rate(&self) -> f64 {
        self.rate() * self.requests_per_iteration as f64
    }
}

async fn connection_loop(
    cfg: LoadConfig,
    load: Arc<Load>,
    measure_from: Instant,
    end: Instant,
    cap: u64,
) -> ConnStats {
    let mut stats = ConnStats::default();
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    let mut connect_failures = 0;
    while Instant::now() < end && stats.sent < cap {
        let s = match sender.as_mut() {
            Some(s) => s,
            None => match connect(cfg.addr).await {
                Ok(s) => sender.insert(s),
                Err(e) => {
                    stats.error(e);
                    connect_failures += 1;
                    if connect_failures >= 3 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        match load.iterate(s, &mut stats).await {
            Ok(()) => {
                let done = Instant::now();
                if done >= measure_from && done < end {
                    stats.ok += 1;
                }
            }
            Err(Failure::Answer(e)) => stats.error(e),
            Err(Failure::Connection(e)) => {
                stats.error(e);
                sender = None;
            }
        }
    }
    stats
}

/// Process CPU time (user + system) of `pid`, from /proc/PID/stat.
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here (0-based: 11, 12).
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as u64 } else { 100 };
    Some(Duration::from_secs_f64(ticks as f64 / hz as f64))
}

/// Busy (everything but idle and iowait, steal included) and total ticks of one CPU, from /proc/stat.
fn core_ticks(cpu: usize) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&format!("cpu{cpu}")))?;
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    if v.len() < 8 {
        return None;
    }
    let total: u64 = v.iter().sum();
    Some((total - v[3] - v[4], total))
}

/// This process's CPU time and one CPU's busy ticks at an instant, to tell how much of that CPU
/// other processes took between two samples.
pub struct CpuSample {
    at: Instant,
    own: Option<Duration>,
    core: Option<(u64, u64)>,
}

impl CpuSample {
    pub fn take(core: Option<usize>) -> CpuSample {
        CpuSample {
            at: Instant::now(),
            own: cpu_time("self"),
            core: core.and_then(core_ticks),
        }
    }

    /// Share of the CPU that others (processes, interrupts, the hypervisor) used since `earlier`.
    pub fn others_since(&self, earlier: &CpuSample) -> Option<f64> {
        let ((b0, t0), (b1, t1)) = (earlier.core?, self.core?);
        if t1 <= t0 {
            return None;
        }
        let busy = (b1 - b0) as f64 / (t1 - t0) as f64;
        let wall = self.at.duration_since(earlier.at).as_secs_f64();
        let own = self.own?.saturating_sub(earlier.own?).as_secs_f64() / wall;
        Some((busy - own).max(0.0))
    }
}

/// Runs `load` from `cfg.connections` connections: warm-up, then the window.
pub async fn run(cfg: LoadConfig, load: Load) -> LoadResult {
    let load = Arc::new(load);
    let start = Instant::now();
    let measure_from = start + cfg.warmup;
    let end = measure_from + cfg.window;
    let cap = (cfg.max_requests / cfg.connections as u64).max(1);
    let tasks: Vec<_> = (0..cfg.connections)
        .map(|_| tokio::spawn(connection_loop(cfg, load.clone(), measure_from, end, cap)))
        .collect();

    let server_pid = cfg.server_pid.map(|p| p.to_string());
    tokio::time::sleep_until(measure_from.into()).await;
    let server_before = server_pid.as_deref().and_then(cpu_time);
    let client_before = cpu_time("self");
    let core_before = cfg.server_core.and_then(core_ticks);
    tokio::time::sleep_until(end.into()).await;
    let server_after = server_pid.as_deref().and_then(cpu_time);
    let client_after = cpu_time("self");
    let core_after = cfg.server_core.and_then(core_ticks);
    let core_busy = match (core_before, core_after) {
        (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => Some((b1 - b0) as f64 / (t1 - t0) as f64),
        _ => None,
    };
    let share = |a: Option<Duration>, b: Option<Duration>| {
        Some((b?.saturating_sub(a?)).as_secs_f64() / cfg.window.as_secs_f64())
    };

    let mut result = LoadResult {
        ok: 0,
        errors: 0,
        sent: 0,
        requests_per_iteration: load.requests_per_iteration(),
        unit: load.unit(),
        window: cfg.window,
        statuses: BTreeMap::new(),
        first_error: None,
        server_cpu: share(server_before, server_after),
        client_cpu: share(client_before, client_after),
        core_busy,
        hit_request_cap: false,
    };
    for task in tasks {
        match task.await {
            Ok(s) => {
                result.ok += s.ok;
                result.errors += s.errors;
                result.sent += s.sent;
                result.hit_request_cap |= s.sent >= cap;
                for (status, n) in s.statuses {
                    *result.statuses.entry(status).or_default() += n;
                }
                if result.first_error.is_none() {
                    result.first_error = s.first_error;
                }
            }
            Err(e) => {
                result.errors += 1;
                result
                    .first_error
                    .get_or_insert(format!("a connection task failed: {e}"));
            }
        }
    }
    result
}
