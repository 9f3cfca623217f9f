//! HTTP routes. Handlers are thin: parse, call the area, map the result.

pub mod admin;
pub mod body;
mod callbacks;
pub mod edge;
mod errors;
mod health;
pub mod legacy;
pub mod problem;
pub mod v1;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderName;
use axum::routing::get;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::app::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .nest("/v1/admin", admin::router(state.clone()))
        .merge(v1::router(state.clone()))
        .route(
            "/v1/callbacks/{channel}",
            axum::routing::post(callbacks::notify).get(callbacks::notify),
        )
        // Some cashiers (UnionPay) send the browser back with a form POST.
        .route(
            "/v1/return/{channel}",
            get(callbacks::browser_return).post(callbacks::browser_return),
        )
        .merge(legacy::router(&state))
        .fallback(|| async { problem::Problem::not_found("no such route") });
    with_common_layers(routes, state)
}

/// What the extra `[legacy] listen` addresses serve: the legacy routes only.
pub fn legacy_router(state: AppState) -> Router {
    let routes = legacy::router(&state).fallback(legacy::no_such_route);
    with_common_layers(routes, state)
}

/// What every listener's routes get: the body limit, the edge (text rule, request timeout,
/// answers in their family's shape), request ids and request tracing.
fn with_common_layers(routes: Router<AppState>, state: AppState) -> Router {
    let body_limit = state.config.server.body_limit_kib << 10;
    let request_timeout = std::time::Duration::from_secs(state.config.server.request_timeout_s);
    routes
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            request_timeout,
            edge::guard,
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}
