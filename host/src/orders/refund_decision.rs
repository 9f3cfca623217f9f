//! What a channel's word on a refund Coffer asked for does, decided from the refund as stored
//! and the report alone: every case is a row of the table below. `refunds.rs` applies it.

use super::conflicts::ConflictKind;
use crate::channels::RefundState;

/// Where a refund Coffer asked for stands, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    /// Asked for; the channel's final word is still to come.
    Pending,
    /// Sent, no usable answer: settled later by a notification or an operator.
    Unknown,
    Succeeded,
    /// Final: nothing was given back.
    Failed,
}

impl RefundStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Unknown => "unknown",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Pending, Self::Unknown, Self::Succeeded, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// Whether the amount is still held against what is left to refund.
    pub fn holds_amount(self) -> bool {
        self != Self::Failed
    }
}

/// What applying a refund report must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RefundDecision {
    /// Nothing: not final yet, or the refund already reached a final state.
    Unchanged,
    /// The refund failed at the channel: it becomes `failed` and releases its amount.
    Fail,
    /// The refund succeeded: it becomes `succeeded` and the order records the money given back.
    Succeed,
    /// Money moved in a way Coffer did not ask for: kept for an operator, never applied.
    Refuse(ConflictKind),
}

/// Decides what `reported` (for an amount that does or does not match the refund's) does to a
/// refund stored as `stored`.
pub(super) fn decide_refund(
    stored: RefundStatus,
    reported: RefundState,
    amount_matches: bool,
) -> RefundDecision {
    use RefundDecision as D;
    match (stored, reported) {
        (_, RefundState::Pending) => D::Unchanged,
        // Told it failed, Coffer let the order be refunded again: a success now may refund twice.
        (RefundStatus::Failed, RefundState::Succeeded) => {
            D::Refuse(ConflictKind::RefundAfterFailure)
        }
        (_, RefundState::Succeeded) if !amount_matches => {
            D::Refuse(ConflictKind::RefundAmountMismatch)
        }
        (RefundStatus::Pending | RefundStatus::Unknown, RefundState::Succeeded) => D::Succeed,
        (RefundStatus::Pending | RefundStatus::Unknown, RefundState::Failed) => D::Fail,
        // Final states stay final: a late failure after a success cannot take the money back.
        (RefundStatus::Succeeded | RefundStatus::Failed, _) => D::Unchanged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConflictKind as K;
    use RefundDecision as D;
    use RefundState as R;
    use RefundStatus as S;

    /// `(stored, reported, amount matches, decision)`.
    const TABLE: &[(S, R, bool, D)] = &[
        // The ordinary refund: pending, then the channel's final word.
        (S::Pending, R::Succeeded, true, D::Succeed),
        (S::Pending, R::Failed, true, D::Fail),
        (S::Pending, R::Pending, true, D::Unchanged),
        // Sent without a usable answer: the notification settles it.
        (S::Unknown, R::Succeeded, true, D::Succeed),
        (S::Unknown, R::Failed, false, D::Fail),
        (S::Unknown, R::Pending, true, D::Unchanged),
        // Duplicates change nothing.
        (S::Succeeded, R::Succeeded, true, D::Unchanged),
        (S::Failed, R::Failed, true, D::Unchanged),
        // A late failure never takes back a success.
        (S::Succeeded, R::Failed, true, D::Unchanged),
        // Another amount is never applied.
        (
            S::Pending,
            R::Succeeded,
            false,
            D::Refuse(K::RefundAmountMismatch),
        ),
        (
            S::Unknown,
            R::Succeeded,
            false,
            D::Refuse(K::RefundAmountMismatch),
        ),
        (
            S::Succeeded,
            R::Succeeded,
            false,
            D::Refuse(K::RefundAmountMismatch),
        ),
        // A success after Coffer recorded a failure.
        (
            S::Failed,
            R::Succeeded,
            true,
            D::Refuse(K::RefundAfterFailure),
        ),
        (
            S::Failed,
            R::Succeeded,
            false,
            D::Refuse(K::RefundAfterFailure),
        ),
    ];

    #[test]
    fn every_refund_report_decides_as_the_table_says() {
        for &(stored, reported, amount_matches, expected) in TABLE {
            assert_eq!(
                decide_refund(stored, reported, amount_matches),
                expected,
                "stored {stored:?}, reported {reported:?}, amount matches: {amount_matches}"
            );
        }
    }

    #[test]
    fn only_an_open_refund_of_the_asked_amount_gives_money_back() {
        let all = [S::Pending, S::Unknown, S::Succeeded, S::Failed];
        for stored in all {
            for reported in [R::Pending, R::Succeeded, R::Failed] {
                for amount_matches in [true, false] {
                    if decide_refund(stored, reported, amount_matches) == D::Succeed {
                        assert!(
                            matches!(stored, S::Pending | S::Unknown) && amount_matches,
                            "{stored:?} succeeded on {reported:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn statuses_read_back_as_written() {
        for status in [S::Pending, S::Unknown, S::Succeeded, S::Failed] {
            assert_eq!(S::parse(status.as_str()), Some(status));
        }
        assert_eq!(S::parse("refunded"), None);
    }
}
