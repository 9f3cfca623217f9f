//! The outbox: events written in the same transaction as the change they announce, so an event
//! exists if and only if the change was committed.

use serde::Serialize;

use crate::orders::{Order, OrderView};
use crate::store::{Tx, new_id, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// The order was paid: grant its items.
    OrderPaid,
    /// Money went back to the player: revoke what the refund covers.
    OrderRefunded,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderPaid => "order.paid",
            Self::OrderRefunded => "order.refunded",
        }
    }
}

/// What a game server receives.
#[derive(Debug, Serialize)]
struct Payload<'a> {
    event_id: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    /// Unix milliseconds when the event was recorded.
    created_at: i64,
    order: OrderView,
}

/// Records an event for `order` (as it stands after the change) in `tx`. Returns its id.
pub async fn enqueue(tx: &mut Tx, kind: EventKind, order: &Order) -> Result<String, sqlx::Error> {
    let event_id = new_id("ev_");
    let now = now_ms();
    let payload = Payload {
        event_id: &event_id,
        kind: kind.as_str(),
        created_at: now,
        order: OrderView::new(order.clone(), None),
    };
    sqlx::query(
        "INSERT INTO outbox_events (event_id, game_id, order_no, kind, payload, status, attempts, \
         next_attempt_at, locked_until, last_error, created_at, window_started_at, delivered_at) \
         VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, NULL, NULL, $6, $6, NULL)",
    )
    .bind(event_id.clone())
    .bind(order.game.as_str().to_owned())
    .bind(order.order_no.as_str().to_owned())
    .bind(kind.as_str())
    .bind(serde_json::to_string(&payload).expect("events serialize"))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(event_id)
}
