//! `/v1/admin/games`: tenants, their API keys and delivery secrets. Secrets are shown once,
//! in the answer that makes them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::api::body::Json;
use crate::api::problem::Problem;
use crate::app::AppState;
use crate::games::{self, GamePatch, NewGame};

pub async fn create(
    State(state): State<AppState>,
    Json(new): Json<NewGame>,
) -> Result<Response, Problem> {
    let (game, api_key, delivery_secret) = games::create(&state.store, new).await?;
    state.games.forget();
    tracing::info!(game = %game.id, key_id = %api_key.key_id, "game created");
    let body = serde_json::json!({
        "game": game,
        "api_key": api_key,
        "delivery_secret": delivery_secret,
    });
    Ok((StatusCode::CREATED, axum::Json(body)).into_response())
}

pub async fn list(State(state): State<AppState>) -> Result<Response, Problem> {
    let games = games::list(&state.store).await?;
    Ok(axum::Json(serde_json::json!({ "games": games })).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    Ok(axum::Json(games::get(&state.store, &id).await?).into_response())
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(patch): Json<GamePatch>,
) -> Result<Response, Problem> {
    let game = games::update(&state.store, &id, patch).await?;
    state.games.forget();
    // A disabled game's sessions end at once on this instance.
    state.players.forget_sessions();
    Ok(axum::Json(game).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// How long the current keys keep working, in seconds (default one day, 0 = revoke now).
    #[serde(default = "one_day")]
    grace_s: u64,
}

fn one_day() -> u64 {
    86_400
}

pub async fn rotate_api_key(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Json(rotation): Json<Rotation>,
) -> Result<Response, Problem> {
    if rotation.grace_s > 30 * 86_400 {
        return Err(Problem::unprocessable(
            "invalid-rotation",
            "grace_s is at most 30 days",
        ));
    }
    let key = games::rotate_api_key(&state.store, &id, rotation.grace_s).await?;
    state.games.forget();
    tracing::info!(game = %id, key_id = %key.key_id, grace_s = rotation.grace_s, "API key rotated");
    Ok((StatusCode::CREATED, axum::Json(key)).into_response())
}

pub async fn rotate_delivery_secret(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let secret = games::rotate_delivery_secret(&state.store, &id).await?;
    state.games.forget();
    tracing::info!(game = %id, "delivery secret rotated");
    Ok(axum::Json(serde_json::json!({ "delivery_secret": secret })).into_response())
}
