//! CaresPay's wire format and its mapping to the contract.

use coffer_plugin_sdk::{self as sdk, *};
use serde::Deserialize;

use crate::signing::{md5_pairs_with_key, md5_with_key, same};

/// ISO 4217 code → CaresPay's numeric currency code.
pub const CURRENCIES: &[(&str, &str)] = &[
    ("USD", "1"),
    ("EUR", "2"),
    ("CNY", "3"),
    ("GBP", "4"),
    ("HKD", "5"),
    ("JPY", "6"),
    ("AUD", "7"),
];

pub fn numeric_currency(iso: &str) -> Option<&'static str> {
    CURRENCIES.iter().find(|(i, _)| *i == iso).map(|(_, n)| *n)
}

fn iso_currency(numeric: &str) -> Option<&'static str> {
    CURRENCIES
        .iter()
        .find(|(_, n)| *n == numeric)
        .map(|(i, _)| *i)
}

/// CaresPay writes every amount with two decimals, even yen ("500.00").
fn two_decimals(money: &Money) -> Result<String, ChannelError> {
    let cents = match amount::exponent(&money.currency)? {
        2 => money.minor,
        0 => money
            .minor
            .checked_mul(100)
            .ok_or_else(|| malformed("amount too large"))?,
        _ => {
            return Err(unsupported(format!(
                "{} has no 2-decimal form",
                money.currency
            )));
        }
    };
    Ok(cents_text(cents))
}

/// Reads a two-decimal amount in the currency's own precision ("500.00" JPY is 500 yen;
/// "500.50" JPY is refused).
fn from_two_decimals(text: &str, iso: &str) -> Result<Money, ChannelError> {
    let cents = amount::parse_fixed(text, 2)?;
    let minor = match amount::exponent(iso)? {
        2 => cents,
        0 if cents % 100 == 0 => cents / 100,
        _ => return Err(malformed(format!("{text} is not a whole amount of {iso}"))),
    };
    Ok(Money {
        minor,
        currency: iso.to_owned(),
    })
}

/// Cents → "12.34".
fn cents_text(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

fn gateway(path: &str) -> Result<String, ChannelError> {
    Ok(format!("{}{path}", sdk::endpoint("gateway")?))
}

pub fn pay_request(request: &PaymentRequest) -> Result<HttpRequest, ChannelError> {
    if request.flow != CheckoutFlow::DirectCard {
        return Err(unsupported(
            "CaresPay takes cards directly only (flow direct-card)",
        ));
    }
    let card = request
        .card
        .as_ref()
        .ok_or_else(|| malformed("a card payment needs the card"))?;
    let mer_no = sdk::setting("merchant-no")?;
    let trade_url = sdk::setting("trade-url")?;
    let currency = numeric_currency(&request.amount.currency).ok_or_else(|| {
        unsupported(format!(
            "CaresPay does not take {}",
            request.amount.currency
        ))
    })?;
    let amount = two_decimals(&request.amount)?;
    let md5_info = md5_with_key(&format!(
        "{mer_no}{}{currency}{amount}{}",
        request.order_no, request.return_url
    ))?;
    let c = &request.customer;
    let empty = Address {
        country: String::new(),
        state: String::new(),
        city: String::new(),
        line1: String::new(),
        line2: String::new(),
        postal_code: String::new(),
    };
    let billing = c.billing.as_ref().unwrap_or(&empty);
    let shipping = c.shipping.as_ref().unwrap_or(billing);
    let street = |a: &Address| {
        if a.line2.is_empty() {
            a.line1.clone()
        } else {
            format!("{} {}", a.line1, a.line2)
        }
    };
    let (month, year) = (
        format!("{:02}", card.expiry_month),
        card.expiry_year.to_string(),
    );
    let product_info = if request.description.is_empty() {
        request.subject.clone()
    } else {
        format!("{} - {}", request.subject, request.description)
    };
    let (billing_street, shipping_street) = (street(billing), street(shipping));
    let fields: Vec<(&str, &str)> = vec![
        ("merNo", &mer_no),
        ("billNo", &request.order_no),
        ("amount", &amount),
        ("currency", currency),
        ("language", &request.language),
        ("returnURL", &request.return_url),
        // The old client's field name for the notification address.
        ("noticeUrl", &request.notify_url),
        ("tradeUrl", &trade_url),
        ("firstName", &c.first_name),
        ("lastName", &c.last_name),
        ("email", &c.email),
        ("phone", &c.phone),
        ("country", &billing.country),
        ("state", &billing.state),
        ("city", &billing.city),
        ("address", &billing_street),
        ("zipCode", &billing.postal_code),
        ("shippingFirstName", &c.first_name),
        ("shippingLastName", &c.last_name),
        ("shippingEmail", &c.email),
        ("shippingPhone", &c.phone),
        ("shippingCountry", &shipping.country),
        ("shippingState", &shipping.state),
        ("shippingCity", &shipping.city),
        ("shippingAddress", &shipping_street),
        ("shippingZipCode", &shipping.postal_code),
        ("cardNum", &card.number),
        ("month", &month),
        ("year", &year),
        ("cvv2", &card.cvc),
        ("productInfo", &product_info),
        ("ip", &c.ip),
        ("md5Info", &md5_info),
    ];
    Ok(http::post_form(
        gateway("/carespay/pay")?,
        form::encode(fields),
    ))
}

/// An answer or a notification about one payment.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    pub code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    mer_no: String,
    #[serde(default)]
    pub bill_no: String,
    #[serde(default)]
    order_no: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    trade_status: String,
    #[serde(default)]
    md5_info: String,
    #[serde(rename = "auth3DUrl")]
    pub auth_3d_url: Option<String>,
}

impl Answer {
    /// Reads the gateway's JSON answer to a request Coffer sent (pay, query). Payment codes (P*,
    /// Q*) carry the payment; anything else means the gateway refused the request itself, and
    /// the outcome must be found by a query.
    ///
    /// The answer comes over the connection Coffer opened to the configured endpoint (TLS in
    /// production), so it is taken as it is when unsigned: whether the gateway signs its
    /// answers, and with which fields, is inferred (see the crate's doc). A signature that is
    /// there must verify, and a merchant number that is there must be ours.
    pub fn read(response: &HttpResponse) -> Result<Self, ChannelError> {
        if response.status >= 500 {
            return Err(ChannelError::Upstream(format!("HTTP {}", response.status)));
        }
        let answer: Answer = serde_json::from_slice(&response.body)?;
        if !answer.code.starts_with('P') && !answer.code.starts_with('Q') {
            return Err(ChannelError::Upstream(format!(
                "{}: {}",
                answer.code, answer.message
            )));
        }
        if !answer.md5_info.is_empty() || !answer.mer_no.is_empty() {
            answer.verify()?;
        }
        Ok(answer)
    }

    /// Reads a notification: a form POST with the same fields, signed the same way. It
    /// arrives unauthenticated, so its signature and merchant number are required.
    pub fn from_notification(request: &InboundRequest) -> Result<Self, ChannelError> {
        let pairs = form::decode(&request.body);
        let get = |name| form::get(&pairs, name).unwrap_or_default().to_owned();
        let answer = Answer {
            code: get("code"),
            message: get("message"),
            mer_no: get("merNo"),
            bill_no: get("billNo"),
            order_no: get("orderNo"),
            amount: get("amount"),
            currency: get("currency"),
            trade_status: get("tradeStatus"),
            md5_info: get("md5Info"),
            auth_3d_url: None,
        };
        if answer.md5_info.is_empty() {
            return Err(bad_signature("notification without md5Info"));
        }
        answer.verify()?;
        Ok(answer)
    }

    /// Checks `md5Info` (with our merchant number when the answer leaves it out).
    fn verify(&self) -> Result<(), ChannelError> {
        let our_merchant = sdk::setting("merchant-no")?;
        if !self.mer_no.is_empty() && self.mer_no != our_merchant {
            return Err(bad_signature(format!(
                "merNo {:?} is not ours",
                self.mer_no
            )));
        }
        let expected = md5_with_key(&format!(
            "{}{}{}{}{}{}{}",
            our_merchant,
            self.bill_no,
            self.order_no,
            self.currency,
            self.amount,
            self.code,
            self.trade_status
        ))?;
        if same(&expected, &self.md5_info) {
            Ok(())
        } else {
            Err(bad_signature("md5Info does not match"))
        }
    }

    /// Refuses an answer about another bill or another amount than the one asked about. A
    /// field the answer leaves out is not held against it (it answers our own request).
    pub fn expect_order(&self, order_no: &str, amount: &Money) -> Result<(), ChannelError> {
        if !self.bill_no.is_empty() && self.bill_no != order_no {
            return Err(malformed(format!("answer is about bill {}", self.bill_no)));
        }
        if self.amount.is_empty() && self.currency.is_empty() {
            return Ok(());
        }
        let expected = (numeric_currency(&amount.currency), two_decimals(amount)?);
        if expected != (Some(self.currency.as_str()), self.amount.clone()) {
            return Err(malformed(format!(
                "answer is for {} (currency {}), the order for {}",
                self.amount, self.currency, expected.1
            )));
        }
        Ok(())
    }

    fn money(&self) -> Result<Money, ChannelError> {
        let iso = iso_currency(&self.currency)
            .ok_or_else(|| malformed(format!("unknown currency code {:?}", self.currency)))?;
        from_two_decimals(&self.amount, iso)
    }

    /// What a notification claims, for the host to confirm with a query.
    pub fn claim(&self) -> UnverifiedClaim {
        UnverifiedClaim {
            order_no: self.bill_no.clone(),
            claimed_status: match self.trade_status.as_str() {
                "S0001" => Some(PaymentStatus::Paid),
                "S0002" => Some(PaymentStatus::Failed),
                _ => None,
            },
        }
    }

    /// The update this answer makes; `asked` is the payment it answers about (its amount
    /// stands in when the answer does not repeat it; `expect_order` checked it when it does).
    pub fn into_update(self, asked: &Money) -> Result<PaymentUpdate, ChannelError> {
        let status = match (self.code.as_str(), self.trade_status.as_str()) {
            ("P0004", _) => PaymentStatus::RequiresAction,
            (_, "S0001") | (_, "S0004") => PaymentStatus::Paid,
            (_, "S0002") => PaymentStatus::Failed,
            (_, "S0003") => PaymentStatus::Pending,
            (_, "S0005") => PaymentStatus::Refunded,
            (_, "S0006") => PaymentStatus::PartiallyRefunded,
            (_, "S0007") => PaymentStatus::Chargeback,
            (code, status) => {
                return Err(malformed(format!(
                    "unknown code/tradeStatus {code}/{status}"
                )));
            }
        };
        let failure = (status == PaymentStatus::Failed).then(|| Failure {
            code: self.code.clone(),
            message: self.message.clone(),
        });
        let amount = if self.amount.is_empty() && self.currency.is_empty() {
            asked.clone()
        } else {
            self.money()?
        };
        Ok(PaymentUpdate {
            amount: Some(amount),
            order_no: self.bill_no,
            channel_txn_id: (!self.order_no.is_empty()).then_some(self.order_no),
            status,
            paid_at: None,
            failure,
            channel_status: self.trade_status,
        })
    }
}

/// The gateway's refusal of a pay request it did not start: an error code (E0001 signature,
/// E0002 merchant, E0003 missing field...) instead of a payment code. E0004 (duplicate bill) is
/// not one: a payment with this bill number exists, so the outcome is for a query to tell.
pub fn refused_before_starting(response: &HttpResponse) -> Option<Failure> {
    if response.status >= 500 {
        return None;
    }
    let answer: Answer = serde_json::from_slice(&response.body).ok()?;
    let refused = answer.code.starts_with('E') && answer.code != "E0004";
    refused.then_some(Failure {
        code: answer.code,
        message: answer.message,
    })
}

/// The browser back from 3-D Secure: unsigned, so only a claim to check with a query.
pub fn browser_return(request: &InboundRequest) -> CallbackVerdict {
    let pairs = form::decode(request.query.as_bytes());
    match form::get(&pairs, "billNo") {
        Some(bill_no) if !bill_no.is_empty() => CallbackVerdict::Unverified(UnverifiedClaim {
            order_no: bill_no.to_owned(),
            claimed_status: match form::get(&pairs, "code") {
                Some("P0001") => Some(PaymentStatus::Paid),
                Some("P0002") => Some(PaymentStatus::Failed),
                _ => None,
            },
        }),
        _ => CallbackVerdict::Rejected(malformed("return without billNo")),
    }
}

pub fn query_request(bill_no: &str) -> Result<HttpRequest, ChannelError> {
    let mer_no = sdk::setting("merchant-no")?;
    let signature = md5_pairs_with_key(&[("merNo", &mer_no), ("billNo", bill_no)])?;
    let body = form::encode([
        ("merNo", mer_no.as_str()),
        ("billNo", bill_no),
        ("signature", &signature),
    ]);
    Ok(http::post_form(gateway("/query/order")?, body))
}

pub fn read_query_answer(
    request: &QueryRequest,
    response: &HttpResponse,
) -> Result<PaymentUpdate, ChannelError> {
    if response.status < 500
        && let Ok(probe) = serde_json::from_slice::<Answer>(&response.body)
        && probe.code == "Q0002"
    {
        // The gateway never took this payment (e.g. the pay request was lost).
        return Ok(PaymentUpdate {
            order_no: request.order_no.clone(),
            channel_txn_id: None,
            status: PaymentStatus::Failed,
            amount: None,
            paid_at: None,
            failure: Some(Failure {
                code: probe.code,
                message: probe.message,
            }),
            channel_status: String::new(),
        });
    }
    let mut answer = Answer::read(response)?;
    answer.expect_order(&request.order_no, &request.amount)?;
    if answer.bill_no.is_empty() {
        answer.bill_no = request.order_no.clone();
    }
    answer.into_update(&request.amount)
}

pub fn refund_request(request: &RefundRequest) -> Result<HttpRequest, ChannelError> {
    let mer_no = sdk::setting("merchant-no")?;
    let order_no = request
        .channel_txn_id
        .as_deref()
        .ok_or_else(|| malformed("a CaresPay refund needs the gateway's orderNo"))?;
    let amount = two_decimals(&request.refund_amount)?;
    let signature = md5_pairs_with_key(&[
        ("amount", &amount),
        ("merNo", &mer_no),
        ("orderNo", order_no),
    ])?;
    let body = form::encode([
        ("merNo", mer_no.as_str()),
        ("orderNo", order_no),
        ("amount", &amount),
        ("refundNo", &request.refund_no),
        ("reason", &request.reason),
        ("signature", &signature),
    ]);
    Ok(http::post_form(gateway("/refund")?, body))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefundAnswer {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    refund_no: String,
    #[serde(default)]
    trade_status: String,
}

pub fn read_refund_answer(
    request: &RefundRequest,
    response: &HttpResponse,
) -> Result<RefundUpdate, ChannelError> {
    if response.status >= 500 {
        return Err(ChannelError::Upstream(format!("HTTP {}", response.status)));
    }
    let answer: RefundAnswer = serde_json::from_slice(&response.body)?;
    let status = match (answer.code.as_str(), answer.trade_status.as_str()) {
        ("R0001", "S0004") => RefundStatus::Pending,
        ("R0001", _) => RefundStatus::Succeeded,
        ("R0002", _) => RefundStatus::Failed,
        (code, _) => {
            return Err(ChannelError::Upstream(format!(
                "{code}: {}",
                answer.message
            )));
        }
    };
    if !answer.refund_no.is_empty() && answer.refund_no != request.refund_no {
        return Err(malformed(format!(
            "answer is about refund {}",
            answer.refund_no
        )));
    }
    Ok(RefundUpdate {
        refund_no: request.refund_no.clone(),
        order_no: request.order_no.clone(),
        channel_refund_id: None,
        status,
        amount: request.refund_amount.clone(),
        failure: (status == RefundStatus::Failed).then(|| Failure {
            code: answer.code.clone(),
            message: answer.message.clone(),
        }),
        channel_status: answer.trade_status,
    })
}

pub fn batch_list_request(day: &str) -> Result<HttpRequest, ChannelError> {
    time::require_day(day)?;
    let mer_no = sdk::setting("merchant-no")?;
    let signature = md5_pairs_with_key(&[("merNo", &mer_no), ("date", day)])?;
    let body = form::encode([
        ("merNo", mer_no.as_str()),
        ("date", day),
        ("signature", &signature),
    ]);
    Ok(http::post_form(gateway("/query/batchlist")?, body))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchList {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    list: Vec<BatchRow>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BatchRow {
    trade_type: String,
    bill_no: String,
    order_no: String,
    amount: String,
    currency: String,
    #[serde(default)]
    fee: String,
    trade_time: String,
    #[serde(default)]
    trade_status: String,
}

pub fn check_batch_list(response: &HttpResponse) -> Result<(), ChannelError> {
    if response.status >= 500 {
        return Err(ChannelError::Upstream(format!("HTTP {}", response.status)));
    }
    let list: BatchList = serde_json::from_slice(&response.body)?;
    if list.code != "B0001" {
        return Err(ChannelError::Upstream(format!(
            "{}: {}",
            list.code, list.message
        )));
    }
    Ok(())
}

pub fn read_batch_list(document: &[u8]) -> Result<Vec<StatementLine>, ChannelError> {
    let list: BatchList = serde_json::from_slice(document)?;
    list.list
        .into_iter()
        .map(|row| {
            let iso = iso_currency(&row.currency)
                .ok_or_else(|| malformed(format!("unknown currency code {:?}", row.currency)))?;
            let gross = from_two_decimals(&row.amount, iso)?;
            let (kind, sign) = match row.trade_type.as_str() {
                "SALE" => (StatementEntryKind::Payment, 1),
                "REFUND" => (StatementEntryKind::Refund, -1),
                "CHARGEBACK" => (StatementEntryKind::Chargeback, -1),
                other => return Err(malformed(format!("unknown tradeType {other:?}"))),
            };
            Ok(StatementLine {
                kind,
                order_no: Some(row.bill_no),
                // The batch list names no refund of ours: refunds match by payment and amount.
                refund_no: None,
                channel_txn_id: row.order_no,
                amount: Money {
                    minor: sign * gross.minor,
                    currency: gross.currency,
                },
                fee: if row.fee.is_empty() {
                    None
                } else {
                    Some(from_two_decimals(&row.fee, iso)?)
                },
                occurred_at: time::parse_datetime(&row.trade_time, 0)
                    .ok_or_else(|| malformed(format!("bad tradeTime {:?}", row.trade_time)))?,
                channel_status: row.trade_status,
            })
        })
        .collect()
}
