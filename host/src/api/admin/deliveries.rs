//! `/v1/admin/deliveries`: events for game servers, their attempts, and re-delivery.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::api::body::Json;
use crate::api::problem::Problem;
use crate::app::AppState;
use crate::fulfillment::deliveries::{self, DeliveryFilter};

pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<DeliveryFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(filter) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let deliveries = deliveries::list(&state.store, &filter).await?;
    Ok(axum::Json(serde_json::json!({ "deliveries": deliveries })).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> Result<Response, Problem> {
    let (delivery, attempts) = deliveries::get(&state.store, &event_id)
        .await?
        .ok_or_else(|| Problem::not_found("no such event"))?;
    Ok(
        axum::Json(serde_json::json!({ "delivery": delivery, "attempts": attempts }))
            .into_response(),
    )
}

pub async fn redeliver(
    State(state): State<AppState>,
    Path(event_id): Path<String>,
) -> Result<Response, Problem> {
    if !deliveries::redeliver(&state.store, &event_id).await? {
        return Err(Problem::not_found("no such event"));
    }
    tracing::info!(%event_id, "re-delivery queued by an operator");
    Ok(axum::Json(serde_json::json!({ "queued": 1 })).into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DeadFilter {
    game: Option<String>,
}

pub async fn redeliver_dead(
    State(state): State<AppState>,
    Json(filter): Json<DeadFilter>,
) -> Result<Response, Problem> {
    let queued = deliveries::redeliver_dead(&state.store, filter.game.as_deref()).await?;
    tracing::info!(queued, game = ?filter.game, "re-delivery of dead events queued by an operator");
    Ok(axum::Json(serde_json::json!({ "queued": queued })).into_response())
}
