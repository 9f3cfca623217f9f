//! What the recovery jobs ask of the orders area: payments whose notification may be lost, and
//! orders whose time to pay is over.

use sqlx::Row;

use super::{AttemptStatus, OrderError, OrderNo, OrderStatus, Orders, Settled, store};
use crate::store::{Backend, Tx, now_ms};

/// Attempts that have not settled: the channel may have taken the money without telling us.
const UNSETTLED: &str = "('created', 'unknown', 'requires_action', 'processing')";

/// How long closed orders' unsettled attempts are still asked about.
const CLOSED_WATCH_MS: i64 = 24 * 3600 * 1000;

/// An expired order whose attempts cannot all be confirmed failed is closed anyway this long
/// after its deadline (its channel has long since closed the payment); a payment that still
/// arrives later makes it paid again (closed -> paid is legal) and is recorded.
const CLOSE_ANYWAY_AFTER_MS: i64 = 24 * 3600 * 1000;

/// What one close did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Closed; its stock and purchase count given back.
    Closed,
    /// The channel says it was paid after all.
    Paid,
    /// Not closed now: an attempt's outcome could not be confirmed, or the order moved.
    Kept,
}

impl Orders {
    /// Asks the channel about attempts of pending orders that have been unsettled for longer
    /// than `older_than_ms`, at most once per `every_ms` each. Returns how many became paid.
    pub async fn query_unsettled(
        &self,
        older_than_ms: i64,
        every_ms: i64,
        limit: u32,
    ) -> Result<usize, OrderError> {
        let now = now_ms();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT a.channel, a.payment_ref, a.order_no, a.attempt_no FROM payment_attempts a \
             JOIN orders o ON o.order_no = a.order_no \
             WHERE (o.status = 'pending' OR (o.status = 'closed' AND o.updated_at > $4)) \
             AND a.status IN {UNSETTLED} AND a.updated_at <= $1 \
             AND (a.next_query_at IS NULL OR a.next_query_at <= $2) \
             ORDER BY a.updated_at LIMIT $3"
        )))
        .bind(now - older_than_ms)
        .bind(now)
        .bind(i64::from(limit))
        // Closed orders stay watched for a day: a payment that completed at the channel just
        // before the close, whose notification was lost, is still found.
        .bind(now - CLOSED_WATCH_MS)
        .fetch_all(self.store.pool())
        .await?;
        let mut paid = 0;
        for row in rows {
            let channel: String = row.try_get("channel")?;
            let payment_ref: String = row.try_get("payment_ref")?;
            // Claimed first, so several instances do not all query the same attempt.
            let claim = (payment_ref.clone(), now, every_ms);
            let claimed = self
                .store
                .write(claim, |tx, (payment_ref, now, every_ms)| {
                    Box::pin(async move {
                        sqlx::query(
                            "UPDATE payment_attempts SET next_query_at = $1 WHERE payment_ref = $2 \
                             AND (next_query_at IS NULL OR next_query_at <= $3)",
                        )
                        .bind(*now + *every_ms)
                        .bind(payment_ref.clone())
                        .bind(*now)
                        .execute(&mut *tx)
                        .await
                    })
                })
                .await?;
            if claimed.rows_affected() == 0 {
                continue;
            }
            match self.confirm_by_query(&channel, &payment_ref).await {
                Ok((Settled::Paid, order_no)) => {
                    tracing::info!(%order_no, %channel, "lost notification: paid, found by query");
                    paid += 1;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%channel, %payment_ref, %error, "recovery query failed")
                }
            }
        }
        Ok(paid)
    }

    /// Pending orders past their deadline, least recently looked at first (an order kept open
    /// goes to the back, so a few that cannot be confirmed never hold up the others).
    pub async fn expired_pending(&self, limit: u32) -> Result<Vec<OrderNo>, OrderError> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT order_no FROM orders WHERE status = 'pending' AND expires_at <= $1 \
             ORDER BY updated_at LIMIT $2",
        )
        .bind(now_ms())
        .bind(i64::from(limit))
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows
            .iter()
            .filter_map(|no| OrderNo::parse(no).ok())
            .collect())
    }

    /// Closes an expired order and gives back its stock and purchase count, after making sure
    /// with the channel that none of its attempts was paid. Safe to call from several
    /// instances: the transition happens once, and the releases with it.
    pub async fn close_if_expired(&self, order_no: &OrderNo) -> Result<Expiry, OrderError> {
        let expiry = self.try_close(order_no).await?;
        if expiry == Expiry::Kept {
            self.store
                .write(order_no.clone(), |tx, order_no| {
                    Box::pin(async move {
                        sqlx::query(
                            "UPDATE orders SET updated_at = $1 \
                             WHERE order_no = $2 AND status = 'pending'",
                        )
                        .bind(now_ms())
                        .bind(order_no.to_string())
                        .execute(&mut *tx)
                        .await
                    })
                })
                .await?;
        }
        Ok(expiry)
    }

    async fn try_close(&self, order_no: &OrderNo) -> Result<Expiry, OrderError> {
        let Some(order) = store::get_order(&self.store, order_no).await? else {
            return Ok(Expiry::Kept);
        };
        let long_overdue = order.expires_at + CLOSE_ANYWAY_AFTER_MS <= now_ms();
        let attempts = store::attempts(self.store.pool(), order_no).await?;
        for attempt in attempts
            .iter()
            .filter(|a| !matches!(a.status, AttemptStatus::Failed | AttemptStatus::Paid))
        {
            match self
                .confirm_by_query(&attempt.channel, &attempt.payment_ref)
                .await
            {
                Ok((Settled::Paid, _)) => return Ok(Expiry::Paid),
                Ok(_) => {}
                Err(error) if !long_overdue => {
                    tracing::warn!(%order_no, %error, "expired order kept open: its payment could not be confirmed");
                    return Ok(Expiry::Kept);
                }
                Err(_) => {}
            }
        }
        let closing = (order_no.clone(), long_overdue, self.store.backend());
        let closed = self
            .store
            .write(closing, |tx, (order_no, long_overdue, backend)| {
                Box::pin(close_in(tx, order_no, *long_overdue, *backend))
            })
            .await?;
        if !closed {
            return Ok(Expiry::Kept);
        }
        self.status_cache.invalidate(order_no).await;
        tracing::info!(%order_no, "expired order closed; stock and purchase limit released");
        Ok(Expiry::Closed)
    }
}

/// Closes an expired order if every attempt failed (or it is long overdue), giving back its
/// stock and purchase count; `false` when it was kept.
async fn close_in(
    tx: &mut Tx,
    order_no: &OrderNo,
    long_overdue: bool,
    backend: Backend,
) -> Result<bool, OrderError> {
    let Some(order) = store::lock_order(tx, backend, order_no).await? else {
        return Ok(false);
    };
    if order.status != OrderStatus::Pending || order.expires_at > now_ms() {
        return Ok(false);
    }
    // Re-read inside the transaction: an attempt may have started or moved meanwhile. Every
    // one must be failed (the channel said so), unless the order is long overdue.
    let attempts = store::attempts(&mut *tx, order_no).await?;
    if attempts.iter().any(|a| a.status == AttemptStatus::Paid)
        || (!long_overdue && attempts.iter().any(|a| a.status != AttemptStatus::Failed))
    {
        return Ok(false);
    }
    if !store::transition(
        tx,
        order_no,
        OrderStatus::Pending,
        OrderStatus::Closed,
        "expired unpaid",
    )
    .await?
    {
        return Ok(false);
    }
    if order.holds_stock {
        crate::catalog::release_stock(tx, &order.game, &order.sku).await?;
    }
    crate::catalog::release_purchase(tx, &order.player_id, &order.game, &order.sku).await?;
    Ok(true)
}
