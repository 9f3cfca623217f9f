//! `/v1/players`: registration, login and profiles, for game clients. A player acts with the
//! session token from login (`Authorization: Bearer cps_...`).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::api::body::Json;
use crate::api::problem::Problem;
use crate::app::AppState;
use crate::config::Role;
use crate::games::GameId;
use crate::players::{Player, PlayerError, ProfilePatch, Registration};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    game: GameId,
    username: String,
    password: String,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// Who is asking to change a profile.
enum Actor {
    Player(Player),
    Operator(String),
}

async fn actor(state: &AppState, headers: &HeaderMap) -> Result<Actor, Problem> {
    let token = bearer(headers).ok_or(PlayerError::BadSession)?;
    if token.starts_with("cps_") {
        return Ok(Actor::Player(state.players.authenticate(token).await?));
    }
    match state.config.admin.authenticate(token) {
        Some(holder) if holder.role >= Role::Operator => Ok(Actor::Operator(holder.name.clone())),
        Some(_) => Err(
            Problem::new(StatusCode::FORBIDDEN, "forbidden", "Role too low")
                .with_detail("changing a profile needs the operator role"),
        ),
        None => Err(PlayerError::BadSession.into()),
    }
}

pub async fn register(
    State(state): State<AppState>,
    Json(registration): Json<Registration>,
) -> Result<Response, Problem> {
    let player = state.players.register(registration).await?;
    Ok((StatusCode::CREATED, axum::Json(player)).into_response())
}

pub async fn login(
    State(state): State<AppState>,
    Json(login): Json<Login>,
) -> Result<Response, Problem> {
    let session = state
        .players
        .login(&login.game, &login.username, login.password)
        .await?;
    Ok(axum::Json(session).into_response())
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, Problem> {
    let token = bearer(&headers).ok_or(PlayerError::BadSession)?;
    state.players.logout(token).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    let token = bearer(&headers).ok_or(PlayerError::BadSession)?;
    let player = state.players.authenticate(token).await?;
    Ok(axum::Json(player).into_response())
}

/// A player may change only their own profile; operators and admins any.
pub async fn update(
    State(state): State<AppState>,
    Path(player_id): Path<String>,
    headers: HeaderMap,
    Json(patch): Json<ProfilePatch>,
) -> Result<Response, Problem> {
    match actor(&state, &headers).await? {
        Actor::Player(player) if player.id != player_id => {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "not-your-profile",
                "A player may change only their own profile",
            ));
        }
        Actor::Player(_) => {}
        Actor::Operator(name) => {
            tracing::info!(operator = %name, %player_id, "profile changed by an operator");
        }
    }
    let player = state.players.update_profile(&player_id, patch).await?;
    Ok(axum::Json(player).into_response())
}
