//! `POST /v1/store-purchases`: the game server sends the proof of a purchase its player made in
//! an app store. 201 with the new paid order, 200 with the order the same proof made before.
//! No idempotency key is needed: the store's transaction is the key.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::game_auth::SignedBy;
use crate::api::body::Json;
use crate::api::problem::Problem;
use crate::app::AppState;
use crate::stores::RedeemRequest;

pub async fn redeem(
    State(state): State<AppState>,
    Extension(signed): Extension<SignedBy>,
    Json(request): Json<RedeemRequest>,
) -> Result<Response, Problem> {
    let redemption = state
        .stores
        .redeem(&signed.game, &signed.default_region, request)
        .await?;
    let status = if redemption.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(redemption.order)).into_response())
}
