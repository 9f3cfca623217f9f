//! What a game server sends to create an order or to start another payment attempt.

use coffer_plugin_runtime::SecretCard;
use serde::Deserialize;

use super::OrderError;
use crate::channels::{Address, Flow};
use crate::games::Region;

/// `POST /v1/orders`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    /// The player (of this game) who pays.
    pub player_id: String,
    /// The SKU's code.
    pub sku: String,
    /// Where the player is; the game's default region when absent.
    #[serde(default)]
    pub region: Option<Region>,
    /// Needed only when the region has prices in several currencies.
    #[serde(default)]
    pub currency: Option<String>,
    /// The game's own id for this purchase: unique per game, so a retried request can never
    /// make a second order.
    pub merchant_order_no: String,
    #[serde(flatten)]
    pub payment: PaymentChoice,
    /// The player's IP address as the game server saw it.
    pub client_ip: String,
    /// Free text about the player's device ("ios", "android 14"), for operators.
    #[serde(default)]
    pub device: String,
    /// An amount agreed outside the catalog (the legacy API's top-ups): never read from a
    /// request body, only set by Coffer's own callers.
    #[serde(skip)]
    pub fixed_amount: Option<coffer_money::Money>,
    /// The price the caller showed the player (the legacy client sends it): the order is
    /// refused when the catalog's price differs. Only set by Coffer's own callers.
    #[serde(skip)]
    pub expected_price: Option<coffer_money::Money>,
    /// How long `order.paid` waits before delivery (the legacy API's anonymous bills, until
    /// their player claims them): only set by Coffer's own callers.
    #[serde(skip)]
    pub delivery_hold_ms: i64,
}

/// How to pay: shared by order creation and `POST /v1/orders/{order_no}/payments`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentChoice {
    /// Payment method id: "card", "alipay", "wechat-pay"...
    pub method: String,
    pub flow: Flow,
    /// A channel id to use; the router picks one when absent.
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub customer: CustomerInput,
    /// Only for `direct_card`. Passed to the channel, never stored or logged.
    #[serde(default)]
    pub card: Option<CardInput>,
    /// BCP 47 tag for the channel's pages; "en" by default.
    #[serde(default)]
    pub language: Option<String>,
    /// Where the channel sends the player's browser back to, instead of
    /// `/v1/return/{channel}`: only set by Coffer's own callers (the legacy API).
    #[serde(skip)]
    pub return_url: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub last_name: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub billing: Option<Address>,
    #[serde(default)]
    pub shipping: Option<Address>,
}

/// Card details. Its `Debug` shows only the last four digits.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardInput {
    pub number: String,
    pub expiry_month: u8,
    pub expiry_year: u16,
    pub cvc: String,
    pub holder_name: String,
}

impl std::fmt::Debug for CardInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CardInput(**** {})", self.last4())
    }
}

impl CardInput {
    pub fn last4(&self) -> &str {
        let n = &self.number;
        n.get(n.len().saturating_sub(4)..).unwrap_or("")
    }

    fn validate(&self) -> Result<(), OrderError> {
        let digits = self.number.bytes().all(|b| b.is_ascii_digit());
        if !digits || !(12..=19).contains(&self.number.len()) {
            return Err(OrderError::Invalid(
                "card.number must be 12-19 digits".into(),
            ));
        }
        if !(1..=12).contains(&self.expiry_month) || !(2000..=2099).contains(&self.expiry_year) {
            return Err(OrderError::Invalid(
                "card expiry is not a valid month/year".into(),
            ));
        }
        if !(3..=4).contains(&self.cvc.len()) || !self.cvc.bytes().all(|b| b.is_ascii_digit()) {
            return Err(OrderError::Invalid("card.cvc must be 3 or 4 digits".into()));
        }
        if self.holder_name.trim().is_empty() || self.holder_name.len() > 100 {
            return Err(OrderError::Invalid(
                "card.holder_name must be 1-100 characters".into(),
            ));
        }
        Ok(())
    }

    /// The card as it travels to the channel: sealed, never printed.
    pub fn seal(&self) -> SecretCard {
        SecretCard::new(
            &self.number,
            self.expiry_month,
            self.expiry_year,
            &self.cvc,
            &self.holder_name,
        )
    }
}

fn short_text(name: &str, value: &str, max: usize) -> Result<(), OrderError> {
    if value.chars().count() > max || value.chars().any(char::is_control) {
        return Err(OrderError::Invalid(format!(
            "{name} must be at most {max} characters, no control characters"
        )));
    }
    Ok(())
}

impl PaymentChoice {
    pub fn validate(&self) -> Result<(), OrderError> {
        short_text("method", &self.method, 32)?;
        if self.method.is_empty() {
            return Err(OrderError::Invalid("method is required".into()));
        }
        if self.flow == Flow::Store && self.channel.is_none() {
            return Err(OrderError::Invalid(
                "flow store names the store channel (\"appstore\", \"googleplay\")".into(),
            ));
        }
        match (&self.card, self.flow) {
            (Some(card), Flow::DirectCard) => card.validate()?,
            (None, Flow::DirectCard) => {
                return Err(OrderError::Invalid("flow direct_card needs a card".into()));
            }
            (Some(_), _) => {
                return Err(OrderError::Invalid(
                    "a card is only sent with flow direct_card".into(),
                ));
            }
            (None, _) => {}
        }
        let c = &self.customer;
        for (name, value, max) in [
            ("customer.email", &c.email, 254),
            ("customer.first_name", &c.first_name, 100),
            ("customer.last_name", &c.last_name, 100),
            ("customer.phone", &c.phone, 32),
        ] {
            short_text(name, value, max)?;
        }
        for address in [&c.billing, &c.shipping].into_iter().flatten() {
            if Region::parse(&address.country).is_err() {
                return Err(OrderError::Invalid(
                    "address country must be an ISO 3166-1 alpha-2 code".into(),
                ));
            }
            for (name, value) in [
                ("state", &address.state),
                ("city", &address.city),
                ("line1", &address.line1),
                ("line2", &address.line2),
                ("postal_code", &address.postal_code),
            ] {
                short_text(name, value, 100)?;
            }
        }
        if let Some(language) = &self.language {
            let ok = (2..=16).contains(&language.len())
                && language
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ok {
                return Err(OrderError::Invalid("language must be a BCP 47 tag".into()));
            }
        }
        Ok(())
    }
}

impl CreateOrder {
    pub fn validate(&self) -> Result<(), OrderError> {
        let m = &self.merchant_order_no;
        let ok = (1..=64).contains(&m.len()) && m.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(OrderError::Invalid(
                "merchant_order_no must be 1-64 printable ASCII characters".into(),
            ));
        }
        if self.client_ip.parse::<std::net::IpAddr>().is_err() {
            return Err(OrderError::Invalid(
                "client_ip must be an IP address".into(),
            ));
        }
        short_text("device", &self.device, 64)?;
        if self.sku.is_empty() || self.sku.len() > 64 || self.player_id.len() > 64 {
            return Err(OrderError::Invalid("sku and player_id are required".into()));
        }
        self.payment.validate()
    }
}
