//! `/v1/admin/games/{game}/skus`: the catalog of one game.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::api::body::Json;
use crate::api::problem::Problem;
use crate::app::AppState;
use crate::catalog::SkuSpec;
use crate::games::GameId;

fn game_id(id: &str) -> Result<GameId, Problem> {
    GameId::parse(id).map_err(|_| Problem::not_found("no such game"))
}

pub async fn list(
    State(state): State<AppState>,
    Path(game): Path<String>,
) -> Result<Response, Problem> {
    let game = game_id(&game)?;
    crate::games::get(&state.store, game.as_str()).await?;
    let skus = state.catalog.skus(&game).await?;
    Ok(axum::Json(serde_json::json!({ "skus": skus.as_ref() })).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    Path((game, code)): Path<(String, String)>,
) -> Result<Response, Problem> {
    let sku = state.catalog.sku(&game_id(&game)?, &code).await?;
    Ok(axum::Json(sku).into_response())
}

pub async fn create(
    State(state): State<AppState>,
    Path(game): Path<String>,
    Json(spec): Json<SkuSpec>,
) -> Result<Response, Problem> {
    let sku = state.catalog.create(&game_id(&game)?, spec).await?;
    Ok((StatusCode::CREATED, axum::Json(sku)).into_response())
}

pub async fn replace(
    State(state): State<AppState>,
    Path((game, code)): Path<(String, String)>,
    Json(spec): Json<SkuSpec>,
) -> Result<Response, Problem> {
    let sku = state.catalog.replace(&game_id(&game)?, &code, spec).await?;
    Ok(axum::Json(sku).into_response())
}
