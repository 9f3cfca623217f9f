//! TestPay's wire format and its mapping to the contract's types.

use coffer_plugin_sdk::*;
use serde::{Deserialize, Serialize};

use crate::signing;

#[derive(Serialize)]
pub struct PaymentBody<'a> {
    merchant_id: &'a str,
    order_no: &'a str,
    amount: String,
    currency: &'a str,
    subject: &'a str,
    notify_url: &'a str,
    return_url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    card: Option<CardBody<'a>>,
}

#[derive(Serialize)]
struct CardBody<'a> {
    number: &'a str,
    exp_month: u8,
    exp_year: u16,
    cvc: &'a str,
    holder: &'a str,
}

impl<'a> PaymentBody<'a> {
    pub fn new(request: &'a PaymentRequest, merchant_id: &'a str) -> Result<Self, ChannelError> {
        let card = match (&request.flow, &request.card) {
            (CheckoutFlow::DirectCard, Some(card)) => Some(CardBody {
                number: &card.number,
                exp_month: card.expiry_month,
                exp_year: card.expiry_year,
                cvc: &card.cvc,
                holder: &card.holder_name,
            }),
            (CheckoutFlow::DirectCard, None) => return Err(malformed("direct-card without card")),
            _ => None,
        };
        Ok(Self {
            merchant_id,
            order_no: &request.order_no,
            amount: amount::to_decimal(&request.amount)?,
            currency: &request.amount.currency,
            subject: &request.subject,
            notify_url: &request.notify_url,
            return_url: &request.return_url,
            card,
        })
    }
}

#[derive(Serialize)]
pub struct RefundBody<'a> {
    merchant_id: &'a str,
    refund_no: &'a str,
    order_no: &'a str,
    txn_id: Option<&'a str>,
    amount: String,
    currency: &'a str,
    reason: &'a str,
}

impl<'a> RefundBody<'a> {
    pub fn new(request: &'a RefundRequest, merchant_id: &'a str) -> Result<Self, ChannelError> {
        Ok(Self {
            merchant_id,
            refund_no: &request.refund_no,
            order_no: &request.order_no,
            txn_id: request.channel_txn_id.as_deref(),
            amount: amount::to_decimal(&request.refund_amount)?,
            currency: &request.refund_amount.currency,
            reason: &request.reason,
        })
    }
}

/// A payment as TestPay reports it, in answers and notifications.
#[derive(Deserialize)]
pub struct Payment {
    order_no: String,
    txn_id: Option<String>,
    pub status: String,
    amount: String,
    currency: String,
    pub redirect_url: Option<String>,
    paid_at: Option<i64>,
    failure_code: Option<String>,
    failure_message: Option<String>,
}

impl Payment {
    /// Maps to the contract, refusing an answer in a currency other than the order's.
    pub fn into_update(self, order_currency: &str) -> Result<PaymentUpdate, ChannelError> {
        if self.currency != order_currency {
            return Err(malformed(format!(
                "answer is in {}, the order in {order_currency}",
                self.currency
            )));
        }
        let status =
            status(&self.status).ok_or_else(|| malformed(format!("status {:?}", self.status)))?;
        Ok(PaymentUpdate {
            amount: Some(amount::from_decimal(&self.amount, &self.currency)?),
            order_no: self.order_no,
            channel_txn_id: self.txn_id,
            status,
            paid_at: self.paid_at,
            failure: self.failure_code.map(|code| Failure {
                code,
                message: self.failure_message.unwrap_or_default(),
            }),
            channel_status: self.status,
        })
    }
}

pub fn status(word: &str) -> Option<PaymentStatus> {
    Some(match word {
        "pending" => PaymentStatus::Pending,
        "requires_action" => PaymentStatus::RequiresAction,
        "paid" => PaymentStatus::Paid,
        "failed" => PaymentStatus::Failed,
        "closed" => PaymentStatus::Closed,
        "refunded" => PaymentStatus::Refunded,
        "partially_refunded" => PaymentStatus::PartiallyRefunded,
        _ => return None,
    })
}

/// A signed payment answer. A 5xx or unsigned error page means the outcome is unknown.
pub fn read_payment(status: u16, headers: &[Field], body: &[u8]) -> Result<Payment, ChannelError> {
    if status >= 500 {
        return Err(ChannelError::Upstream(format!("HTTP {status}")));
    }
    signing::verify_answer(headers, body)?;
    Ok(serde_json::from_slice(body)?)
}

/// A signed notification: a payment, or a refund when it has a `refund_no`.
pub fn read_notification(request: &InboundRequest) -> Result<CallbackEvent, ChannelError> {
    signing::verify_answer(&request.headers, &request.body)?;
    let value: serde_json::Value = serde_json::from_slice(&request.body)?;
    if value.get("refund_no").is_some() {
        let refund: Refund = serde_json::from_value(value)?;
        return Ok(CallbackEvent::Refund(refund.into_update()?));
    }
    let payment: Payment = serde_json::from_value(value)?;
    let currency = payment.currency.clone();
    Ok(CallbackEvent::Payment(payment.into_update(&currency)?))
}

#[derive(Deserialize)]
struct Refund {
    refund_no: String,
    order_no: String,
    refund_id: Option<String>,
    status: String,
    amount: String,
    currency: String,
    failure_code: Option<String>,
    failure_message: Option<String>,
}

impl Refund {
    fn into_update(self) -> Result<RefundUpdate, ChannelError> {
        let status = match self.status.as_str() {
            "pending" => RefundStatus::Pending,
            "succeeded" => RefundStatus::Succeeded,
            "failed" => RefundStatus::Failed,
            other => return Err(malformed(format!("refund status {other:?}"))),
        };
        Ok(RefundUpdate {
            amount: amount::from_decimal(&self.amount, &self.currency)?,
            refund_no: self.refund_no,
            order_no: self.order_no,
            channel_refund_id: self.refund_id,
            status,
            failure: self.failure_code.map(|code| Failure {
                code,
                message: self.failure_message.unwrap_or_default(),
            }),
            channel_status: self.status,
        })
    }
}

pub fn read_refund(
    request: &RefundRequest,
    response: &HttpResponse,
) -> Result<RefundUpdate, ChannelError> {
    if response.status >= 500 {
        return Err(ChannelError::Upstream(format!("HTTP {}", response.status)));
    }
    signing::verify_answer(&response.headers, &response.body)?;
    let refund: Refund = serde_json::from_slice(&response.body)?;
    if refund.currency != request.refund_amount.currency {
        return Err(malformed("refund answered in another currency"));
    }
    refund.into_update()
}

/// CSV with a header line: `type,order_no,txn_id,amount,currency,fee,time,status`.
pub fn read_statement(document: &[u8]) -> Result<Vec<StatementLine>, ChannelError> {
    let text = std::str::from_utf8(document).map_err(|_| malformed("statement is not UTF-8"))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    match lines.next() {
        Some("type,order_no,txn_id,amount,currency,fee,time,status") => {}
        _ => return Err(malformed("statement header is missing or unknown")),
    }
    lines
        .enumerate()
        .map(|(i, line)| {
            let cols: Vec<&str> = line.split(',').collect();
            let [kind, order_no, txn_id, gross, currency, fee, time, status] = cols[..] else {
                return Err(malformed(format!(
                    "statement line {} has {} columns",
                    i + 2,
                    cols.len()
                )));
            };
            let kind = match kind {
                "payment" => StatementEntryKind::Payment,
                "refund" => StatementEntryKind::Refund,
                "chargeback" => StatementEntryKind::Chargeback,
                "fee" => StatementEntryKind::Fee,
                _ => StatementEntryKind::Adjustment,
            };
            Ok(StatementLine {
                kind,
                order_no: (!order_no.is_empty()).then(|| order_no.to_owned()),
                refund_no: None,
                channel_txn_id: txn_id.to_owned(),
                amount: amount::from_decimal(gross, currency)?,
                fee: if fee.is_empty() {
                    None
                } else {
                    Some(amount::from_decimal(fee, currency)?)
                },
                occurred_at: time
                    .parse()
                    .map_err(|_| malformed(format!("statement line {}: bad time", i + 2)))?,
                channel_status: status.to_owned(),
            })
        })
        .collect()
}
