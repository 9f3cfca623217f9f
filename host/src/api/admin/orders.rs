//! `/v1/admin/orders`: the order center for operators.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};

use crate::api::problem::Problem;
use crate::app::AppState;
use crate::orders::{OrderFilter, OrderNo};

pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<OrderFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(filter) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let orders = state.orders.list(&filter).await?;
    let next = orders.last().map(|o| o.order_no.clone());
    Ok(axum::Json(serde_json::json!({ "orders": orders, "next_before": next })).into_response())
}

/// One order with every payment attempt.
pub async fn get(
    State(state): State<AppState>,
    Path(order_no): Path<String>,
) -> Result<Response, Problem> {
    let order_no = OrderNo::parse(&order_no).map_err(|_| Problem::not_found("no such order"))?;
    let view = state.orders.view(&order_no).await?;
    let attempts = state.orders.attempts(&order_no).await?;
    Ok(axum::Json(serde_json::json!({ "order": view, "attempts": attempts })).into_response())
}
