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
    /// The store subscription this order paid for ended without renewal: end the entitlement.
    SubscriptionExpired,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderPaid => "order.paid",
            Self::OrderRefunded => "order.refunded",
            Self::SubscriptionExpired => "subscription.expired",
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

/// Records an event for `order` (as it stands after the change) in `tx`. Returns its id. An
/// `order.paid` of an order with a delivery hold becomes deliverable only once the hold is
/// over (or released, see [`release_held`]).
pub async fn enqueue(tx: &mut Tx, kind: EventKind, order: &Order) -> Result<String, sqlx::Error> {
    let event_id = new_id("ev_");
    let now = now_ms();
    let hold_until = match kind {
        EventKind::OrderPaid if order.delivery_hold_ms > 0 => now + order.delivery_hold_ms,
        _ => 0,
    };
    let payload = Payload {
        event_id: &event_id,
        kind: kind.as_str(),
        created_at: now,
        order: OrderView::new(order.clone(), None),
    };
    sqlx::query(
        "INSERT INTO outbox_events (event_id, game_id, order_no, kind, payload, status, attempts, \
         next_attempt_at, locked_until, last_error, created_at, window_started_at, delivered_at, \
         hold_until) \
         VALUES ($1, $2, $3, $4, $5, 'pending', 0, $7, NULL, NULL, $6, $6, NULL, $8)",
    )
    .bind(event_id.clone())
    .bind(order.game.as_str().to_owned())
    .bind(order.order_no.as_str().to_owned())
    .bind(kind.as_str())
    .bind(serde_json::to_string(&payload).expect("events serialize"))
    .bind(now)
    .bind(now.max(hold_until))
    .bind(hold_until)
    .execute(&mut *tx)
    .await?;
    Ok(event_id)
}

/// Ends the hold on `order`'s events that were never sent, rewriting them for the order as it
/// now stands (e.g. once a legacy anonymous bill's player is known). Returns how many.
pub async fn release_held(tx: &mut Tx, order: &Order) -> Result<u64, sqlx::Error> {
    use sqlx::Row;
    let now = now_ms();
    let held = sqlx::query(
        "SELECT event_id, kind, created_at FROM outbox_events \
         WHERE order_no = $1 AND status = 'pending' AND attempts = 0 AND hold_until > 0",
    )
    .bind(order.order_no.as_str().to_owned())
    .fetch_all(&mut *tx)
    .await?;
    for row in &held {
        let event_id: String = row.try_get("event_id")?;
        let kind: String = row.try_get("kind")?;
        let payload = Payload {
            event_id: &event_id,
            kind: &kind,
            created_at: row.try_get("created_at")?,
            order: OrderView::new(order.clone(), None),
        };
        sqlx::query(
            "UPDATE outbox_events SET payload = $1, hold_until = 0, next_attempt_at = $2 \
             WHERE event_id = $3 AND attempts = 0",
        )
        .bind(serde_json::to_string(&payload).expect("events serialize"))
        .bind(now)
        .bind(event_id)
        .execute(&mut *tx)
        .await?;
    }
    Ok(held.len() as u64)
}
