//! Prometheus metrics: requests and latency by route, tokens issued by grant; and the access log.
//!
//! Every route has its own [`TrackLayer`], made once when the router is built, that holds the
//! route's label handles: a request looks nothing up, builds no label set and allocates nothing.
//! A handle is created (and appears in `/metrics`) the first time its labels are seen, as a
//! `Family` entry would be.

use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::Instant;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrantLabels {
    grant_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: HistogramFamily,
    tokens: Family<GrantLabels, Counter>,
    sign_ins: Family<OutcomeLabels, Counter>,
    /// Handed to `PasswordChecks`, which updates them.
    pub password_checks: crate::password_checks::CheckMetrics,
    /// Audit events dropped because the audit queue was full.
    pub audit_dropped: Counter,
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("sesame");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency: HistogramFamily =
            Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.000_05, 2.5, 14)));
        let tokens = Family::<GrantLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by route, method and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register(
            "tokens_issued",
            "Access tokens issued by grant type",
            tokens.clone(),
        );
        let sign_ins = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "sign_ins",
            "Password sign-ins by outcome (signed_in, refused, throttled, busy)",
            sign_ins.clone(),
        );
        let password_checks = crate::password_checks::CheckMetrics::default();
        registry.register(
            "password_checks",
            "Password checks run (Argon2id, 19 MiB each while running)",
            password_checks.total.clone(),
        );
        registry.register(
            "password_checks_running",
            "Password checks running now",
            password_checks.running.clone(),
        );
        registry.register(
            "password_checks_running_max",
            "The most password checks that ran at once since start",
            password_checks.running_max.clone(),
        );
        registry.register(
            "password_checks_busy",
            "Sign-ins answered busy: no password check could start in time",
            password_checks.busy.clone(),
        );
        let audit_dropped = Counter::default();
        registry.register(
            "audit_events_dropped",
            "Audit events dropped because the audit queue was full",
            audit_dropped.clone(),
        );
        Arc::new(Metrics {
            audit_dropped,
            registry,
            requests,
            latency,
            tokens,
            sign_ins,
            password_checks,
        })
    }

    pub fn token_issued(&self, grant_type: &'static str) {
        self.tokens.get_or_create(&GrantLabels { grant_type }).inc();
    }

    pub fn sign_in(&self, outcome: &'static str) {
        self.sign_ins.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).expect("writing to a String");
        out
    }

    /// The layer that records the requests of one route, labelled with its pattern (never the
    /// raw path, to bound cardinality). `"unmatched"` is the fallback's.
    pub fn track(self: &Arc<Self>, route: &str) -> TrackLayer {
        TrackLayer(Arc::new(RouteMetrics {
            route: route.into(),
            latency: OnceLock::new(),
            requests: std::array::from_fn(|_| std::array::from_fn(|_| OnceLock::new())),
            metrics: self.clone(),
        }))
    }
}

/// The methods with a handle slot of their own; any other method is counted as `OTHER`, so that
/// made-up methods cannot create series without bound.
const METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];
const OTHER_METHOD: &str = "OTHER";

/// The statuses Sesame answers with, sorted; any other status takes the `Family` lookup.
const STATUSES: [u16; 18] = [
    200, 201, 204, 302, 303, 304, 400, 401, 403, 404, 405, 409, 413, 415, 429, 500, 502, 503,
];

/// One route's handles, each made once, on first use.
pub struct RouteMetrics {
    route: Box<str>,
    latency: OnceLock<Histogram>,
    /// By method slot (the last is `OTHER`), then by position in `STATUSES`.
    requests: [[OnceLock<Counter>; STATUSES.len()]; METHODS.len() + 1],
    metrics: Arc<Metrics>,
}

fn method_slot(m: &Method) -> usize {
    METHODS.iter().position(|x| x == m).unwrap_or(METHODS.len())
}

fn method_label(slot: usize) -> &'static str {
    METHODS.get(slot).map_or(OTHER_METHOD, Method::as_str)
}

impl RouteMetrics {
    fn record(&self, method: &Method, status: StatusCode, seconds: f64) {
        let slot = method_slot(method);
        // The access log, at debug level (`log_level = "sesame_server=debug,info"`): the route
        // pattern, never the raw path or query, which may carry tokens.
        tracing::debug!(route = %self.route, method = %method, status = status.as_u16(), seconds, "request");
        self.latency
            .get_or_init(|| {
                self.metrics.latency.get_or_create_owned(&RouteLabels {
                    route: self.route.to_string(),
                })
            })
            .observe(seconds);
        let labels = || RequestLabels {
            route: self.route.to_string(),
            method: method_label(slot).to_owned(),
            status: status.as_u16(),
        };
        match STATUSES.binary_search(&status.as_u16()) {
            Ok(i) => self.requests[slot][i]
                .get_or_init(|| self.metrics.requests.get_or_create_owned(&labels()))
                .inc(),
            Err(_) => self.metrics.requests.get_or_create(&labels()).inc(),
        };
    }
}

/// See [`Metrics::track`].
#[derive(Clone)]
pub struct TrackLayer(Arc<RouteMetrics>);

impl<S> tower::Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            route: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Track<S> {
    inner: S,
    route: Arc<RouteMetrics>,
}

impl<S> tower::Service<Request> for Track<S>
where
    S: tower::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = TrackFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // A standard method is a constant: cloning it allocates nothing.
        let method = req.method().clone();
        TrackFuture {
            start: Instant::now(),
            inner: self.inner.call(req),
            route: self.route.clone(),
            method,
        }
    }
}

pin_project_lite::pin_project! {
    pub struct TrackFuture<F> {
        #[pin]
        inner: F,
        route: Arc<RouteMetrics>,
        method: Method,
        start: Instant,
    }
}

impl<F, E> Future for TrackFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        if let Ok(resp) = &result {
            this.route
                .record(this.method, resp.status(), this.start.elapsed().as_secs_f64());
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_show_up_as_family_entries_would() {
        let m = Metrics::new();
        let layer = m.track("/t/{tenant}/token");
        layer.0.record(&Method::POST, StatusCode::OK, 0.001);
        layer.0.record(&Method::POST, StatusCode::OK, 0.001);
        layer.0.record(&Method::POST, StatusCode::IM_A_TEAPOT, 0.001);
        layer
            .0
            .record(&Method::from_bytes(b"BREW").unwrap(), StatusCode::OK, 0.001);
        let out = m.render();
        for line in [
            "sesame_http_requests_total{route=\"/t/{tenant}/token\",method=\"POST\",status=\"200\"} 2",
            "sesame_http_requests_total{route=\"/t/{tenant}/token\",method=\"POST\",status=\"418\"} 1",
            "sesame_http_requests_total{route=\"/t/{tenant}/token\",method=\"OTHER\",status=\"200\"} 1",
            "sesame_http_request_duration_seconds_count{route=\"/t/{tenant}/token\"} 4",
        ] {
            assert!(out.contains(line), "{line} in {out}");
        }
        // Only what was seen: no series for a route nobody asked for.
        let _unused = m.track("/jwks");
        assert!(!m.render().contains("/jwks"));
    }
}
