//! What a verified payment update does, decided from the order, the attempt and the update
//! alone: no I/O, so every case is a row of the table below. `settle.rs` applies the decision
//! in the order's transaction.

use crate::channels::PaymentState;

use super::channel_refunds::Given;
use super::conflicts::ConflictKind;
use super::{AttemptStatus, OrderStatus};

/// What applying an update must do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    /// Nothing: already applied, older than what is known, or the attempt is paid (a later
    /// message cannot unpay it).
    Unchanged,
    /// The channel reports a refund at the payment's level: the refunds made at the channel
    /// record it (a refund Coffer made settles on its own).
    RecordRefund(Given),
    /// Refused and recorded for an operator; nothing else changes.
    Refuse(ConflictKind),
    /// Paid, but not the order's amount: refused for an operator, and the attempt's outcome
    /// becomes unknown (money moved, not the money asked for).
    RefuseAmount,
    /// The attempt moves to this status (not paid); the order stays as it is.
    MoveAttempt(AttemptStatus),
    /// The attempt is paid, but the order was paid through another attempt: the player paid
    /// twice. The attempt records it, and an operator refunds one.
    PaidTwice,
    /// The attempt is paid and the order becomes paid: the `order.paid` event is written. An
    /// order that had closed takes its stock and purchase again.
    Pay { reopened: bool },
}

/// Rank of an attempt status: an update may move an attempt up, never down (a late
/// "pending" after "failed" is an old message).
fn rank(status: AttemptStatus) -> u8 {
    match status {
        AttemptStatus::Created | AttemptStatus::Unknown => 0,
        AttemptStatus::RequiresAction | AttemptStatus::Processing => 1,
        AttemptStatus::Failed => 2,
        AttemptStatus::Paid => 3,
    }
}

/// Decides what `reported` (with an amount that does or does not match the order's) does to
/// an attempt in `attempt` of an order in `order`, both read under the order's lock.
pub(super) fn decide(
    order: OrderStatus,
    attempt: AttemptStatus,
    reported: PaymentState,
    amount_matches: bool,
) -> Decision {
    let new = match reported {
        PaymentState::Paid => AttemptStatus::Paid,
        PaymentState::Failed | PaymentState::Closed => AttemptStatus::Failed,
        PaymentState::RequiresAction => AttemptStatus::RequiresAction,
        PaymentState::Pending => AttemptStatus::Processing,
        // Not about the payment's progress, whatever the attempt's state.
        PaymentState::Refunded => return Decision::RecordRefund(Given::TheRest),
        PaymentState::PartiallyRefunded => return Decision::RecordRefund(Given::Some),
        PaymentState::Chargeback => return Decision::Refuse(ConflictKind::Chargeback),
    };
    if attempt == AttemptStatus::Paid {
        return Decision::Unchanged;
    }
    if new == AttemptStatus::Paid && !amount_matches {
        return Decision::RefuseAmount;
    }
    if rank(new) < rank(attempt) || new == attempt {
        return Decision::Unchanged;
    }
    if new != AttemptStatus::Paid {
        return Decision::MoveAttempt(new);
    }
    if order.is_paid() || order == OrderStatus::Refunded {
        return Decision::PaidTwice;
    }
    Decision::Pay {
        reopened: order == OrderStatus::Closed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AttemptStatus as A;
    use Decision as D;
    use OrderStatus as O;
    use PaymentState as P;

    /// `(order, attempt, reported, amount matches, decision)`.
    const TABLE: &[(O, A, P, bool, D)] = &[
        // The ordinary payment, and its duplicates.
        (
            O::Pending,
            A::Processing,
            P::Paid,
            true,
            D::Pay { reopened: false },
        ),
        (
            O::Pending,
            A::RequiresAction,
            P::Paid,
            true,
            D::Pay { reopened: false },
        ),
        (
            O::Pending,
            A::Created,
            P::Paid,
            true,
            D::Pay { reopened: false },
        ),
        (
            O::Pending,
            A::Unknown,
            P::Paid,
            true,
            D::Pay { reopened: false },
        ),
        (O::Paid, A::Paid, P::Paid, true, D::Unchanged),
        (O::Delivered, A::Paid, P::Paid, true, D::Unchanged),
        // A payment that came after the order closed still pays it.
        (
            O::Closed,
            A::Failed,
            P::Paid,
            true,
            D::Pay { reopened: true },
        ),
        (
            O::Closed,
            A::Processing,
            P::Paid,
            true,
            D::Pay { reopened: true },
        ),
        (
            O::Failed,
            A::Failed,
            P::Paid,
            true,
            D::Pay { reopened: false },
        ),
        // Another amount is never applied, whatever the order's state.
        (O::Pending, A::Processing, P::Paid, false, D::RefuseAmount),
        (O::Closed, A::Processing, P::Paid, false, D::RefuseAmount),
        (O::Paid, A::Processing, P::Paid, false, D::RefuseAmount),
        // ...but a paid attempt stays paid.
        (O::Paid, A::Paid, P::Paid, false, D::Unchanged),
        // A second attempt paid for a paid order: the player paid twice.
        (O::Paid, A::Processing, P::Paid, true, D::PaidTwice),
        (O::Delivered, A::Failed, P::Paid, true, D::PaidTwice),
        (O::Refunded, A::Processing, P::Paid, true, D::PaidTwice),
        (
            O::PartiallyRefunded,
            A::Processing,
            P::Paid,
            true,
            D::PaidTwice,
        ),
        // Attempts move forward only; the order does not move.
        (
            O::Pending,
            A::Created,
            P::Pending,
            true,
            D::MoveAttempt(A::Processing),
        ),
        (
            O::Pending,
            A::Created,
            P::RequiresAction,
            true,
            D::MoveAttempt(A::RequiresAction),
        ),
        (
            O::Pending,
            A::Processing,
            P::Failed,
            true,
            D::MoveAttempt(A::Failed),
        ),
        (
            O::Pending,
            A::Processing,
            P::Closed,
            true,
            D::MoveAttempt(A::Failed),
        ),
        (
            O::Pending,
            A::Unknown,
            P::Failed,
            false,
            D::MoveAttempt(A::Failed),
        ),
        (O::Pending, A::Failed, P::Pending, true, D::Unchanged),
        (O::Pending, A::Processing, P::Pending, true, D::Unchanged),
        (O::Pending, A::Failed, P::Failed, true, D::Unchanged),
        // A late failure never unpays.
        (O::Paid, A::Paid, P::Failed, true, D::Unchanged),
        (O::Paid, A::Paid, P::Closed, true, D::Unchanged),
        // Refunds told at the payment's level, and chargebacks, whatever the attempt.
        (
            O::Paid,
            A::Paid,
            P::Refunded,
            true,
            D::RecordRefund(Given::TheRest),
        ),
        (
            O::Delivered,
            A::Paid,
            P::PartiallyRefunded,
            true,
            D::RecordRefund(Given::Some),
        ),
        (
            O::Pending,
            A::Processing,
            P::Refunded,
            false,
            D::RecordRefund(Given::TheRest),
        ),
        (
            O::Delivered,
            A::Paid,
            P::Chargeback,
            true,
            D::Refuse(ConflictKind::Chargeback),
        ),
        (
            O::Pending,
            A::Processing,
            P::Chargeback,
            false,
            D::Refuse(ConflictKind::Chargeback),
        ),
    ];

    #[test]
    fn every_update_decides_as_the_table_says() {
        for &(order, attempt, reported, amount_matches, expected) in TABLE {
            assert_eq!(
                decide(order, attempt, reported, amount_matches),
                expected,
                "order {order:?}, attempt {attempt:?}, reported {reported:?}, amount matches: \
                 {amount_matches}"
            );
        }
    }

    #[test]
    fn no_update_moves_a_paid_attempt_or_pays_twice() {
        let orders = OrderStatus::ALL;
        let attempts = [
            A::Created,
            A::Unknown,
            A::RequiresAction,
            A::Processing,
            A::Failed,
        ];
        let reports = [
            P::Paid,
            P::Failed,
            P::Closed,
            P::Pending,
            P::RequiresAction,
            P::Refunded,
            P::PartiallyRefunded,
            P::Chargeback,
        ];
        for order in orders {
            for reported in reports {
                for amount_matches in [true, false] {
                    let paid = decide(order, A::Paid, reported, amount_matches);
                    assert!(
                        matches!(paid, D::Unchanged | D::RecordRefund(_) | D::Refuse(_)),
                        "a paid attempt of a {order:?} order moved on {reported:?}: {paid:?}"
                    );
                    for attempt in attempts {
                        let decision = decide(order, attempt, reported, amount_matches);
                        if let D::Pay { .. } = decision {
                            assert!(
                                !order.is_paid() && order != O::Refunded && amount_matches,
                                "{order:?} paid again by {reported:?} on {attempt:?}"
                            );
                        }
                    }
                }
            }
        }
    }
}
