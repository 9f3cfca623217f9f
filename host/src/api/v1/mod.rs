//! `/v1`: the game-server API (signed requests) and the players' API (session tokens).

mod catalog;
pub mod game_auth;
mod idempotent;
mod orders;
mod players;
mod store_purchases;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, patch, post};

use crate::app::AppState;

pub fn router(state: AppState) -> Router<AppState> {
    let signed = Router::new()
        .route("/v1/catalog", get(catalog::list))
        .route("/v1/orders", post(orders::create))
        .route("/v1/orders/{order_no}", get(orders::get))
        .route(
            "/v1/orders/{order_no}/payments",
            post(orders::retry_payment),
        )
        .route("/v1/orders/{order_no}/refunds", post(orders::refund))
        .route("/v1/store-purchases", post(store_purchases::redeem))
        .route_layer(from_fn_with_state(state, game_auth::require_signature));
    let players = Router::new()
        .route("/v1/players", post(players::register))
        .route("/v1/players/login", post(players::login))
        .route("/v1/players/logout", post(players::logout))
        .route("/v1/players/me", get(players::me))
        .route("/v1/players/{player_id}", patch(players::update));
    signed.merge(players)
}
