//! `/v1/admin`: operator routes. Every route sits behind a role check; with no tokens
//! configured, every request is refused.

mod auth;
mod catalog;
mod deliveries;
mod games;
mod ledger;
mod orders;
mod players;
mod plugins;
mod reconciliations;
mod reports;
mod store;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

use crate::app::AppState;
use crate::config::Role;
use auth::RequireRole;

pub fn router(state: AppState) -> Router<AppState> {
    let guard = |role| from_fn_with_state(RequireRole::new(&state, role), auth::require_role);
    let viewer = Router::new()
        .route("/plugins", get(plugins::list))
        .route("/plugins/{channel}/quote", post(plugins::quote))
        .route("/games", get(games::list))
        .route("/games/{game}", get(games::get))
        .route("/games/{game}/skus", get(catalog::list))
        .route("/games/{game}/skus/{code}", get(catalog::get))
        .route("/players", get(players::list))
        .route("/players/{id}", get(players::get))
        .route("/orders", get(orders::list))
        .route("/orders/{order_no}", get(orders::get))
        .route("/deliveries", get(deliveries::list))
        .route("/deliveries/{event_id}", get(deliveries::get))
        .route("/store/stats", get(store::stats))
        .route("/ledger/check", get(ledger::check))
        .route("/ledger/balances", get(ledger::balances))
        .route(
            "/reconciliations/{channel}/{day}",
            get(reconciliations::get),
        )
        .route("/reports/revenue", get(reports::revenue))
        .route("/reports/payments", get(reports::payments))
        .route("/reports/refunds", get(reports::refunds))
        .route("/reports/reconciliations", get(reports::reconciliations))
        .route_layer(guard(Role::Viewer));
    let operator = Router::new()
        .route("/plugins/reload", post(plugins::reload))
        .route("/reconciliations", post(reconciliations::run))
        .route("/games/{game}/skus", post(catalog::create))
        .route(
            "/games/{game}/skus/{code}",
            axum::routing::put(catalog::replace),
        )
        .route(
            "/deliveries/{event_id}/redeliver",
            post(deliveries::redeliver),
        )
        .route(
            "/deliveries/redeliver-dead",
            post(deliveries::redeliver_dead),
        )
        .route_layer(guard(Role::Operator));
    let admin = Router::new()
        .route("/games", post(games::create))
        .route("/games/{game}", axum::routing::patch(games::update))
        .route("/games/{game}/api-keys", post(games::rotate_api_key))
        .route(
            "/games/{game}/delivery-secret",
            post(games::rotate_delivery_secret),
        )
        .route_layer(guard(Role::Admin));
    viewer.merge(operator).merge(admin)
}
