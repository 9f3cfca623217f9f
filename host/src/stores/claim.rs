//! The write that redeems a purchase: the claim of its (channel, transaction id) and the paid
//! order, or neither. The order is a new one, or the one the game server created beforehand,
//! locked and checked to be still waiting in the same transaction.

use super::{StoreError, purchases};
use crate::channels::StorePurchase;
use crate::orders::paid_in_store::{lock_waiting_store_order, open_paid_in, settle_waiting_in};
use crate::orders::{Attempt, Order, OrderError, OrderNo};
use crate::store::{Backend, Tx};

/// Which order the purchase pays.
pub(super) enum Target {
    /// A new order and its attempt, not written yet.
    New(Box<(Order, Attempt)>),
    /// The order created beforehand, if it still waits.
    Waiting(OrderNo),
}

pub(super) struct Claim {
    pub channel: String,
    pub purchase: StorePurchase,
    pub target: Target,
    pub backend: Backend,
}

pub(super) enum Claimed {
    Made(Box<(Order, Attempt)>),
    /// Another request redeemed it first: its order.
    Before(OrderNo),
    /// The order created beforehand no longer waits (closed, or paid otherwise): nothing was
    /// written.
    WaitingGone,
}

/// The order a claim pays, once the waiting one is locked.
enum Paying<'a> {
    New(&'a Order, &'a Attempt),
    Waiting(Box<Order>),
}

impl Paying<'_> {
    fn order(&self) -> &Order {
        match self {
            Self::New(order, _) => order,
            Self::Waiting(order) => order,
        }
    }
}

pub(super) async fn claim_in(tx: &mut Tx, job: &Claim) -> Result<Claimed, StoreError> {
    let purchase = &job.purchase;
    let paying = match &job.target {
        Target::New(new) => Paying::New(&new.0, &new.1),
        Target::Waiting(order_no) => {
            match lock_waiting_store_order(tx, job.backend, order_no).await? {
                Some(order) => Paying::Waiting(Box::new(order)),
                None => return Ok(Claimed::WaitingGone),
            }
        }
    };
    let order = paying.order();
    if !purchases::claim(tx, &job.channel, purchase, &order.order_no, &order.game).await? {
        let known = purchases::by_transaction(&mut *tx, &job.channel, &purchase.transaction_id)
            .await?
            .ok_or_else(|| {
                OrderError::Invariant(format!(
                    "store transaction {} is claimed, yet not found",
                    purchase.transaction_id
                ))
            })?;
        return Ok(Claimed::Before(known.order_no));
    }
    let (txn, status) = (&purchase.transaction_id, &purchase.channel_status);
    let made = match &paying {
        Paying::New(order, attempt) => open_paid_in(tx, order, attempt, txn, status).await?,
        Paying::Waiting(order) => settle_waiting_in(tx, order, &job.channel, txn, status).await?,
    };
    Ok(Claimed::Made(Box::new(made)))
}
