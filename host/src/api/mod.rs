//! HTTP routes. Handlers are thin: parse, call the area, map the result.

pub mod admin;
mod callbacks;
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
        .route("/v1/return/{channel}", get(callbacks::browser_return))
        .merge(legacy::router(&state))
        .fallback(|| async { problem::Problem::not_found("no such route") });
    with_common_layers(routes, state)
}

/// What the extra `[legacy] listen` addresses serve: the legacy routes only.
pub fn legacy_router(state: AppState) -> Router {
    let routes = legacy::router(&state).fallback(legacy::no_such_route);
    with_common_layers(routes, state)
}

/// What every listener's routes get: the body limit, request ids and request tracing.
fn with_common_layers(routes: Router<AppState>, state: AppState) -> Router {
    let body_limit = state.config.server.body_limit_kib << 10;
    routes
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http())
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}
