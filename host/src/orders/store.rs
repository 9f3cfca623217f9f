//! The orders area's tables: `orders`, `order_transitions` and `payment_attempts`.

use coffer_money::{Currency, Money};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::model::{Attempt, Failure, Flow, NextAction, Order};
use super::{AttemptStatus, IllegalTransition, OrderNo, OrderStatus};
use crate::games::{GameId, Region};
use crate::store::{Backend, Store, Tx, now_ms, placeholders};

fn decode(what: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(what.to_string().into())
}

fn order_from_row(row: &AnyRow) -> Result<Order, sqlx::Error> {
    let currency = Currency::parse(&row.try_get::<String, _>("currency")?).map_err(decode)?;
    let status: String = row.try_get("status")?;
    Ok(Order {
        order_no: OrderNo::parse(&row.try_get::<String, _>("order_no")?).map_err(decode)?,
        game: GameId::parse(&row.try_get::<String, _>("game_id")?).map_err(decode)?,
        player_id: row.try_get("player_id")?,
        merchant_order_no: row.try_get("merchant_order_no")?,
        sku: row.try_get("sku_code")?,
        region: Region::parse(&row.try_get::<String, _>("region")?).map_err(decode)?,
        amount: Money::new(row.try_get("amount_minor")?, currency),
        subject: row.try_get("subject")?,
        grants: serde_json::from_str(&row.try_get::<String, _>("grants")?).map_err(decode)?,
        status: OrderStatus::parse(&status).ok_or_else(|| decode(status))?,
        holds_stock: crate::store::flag(row, "holds_stock")?,
        client_ip: row.try_get("client_ip")?,
        device: row.try_get("device")?,
        expires_at: row.try_get("expires_at")?,
        paid_at: row.try_get("paid_at")?,
        refunded_minor: row.try_get("refunded_minor")?,
        delivery_hold_ms: row.try_get("delivery_hold_ms")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn attempt_from_row(row: &AnyRow) -> Result<Attempt, sqlx::Error> {
    let flow: String = row.try_get("flow")?;
    let status: String = row.try_get("status")?;
    let next_action: Option<String> = row.try_get("next_action")?;
    let failure_code: Option<String> = row.try_get("failure_code")?;
    let failure_message: Option<String> = row.try_get("failure_message")?;
    Ok(Attempt {
        attempt_no: row.try_get("attempt_no")?,
        payment_ref: row.try_get("payment_ref")?,
        channel: row.try_get("channel")?,
        method: row.try_get("method")?,
        flow: Flow::parse(&flow).ok_or_else(|| decode(flow))?,
        status: AttemptStatus::parse(&status).ok_or_else(|| decode(status))?,
        channel_txn_id: row.try_get("channel_txn_id")?,
        channel_status: row.try_get("channel_status")?,
        next_action: next_action
            .map(|json| serde_json::from_str::<NextAction>(&json))
            .transpose()
            .map_err(decode)?,
        failure: failure_code.map(|code| Failure {
            code,
            message: failure_message.unwrap_or_default(),
        }),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Inserts a new order; `false` when the game already has one with its merchant number.
pub(super) async fn insert_order(tx: &mut Tx, order: &Order) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO orders (order_no, game_id, player_id, merchant_order_no, sku_code, region, \
         amount_minor, currency, subject, grants, status, holds_stock, client_ip, device, \
         expires_at, paid_at, refunded_minor, delivery_hold_ms, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, NULL, 0, $16, $17, $17) \
         ON CONFLICT DO NOTHING",
    )
    .bind(order.order_no.as_str().to_owned())
    .bind(order.game.as_str().to_owned())
    .bind(order.player_id.clone())
    .bind(order.merchant_order_no.clone())
    .bind(order.sku.clone())
    .bind(order.region.as_str().to_owned())
    .bind(order.amount.minor())
    .bind(order.amount.currency().code().to_owned())
    .bind(order.subject.clone())
    .bind(serde_json::to_string(&order.grants).expect("grants serialize"))
    .bind(order.status.as_str())
    .bind(order.holds_stock)
    .bind(order.client_ip.clone())
    .bind(order.device.clone())
    .bind(order.expires_at)
    .bind(order.delivery_hold_ms)
    .bind(order.created_at)
    .execute(&mut *tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Moves a pending order to paid (its transition recorded); `false` when it was not pending.
pub(super) async fn pay_pending_order(
    tx: &mut Tx,
    order_no: &OrderNo,
    now: i64,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let moved = sqlx::query(
        "UPDATE orders SET status = 'paid', updated_at = $1, paid_at = COALESCE(paid_at, $1) \
         WHERE order_no = $2 AND status = 'pending'",
    )
    .bind(now)
    .bind(order_no.as_str().to_owned())
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() == 0 {
        return Ok(false);
    }
    record_transition(
        tx,
        order_no,
        OrderStatus::Pending,
        OrderStatus::Paid,
        reason,
        now,
    )
    .await?;
    Ok(true)
}

/// Gives order `order_no` of player `from` to player `to`; `false` when it is not `from`'s.
pub(super) async fn reassign_order(
    tx: &mut Tx,
    order_no: &OrderNo,
    from: &str,
    to: &str,
) -> Result<bool, sqlx::Error> {
    let moved = sqlx::query(
        "UPDATE orders SET player_id = $1, updated_at = $2 WHERE order_no = $3 AND player_id = $4",
    )
    .bind(to.to_owned())
    .bind(now_ms())
    .bind(order_no.to_string())
    .bind(from.to_owned())
    .execute(&mut *tx)
    .await?;
    Ok(moved.rows_affected() == 1)
}

async fn record_transition(
    tx: &mut Tx,
    order_no: &OrderNo,
    from: OrderStatus,
    to: OrderStatus,
    reason: &str,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO order_transitions (order_no, from_status, to_status, reason, at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(order_no.as_str().to_owned())
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(reason.to_owned())
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Moves an order from `from` to `to` if the table allows it and nobody moved it first.
/// Returns false when the order was no longer in `from` (a concurrent change won).
pub async fn transition(
    tx: &mut Tx,
    order_no: &OrderNo,
    from: OrderStatus,
    to: OrderStatus,
    reason: &str,
) -> Result<bool, TransitionError> {
    from.transition(to)?;
    let now = now_ms();
    let paid_at = (to == OrderStatus::Paid).then_some(now);
    let done = sqlx::query(
        "UPDATE orders SET status = $1, updated_at = $2, paid_at = COALESCE(paid_at, $3) \
         WHERE order_no = $4 AND status = $5",
    )
    .bind(to.as_str())
    .bind(now)
    .bind(paid_at)
    .bind(order_no.as_str().to_owned())
    .bind(from.as_str())
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    record_transition(tx, order_no, from, to, reason, now).await?;
    Ok(true)
}

#[derive(Debug, thiserror::Error)]
pub enum TransitionError {
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Records a new attempt as `created`: before the channel is called, so a crash mid-call
/// leaves a trace to settle by query.
pub(super) async fn insert_attempt(
    tx: &mut Tx,
    order_no: &OrderNo,
    attempt: &Attempt,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO payment_attempts (order_no, attempt_no, payment_ref, channel, method, flow, \
         status, channel_txn_id, channel_status, failure_code, failure_message, next_action, \
         created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, '', NULL, NULL, NULL, $8, $8)",
    )
    .bind(order_no.as_str().to_owned())
    .bind(attempt.attempt_no)
    .bind(attempt.payment_ref.clone())
    .bind(attempt.channel.clone())
    .bind(attempt.method.clone())
    .bind(attempt.flow.as_str())
    .bind(attempt.status.as_str())
    .bind(attempt.created_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Stores the channel's first answer about an attempt, unless something newer (a
/// notification) was recorded since it was created; `false` then.
pub(super) async fn update_created_attempt(
    tx: &mut Tx,
    order_no: &OrderNo,
    attempt: &Attempt,
) -> Result<bool, sqlx::Error> {
    write_attempt(tx, order_no, attempt, true).await
}

/// Stores what became of an attempt.
pub(super) async fn update_attempt(
    tx: &mut Tx,
    order_no: &OrderNo,
    attempt: &Attempt,
) -> Result<(), sqlx::Error> {
    write_attempt(tx, order_no, attempt, false).await?;
    Ok(())
}

async fn write_attempt(
    tx: &mut Tx,
    order_no: &OrderNo,
    attempt: &Attempt,
    only_if_created: bool,
) -> Result<bool, sqlx::Error> {
    let written = sqlx::query(
        "UPDATE payment_attempts SET status = $1, channel_txn_id = $2, channel_status = $3, \
         failure_code = $4, failure_message = $5, next_action = $6, updated_at = $7 \
         WHERE order_no = $8 AND attempt_no = $9 AND (NOT $10 OR status = 'created')",
    )
    .bind(attempt.status.as_str())
    .bind(attempt.channel_txn_id.clone())
    .bind(attempt.channel_status.clone())
    .bind(attempt.failure.as_ref().map(|f| f.code.clone()))
    .bind(attempt.failure.as_ref().map(|f| f.message.clone()))
    .bind(
        attempt
            .next_action
            .as_ref()
            .map(|a| serde_json::to_string(a).expect("actions serialize")),
    )
    .bind(attempt.updated_at)
    .bind(order_no.as_str().to_owned())
    .bind(attempt.attempt_no)
    .bind(only_if_created)
    .execute(&mut *tx)
    .await?;
    Ok(written.rows_affected() == 1)
}

/// The attempt a channel knows by `payment_ref`: its order number and attempt number.
pub(super) async fn find_attempt(
    executor: impl sqlx::Executor<'_, Database = sqlx::Any>,
    channel: &str,
    payment_ref: &str,
) -> Result<Option<(OrderNo, i64)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT order_no, attempt_no FROM payment_attempts WHERE channel = $1 AND payment_ref = $2",
    )
    .bind(channel.to_owned())
    .bind(payment_ref.to_owned())
    .fetch_optional(executor)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let order_no = OrderNo::parse(&row.try_get::<String, _>("order_no")?).map_err(decode)?;
    Ok(Some((order_no, row.try_get("attempt_no")?)))
}

/// The attempt a channel knows by `payment_ref`, with its order's number.
pub(super) async fn attempt_by_ref(
    executor: impl sqlx::Executor<'_, Database = sqlx::Any>,
    channel: &str,
    payment_ref: &str,
) -> Result<Option<(OrderNo, Attempt)>, sqlx::Error> {
    let row = sqlx::query("SELECT * FROM payment_attempts WHERE channel = $1 AND payment_ref = $2")
        .bind(channel.to_owned())
        .bind(payment_ref.to_owned())
        .fetch_optional(executor)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let order_no = OrderNo::parse(&row.try_get::<String, _>("order_no")?).map_err(decode)?;
    Ok(Some((order_no, attempt_from_row(&row)?)))
}

pub async fn get_order(store: &Store, order_no: &OrderNo) -> Result<Option<Order>, sqlx::Error> {
    sqlx::query("SELECT * FROM orders WHERE order_no = $1")
        .bind(order_no.as_str().to_owned())
        .fetch_optional(store.pool())
        .await?
        .as_ref()
        .map(order_from_row)
        .transpose()
}

/// The order, read inside a write transaction and locked until it ends (SQLite's write
/// transactions already hold the database's write lock).
pub(super) async fn lock_order(
    tx: &mut Tx,
    backend: Backend,
    order_no: &OrderNo,
) -> Result<Option<Order>, sqlx::Error> {
    let sql = if backend == Backend::Postgres {
        "SELECT * FROM orders WHERE order_no = $1 FOR UPDATE"
    } else {
        "SELECT * FROM orders WHERE order_no = $1"
    };
    sqlx::query(sql)
        .bind(order_no.as_str().to_owned())
        .fetch_optional(&mut *tx)
        .await?
        .as_ref()
        .map(order_from_row)
        .transpose()
}

pub(super) async fn order_no_for_merchant(
    executor: impl sqlx::Executor<'_, Database = sqlx::Any>,
    game: &GameId,
    merchant_order_no: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT order_no FROM orders WHERE game_id = $1 AND merchant_order_no = $2")
        .bind(game.as_str().to_owned())
        .bind(merchant_order_no.to_owned())
        .fetch_optional(executor)
        .await
}

pub async fn attempts(
    executor: impl sqlx::Executor<'_, Database = sqlx::Any>,
    order_no: &OrderNo,
) -> Result<Vec<Attempt>, sqlx::Error> {
    let rows =
        sqlx::query("SELECT * FROM payment_attempts WHERE order_no = $1 ORDER BY attempt_no")
            .bind(order_no.as_str().to_owned())
            .fetch_all(executor)
            .await?;
    rows.iter().map(attempt_from_row).collect()
}

/// Filters for the operators' order list. Newest first; `before` pages on by order number.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderFilter {
    pub game: Option<GameId>,
    pub status: Option<OrderStatus>,
    pub player_id: Option<String>,
    pub merchant_order_no: Option<String>,
    /// Only orders created before this order number (the last one of the previous page).
    #[serde(default, deserialize_with = "generated_order_no")]
    pub before: Option<OrderNo>,
    /// 1 to 200, default 50.
    #[serde(default, deserialize_with = "crate::store::page_limit")]
    pub limit: Option<u32>,
}

fn generated_order_no<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<OrderNo>, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(deserializer)?;
    OrderNo::parse_generated(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

pub async fn list_orders(store: &Store, filter: &OrderFilter) -> Result<Vec<Order>, sqlx::Error> {
    let limit = i64::from(filter.limit.unwrap_or(50));
    let rows = sqlx::query(
        "SELECT * FROM orders WHERE ($1 IS NULL OR game_id = $1) AND ($2 IS NULL OR status = $2) \
         AND ($3 IS NULL OR player_id = $3) AND ($4 IS NULL OR merchant_order_no = $4) \
         AND ($5 IS NULL OR order_no < $5) ORDER BY order_no DESC LIMIT $6",
    )
    .bind(filter.game.as_ref().map(|g| g.as_str().to_owned()))
    .bind(filter.status.map(|s| s.as_str().to_owned()))
    .bind(filter.player_id.clone())
    .bind(filter.merchant_order_no.clone())
    .bind(filter.before.as_ref().map(|o| o.as_str().to_owned()))
    .bind(limit)
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(order_from_row).collect()
}

/// Moves the paid orders among `order_nos` to delivered, with their transitions, in the
/// caller's transaction (the dispatcher's, which marks their events delivered).
pub async fn mark_delivered_in(
    tx: &mut Tx,
    order_nos: &[String],
    now: i64,
) -> Result<(), sqlx::Error> {
    OrderStatus::Paid
        .transition(OrderStatus::Delivered)
        .expect("paid -> delivered is in the table");
    let mut moved = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE orders SET status = 'delivered', updated_at = $1 \
         WHERE status = 'paid' AND order_no IN ({}) RETURNING order_no",
        placeholders(2, order_nos.len())
    )))
    .persistent(false)
    .bind(now);
    for order_no in order_nos {
        moved = moved.bind(order_no.clone());
    }
    let moved: Vec<String> = moved
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .filter_map(|row| row.try_get("order_no").ok())
        .collect();
    if moved.is_empty() {
        return Ok(());
    }
    let rows = (0..moved.len())
        .map(|i| {
            format!(
                "(${}, 'paid', 'delivered', 'the game acknowledged order.paid', $1)",
                i + 2
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut transitions = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO order_transitions (order_no, from_status, to_status, reason, at) VALUES {rows}"
    )))
    .persistent(false)
    .bind(now);
    for order_no in &moved {
        transitions = transitions.bind(order_no.clone());
    }
    transitions.execute(&mut *tx).await?;
    Ok(())
}
