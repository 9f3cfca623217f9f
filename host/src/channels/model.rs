//! What Coffer and its channels tell each other, in Coffer's own types. The order center
//! speaks only these; `contract.rs` turns them into the plugin contract's records and back.
//!
//! What a plugin reports is untrusted text and numbers from outside: reasons and channel status
//! words are kept as given here, and cleaned by whoever stores or shows them.

use coffer_money::{Currency, Money};
use coffer_plugin_runtime::contract::HttpRequest;
use serde::{Deserialize, Serialize};

/// How the player pays, as the game asked for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flow {
    DirectCard,
    Redirect,
    QrCode,
    /// Paid in an app store and sent to Coffer as a proof (`POST /v1/store-purchases`): an
    /// order created with it holds its stock and purchase limit and waits for the proof; it is
    /// never started through a channel's `create-payment`.
    Store,
}

impl Flow {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DirectCard => "direct_card",
            Self::Redirect => "redirect",
            Self::QrCode => "qr_code",
            Self::Store => "store",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::DirectCard, Self::Redirect, Self::QrCode, Self::Store]
            .into_iter()
            .find(|f| f.as_str() == text)
    }
}

/// What the player has to do next, as the game server receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NextAction {
    /// Nothing: the payment reached a final state.
    None,
    /// Send the player's browser here.
    Redirect { url: String },
    /// Have the player's browser post this form (3-D Secure, some cashiers).
    PostForm {
        url: String,
        fields: Vec<(String, String)>,
    },
    /// Show this as a QR code for a wallet app.
    QrCode { content: String },
    /// Nothing for the player to do; the outcome comes by notification.
    Wait,
}

/// A postal address; empty strings for unknown parts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// ISO 3166-1 alpha-2.
    pub country: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    pub line1: String,
    #[serde(default)]
    pub line2: String,
    #[serde(default)]
    pub postal_code: String,
}

/// What the channel may know about the paying player.
#[derive(Debug, Clone, Default)]
pub struct Payer {
    /// Coffer's player id.
    pub id: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub phone: String,
    /// As the game server saw it.
    pub ip: String,
    pub billing: Option<Address>,
    pub shipping: Option<Address>,
}

/// One payment attempt to start at a channel. The card of a direct-card payment travels
/// beside it, sealed (`coffer_plugin_runtime::SecretCard`).
#[derive(Debug, Clone)]
pub struct PaymentAsk {
    /// What the channel knows the payment by (the attempt's merchant order id).
    pub payment_ref: String,
    pub amount: Money,
    pub method: String,
    pub flow: Flow,
    pub subject: String,
    pub payer: Payer,
    /// BCP 47.
    pub language: String,
    pub return_url: String,
    pub notify_url: String,
    /// Unix seconds after which the payment must not complete.
    pub expires_at_s: i64,
    /// Unix seconds when the attempt was created: every call about it names the same.
    pub started_at_s: i64,
}

/// One refund to ask a channel for.
#[derive(Debug, Clone)]
pub struct RefundAsk {
    pub refund_no: String,
    pub payment_ref: String,
    pub channel_txn_id: Option<String>,
    /// What the payment was.
    pub paid: Money,
    /// What to give back now.
    pub amount: Money,
    pub reason: String,
    pub notify_url: String,
}

/// A reason the channel gave, as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub code: String,
    pub message: String,
}

/// An amount the channel reports: money Coffer knows, or a currency it does not (which can
/// match no order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charged {
    Money(Money),
    UnknownCurrency { minor: i64, currency: String },
}

impl Charged {
    pub fn new(minor: i64, currency: &str) -> Self {
        match Currency::parse(currency) {
            Ok(currency) => Self::Money(Money::new(minor, currency)),
            Err(_) => Self::UnknownCurrency {
                minor,
                currency: currency.to_owned(),
            },
        }
    }

    /// Whether this is exactly `expected`: the same amount in the same currency.
    pub fn is(&self, expected: Money) -> bool {
        matches!(self, Self::Money(money) if *money == expected)
    }

    pub fn minor(&self) -> i64 {
        match self {
            Self::Money(money) => money.minor(),
            Self::UnknownCurrency { minor, .. } => *minor,
        }
    }
}

impl std::fmt::Display for Charged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Money(money) => write!(f, "{money}"),
            Self::UnknownCurrency { minor, currency } => {
                write!(f, "{minor} minor units of {currency:?}")
            }
        }
    }
}

/// Where a payment stands at the channel, as it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentState {
    /// Created, waiting for the player or the channel.
    Pending,
    /// The player must act (3-D Secure, scan, cashier page).
    RequiresAction,
    Paid,
    Failed,
    /// Closed or expired without payment.
    Closed,
    Refunded,
    PartiallyRefunded,
    /// The cardholder disputed the payment.
    Chargeback,
}

/// A channel's view of one payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentReport {
    /// What the channel knows the payment by (an attempt's merchant order id).
    pub payment_ref: String,
    pub channel_txn_id: Option<String>,
    pub state: PaymentState,
    /// What the channel says it charged.
    pub charged: Option<Charged>,
    pub reason: Option<Reason>,
    /// The channel's own status word, for operators.
    pub channel_status: String,
}

/// Where a refund stands at the channel: `Pending` settles later, `Failed` gave nothing back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundState {
    Pending,
    Succeeded,
    Failed,
}

/// A channel's view of one refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundReport {
    /// Coffer's refund number, or the channel's own for a refund made at the channel.
    pub refund_no: String,
    /// The payment it refunds (an attempt's merchant order id).
    pub payment_ref: String,
    pub channel_refund_id: Option<String>,
    pub state: RefundState,
    /// What this refund gives back.
    pub amount: Charged,
    pub reason: Option<Reason>,
    pub channel_status: String,
}

/// What a channel's notification (or a player's browser return) amounts to, once its plugin
/// read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Signed news about a payment.
    Payment(PaymentReport),
    /// Signed news about a refund.
    Refund(RefundReport),
    /// Unsigned: only a reason to ask the channel about this payment with a signed query.
    Claim { payment_ref: String },
    /// Signed news from an app store about one of its purchases.
    Store(super::store::StoreEvent),
    /// Unsigned news about a store purchase: only a reason to look it up at the store.
    StoreClaim(super::store::StoreProof),
    /// Forged, tampered, stale or malformed: nothing changes.
    Rejected { why: String },
}

/// What a plugin made of a payment to start.
#[derive(Debug, Clone)]
pub enum Start {
    /// Send this signed request to the channel, then have the plugin read the answer.
    Send(HttpRequest),
    /// Nothing to send: the player acts on this (a signed cashier URL, a QR code).
    Act(NextAction),
}

/// An answer to send back to a channel about its notification, as its plugin wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What a statement line records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    Payment,
    Refund,
    Chargeback,
    Fee,
    Adjustment,
}

impl StatementKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Payment => "payment",
            Self::Refund => "refund",
            Self::Chargeback => "chargeback",
            Self::Fee => "fee",
            Self::Adjustment => "adjustment",
        }
    }
}

/// One line of a channel's statement, as its plugin read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementEntry {
    pub kind: StatementKind,
    /// What the channel knows the payment by (Coffer's payment reference), when it echoes it.
    pub order_no: Option<String>,
    /// On a refund line, Coffer's refund number, when the channel echoes it (contract 0.2.0).
    pub refund_no: Option<String>,
    pub channel_txn_id: String,
    /// Minor units, negative for money leaving the merchant.
    pub minor: i64,
    /// As the statement writes it: possibly not the order's, or not one Coffer knows.
    pub currency: String,
    /// Charged on this line (negative: given back), in the line's currency.
    pub fee: Option<i64>,
    pub occurred_at_s: i64,
    pub channel_status: String,
}

impl StatementEntry {
    pub fn kind_name(&self) -> &'static str {
        self.kind.as_str()
    }
}
