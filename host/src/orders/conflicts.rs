//! Conflicts: money a channel reports that Coffer refused to apply as it stands (another
//! amount, a second payment of a paid order, a refund it cannot match). Each is kept once per
//! kind and payment for an operator to resolve, and logged at error level; none is dropped.

use super::OrderNo;
use super::payment::{clean_id, scrub};
use crate::store::{Tx, new_id, now_ms};

/// Why money a channel reported was not applied. Stored as [`ConflictKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    /// A verified update about a payment Coffer has no attempt for.
    UnknownPayment,
    /// Paid, but another amount or currency than the order's.
    AmountMismatch,
    /// A second attempt paid for an order that was paid already: the player paid twice.
    PaidTwice,
    /// The cardholder disputed the payment.
    Chargeback,
    /// Paid after the order closed, and the SKU sold out meanwhile.
    SoldOutAfterClose,
    /// A refund at the channel of a payment Coffer has not seen paid.
    RefundOfUnpaidPayment,
    /// A refund at the channel for a payment Coffer does not know.
    RefundOfUnknownPayment,
    /// A refund at the channel in another currency than the order's.
    RefundCurrencyMismatch,
    /// A partial refund at the channel whose amount the channel does not tell.
    RefundAtChannelUnknownAmount,
    /// A refund at the channel of more than is left to refund.
    RefundExceedsPayment,
    /// A refund Coffer asked for, reported succeeded after it was reported failed.
    RefundAfterFailure,
    /// A refund Coffer asked for, reported succeeded for another amount.
    RefundAmountMismatch,
}

impl ConflictKind {
    /// The stored name, which operators filter by.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownPayment => "unknown_payment",
            Self::AmountMismatch => "amount_mismatch",
            Self::PaidTwice => "paid_twice",
            Self::Chargeback => "chargeback",
            Self::SoldOutAfterClose => "sold_out_after_close",
            Self::RefundOfUnpaidPayment => "refund_of_unpaid_payment",
            Self::RefundOfUnknownPayment => "refund_of_unknown_payment",
            Self::RefundCurrencyMismatch => "refund_currency_mismatch",
            Self::RefundAtChannelUnknownAmount => "refund_at_channel_unknown_amount",
            Self::RefundExceedsPayment => "refund_exceeds_payment",
            Self::RefundAfterFailure => "refund_after_failure",
            Self::RefundAmountMismatch => "refund_amount_mismatch",
        }
    }
}

impl std::fmt::Display for ConflictKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One conflict to record.
pub(super) struct Conflict<'a> {
    pub kind: ConflictKind,
    pub channel: &'a str,
    /// What the channel knows the payment (or refund) by.
    pub payment_ref: &'a str,
    pub order_no: Option<&'a OrderNo>,
    pub channel_txn_id: Option<&'a str>,
    /// What the channel said, for the operator (scrubbed of anything card-like).
    pub detail: String,
}

/// Records `conflict` in `tx`, unless the same kind was recorded for the payment already.
/// Returns whether it is new.
pub(super) async fn record(tx: &mut Tx, conflict: Conflict<'_>) -> Result<bool, sqlx::Error> {
    let written = sqlx::query(
        "INSERT INTO payment_conflicts (id, kind, channel, payment_ref, order_no, channel_txn_id, \
         detail, created_at, resolved_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL) \
         ON CONFLICT DO NOTHING",
    )
    .bind(new_id("pc_"))
    .bind(conflict.kind.as_str())
    .bind(conflict.channel.to_owned())
    .bind(clean_id(conflict.payment_ref))
    .bind(conflict.order_no.map(|o| o.to_string()))
    .bind(conflict.channel_txn_id.map(clean_id))
    .bind(scrub(&conflict.detail))
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    Ok(written.rows_affected() == 1)
}
