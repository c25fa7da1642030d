//! The audit log's writing side, and the request context events take their request id and
//! client address from.
//!
//! Recording never waits for the store: [`Auditor::record`] puts the event on a bounded
//! in-process queue ([`QUEUE`] events) and returns; one background task drains it in batches of
//! up to [`BATCH`] events, each one multi-row INSERT. When the queue is full the event is dropped
//! and counted (`sesame_audit_events_dropped_total`). At shutdown the queue is written out after
//! the last request has finished. What a crash (or a kill) loses is what was queued and not yet
//! written: normally the last tenth of a second of events ([`LINGER`]), at most [`QUEUE`].
//!
//! Every request runs inside a [`RequestContext`] (a task-local set by [`RequestContextLayer`]
//! around the whole router): its `X-Request-Id` (the caller's, if it is a plausible id, else a
//! new one; either way also on the response) and the client's address as sign-in throttling sees
//! it. Code that records an event needs neither passed to it.

use crate::state::AppState;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;
use prometheus_client::metrics::counter::Counter;
use sesame_core::audit::{AuditEvent, EventType, Outcome};
use sesame_core::ids::{ClientId, TenantId};
use sesame_core::store::Store;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Events waiting to be written, at most.
pub const QUEUE: usize = 8192;
/// Events per INSERT, at most.
pub const BATCH: usize = 256;
/// How long the writer waits after the first event of a batch for others to join it.
pub const LINGER: std::time::Duration = std::time::Duration::from_millis(100);

pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub struct Auditor {
    tx: mpsc::Sender<AuditEvent>,
    rx: Mutex<Option<mpsc::Receiver<AuditEvent>>>,
    dropped: Counter,
}

impl Auditor {
    pub fn new(dropped: Counter) -> Auditor {
        let (tx, rx) = mpsc::channel(QUEUE);
        Auditor {
            tx,
            rx: Mutex::new(Some(rx)),
            dropped,
        }
    }

    /// Queues an event with the current request's id and client address (unless it has its
    /// own); never waits. A full queue drops the event and counts it.
    pub fn record(&self, mut event: AuditEvent) {
        if let Some(ctx) = RequestContext::current() {
            if event.request_id.is_none() {
                event.request_id = ctx.id.to_str().ok().map(str::to_owned);
            }
            if event.client_address.is_none() {
                event.client_address = ctx.addr.map(|a| a.to_string());
            }
        }
        if self.tx.try_send(event).is_err() {
            self.dropped.inc();
        }
    }

    /// Starts the writer (once). It ends when `stop` turns true, after writing what is queued.
    pub fn spawn_writer(&self, store: Arc<dyn Store>, stop: watch::Receiver<bool>) -> Option<JoinHandle<()>> {
        let rx = self.rx.lock().expect("lock").take()?;
        Some(tokio::spawn(write_loop(store, rx, stop, self.dropped.clone())))
    }
}

async fn write_loop(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<AuditEvent>,
    mut stop: watch::Receiver<bool>,
    dropped: Counter,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    return;
                }
                // Linger a moment so that a busy server writes full batches: one INSERT per
                // event that arrives would cost the token endpoint more than its signature.
                if batch.len() < BATCH {
                    tokio::time::sleep(LINGER).await;
                }
                loop {
                    let room = BATCH - batch.len();
                    if room > 0 {
                        while let Ok(e) = rx.try_recv() {
                            batch.push(e);
                            if batch.len() == BATCH {
                                break;
                            }
                        }
                    }
                    let full = batch.len() == BATCH;
                    write(&*store, &mut batch, &dropped).await;
                    if !full {
                        break;
                    }
                }
            }
            () = async { let _ = stop.wait_for(|s| *s).await; } => {
                // Shutdown: what is queued now is all there will be.
                while let Ok(e) = rx.try_recv() {
                    batch.push(e);
                    if batch.len() == BATCH {
                        write(&*store, &mut batch, &dropped).await;
                    }
                }
                write(&*store, &mut batch, &dropped).await;
                return;
            }
        }
    }
}

async fn write(store: &dyn Store, batch: &mut Vec<AuditEvent>, dropped: &Counter) {
    if batch.is_empty() {
        return;
    }
    if let Err(e) = store.append_audit_events(batch).await {
        // One retry: a replica's store hiccup should not lose a batch at once.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        if let Err(e2) = store.append_audit_events(batch).await {
            tracing::warn!(error = %e, retry_error = %e2, events = batch.len(), "audit events could not be written and were dropped");
            dropped.inc_by(batch.len() as u64);
        }
    }
    batch.clear();
}

// The security events, each recorded by one line where it happens. --------------------------------

/// A password sign-in (`via`: `login` or `device`). A failure names the account only when the
/// typed name is an existing user's (core's outcome says which): what people type as a
/// username may be a password, so the typed name is never recorded.
pub fn sign_in(
    app: &AppState,
    tenant: &TenantId,
    via: &'static str,
    outcome: &sesame_core::Result<sesame_core::login::Outcome>,
) {
    use sesame_core::login::Outcome as Login;
    let now = sesame_core::now();
    let (reason, user) = match outcome {
        Ok(Login::SignedIn(user)) => {
            let event = AuditEvent::new(
                EventType::SignInSuccess,
                Some(tenant.as_str()),
                Outcome::Success,
                now,
            )
            .actor("user", Some(user.id.as_str()))
            .target(format!("user:{}", user.id))
            .details(serde_json::json!({ "via": via }));
            app.audit.record(event);
            return;
        }
        Ok(Login::Refused { user_id }) => ("refused", user_id.as_ref()),
        Ok(Login::Throttled { .. }) => ("throttled", None),
        Ok(Login::Busy { .. }) => ("busy", None),
        Err(_) => ("error", None),
    };
    let mut event = AuditEvent::new(
        EventType::SignInFailure,
        Some(tenant.as_str()),
        Outcome::Denied,
        now,
    )
    .details(serde_json::json!({ "via": via, "reason": reason }));
    if let Some(ctx) = RequestContext::current() {
        event = event.request(
            ctx.addr.map(|a| a.to_string()),
            ctx.id.to_str().ok().map(str::to_owned),
        );
    }
    if let Some(user) = user {
        event = event
            .actor("user", Some(user.as_str()))
            .target(format!("user:{user}"));
    }
    app.audit.record(event);
}

/// An access token issued at the token endpoint (never the token: the grant and the client).
pub fn token_issued(app: &AppState, tenant: &TenantId, client: &ClientId, grant_type: &'static str) {
    let event = AuditEvent::new(
        EventType::TokenIssued,
        Some(tenant.as_str()),
        Outcome::Success,
        sesame_core::now(),
    )
    .actor("client", Some(client.as_str()))
    .target(format!("client:{client}"))
    .details(serde_json::json!({ "grant_type": grant_type }));
    app.audit.record(event);
}

/// An authorization check that said no, when its caller asked for it to be recorded.
pub fn authz_denied(app: &AppState, tenant: &TenantId, check: &sesame_core::authz::Check) {
    let mut event = AuditEvent::new(
        EventType::AuthzDenied,
        Some(tenant.as_str()),
        Outcome::Denied,
        sesame_core::now(),
    )
    .target(check.resource.to_string())
    .details(serde_json::json!({ "user": check.subject.user().as_str(), "action": check.action }));
    if let Some(ctx) = RequestContext::current() {
        event = event.request(
            ctx.addr.map(|a| a.to_string()),
            ctx.id.to_str().ok().map(str::to_owned),
        );
    }
    app.audit.record(event);
}

/// A revocation request (RFC 7009) that revoked something.
pub fn token_revoked(app: &AppState, tenant: &TenantId, client: &ClientId, kind: &'static str) {
    let event = AuditEvent::new(
        EventType::TokenRevoked,
        Some(tenant.as_str()),
        Outcome::Success,
        sesame_core::now(),
    )
    .actor("client", Some(client.as_str()))
    .target(format!("client:{client}"))
    .details(serde_json::json!({ "token_type": kind }));
    app.audit.record(event);
}

/// A token exchange (RFC 8693) refused: the condition that failed, never the token.
pub fn token_exchange_refused(
    app: &AppState,
    tenant: &TenantId,
    client: &ClientId,
    error: &sesame_core::Error,
) {
    if error.is_internal() {
        return;
    }
    let event = AuditEvent::new(
        EventType::TokenExchangeRefused,
        Some(tenant.as_str()),
        Outcome::Denied,
        sesame_core::now(),
    )
    .actor("client", Some(client.as_str()))
    .target(format!("client:{client}"))
    .details(serde_json::json!({ "error": error.code(), "error_description": error.description() }));
    app.audit.record(event);
}

/// A client assertion (`private_key_jwt`) refused: the client it named, the endpoint, and the
/// check that failed (never the assertion).
pub fn client_assertion_refused(
    app: &AppState,
    tenant: &TenantId,
    client: Option<&ClientId>,
    endpoint: &str,
    refused: &sesame_core::client_auth::AssertionRefused,
) {
    let mut event = AuditEvent::new(
        EventType::ClientAssertionRefused,
        Some(tenant.as_str()),
        Outcome::Denied,
        sesame_core::now(),
    )
    .actor("client", client.map(ClientId::as_str));
    if let Some(client) = client {
        event = event.target(format!("client:{client}"));
    }
    event = event.details(serde_json::json!({ "endpoint": endpoint, "reason": refused.reason }));
    if let Some(ctx) = RequestContext::current() {
        event = event.request(
            ctx.addr.map(|a| a.to_string()),
            ctx.id.to_str().ok().map(str::to_owned),
        );
    }
    app.audit.record(event);
}

/// A brokered SSO sign-in (`via` "sso"): a `signin.success` like a password sign-in's, and
/// `sso.linked` when this sign-in linked the upstream identity (once per link, not at every
/// sign-in).
pub fn sso_sign_in(
    app: &AppState,
    tenant: &TenantId,
    connection: &str,
    signed_in: &sesame_core::federation::SignedIn,
) {
    let user = &signed_in.user.id;
    let now = sesame_core::now();
    app.metrics.sign_in("signed_in");
    if signed_in.new_link {
        let event = AuditEvent::new(EventType::SsoLinked, Some(tenant.as_str()), Outcome::Success, now)
            .actor("user", Some(user.as_str()))
            .target(format!("user:{user}"))
            .details(serde_json::json!({ "connection": connection, "new_user": signed_in.new_user }));
        app.audit.record(event);
    }
    let event = AuditEvent::new(
        EventType::SignInSuccess,
        Some(tenant.as_str()),
        Outcome::Success,
        now,
    )
    .actor("user", Some(user.as_str()))
    .target(format!("user:{user}"))
    .details(serde_json::json!({ "via": "sso", "connection": connection }));
    app.audit.record(event);
}

tokio::task_local! {
    /// The admin API's caller, set by its middleware around the handler.
    pub static ADMIN_ACTOR: sesame_core::access::Actor;
}

/// The acting admin, when there is one (the admin API's handlers run inside its middleware).
fn with_admin(event: AuditEvent) -> AuditEvent {
    match ADMIN_ACTOR.try_with(|a| event.clone().by(a)) {
        Ok(e) => e,
        Err(_) => event,
    }
}

pub fn user_disabled(app: &AppState, tenant: &TenantId, user: &sesame_core::ids::UserId) {
    let event = AuditEvent::new(
        EventType::UserDisabled,
        Some(tenant.as_str()),
        Outcome::Success,
        sesame_core::now(),
    )
    .target(format!("user:{user}"));
    app.audit.record(with_admin(event));
}

/// Browser or delegated sessions ended by an admin or their owner (`kind`: `browser`, `delegated`).
pub fn session_revoked(app: &AppState, tenant: &TenantId, session: &str, kind: &'static str) {
    let event = AuditEvent::new(
        EventType::SessionRevoked,
        Some(tenant.as_str()),
        Outcome::Success,
        sesame_core::now(),
    )
    .target(format!("session:{session}"))
    .details(serde_json::json!({ "kind": kind }));
    app.audit.record(with_admin(event));
}

/// A delegated session revoked by the person who owns it.
pub fn session_revoked_by_owner(
    app: &AppState,
    tenant: &TenantId,
    session: &str,
    user: &sesame_core::ids::UserId,
) {
    let event = AuditEvent::new(
        EventType::SessionRevoked,
        Some(tenant.as_str()),
        Outcome::Success,
        sesame_core::now(),
    )
    .actor("user", Some(user.as_str()))
    .target(format!("session:{session}"))
    .details(serde_json::json!({ "kind": "delegated" }));
    app.audit.record(event);
}

/// A delegated session a client created for a user with its own credentials.
pub fn session_created_by_client(
    app: &AppState,
    tenant: &TenantId,
    session: &str,
    client: &ClientId,
    user: &sesame_core::ids::UserId,
) {
    let event = AuditEvent::new(
        EventType::SessionCreated,
        Some(tenant.as_str()),
        Outcome::Success,
        sesame_core::now(),
    )
    .actor("client", Some(client.as_str()))
    .target(format!("session:{session}"))
    .details(serde_json::json!({ "user": user.as_str() }));
    app.audit.record(event);
}

/// Deletes events older than `audit_retention_days` before `now`; returns how many.
pub async fn sweep(app: &crate::state::App, now: i64) -> sesame_core::Result<u64> {
    let before = now - i64::from(app.audit_retention_days) * 86_400;
    app.store.purge_audit_events(before).await
}

/// The request an event happens in.
#[derive(Clone, Debug)]
pub struct RequestContext {
    pub id: HeaderValue,
    pub addr: Option<IpAddr>,
}

tokio::task_local! {
    static REQUEST: RequestContext;
}

impl RequestContext {
    pub fn current() -> Option<RequestContext> {
        REQUEST.try_with(|c| c.clone()).ok()
    }
}

/// A caller's request id is kept if it is 1 to 128 characters of `[A-Za-z0-9._:-]`, so that
/// nothing odd reaches logs or the audit table.
fn plausible_id(v: &HeaderValue) -> bool {
    let b = v.as_bytes();
    (1..=128).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
}

/// Request ids made at once per thread: one buffer holds this many, handed out as slices.
const IDS_PER_BUFFER: u64 = 1024;

/// A new request id: a random per-process prefix and a counter, 32 hex digits. Ids are made
/// [`IDS_PER_BUFFER`] at a time into one buffer and handed out as shared slices of it, so a
/// request costs no allocation of its own (the hot paths are counted in `tests/allocations.rs`).
fn new_id() -> HeaderValue {
    use axum::body::Bytes;
    use std::cell::RefCell;
    static PREFIX: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    thread_local! {
        static IDS: RefCell<(Bytes, usize)> = const { RefCell::new((Bytes::new(), 0)) };
    }
    IDS.with(|ids| {
        let mut ids = ids.borrow_mut();
        if ids.1 >= ids.0.len() {
            let prefix = *PREFIX.get_or_init(|| u64::from_ne_bytes(sesame_core::crypto::random_bytes::<8>()));
            let first = NEXT.fetch_add(IDS_PER_BUFFER, Ordering::Relaxed);
            let mut buf = Vec::with_capacity(32 * IDS_PER_BUFFER as usize);
            for n in first..first + IDS_PER_BUFFER {
                buf.extend_from_slice(hex::encode(prefix.to_be_bytes()).as_bytes());
                buf.extend_from_slice(hex::encode(n.to_be_bytes()).as_bytes());
            }
            *ids = (Bytes::from(buf), 0);
        }
        let id = ids.0.slice(ids.1..ids.1 + 32);
        ids.1 += 32;
        HeaderValue::from_maybe_shared(id).expect("hex is a valid header")
    })
}

/// Sets the [`RequestContext`] around every request and puts its id on the response.
#[derive(Clone)]
pub struct RequestContextLayer {
    app: AppState,
}

impl RequestContextLayer {
    pub fn new(app: AppState) -> RequestContextLayer {
        RequestContextLayer { app }
    }
}

impl<S> tower::Layer<S> for RequestContextLayer {
    type Service = WithRequestContext<S>;

    fn layer(&self, inner: S) -> WithRequestContext<S> {
        WithRequestContext {
            inner,
            app: self.app.clone(),
        }
    }
}

#[derive(Clone)]
pub struct WithRequestContext<S> {
    inner: S,
    app: AppState,
}

impl<S> tower::Service<Request> for WithRequestContext<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = ContextFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let id = match req.headers().get(&REQUEST_ID) {
            Some(v) if plausible_id(v) => v.clone(),
            _ => new_id(),
        };
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let addr = crate::browser::client_address(
            peer,
            req.headers(),
            self.app.client_address_header.as_ref(),
            &self.app.trusted_proxies,
        );
        let ctx = RequestContext { id: id.clone(), addr };
        ContextFuture {
            inner: REQUEST.scope(ctx, self.inner.call(req)),
            id: Some(id),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct ContextFuture<F> {
        #[pin]
        inner: tokio::task::futures::TaskLocalFuture<RequestContext, F>,
        id: Option<HeaderValue>,
    }
}

impl<F, E> Future for ContextFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = ready!(this.inner.poll(cx));
        if let (Ok(resp), Some(id)) = (&mut result, this.id.take()) {
            resp.headers_mut().insert(REQUEST_ID.clone(), id);
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(plausible_id(&a));
        assert!(plausible_id(&HeaderValue::from_static("abc-123_x.y:z")));
        assert!(!plausible_id(&HeaderValue::from_static("a b")));
        assert!(!plausible_id(&HeaderValue::from_static("")));
        assert!(!plausible_id(&HeaderValue::from_bytes(&[b'a'; 129]).unwrap()));
    }
}
