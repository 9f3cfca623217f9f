//! Orders paid in an app store: the money moved in the store before Coffer heard of it, so the
//! order is opened already paid, in the transaction that claims the store's transaction
//! (`stores`), through the same writes as any paid order: the order's pending → paid transition,
//! its one attempt with the store's transaction id, the ledger's posting and `order.paid`.
//!
//! A store purchase ignores stock and purchase limits (the player already paid the store); it
//! is counted, so that later limits see it. A game server may also create the order
//! beforehand (flow `store`: its stock and limit held, no attempt), and the proof then settles
//! that order instead.

use coffer_money::Money;

use super::model::{Attempt, Order};
use super::{AttemptStatus, OrderError, OrderNo, OrderStatus, payment_ref, store};
use crate::catalog::Grant;
use crate::channels::Flow;
use crate::games::{GameId, Region};
use crate::store::{Backend, Tx, now_ms};

/// What a verified store purchase makes an order of.
pub struct StoreOrder {
    pub game: GameId,
    pub player_id: String,
    pub channel: String,
    pub transaction_id: String,
    pub channel_status: String,
    pub sku: String,
    pub subject: String,
    pub grants: Vec<Grant>,
    pub region: Region,
    pub amount: Money,
}

impl StoreOrder {
    /// Whether `waiting`, an order created beforehand, is for this: the same player, SKU and
    /// amount (grants follow from the SKU; a quantity over one makes its own order).
    pub fn fits(&self, waiting: &Order) -> bool {
        waiting.player_id == self.player_id
            && waiting.sku == self.sku
            && waiting.amount == self.amount
            && waiting.grants == self.grants
    }

    /// The order and its paid attempt, not written yet. The merchant order number is the
    /// store's transaction, so the game sees which purchase it was.
    pub fn order(&self) -> (Order, Attempt) {
        let now = now_ms();
        let order_no = OrderNo::generate();
        let attempt = store_attempt(&order_no, &self.channel);
        let order = Order {
            order_no,
            game: self.game.clone(),
            player_id: self.player_id.clone(),
            merchant_order_no: format!("{}:{}", self.channel, self.transaction_id),
            sku: self.sku.clone(),
            region: self.region.clone(),
            amount: self.amount,
            subject: self.subject.clone(),
            grants: self.grants.clone(),
            status: OrderStatus::Pending,
            holds_stock: false,
            client_ip: String::new(),
            device: String::new(),
            expires_at: now,
            paid_at: None,
            refunded_minor: 0,
            delivery_hold_ms: 0,
            created_at: now,
            updated_at: now,
        };
        (order, attempt)
    }
}

/// Writes `order` as paid in the store through `attempt`, in `tx`. Returns the order as paid.
pub async fn open_paid_in(
    tx: &mut Tx,
    order: &Order,
    attempt: &Attempt,
    transaction_id: &str,
    channel_status: &str,
) -> Result<(Order, Attempt), OrderError> {
    super::create::insert_new(tx, order).await?;
    crate::catalog::count_purchase(tx, &order.player_id, &order.game, &order.sku, i64::MAX).await?;
    pay_in(tx, order, attempt, transaction_id, channel_status).await
}

/// The store order `order_no` the game server created beforehand, locked in `tx`, if it still
/// waits for its proof: pending, without an attempt.
pub async fn lock_waiting_store_order(
    tx: &mut Tx,
    backend: Backend,
    order_no: &OrderNo,
) -> Result<Option<Order>, OrderError> {
    let Some(order) = store::lock_order(tx, backend, order_no).await? else {
        return Ok(None);
    };
    if order.status != OrderStatus::Pending
        || !store::attempts(&mut *tx, order_no).await?.is_empty()
    {
        return Ok(None);
    }
    Ok(Some(order))
}

/// Pays `order` (created beforehand, its stock and purchase limit already held, locked by
/// [`lock_waiting_store_order`]) with the store's transaction, in `tx`.
pub async fn settle_waiting_in(
    tx: &mut Tx,
    order: &Order,
    channel: &str,
    transaction_id: &str,
    channel_status: &str,
) -> Result<(Order, Attempt), OrderError> {
    let attempt = store_attempt(&order.order_no, channel);
    pay_in(tx, order, &attempt, transaction_id, channel_status).await
}

/// The one attempt of an order paid in `channel`'s store, as created.
fn store_attempt(order_no: &OrderNo, channel: &str) -> Attempt {
    let now = now_ms();
    Attempt {
        attempt_no: 1,
        payment_ref: payment_ref(order_no, 1),
        channel: channel.to_owned(),
        method: channel.to_owned(),
        flow: Flow::Store,
        status: AttemptStatus::Created,
        channel_txn_id: None,
        channel_status: String::new(),
        next_action: None,
        failure: None,
        created_at: now,
        updated_at: now,
    }
}

/// The writes of every paid order, for one paid in the store: its attempt (the store's
/// transaction id), the pending → paid transition, the ledger's posting and `order.paid`.
async fn pay_in(
    tx: &mut Tx,
    order: &Order,
    attempt: &Attempt,
    transaction_id: &str,
    channel_status: &str,
) -> Result<(Order, Attempt), OrderError> {
    store::insert_attempt(tx, &order.order_no, attempt).await?;
    let now = now_ms();
    let mut paid_attempt = attempt.clone();
    paid_attempt.status = AttemptStatus::Paid;
    paid_attempt.channel_txn_id = Some(transaction_id.to_owned());
    paid_attempt.channel_status = channel_status.to_owned();
    paid_attempt.updated_at = now;
    store::update_created_attempt(tx, &order.order_no, &paid_attempt).await?;
    let reason = format!(
        "paid in the {} store, transaction {transaction_id}",
        attempt.channel
    );
    if !store::pay_pending_order(tx, &order.order_no, now, &reason).await? {
        return Err(OrderError::Invariant(format!(
            "store order {} was not pending right after it was written",
            order.order_no
        )));
    }
    super::books::post_payment(tx, order, &paid_attempt).await?;
    let mut paid = order.clone();
    paid.status = OrderStatus::Paid;
    paid.paid_at = Some(now);
    paid.updated_at = now;
    crate::fulfillment::enqueue(tx, crate::fulfillment::EventKind::OrderPaid, &paid).await?;
    Ok((paid, paid_attempt))
}
