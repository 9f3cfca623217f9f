//! WeChat Pay API v3 requests, answers, notifications and bills, mapped to the contract.

use coffer_plugin_sdk::{self as sdk, *};
use serde::Deserialize;
use serde_json::json;

use crate::signing;

pub const BEIJING: i32 = 8 * 3600;

fn api(path: &str) -> Result<String, ChannelError> {
    Ok(format!("{}{path}", sdk::endpoint("api")?))
}

fn fen(money: &Money) -> Result<i64, ChannelError> {
    if money.currency != "CNY" {
        return Err(unsupported(format!(
            "WeChat Pay domestic payments are in CNY, not {}",
            money.currency
        )));
    }
    Ok(money.minor)
}

/// Unix seconds → "2026-11-24T15:30:00+08:00".
fn rfc3339_beijing(unix_seconds: i64) -> String {
    time::format_datetime(unix_seconds, BEIJING).replace(' ', "T") + "+08:00"
}

pub fn native_pay(request: &PaymentRequest) -> Result<HttpRequest, ChannelError> {
    if request.flow != CheckoutFlow::QrCode {
        return Err(unsupported(
            "this plugin offers WeChat Pay native (QR code) payments",
        ));
    }
    let body = json!({
        "appid": sdk::setting("app-id")?,
        "mchid": sdk::setting("mch-id")?,
        "description": request.subject,
        "out_trade_no": request.order_no,
        "time_expire": rfc3339_beijing(request.expires_at),
        "notify_url": request.notify_url,
        "amount": { "total": fen(&request.amount)?, "currency": "CNY" },
    });
    signing::signed(http::post_json(
        api("/v3/pay/transactions/native")?,
        body.to_string(),
    ))
}

/// A signed answer's body; a signed error answer becomes an upstream error with its code.
fn verified_body(response: &HttpResponse) -> Result<&[u8], ChannelError> {
    if response.status >= 500 {
        return Err(ChannelError::Upstream(format!("HTTP {}", response.status)));
    }
    signing::verify(&response.headers, &response.body)?;
    Ok(&response.body)
}

#[derive(Deserialize)]
struct ApiError {
    code: String,
    #[serde(default)]
    message: String,
}

fn api_error(response: &HttpResponse) -> ChannelError {
    match serde_json::from_slice::<ApiError>(&response.body) {
        Ok(e) => ChannelError::Upstream(format!("{}: {}", e.code, e.message)),
        Err(_) => ChannelError::Upstream(format!("HTTP {}", response.status)),
    }
}

pub fn read_native_pay(
    context: &PaymentContext,
    response: &HttpResponse,
) -> Result<PaymentOutcome, ChannelError> {
    let body = verified_body(response)?;
    if !http::is_success(response.status) {
        return Err(api_error(response));
    }
    #[derive(Deserialize)]
    struct Native {
        code_url: String,
    }
    let native: Native = serde_json::from_slice(body)?;
    Ok(PaymentOutcome {
        update: PaymentUpdate {
            order_no: context.order_no.clone(),
            channel_txn_id: None,
            status: PaymentStatus::RequiresAction,
            amount: Some(context.amount.clone()),
            paid_at: None,
            failure: None,
            channel_status: "NOTPAY".into(),
        },
        action: NextAction::QrCode(native.code_url),
    })
}

#[derive(Deserialize)]
struct Amount {
    total: i64,
    #[serde(default = "cny")]
    currency: String,
}

fn cny() -> String {
    "CNY".into()
}

/// A transaction, as queries answer and notifications carry it.
#[derive(Deserialize)]
struct Transaction {
    #[serde(default)]
    mchid: String,
    out_trade_no: String,
    transaction_id: Option<String>,
    trade_state: String,
    #[serde(default)]
    trade_state_desc: String,
    success_time: Option<String>,
    amount: Option<Amount>,
}

impl Transaction {
    fn into_update(self) -> Result<PaymentUpdate, ChannelError> {
        if self.mchid != sdk::setting("mch-id")? {
            return Err(bad_signature(format!("mchid {:?} is not ours", self.mchid)));
        }
        let status = match self.trade_state.as_str() {
            "SUCCESS" => PaymentStatus::Paid,
            // "Refund started": at least part of the payment went back.
            "REFUND" => PaymentStatus::PartiallyRefunded,
            "NOTPAY" | "USERPAYING" => PaymentStatus::Pending,
            "CLOSED" | "REVOKED" => PaymentStatus::Closed,
            "PAYERROR" => PaymentStatus::Failed,
            other => return Err(malformed(format!("trade_state {other:?}"))),
        };
        Ok(PaymentUpdate {
            failure: (status == PaymentStatus::Failed).then(|| Failure {
                code: self.trade_state.clone(),
                message: self.trade_state_desc.clone(),
            }),
            order_no: self.out_trade_no,
            channel_txn_id: self.transaction_id.filter(|t| !t.is_empty()),
            status,
            amount: self.amount.map(|a| Money {
                minor: a.total,
                currency: a.currency,
            }),
            paid_at: self.success_time.as_deref().and_then(time::parse_rfc3339),
            channel_status: self.trade_state,
        })
    }
}

pub fn query(order_no: &str) -> Result<HttpRequest, ChannelError> {
    let url = api(&format!(
        "/v3/pay/transactions/out-trade-no/{order_no}?mchid={}",
        sdk::setting("mch-id")?
    ))?;
    signing::signed(http::get(url))
}

pub fn read_query(
    request: &QueryRequest,
    response: &HttpResponse,
) -> Result<PaymentUpdate, ChannelError> {
    let body = verified_body(response)?;
    if response.status == 404 {
        let error: ApiError = serde_json::from_slice(body)?;
        if error.code == "ORDER_NOT_EXIST" {
            // The native order was never created (the create request was lost).
            return Ok(PaymentUpdate {
                order_no: request.order_no.clone(),
                channel_txn_id: None,
                status: PaymentStatus::Failed,
                amount: None,
                paid_at: None,
                failure: Some(Failure {
                    code: error.code,
                    message: error.message,
                }),
                channel_status: String::new(),
            });
        }
    }
    if !http::is_success(response.status) {
        return Err(api_error(response));
    }
    let transaction: Transaction = serde_json::from_slice(body)?;
    transaction.into_update()
}

pub fn refund(request: &RefundRequest) -> Result<HttpRequest, ChannelError> {
    let body = json!({
        "out_trade_no": request.order_no,
        "out_refund_no": request.refund_no,
        "reason": request.reason,
        "notify_url": request.notify_url,
        "amount": {
            "refund": fen(&request.refund_amount)?,
            "total": fen(&request.order_amount)?,
            "currency": "CNY",
        },
    });
    signing::signed(http::post_json(
        api("/v3/refund/domestic/refunds")?,
        body.to_string(),
    ))
}

#[derive(Deserialize)]
struct Refund {
    /// Present in notifications (not in API answers).
    mchid: Option<String>,
    out_refund_no: String,
    #[serde(default)]
    out_trade_no: String,
    refund_id: Option<String>,
    #[serde(alias = "refund_status")]
    status: String,
    amount: RefundAmount,
}

#[derive(Deserialize)]
struct RefundAmount {
    refund: i64,
}

impl Refund {
    fn into_update(self, order_no: Option<&str>) -> Result<RefundUpdate, ChannelError> {
        let status = match self.status.as_str() {
            "SUCCESS" => RefundStatus::Succeeded,
            "PROCESSING" => RefundStatus::Pending,
            "CLOSED" | "ABNORMAL" => RefundStatus::Failed,
            other => return Err(malformed(format!("refund status {other:?}"))),
        };
        Ok(RefundUpdate {
            refund_no: self.out_refund_no,
            order_no: order_no.map_or(self.out_trade_no, str::to_owned),
            channel_refund_id: self.refund_id,
            status,
            amount: Money {
                minor: self.amount.refund,
                currency: "CNY".into(),
            },
            failure: (status == RefundStatus::Failed).then(|| Failure {
                code: self.status.clone(),
                message: String::new(),
            }),
            channel_status: self.status,
        })
    }
}

pub fn read_refund(
    request: &RefundRequest,
    response: &HttpResponse,
) -> Result<RefundUpdate, ChannelError> {
    let body = verified_body(response)?;
    if (400..500).contains(&response.status) {
        // Refused outright (more than is left, trade not paid...): final.
        let error: ApiError = serde_json::from_slice(body)?;
        return Ok(RefundUpdate {
            refund_no: request.refund_no.clone(),
            order_no: request.order_no.clone(),
            channel_refund_id: None,
            status: RefundStatus::Failed,
            amount: request.refund_amount.clone(),
            failure: Some(Failure {
                code: error.code,
                message: error.message,
            }),
            channel_status: String::new(),
        });
    }
    let refund: Refund = serde_json::from_slice(body)?;
    refund.into_update(Some(&request.order_no))
}

#[derive(Deserialize)]
struct Notification {
    event_type: String,
    resource: Resource,
}

#[derive(Deserialize)]
struct Resource {
    algorithm: String,
    ciphertext: String,
    #[serde(default)]
    associated_data: String,
    nonce: String,
    original_type: String,
}

/// A notification: verify the headers' signature, then decrypt and read the resource.
pub fn notification(request: &InboundRequest) -> Result<CallbackEvent, ChannelError> {
    signing::verify(&request.headers, &request.body)?;
    let notification: Notification = serde_json::from_slice(&request.body)?;
    let r = &notification.resource;
    if r.algorithm != "AEAD_AES_256_GCM" {
        return Err(malformed(format!("resource algorithm {:?}", r.algorithm)));
    }
    let plain = signing::decrypt_resource(&r.ciphertext, &r.nonce, &r.associated_data)?;
    match (
        r.original_type.as_str(),
        notification.event_type.starts_with("REFUND."),
    ) {
        ("transaction", false) => {
            let transaction: Transaction = serde_json::from_slice(&plain)?;
            Ok(CallbackEvent::Payment(transaction.into_update()?))
        }
        ("refund", true) => {
            let refund: Refund = serde_json::from_slice(&plain)?;
            if refund.mchid.as_deref() != Some(sdk::setting("mch-id")?.as_str()) {
                return Err(bad_signature("refund notification for another merchant"));
            }
            Ok(CallbackEvent::Refund(refund.into_update(None)?))
        }
        (kind, _) => Err(malformed(format!(
            "unexpected {kind} resource for {}",
            notification.event_type
        ))),
    }
}

/// The browser never comes back from a native (QR) payment; anything claiming to is a hint.
pub fn browser_return(request: &InboundRequest) -> CallbackVerdict {
    let params = form::decode(request.query.as_bytes());
    match form::get(&params, "out_trade_no") {
        Some(order_no) if !order_no.is_empty() => CallbackVerdict::Unverified(UnverifiedClaim {
            order_no: order_no.to_owned(),
            claimed_status: None,
        }),
        _ => CallbackVerdict::Rejected(malformed("return without out_trade_no")),
    }
}

pub fn bill_request(day: &str) -> Result<HttpRequest, ChannelError> {
    time::require_day(day)?;
    signing::signed(http::get(api(&format!(
        "/v3/bill/tradebill?bill_date={day}&bill_type=ALL"
    ))?))
}

/// The bill answer names a download URL, fetched with a signed GET; the file is the document.
pub fn statement_step(response: &HttpResponse) -> Result<StatementStep, ChannelError> {
    let is_json = http::header(&response.headers, "content-type")
        .is_some_and(|t| t.starts_with("application/json"));
    if !is_json {
        if !http::is_success(response.status) {
            return Err(ChannelError::Upstream(format!("HTTP {}", response.status)));
        }
        return Ok(StatementStep::Document(response.body.clone()));
    }
    let body = verified_body(response)?;
    if !http::is_success(response.status) {
        return Err(api_error(response));
    }
    #[derive(Deserialize)]
    struct Bill {
        download_url: String,
    }
    let bill: Bill = serde_json::from_slice(body)?;
    Ok(StatementStep::Follow(signing::signed(http::get(
        bill.download_url,
    ))?))
}
