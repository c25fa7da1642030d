//! Heap allocations per request on the hot paths, counted by a global allocator for the test's
//! own thread while the router answers a request in-process (`tower::ServiceExt::oneshot`):
//! routing, extractors, the metrics layer, the handler and the core, without the HTTP codec.
//! `sesame-bench` cannot see the server's allocations, so this is where they are checked.

mod common;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use common::TestServer;
use serde_json::json;
use sesame_server::routes::Routes;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use tower::ServiceExt;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded to the system allocator unchanged; the counter is a
// const-initialised thread-local without a destructor, which allocates nothing itself.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Allocations per request while `router` answers the request `make` builds: the mean over
/// eight requests (each built beforehand), after two warm-up requests so that first-use work
/// such as cache fills and metric handles is not counted.
async fn per_request(router: &impl Routes, make: impl Fn() -> Request<Body>) -> f64 {
    for _ in 0..2 {
        let resp = router.clone().oneshot(make()).await.unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
    }
    let mut total = 0;
    for _ in 0..8 {
        let req = make();
        let before = allocations();
        let resp = router.clone().oneshot(req).await.unwrap();
        total += allocations() - before;
        assert!(resp.status().is_success(), "{}", resp.status());
    }
    total as f64 / 8.0
}

fn get_req(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

/// Allocations per call of `svc` (a tower service, cloned per call as axum does): the mean over
/// eight calls after two warm-up calls.
async fn per_call<S>(svc: &S) -> f64
where
    S: tower::Service<Request<Body>, Response = axum::response::Response> + Clone,
    S::Error: std::fmt::Debug,
{
    let call = || async { svc.clone().oneshot(get_req("/t/default/x")).await.unwrap() };
    call().await;
    call().await;
    let mut total = 0;
    for _ in 0..8 {
        let before = allocations();
        let resp = call().await;
        total += allocations() - before;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    total as f64 / 8.0
}

#[tokio::test]
async fn the_metrics_layer_allocates_nothing_per_request() {
    use axum::response::IntoResponse;
    let s = TestServer::sqlite().await;
    let metrics = &s.running.app.metrics;
    let handler = tower::service_fn(|_req: Request<Body>| async {
        Ok::<_, std::convert::Infallible>((StatusCode::OK, "ok").into_response())
    });
    let tracked = tower::Layer::layer(&metrics.track("/t/{tenant}/x"), handler);
    let without = per_call(&handler).await;
    let with = per_call(&tracked).await;
    assert_eq!(
        with,
        without,
        "the metrics layer allocated {} times per request",
        with - without
    );
    // And it counted: handles are made once, then reused.
    assert!(metrics
        .render()
        .contains("sesame_http_requests_total{route=\"/t/{tenant}/x\",method=\"GET\",status=\"200\"} 10"));
}

#[tokio::test]
async fn hot_paths_allocate_about_what_a_bare_handler_does() {
    let s = TestServer::sqlite().await;
    let router = sesame_server::routes::router(s.running.app.clone());
    let (id, secret) = s
        .client(
            "default",
            json!({"allowed_scopes": ["read"], "signing_alg": "EdDSA"}),
        )
        .await;
    let access_token = s.token("default", &id, &secret, &[]).await;
    let basic = {
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
        format!("Basic {b}")
    };
    let form_req = |path: &str, body: String| {
        Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, &basic)
            .body(Body::from(body))
            .unwrap()
    };

    // The least an axum handler serving prepared bytes allocates: a path parameter as a String,
    // the same three headers, the bytes.
    let doc = axum::body::Bytes::from_static(b"{\"issuer\":\"x\"}");
    let bare = Router::<()>::new()
        .route(
            "/t/{tenant}/jwks",
            get(move |axum::extract::Path(t): axum::extract::Path<String>| {
                let doc = doc.clone();
                async move {
                    assert_eq!(t, "default");
                    (
                        [
                            (header::CONTENT_TYPE, "application/json"),
                            (header::CACHE_CONTROL, "public, max-age=300"),
                            (header::ETAG, "\"0123456789abcdef\""),
                        ],
                        doc,
                    )
                }
            }),
        )
        .with_state(());
    let floor = per_request(&bare, || get_req("/t/default/jwks")).await;

    let discovery = per_request(&router, || get_req("/t/default/.well-known/openid-configuration")).await;
    let jwks = per_request(&router, || get_req("/t/default/jwks")).await;
    let introspect = per_request(&router, || {
        form_req("/t/default/introspect", format!("token={access_token}"))
    })
    .await;
    let token = per_request(&router, || {
        form_req("/t/default/token", "grant_type=client_credentials".into())
    })
    .await;
    eprintln!(
        "allocations per request: bare handler {floor}; discovery {discovery}; JWKS {jwks}; \
         introspection (EdDSA, cached verification) {introspect}; token (EdDSA) {token}"
    );
    // Static documents: routing, the tenant lookup and the metrics add nothing to the floor.
    assert!(
        discovery <= floor && jwks <= floor,
        "{discovery} / {jwks} > {floor}"
    );
}
