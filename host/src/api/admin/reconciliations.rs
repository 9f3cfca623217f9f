//! Reconciliation as an operator drives it: run a channel's day, read what it found.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::problem::Problem;
use crate::app::AppState;
use crate::reconcile::{ReconcileError, Summary, findings};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    pub channel: String,
    /// YYYY-MM-DD in the channel's time zone.
    pub day: String,
}

/// `POST /v1/admin/reconciliations`: reconciles one channel's day now (again, if it ran).
pub async fn run(
    State(state): State<AppState>,
    crate::api::body::Json(request): crate::api::body::Json<RunRequest>,
) -> Result<Json<Summary>, Problem> {
    state
        .reconciler
        .run(&request.channel, &request.day, &|_| {})
        .await
        .map(Json)
        .map_err(|error| match error {
            ReconcileError::UnknownChannel(_) => Problem::not_found(&error.to_string()),
            ReconcileError::BadDay(_) | ReconcileError::NoStatements(_) => {
                Problem::bad_request(error.to_string())
            }
            ReconcileError::Busy { .. } => {
                Problem::conflict("reconciliation-running", error.to_string())
            }
            ReconcileError::Statement(_) => Problem::new(
                StatusCode::BAD_GATEWAY,
                "statement-unavailable",
                "The channel's statement could not be read",
            )
            .with_detail(error.to_string()),
            ReconcileError::Database(_) | ReconcileError::Ledger(_) => Problem::internal(&error),
        })
}

/// `GET /v1/admin/reconciliations/{channel}/{day}`: the run's status and its findings.
pub async fn get(
    State(state): State<AppState>,
    Path((channel, day)): Path<(String, String)>,
) -> Result<Json<Value>, Problem> {
    match findings(&state.store, &channel, &day).await {
        Ok(Some((status, findings))) => Ok(Json(json!({
            "channel": channel, "day": day, "status": status, "findings": findings,
        }))),
        Ok(None) => Err(Problem::not_found(&format!(
            "no reconciliation of {channel} for {day}"
        ))),
        Err(error) => Err(Problem::internal(&error)),
    }
}
