//! What an order and its payment attempts are, and how they are shown.

use coffer_money::{Currency, Money};
use serde::{Deserialize, Serialize};

use super::{AttemptStatus, OrderNo, OrderStatus};
use crate::catalog::{Grant, MoneyView};
pub use crate::channels::{Flow, NextAction};
use crate::games::{GameId, Region};

/// An order as stored.
#[derive(Debug, Clone)]
pub struct Order {
    pub order_no: OrderNo,
    pub game: GameId,
    pub player_id: String,
    pub merchant_order_no: String,
    pub sku: String,
    pub region: Region,
    pub amount: Money,
    pub subject: String,
    pub grants: Vec<Grant>,
    pub status: OrderStatus,
    /// Whether the order holds a unit of a limited SKU (to give back if it closes).
    pub holds_stock: bool,
    pub client_ip: String,
    pub device: String,
    pub expires_at: i64,
    pub paid_at: Option<i64>,
    pub refunded_minor: i64,
    /// How long `order.paid` waits after the payment before it is delivered (0: not at all).
    pub delivery_hold_ms: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A reason given by a channel, safe to show an operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub code: String,
    pub message: String,
}

/// Who a failure's code comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailedBy {
    /// Coffer: the request never reached the channel, or its answer could not be used.
    Coffer,
    /// The channel refused or declined.
    Channel,
}

impl Failure {
    pub fn failed_by(&self) -> FailedBy {
        if self.code.starts_with(super::payment::COFFER_CODE_PREFIX) {
            FailedBy::Coffer
        } else {
            FailedBy::Channel
        }
    }
}

/// One try at paying an order through a channel.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub attempt_no: i64,
    /// The merchant order id the channel knows this attempt by.
    pub payment_ref: String,
    pub channel: String,
    pub method: String,
    pub flow: Flow,
    pub status: AttemptStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel_txn_id: Option<String>,
    /// The channel's own status word, for operators.
    pub channel_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_action: Option<NextAction>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An order as the API shows it: the order and its latest payment attempt.
#[derive(Debug, Clone, Serialize)]
pub struct OrderView {
    pub order_no: OrderNo,
    pub game: GameId,
    pub player_id: String,
    pub merchant_order_no: String,
    pub sku: String,
    pub region: Region,
    pub amount: MoneyView,
    pub subject: String,
    pub grants: Vec<Grant>,
    pub status: OrderStatus,
    pub expires_at: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<i64>,
    pub refunded: MoneyView,
    pub created_at: i64,
    pub updated_at: i64,
    /// The latest payment attempt, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<Attempt>,
}

impl OrderView {
    /// Still waiting for money: pending, and its latest attempt not declined.
    pub fn awaiting_payment(&self) -> bool {
        self.status == OrderStatus::Pending
            && !self
                .payment
                .as_ref()
                .is_some_and(|a| a.status == AttemptStatus::Failed)
    }

    pub fn new(order: Order, payment: Option<Attempt>) -> Self {
        let currency: Currency = order.amount.currency();
        Self {
            order_no: order.order_no,
            game: order.game,
            player_id: order.player_id,
            merchant_order_no: order.merchant_order_no,
            sku: order.sku,
            region: order.region,
            amount: order.amount.into(),
            subject: order.subject,
            grants: order.grants,
            status: order.status,
            expires_at: order.expires_at,
            paid_at: order.paid_at,
            refunded: Money::new(order.refunded_minor, currency).into(),
            created_at: order.created_at,
            updated_at: order.updated_at,
            payment,
        }
    }
}
