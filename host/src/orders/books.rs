//! What the order center posts to the ledger, in the transaction of the change that moves the
//! money (see `crate::ledger`). Each function names the transfer by its cause, so a change
//! applied twice posts once.

use coffer_money::Money;

use super::OrderError;
use super::conflicts::ConflictKind;
use super::model::{Attempt, Order};
use crate::games::GameId;
use crate::ledger::{self, Account, Cause, Transfer};
use crate::store::Tx;

/// The name a payment's transfers carry: the attempt the channel knows.
fn payment_id(channel: &str, payment_ref: &str) -> String {
    format!("{channel}:{payment_ref}")
}

/// `order` became paid through `attempt`: the channel holds the order's amount for the game.
pub(super) async fn post_payment(
    tx: &mut Tx,
    order: &Order,
    attempt: &Attempt,
) -> Result<(), OrderError> {
    let id = payment_id(&attempt.channel, &attempt.payment_ref);
    ledger::post(
        tx,
        &Transfer {
            cause: Cause::Payment,
            upstream_id: &id,
            game: Some(&order.game),
            debit: Account::Clearing(attempt.channel.clone()),
            credit: Account::Revenue,
            amount: order.amount,
            order_no: Some(order.order_no.as_str()),
        },
    )
    .await?;
    Ok(())
}

/// Refund `refund_no` of `order` gave `amount` back through `channel`.
pub(super) async fn post_refund(
    tx: &mut Tx,
    order: &Order,
    channel: &str,
    refund_no: &str,
    amount: Money,
) -> Result<(), OrderError> {
    ledger::post(
        tx,
        &Transfer {
            cause: Cause::Refund,
            upstream_id: refund_no,
            game: Some(&order.game),
            debit: Account::Refunds,
            credit: Account::Clearing(channel.to_owned()),
            amount,
            order_no: Some(order.order_no.as_str()),
        },
    )
    .await?;
    Ok(())
}

/// Money came in through `channel` that no order takes as it stands (a second payment,
/// another amount, a payment Coffer has no attempt for): it waits in suspense for the operator
/// who resolves the conflict of `kind`.
pub(super) async fn park_in_suspense(
    tx: &mut Tx,
    kind: ConflictKind,
    game: Option<&GameId>,
    channel: &str,
    payment_ref: &str,
    order_no: Option<&str>,
    amount: Money,
) -> Result<(), OrderError> {
    if amount.minor() <= 0 {
        // Nothing came in that the books could hold; the conflict alone tells the operator.
        return Ok(());
    }
    let id = payment_id(channel, payment_ref);
    ledger::post(
        tx,
        &Transfer {
            cause: Cause::Suspense(kind.as_str()),
            upstream_id: &id,
            game,
            debit: Account::Clearing(channel.to_owned()),
            credit: Account::Suspense,
            amount,
            order_no,
        },
    )
    .await?;
    Ok(())
}
