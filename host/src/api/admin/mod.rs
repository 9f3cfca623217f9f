//! `/v1/admin`: operator routes. Every route sits behind a role check; with no tokens
//! configured, every request is refused.

mod auth;
mod plugins;

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};

use crate::app::AppState;
use crate::config::Role;
use auth::RequireRole;

pub fn router(state: AppState) -> Router<AppState> {
    let viewer = Router::new()
        .route("/plugins", get(plugins::list))
        .route("/plugins/{channel}/quote", post(plugins::quote))
        .route_layer(from_fn_with_state(
            RequireRole::new(&state, Role::Viewer),
            auth::require_role,
        ));
    let operator = Router::new()
        .route("/plugins/reload", post(plugins::reload))
        .route_layer(from_fn_with_state(
            RequireRole::new(&state, Role::Operator),
            auth::require_role,
        ));
    viewer.merge(operator)
}
