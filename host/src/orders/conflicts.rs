//! Conflicts: money a channel reports that Coffer refused to apply as it stands (another
//! amount, a second payment of a paid order, a refund it cannot match). Each is kept once per
//! kind and payment for an operator to resolve, and logged at error level; none is dropped.

use super::OrderNo;
use super::payment::{clean_id, scrub};
use crate::store::{Tx, new_id, now_ms};

/// One conflict to record.
pub(super) struct Conflict<'a> {
    pub kind: &'static str,
    pub channel: &'a str,
    /// What the channel knows the payment (or refund) by.
    pub payment_ref: &'a str,
    pub order_no: Option<&'a OrderNo>,
    pub channel_txn_id: Option<&'a str>,
    /// What the channel said, for the operator (scrubbed of anything card-like).
    pub detail: String,
}

/// Records `conflict` in `tx`, unless the same kind was recorded for the payment already.
pub(super) async fn record(tx: &mut Tx, conflict: Conflict<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO payment_conflicts (id, kind, channel, payment_ref, order_no, channel_txn_id, \
         detail, created_at, resolved_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL) \
         ON CONFLICT DO NOTHING",
    )
    .bind(new_id("pc_"))
    .bind(conflict.kind)
    .bind(conflict.channel.to_owned())
    .bind(clean_id(conflict.payment_ref))
    .bind(conflict.order_no.map(|o| o.to_string()))
    .bind(conflict.channel_txn_id.map(clean_id))
    .bind(scrub(&conflict.detail))
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    Ok(())
}
