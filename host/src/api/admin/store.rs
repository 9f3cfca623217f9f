//! The store's write path as an operator sees it: on SQLite, the committer's batches (how many
//! purchases share one commit), the first thing to read when writes slow down.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::app::AppState;

pub async fn stats(State(state): State<AppState>) -> Json<Value> {
    Json(match state.store.write_stats() {
        Some(writes) => json!({ "backend": "sqlite", "writes": writes.snapshot() }),
        // Each write is a transaction of its own on the pool: nothing batched to report.
        None => json!({ "backend": "postgres", "writes": null }),
    })
}
