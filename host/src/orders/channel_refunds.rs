//! Refunds made at the channel without Coffer asking (from the merchant's console, a dispute
//! desk): the money went back to the player, so the order records it like any refund (a
//! refund row, the order's refunded amount and state, an `order.refunded` event for the game)
//! in the transaction that learns of it. What cannot be matched to what Coffer knows becomes a
//! conflict for an operator instead; nothing is applied by guess.
//!
//! Channels tell of such refunds in two ways: a refund event with its own number and amount
//! (WeChat Pay), or only a payment-level status, "refunded" or "partially refunded" (Alipay's
//! trade notification). A whole refund implies its amount (what is left); a partial one of
//! unknown amount cannot be recorded and is parked as a conflict.

use coffer_money::Money;

use super::conflicts::{self, Conflict, ConflictKind};
use super::model::{Attempt, Order};
use super::payment::{clean_id, scrub};
use super::{AttemptStatus, OrderError, OrderNo, OrderStatus, store};
use crate::fulfillment::{EventKind, enqueue};
use crate::store::{Tx, new_id, now_ms};

/// How much the channel says it gave back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Given {
    Exactly(Money),
    /// Everything that was left (the payment is now wholly refunded at the channel).
    TheRest,
    /// Some of it, amount not told.
    Some,
}

/// A refund the channel reports on its own.
pub(super) struct ChannelRefund<'a> {
    /// The channel's number for it; with the payment, what makes recording it idempotent.
    pub channel_refund_no: &'a str,
    pub channel_refund_id: Option<&'a str>,
    pub given: Given,
    pub channel_status: &'a str,
}

/// What became of a channel's refund.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Recorded {
    /// A refund row now records it, and the game was told.
    Refunded,
    /// Already recorded, or covered by refunds Coffer made (or still waits for).
    Known,
    /// Parked for an operator, for this reason.
    Conflict(ConflictKind),
}

/// Money movements of an order's refunds: what succeeded, and what is still open.
async fn refund_totals(tx: &mut Tx, order_no: &OrderNo) -> Result<(i64, i64), sqlx::Error> {
    use sqlx::Row;
    let row = sqlx::query(
        "SELECT CAST(COALESCE(SUM(CASE WHEN status = 'succeeded' THEN amount_minor ELSE 0 END), 0) AS BIGINT) AS done, \
         CAST(COALESCE(SUM(CASE WHEN status IN ('pending', 'unknown') THEN amount_minor ELSE 0 END), 0) AS BIGINT) AS open \
         FROM refunds WHERE order_no = $1",
    )
    .bind(order_no.to_string())
    .fetch_one(&mut *tx)
    .await?;
    Ok((row.try_get("done")?, row.try_get("open")?))
}

/// Records `refund` of `attempt`'s payment, in `tx` (which holds the order's row).
pub(super) async fn record(
    tx: &mut Tx,
    order: &Order,
    attempt: &Attempt,
    refund: ChannelRefund<'_>,
) -> Result<Recorded, OrderError> {
    let known: Option<String> = sqlx::query_scalar(
        "SELECT refund_no FROM refunds WHERE channel = $1 AND payment_ref = $2 \
         AND channel_refund_no = $3",
    )
    .bind(attempt.channel.clone())
    .bind(attempt.payment_ref.clone())
    .bind(clean_id(refund.channel_refund_no))
    .fetch_optional(&mut *tx)
    .await?;
    if known.is_some() {
        return Ok(Recorded::Known);
    }
    let conflict = |kind: ConflictKind, detail: String| Conflict {
        kind,
        channel: &attempt.channel,
        payment_ref: &attempt.payment_ref,
        order_no: Some(&order.order_no),
        channel_txn_id: refund.channel_refund_id,
        detail,
    };
    if attempt.status != AttemptStatus::Paid || !order.status.is_paid() {
        let detail = format!(
            "the channel reports a refund ({:?}, {}) of a payment Coffer has not seen paid (order {})",
            refund.given, refund.channel_status, order.status
        );
        let kind = ConflictKind::RefundOfUnpaidPayment;
        conflicts::record(tx, conflict(kind, detail)).await?;
        return Ok(Recorded::Conflict(kind));
    }
    let (done, open) = refund_totals(tx, &order.order_no).await?;
    let paid = order.amount.minor();
    let amount = match refund.given {
        Given::Exactly(money) if money.currency() != order.amount.currency() => {
            let detail = format!(
                "refund of {money} on an order in {}",
                order.amount.currency()
            );
            let kind = ConflictKind::RefundCurrencyMismatch;
            conflicts::record(tx, conflict(kind, detail)).await?;
            return Ok(Recorded::Conflict(kind));
        }
        Given::Exactly(money) => money.minor(),
        // A refund Coffer asked for may be what the channel reports: it settles on its own.
        Given::TheRest | Given::Some if open > 0 => return Ok(Recorded::Known),
        Given::TheRest if paid - done == 0 => return Ok(Recorded::Known),
        Given::TheRest => paid - done,
        Given::Some if done > 0 => return Ok(Recorded::Known),
        Given::Some => {
            let detail = format!(
                "the channel reports a partial refund ({}) that Coffer did not make; its amount \
                 is not told: record it from the channel's console",
                refund.channel_status
            );
            let kind = ConflictKind::RefundAtChannelUnknownAmount;
            conflicts::record(tx, conflict(kind, detail)).await?;
            return Ok(Recorded::Conflict(kind));
        }
    };
    if amount <= 0 || amount > paid - done - open {
        let detail = format!(
            "the channel reports a refund of {amount} minor units; {} of {paid} are left to refund",
            paid - done - open
        );
        let kind = ConflictKind::RefundExceedsPayment;
        conflicts::record(tx, conflict(kind, detail)).await?;
        return Ok(Recorded::Conflict(kind));
    }
    let now = now_ms();
    let refund_no = new_id("RF");
    sqlx::query(
        "INSERT INTO refunds (refund_no, order_no, channel, payment_ref, amount_minor, currency, \
         status, reason, channel_refund_id, channel_status, failure_code, failure_message, \
         created_at, updated_at, origin, channel_refund_no) \
         VALUES ($1, $2, $3, $4, $5, $6, 'succeeded', $7, $8, $9, NULL, NULL, $10, $10, 'channel', $11)",
    )
    .bind(refund_no.clone())
    .bind(order.order_no.to_string())
    .bind(attempt.channel.clone())
    .bind(attempt.payment_ref.clone())
    .bind(amount)
    .bind(order.amount.currency().code().to_owned())
    .bind("made at the channel")
    .bind(refund.channel_refund_id.map(clean_id))
    .bind(scrub(refund.channel_status))
    .bind(now)
    .bind(clean_id(refund.channel_refund_no))
    .execute(&mut *tx)
    .await?;
    credit(tx, order, &attempt.channel, &refund_no, amount).await?;
    tracing::warn!(order_no = %order.order_no, %refund_no, amount, channel = %attempt.channel, "refund made at the channel recorded; the game is told to take the items back");
    Ok(Recorded::Refunded)
}

/// Moves the order by a succeeded refund of `amount` through `channel`, posts it and tells
/// the game, once.
pub(super) async fn credit(
    tx: &mut Tx,
    order: &Order,
    channel: &str,
    refund_no: &str,
    amount: i64,
) -> Result<(), OrderError> {
    let refunded = order.refunded_minor + amount;
    // The amounts were checked against what is left under the order's lock: anything else is a
    // bug, and money is never moved on a bug.
    if amount <= 0 || refunded > order.amount.minor() {
        return Err(OrderError::Invariant(format!(
            "refund {refund_no} of {amount} would bring order {} to {refunded} refunded of {}",
            order.order_no,
            order.amount.minor()
        )));
    }
    let to = if refunded == order.amount.minor() {
        OrderStatus::Refunded
    } else {
        OrderStatus::PartiallyRefunded
    };
    let reason = format!("refund {refund_no} of {amount} minor units");
    if store::transition(tx, &order.order_no, order.status, to, &reason).await? {
        sqlx::query("UPDATE orders SET refunded_minor = $1 WHERE order_no = $2")
            .bind(refunded)
            .bind(order.order_no.to_string())
            .execute(&mut *tx)
            .await?;
        let given = Money::new(amount, order.amount.currency());
        super::books::post_refund(tx, order, channel, refund_no, given).await?;
        let mut order = order.clone();
        order.status = to;
        order.refunded_minor = refunded;
        enqueue(tx, EventKind::OrderRefunded, &order).await?;
    }
    Ok(())
}
