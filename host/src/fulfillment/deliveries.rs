//! What operators see and do about deliveries: the events with their attempts, and
//! re-delivery (补发) of one event or of every dead one.

use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::store::{Store, now_ms};

#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub event_id: String,
    pub game: String,
    pub order_no: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// pending, delivered or dead.
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub created_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DeliveryAttempt {
    pub attempt_no: i64,
    pub at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub game: Option<crate::games::GameId>,
    pub order_no: Option<crate::orders::OrderNo>,
    /// 1 to 200, default 50.
    #[serde(default, deserialize_with = "crate::store::page_limit")]
    pub limit: Option<u32>,
}

/// Where an event stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }
}

fn delivery_from_row(row: &AnyRow) -> Result<Delivery, sqlx::Error> {
    Ok(Delivery {
        event_id: row.try_get("event_id")?,
        game: row.try_get("game_id")?,
        order_no: row.try_get("order_no")?,
        kind: row.try_get("kind")?,
        status: row.try_get("status")?,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        last_error: row.try_get("last_error")?,
        created_at: row.try_get("created_at")?,
        delivered_at: row.try_get("delivered_at")?,
    })
}

const COLUMNS: &str = "event_id, game_id, order_no, kind, status, attempts, next_attempt_at, \
                       last_error, created_at, delivered_at";

pub async fn list(store: &Store, filter: &DeliveryFilter) -> Result<Vec<Delivery>, sqlx::Error> {
    let limit = i64::from(filter.limit.unwrap_or(50));
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM outbox_events WHERE ($1 IS NULL OR status = $1) \
         AND ($2 IS NULL OR game_id = $2) AND ($3 IS NULL OR order_no = $3) \
         ORDER BY created_at DESC, event_id DESC LIMIT $4"
    )))
    .bind(filter.status.map(DeliveryStatus::as_str))
    .bind(filter.game.as_ref().map(|g| g.as_str().to_owned()))
    .bind(filter.order_no.as_ref().map(|o| o.as_str().to_owned()))
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(delivery_from_row).collect()
}

/// One event with every attempt to deliver it.
pub async fn get(
    store: &Store,
    event_id: &str,
) -> Result<Option<(Delivery, Vec<DeliveryAttempt>)>, sqlx::Error> {
    let Some(row) = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM outbox_events WHERE event_id = $1"
    )))
    .bind(event_id.to_owned())
    .fetch_optional(store.pool())
    .await?
    else {
        return Ok(None);
    };
    let attempts = sqlx::query(
        "SELECT attempt_no, at, http_status, error, duration_ms FROM delivery_attempts \
         WHERE event_id = $1 ORDER BY attempt_no",
    )
    .bind(event_id.to_owned())
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(|r| {
        Ok(DeliveryAttempt {
            attempt_no: r.try_get("attempt_no")?,
            at: r.try_get("at")?,
            http_status: r.try_get("http_status")?,
            error: r.try_get("error")?,
            duration_ms: r.try_get("duration_ms")?,
        })
    })
    .collect::<Result<_, sqlx::Error>>()?;
    Ok(Some((delivery_from_row(&row)?, attempts)))
}

/// Queues an event to be sent again now, whatever its state (a game that lost its data may
/// ask for delivered events again: it deduplicates by event id). False if there is no such
/// event. Its retry window starts over.
pub async fn redeliver(store: &Store, event_id: &str) -> Result<bool, sqlx::Error> {
    let done = store
        .write((now_ms(), event_id.to_owned()), |tx, (now, event_id)| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE outbox_events SET status = 'pending', next_attempt_at = $1, \
                     locked_until = NULL, window_started_at = $1 WHERE event_id = $2",
                )
                .bind(*now)
                .bind(event_id.clone())
                .execute(&mut *tx)
                .await
            })
        })
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Queues every dead event (of one game, if given) to be sent again; returns how many.
/// Their retry windows start over.
pub async fn redeliver_dead(store: &Store, game: Option<&str>) -> Result<u64, sqlx::Error> {
    let done = store
        .write((now_ms(), game.map(str::to_owned)), |tx, (now, game)| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE outbox_events SET status = 'pending', next_attempt_at = $1, \
                     locked_until = NULL, window_started_at = $1 \
                     WHERE status = 'dead' AND ($2 IS NULL OR game_id = $2)",
                )
                .bind(*now)
                .bind(game.clone())
                .execute(&mut *tx)
                .await
            })
        })
        .await?;
    Ok(done.rows_affected())
}
