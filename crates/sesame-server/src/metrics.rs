//! Prometheus metrics: requests and latency by route, tokens issued by grant; and the access log.

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::Arc;
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
        Arc::new(Metrics {
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
}

/// Records every request under its route pattern (never the raw path, to bound cardinality).
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let resp = next.run(req).await;
    let elapsed = start.elapsed().as_secs_f64();
    // The access log, at debug level (`log_level = "sesame_server=debug,info"`): the route
    // pattern, never the raw path or query, which may carry tokens.
    tracing::debug!(route = %route, method = %method, status = resp.status().as_u16(), seconds = elapsed, "request");
    metrics
        .latency
        .get_or_create(&RouteLabels { route: route.clone() })
        .observe(elapsed);
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}
