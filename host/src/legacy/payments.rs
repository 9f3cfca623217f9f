//! Legacy payments: `/api/pay` as an order in Coffer's order center, bill status confirmed by
//! the channel's signed query, payment records accepted only for orders Coffer saw paid, and
//! the payment listings read from Coffer's own orders.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use coffer_money::{Currency, Money};
use sqlx::Row;

use super::{GUEST_USERNAME, Legacy, LegacyError};
use crate::orders::{
    AttemptStatus, CardInput, CreateOrder, CustomerInput, Flow, OrderStatus, OrderView,
    PaymentChoice,
};
use crate::players::Player;
use crate::store::{Tx, now_ms};

/// `/api/pay`'s form fields, as the old client sends them (names and all).
pub type PayForm = BTreeMap<String, String>;

/// Which number a bill number is tried as first (see [`Legacy::find_bill`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillKey {
    /// The client's `billNo`.
    Client,
    /// The payment reference Coffer gave the channel.
    Channel,
}

/// A bill as `GET /api/payment/status/:billNo` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BillState {
    Pending,
    Paid,
    Failed,
}

impl BillState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Paid => "PAID",
            Self::Failed => "FAILED",
        }
    }

    /// What the old client should make of an order: paid once the money is in (whatever
    /// happened after), failed when the order cannot be paid any more or its last attempt
    /// was declined.
    pub fn of(view: &OrderView) -> Self {
        if view.paid_at.is_some() {
            return Self::Paid;
        }
        match view.status {
            OrderStatus::Failed | OrderStatus::Closed => Self::Failed,
            _ if view
                .payment
                .as_ref()
                .is_some_and(|a| a.status == AttemptStatus::Failed) =>
            {
                Self::Failed
            }
            _ => Self::Pending,
        }
    }
}

#[derive(Debug, Clone)]
pub struct BillStatus {
    pub bill_no: String,
    pub state: BillState,
    pub updated_at: i64,
}

/// `POST /api/payments/record`, checked field by field.
#[derive(Debug, Clone)]
pub struct RecordUpload {
    pub user_id: String,
    pub amount: String,
    pub order_no: String,
    pub product_id: Option<String>,
    pub product_info: Option<String>,
    /// JSON text.
    pub product_details: Option<String>,
}

/// Who uploads a payment record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorder {
    /// A player with a session: records their own bills only.
    Player(String),
    /// The unchanged old client, which pays and records without a session: may claim an
    /// anonymous bill for the player it names, once, within `legacy.claim_window_s` of the
    /// payment and from the address that paid it. Nothing else.
    Anonymous(IpAddr),
    /// The game server or an operator: may also say, at any time, whose an anonymous bill was.
    Trusted,
}

/// A row of `/api/payments/...`: the old table's columns.
#[derive(Debug, Clone)]
pub struct PaymentRow {
    /// The record's id; `None` for a paid order the client never recorded.
    pub id: Option<i64>,
    pub user_id: String,
    pub user_name: String,
    /// A decimal with the currency's digits, as MariaDB printed DECIMAL(10,2).
    pub amount: String,
    pub order_no: String,
    pub pay_time: i64,
    pub created_at: i64,
    pub product_id: Option<String>,
    pub product_info: Option<String>,
    pub product_details: Option<String>,
}

/// Most rows one listing returns (the old routes had no paging).
pub const MAX_ROWS: i64 = 1000;

/// A payment record to write, as the write job sees it.
struct Record {
    bill_no: String,
    order_no: String,
    user_id: String,
    user_name: String,
    amount: String,
    pay_time: i64,
    product_id: Option<String>,
    product_info: Option<String>,
    product_details: Option<String>,
}

/// Writes the record unless the bill has one; returns whose the bill's record is.
async fn record_in(tx: &mut Tx, record: &Record) -> Result<Option<String>, sqlx::Error> {
    sqlx::query(
        "INSERT INTO legacy_payment_records (bill_no, coffer_order_no, user_id, user_name, \
         amount, pay_time, product_id, product_info, product_details, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
    )
    .bind(record.bill_no.clone())
    .bind(record.order_no.clone())
    .bind(record.user_id.clone())
    .bind(record.user_name.clone())
    .bind(record.amount.clone())
    .bind(record.pay_time)
    .bind(record.product_id.clone())
    .bind(record.product_info.clone())
    .bind(record.product_details.clone())
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    sqlx::query_scalar("SELECT user_id FROM legacy_payment_records WHERE coffer_order_no = $1")
        .bind(record.order_no.clone())
        .fetch_optional(&mut *tx)
        .await
}

fn field<'f>(form: &'f PayForm, name: &str) -> &'f str {
    form.get(name).map_or("", |v| v.trim())
}

fn required<'f>(form: &'f PayForm, name: &str) -> Result<&'f str, LegacyError> {
    match field(form, name) {
        "" => Err(LegacyError::Invalid(format!("缺少必要参数: {name}"))),
        value => Ok(value),
    }
}

/// The old client percent-encodes `productInfo` before the form encoding does it again.
pub fn decode_product_info(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap() * 16 + hex(l).unwrap()) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

fn card(form: &PayForm) -> Result<CardInput, LegacyError> {
    let invalid = |what: &str| LegacyError::Invalid(format!("{what}无效"));
    let month: u8 = required(form, "month")?
        .parse()
        .map_err(|_| invalid("month"))?;
    let year: u16 = required(form, "year")?
        .parse()
        .map_err(|_| invalid("year"))?;
    // Two-digit years ("27") are this century's.
    let year = if year < 100 { 2000 + year } else { year };
    let holder = format!("{} {}", field(form, "firstName"), field(form, "lastName"));
    Ok(CardInput {
        number: required(form, "cardNum")?.replace([' ', '-'], ""),
        expiry_month: month,
        expiry_year: year,
        cvc: required(form, "cvv2")?.to_owned(),
        holder_name: holder.trim().to_owned(),
    })
}

fn customer(form: &PayForm) -> CustomerInput {
    // The form's field names: country, state, city, street, postal code.
    let address = |[country, state, city, street, postal_code]: [&str; 5]| {
        let f = |name: &str| field(form, name).to_owned();
        // Coffer takes ISO 3166-1 alpha-2 countries ("us" is "US"); an address without one
        // is left out rather than refusing the payment, as the old proxy forwarded anything.
        let country = crate::games::Region::parse(&f(country)).ok()?;
        Some(crate::channels::Address {
            country: country.as_str().to_owned(),
            state: f(state),
            city: f(city),
            line1: f(street),
            line2: String::new(),
            postal_code: f(postal_code),
        })
    };
    CustomerInput {
        email: field(form, "email").to_owned(),
        first_name: field(form, "firstName").to_owned(),
        last_name: field(form, "lastName").to_owned(),
        phone: field(form, "phone").to_owned(),
        billing: address(["country", "state", "city", "address", "zipCode"]),
        shipping: address([
            "shippingCountry",
            "shippingState",
            "shippingCity",
            "shippingAddress",
            "shippingZipCode",
        ]),
    }
}

impl Legacy {
    /// Starts a card payment for the old client's form: the client's `md5Info`, `md5_key`,
    /// `merNo`, URLs and currency are ignored; Coffer prices the order, signs with the sealed
    /// key through the channel plugin, and passes the card to the channel only.
    /// `client_ip` is the player's address as the connection shows it, never the form's `ip`
    /// (the old client reported its own, and the channel's risk checks rely on it).
    pub async fn pay(
        &self,
        form: &PayForm,
        player: Option<&Player>,
        client_ip: IpAddr,
    ) -> Result<OrderView, LegacyError> {
        let bill_no = required(form, "billNo")?.to_owned();
        // Bills paid in the old system (imported records) are not paid again.
        let recorded: Option<i64> =
            sqlx::query_scalar("SELECT id FROM legacy_payment_records WHERE bill_no = $1")
                .bind(bill_no.clone())
                .fetch_optional(self.store.pool())
                .await?;
        if recorded.is_some() {
            return Err(LegacyError::DuplicateBill(bill_no));
        }
        let currency = self.currency;
        let amount = Money::from_decimal(required(form, "amount")?, currency)
            .ok()
            .filter(|m| m.minor() > 0)
            .ok_or_else(|| LegacyError::Invalid("amount无效".into()))?;
        let card = card(form)?;
        let product = decode_product_info(field(form, "productInfo"));
        let game = self
            .games
            .game(&self.game)
            .await
            .ok()
            .filter(|g| g.enabled)
            .ok_or(LegacyError::GameUnavailable)?;
        // A mapped product is sold at its SKU's price, which the client's amount must equal
        // (checked where the order is priced); any other at the client's amount, within bounds.
        let (sku, fixed_amount, expected_price) = match self.config.products.get(&product) {
            Some(code) => (code.clone(), None, Some(amount)),
            None if !self.config.adhoc_sku.is_empty() => {
                let (min, max) = self.adhoc_bounds;
                if amount.minor() < min.minor() || amount.minor() > max.minor() {
                    return Err(LegacyError::Invalid(format!(
                        "金额须在 {} 到 {} 之间",
                        min.to_decimal(),
                        max.to_decimal()
                    )));
                }
                (self.config.adhoc_sku.clone(), Some(amount), None)
            }
            None => return Err(LegacyError::Invalid(format!("未知商品: {product}"))),
        };
        let player_id = match player {
            Some(player) => player.id.clone(),
            None => self.guest_player().await?,
        };
        let language = Some(field(form, "language"))
            .filter(|l| !l.is_empty() && l.len() <= 16)
            .map(str::to_owned);
        let request = CreateOrder {
            player_id,
            sku,
            region: None,
            currency: Some(currency.code().to_owned()),
            merchant_order_no: bill_no,
            payment: PaymentChoice {
                method: "card".into(),
                flow: Flow::DirectCard,
                channel: Some(self.config.channel.clone()),
                customer: customer(form),
                card: Some(card),
                language,
                return_url: Some(format!("{}/api/get3DResult", self.orders.public_url())),
            },
            client_ip: client_ip.to_string(),
            device: "legacy client".into(),
            fixed_amount,
            expected_price,
            // An anonymous bill's delivery waits for its player to claim it (record upload).
            delivery_hold_ms: match player {
                Some(_) => 0,
                None => (self.config.claim_window_s as i64) * 1000,
            },
        };
        Ok(self
            .orders
            .create(&self.game, &game.default_region, request)
            .await?)
    }

    /// The order a bill number names: the client's `billNo` (the order's merchant number) or
    /// the payment reference the channel was given. `BillKey` says which is tried first: the
    /// client's number for the client's calls, the channel's reference for the 3-D Secure
    /// return (which carries it), so that a client cannot name its bill after another
    /// player's payment reference and take over that player's return.
    pub async fn find_bill(
        &self,
        bill_no: &str,
        first: BillKey,
    ) -> Result<Option<OrderView>, LegacyError> {
        let by_client = async {
            self.orders
                .find_by_merchant_order_no(&self.game, bill_no)
                .await
        };
        let by_channel = async {
            let found = self
                .orders
                .attempt_by_ref(&self.config.channel, bill_no)
                .await?;
            match found {
                Some((order, _)) if order.game == self.game => {
                    self.orders.view(&order.order_no).await.map(Some)
                }
                _ => Ok(None),
            }
        };
        let found = match first {
            BillKey::Client => match by_client.await? {
                Some(view) => Some(view),
                None => by_channel.await?,
            },
            BillKey::Channel => match by_channel.await? {
                Some(view) => Some(view),
                None => by_client.await?,
            },
        };
        Ok(found)
    }

    /// The bill's state, after asking the channel (signed query, throttled) when its payment
    /// is still open. Never what the browser or the client claims.
    pub async fn bill_status(&self, bill_no: &str) -> Result<Option<BillStatus>, LegacyError> {
        let Some(view) = self.find_bill(bill_no, BillKey::Client).await? else {
            return Ok(None);
        };
        let view = self.confirm_open_payment(view, None).await?;
        Ok(Some(BillStatus {
            bill_no: bill_no.to_owned(),
            state: BillState::of(&view),
            updated_at: view.updated_at,
        }))
    }

    /// Asks the channel about the order's open payment. With `return_patience` (the
    /// player's browser back from 3-D Secure), asks now whatever the throttle says and waits
    /// that long for the payment to settle; without (a status poll), asks at most once per
    /// throttle interval.
    pub async fn confirm_open_payment(
        &self,
        view: OrderView,
        return_patience: Option<Duration>,
    ) -> Result<OrderView, LegacyError> {
        let Some(attempt) = view.payment.as_ref().filter(|_| view.awaiting_payment()) else {
            return Ok(view);
        };
        let (channel, payment_ref) = (&attempt.channel, &attempt.payment_ref);
        let confirmed = match return_patience {
            Some(patience) => self
                .orders
                .confirm_return(channel, payment_ref, patience)
                .await
                .map(Some),
            None => self
                .orders
                .confirm_claim(channel, payment_ref)
                .await
                .map(|_| None),
        };
        match confirmed {
            Ok(Some(fresh)) => Ok(fresh),
            Ok(None) => Ok(self.orders.view(&view.order_no).await?),
            Err(error) => {
                tracing::info!(order_no = %view.order_no, %error, "legacy bill not confirmed yet");
                Ok(self.orders.view(&view.order_no).await?)
            }
        }
    }

    /// Records the old client's payment upload, only for an order Coffer saw paid, for the
    /// player it belongs to and the amount it was paid: written by that player, the game
    /// server or an operator, never by anyone else, and never changing what Coffer knows
    /// (amount, time, player come from the order). Recording the same payment again is
    /// harmless. An anonymous bill is claimed by the upload that names its player (see
    /// [`Recorder`]): it becomes that player's order, and its delivery goes out naming them.
    pub async fn record_payment(
        &self,
        upload: RecordUpload,
        recorder: Recorder,
    ) -> Result<(), LegacyError> {
        let mut view = self
            .find_bill(&upload.order_no, BillKey::Client)
            .await?
            .ok_or_else(|| LegacyError::Refused("订单不存在，无法记录".into()))?;
        let Some(paid_at) = view.paid_at else {
            return Err(LegacyError::Refused("订单尚未支付，无法记录".into()));
        };
        let profile = self.profile(&upload.user_id).await?;
        let guest = super::accounts::player_by_pid(&self.store, &self.game, GUEST_USERNAME)
            .await?
            .filter(|g| *g == view.player_id);
        let claim = match (&guest, &recorder) {
            (_, Recorder::Player(player)) if *player != view.player_id => {
                return Err(LegacyError::Refused("订单不属于该玩家，无法记录".into()));
            }
            (None, _) if view.player_id != profile.player_id => {
                return Err(LegacyError::Refused("订单不属于该玩家，无法记录".into()));
            }
            (None, Recorder::Anonymous(_)) => {
                return Err(LegacyError::Refused(
                    "该订单由已登录玩家支付，只能由该玩家（携带登录令牌）记录".into(),
                ));
            }
            (Some(_), Recorder::Anonymous(address)) => {
                let order = self
                    .orders
                    .get(&view.order_no)
                    .await?
                    .ok_or_else(|| LegacyError::Refused("订单不存在，无法记录".into()))?;
                let window_ms = (self.config.claim_window_s as i64) * 1000;
                let same_address = order.client_ip == address.to_string();
                if !same_address || now_ms() > paid_at + window_ms {
                    return Err(LegacyError::Refused(
                        "匿名支付的订单只能在支付后不久、由支付时的设备记录；请联系客服".into(),
                    ));
                }
                true
            }
            (Some(_), _) => true,
            (None, _) => false,
        };
        if claim {
            let guest = guest.as_deref().expect("a claim is of a guest bill");
            if !self
                .orders
                .assign(&view.order_no, guest, &profile.player_id)
                .await?
            {
                return Err(LegacyError::Refused("该订单已由其他玩家记录".into()));
            }
            tracing::info!(order_no = %view.order_no, player = %profile.player_id, "anonymous legacy bill claimed");
            view.player_id = profile.player_id.clone();
        }
        let currency = Currency::parse(&view.amount.currency)
            .map_err(|e| LegacyError::Internal(e.to_string()))?;
        let amount = Money::from_decimal(&upload.amount, currency)
            .map_err(|_| LegacyError::Invalid("amount无效".into()))?;
        if amount.minor() != view.amount.amount_minor {
            return Err(LegacyError::Refused(format!(
                "金额与订单不符: 订单金额为 {}",
                view.amount.amount
            )));
        }
        let bounded = |value: Option<String>, max: usize, what: &str| match value {
            Some(v) if v.chars().count() > max => {
                Err(LegacyError::Invalid(format!("{what}最多{max}个字符")))
            }
            other => Ok(other),
        };
        let product_id = bounded(upload.product_id, 64, "product_id")?;
        let product_info = bounded(upload.product_info, 1000, "product_info")?;
        let product_details = bounded(upload.product_details, 8192, "product_details")?;
        let record = Record {
            bill_no: view.merchant_order_no.clone(),
            order_no: view.order_no.to_string(),
            user_id: profile.pid.clone(),
            user_name: profile.name.clone(),
            amount: view.amount.amount.clone(),
            pay_time: paid_at,
            product_id,
            product_info,
            product_details,
        };
        let stored = self
            .store
            .write(record, |tx, record| Box::pin(record_in(tx, record)))
            .await?;
        match stored {
            Some(user_id) if user_id == profile.pid => Ok(()),
            Some(_) => Err(LegacyError::Refused("该订单已由其他玩家记录".into())),
            None => Err(LegacyError::Refused("该订单号已有记录".into())),
        }
    }

    /// Payments, newest first: every paid order of the legacy game (with what the client
    /// recorded about it) and the imported records. `user` limits them to one player.
    pub async fn payments(&self, user: Option<&str>) -> Result<Vec<PaymentRow>, LegacyError> {
        let user = user.map(str::to_owned);
        let records = sqlx::query(
            "SELECT id, bill_no, user_id, user_name, amount, pay_time, created_at, product_id, \
             product_info, product_details FROM legacy_payment_records \
             WHERE ($1 IS NULL OR user_id = $1) ORDER BY pay_time DESC, id DESC LIMIT $2",
        )
        .bind(user.clone())
        .bind(MAX_ROWS)
        .fetch_all(self.store.pool())
        .await?;
        let mut rows = records
            .iter()
            .map(|r| {
                Ok(PaymentRow {
                    id: Some(r.try_get("id")?),
                    user_id: r.try_get("user_id")?,
                    user_name: r.try_get("user_name")?,
                    amount: r.try_get("amount")?,
                    order_no: r.try_get("bill_no")?,
                    pay_time: r.try_get("pay_time")?,
                    created_at: r.try_get("created_at")?,
                    product_id: r.try_get("product_id")?,
                    product_info: r.try_get("product_info")?,
                    product_details: r.try_get("product_details")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        let unrecorded = sqlx::query(
            "SELECT o.merchant_order_no, o.amount_minor, o.currency, o.sku_code, o.subject, \
             o.paid_at, o.created_at, p.username, p.display_name FROM paid_orders o \
             JOIN player_directory p ON p.id = o.player_id \
             WHERE o.game_id = $1 AND ($2 IS NULL OR p.username = $2) \
             AND NOT EXISTS (SELECT 1 FROM legacy_payment_records r \
                             WHERE r.coffer_order_no = o.order_no) \
             ORDER BY o.paid_at DESC LIMIT $3",
        )
        .bind(self.game.as_str().to_owned())
        .bind(user)
        .bind(MAX_ROWS)
        .fetch_all(self.store.pool())
        .await?;
        for r in &unrecorded {
            let currency = Currency::parse(&r.try_get::<String, _>("currency")?)
                .map_err(|e| LegacyError::Internal(e.to_string()))?;
            let username: String = r.try_get("username")?;
            let guest = username == GUEST_USERNAME;
            rows.push(PaymentRow {
                id: None,
                user_id: if guest { String::new() } else { username },
                user_name: if guest {
                    String::new()
                } else {
                    r.try_get("display_name")?
                },
                amount: Money::new(r.try_get("amount_minor")?, currency).to_decimal(),
                order_no: r.try_get("merchant_order_no")?,
                pay_time: r.try_get("paid_at")?,
                created_at: r.try_get("created_at")?,
                product_id: Some(r.try_get("sku_code")?),
                product_info: Some(r.try_get("subject")?),
                product_details: None,
            });
        }
        rows.sort_by_key(|r| std::cmp::Reverse((r.pay_time, r.id)));
        rows.truncate(MAX_ROWS as usize);
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_info_is_decoded_once_more() {
        assert_eq!(
            decode_product_info("%E9%92%BB%E7%9F%B3%E7%A4%BC%E5%8C%85-12%E9%92%BB%E7%9F%B3"),
            "钻石礼包-12钻石"
        );
        assert_eq!(decode_product_info("plain"), "plain");
        assert_eq!(decode_product_info("100%"), "100%");
        assert_eq!(decode_product_info("%ZZ"), "%ZZ");
    }

    #[test]
    fn card_fields_are_read_and_two_digit_years_widened() {
        let form: PayForm = [
            ("cardNum", "4111 1111 1111 1111"),
            ("month", "07"),
            ("year", "29"),
            ("cvv2", "123"),
            ("firstName", "Ada"),
            ("lastName", "Lovelace"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let card = card(&form).unwrap();
        assert_eq!(card.number, "4111111111111111");
        assert_eq!((card.expiry_month, card.expiry_year), (7, 2029));
        assert_eq!(card.holder_name, "Ada Lovelace");
        let mut missing = form.clone();
        missing.remove("cvv2");
        assert!(matches!(card_err(&missing), LegacyError::Invalid(m) if m.contains("cvv2")));
    }

    #[test]
    fn addresses_need_an_iso_country_or_are_left_out() {
        let form: PayForm = [
            ("country", "us"),
            ("city", "SF"),
            ("shippingCountry", "United States"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let customer = customer(&form);
        let billing = customer.billing.unwrap();
        assert_eq!(
            (billing.country.as_str(), billing.city.as_str()),
            ("US", "SF")
        );
        assert!(customer.shipping.is_none());
        assert!(super::customer(&PayForm::new()).billing.is_none());
    }

    fn card_err(form: &PayForm) -> LegacyError {
        card(form).unwrap_err()
    }
}
