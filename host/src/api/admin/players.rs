//! `/v1/admin/players`: search and look at players.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::api::problem::Problem;
use crate::app::AppState;
use crate::games::GameId;
use crate::players::Page;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlayerQuery {
    game: Option<GameId>,
    search: Option<String>,
    page: Option<u32>,
    limit: Option<u32>,
}

pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<PlayerQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let page = Page {
        page: query.page.unwrap_or(1),
        limit: query.limit.unwrap_or(20),
    };
    let list = state
        .players
        .list(query.game.as_ref(), query.search.as_deref(), page)
        .await?;
    Ok(axum::Json(list).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    Ok(axum::Json(state.players.get(&id).await?).into_response())
}
