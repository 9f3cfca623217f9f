//! The books as an operator reads them: the check of every invariant, and account balances.

use axum::Json;
use axum::extract::State;

use crate::api::problem::Problem;
use crate::app::AppState;
use crate::ledger::{self, AccountBalance, CheckReport};

/// `GET /v1/admin/ledger/check`: `{"violations": [...], ...}` with the totals it checked.
pub async fn check(State(state): State<AppState>) -> Result<Json<CheckReport>, Problem> {
    ledger::check(&state.store)
        .await
        .map(Json)
        .map_err(|e| Problem::internal(&e))
}

/// `GET /v1/admin/ledger/balances`: every account of every game, per currency.
pub async fn balances(State(state): State<AppState>) -> Result<Json<Vec<AccountBalance>>, Problem> {
    ledger::balances(&state.store)
        .await
        .map(Json)
        .map_err(|e| Problem::internal(&e))
}
