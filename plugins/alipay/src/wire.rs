//! Alipay's open-platform requests and answers, mapped to the contract.

use coffer_plugin_sdk::{self as sdk, *};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::signing;

/// Alipay's clock and its bills are in Beijing time, UTC+8 all year.
pub const BEIJING: i32 = 8 * 3600;

/// A signed request: the common parameters, `biz_content`, and `sign`.
pub struct Call {
    pub params: Vec<(&'static str, String)>,
}

impl Call {
    pub fn new(method: &str, biz_content: Value) -> Result<Self, ChannelError> {
        let now_s = host::now_ms() / 1000;
        let mut params = vec![
            ("app_id", sdk::setting("app-id")?),
            ("method", method.to_owned()),
            ("format", "JSON".to_owned()),
            ("charset", "utf-8".to_owned()),
            ("sign_type", "RSA2".to_owned()),
            ("timestamp", time::format_datetime(now_s, BEIJING)),
            ("version", "1.0".to_owned()),
            ("biz_content", biz_content.to_string()),
        ];
        if let Some(url) = host::setting("notify-url-override") {
            params.push(("notify_url", url));
        }
        Ok(Self { params })
    }

    pub fn with(mut self, name: &'static str, value: &str) -> Self {
        if !value.is_empty() {
            self.params.retain(|(k, _)| *k != name);
            self.params.push((name, value.to_owned()));
        }
        self
    }

    fn signed_pairs(&self) -> Result<Vec<(&str, String)>, ChannelError> {
        let pairs: Vec<(&str, &str)> = self.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let sign = signing::sign_params(&pairs)?;
        let mut all: Vec<(&str, String)> =
            self.params.iter().map(|(k, v)| (*k, v.clone())).collect();
        all.push(("sign", sign));
        Ok(all)
    }

    /// A POST of every parameter as a form, for server-to-server calls.
    pub fn post(&self) -> Result<HttpRequest, ChannelError> {
        let pairs = self.signed_pairs()?;
        let body = form::encode(pairs.iter().map(|(k, v)| (*k, v.as_str())));
        Ok(http::post_form(sdk::endpoint("gateway")?, body))
    }

    /// The signed cashier URL a browser is sent to (page pay).
    pub fn browser_url(&self) -> Result<String, ChannelError> {
        let pairs = self.signed_pairs()?;
        let query = form::encode(pairs.iter().map(|(k, v)| (*k, v.as_str())));
        Ok(format!("{}?{query}", sdk::endpoint("gateway")?))
    }
}

pub fn total_amount(money: &Money) -> Result<String, ChannelError> {
    if money.currency != "CNY" {
        return Err(unsupported(format!(
            "Alipay trades are in CNY, not {}",
            money.currency
        )));
    }
    amount::to_decimal(money)
}

pub fn pay(request: &PaymentRequest) -> Result<PaymentStart, ChannelError> {
    let total = total_amount(&request.amount)?;
    let expire = time::format_datetime(request.expires_at, BEIJING);
    match request.flow {
        CheckoutFlow::Redirect => {
            let biz = json!({
                "out_trade_no": request.order_no,
                "product_code": "FAST_INSTANT_TRADE_PAY",
                "total_amount": total,
                "subject": signing::channel_safe_text(&request.subject),
                "body": signing::channel_safe_text(&request.description),
                "time_expire": expire,
            });
            let url = Call::new("alipay.trade.page.pay", biz)?
                .with("notify_url", &request.notify_url)
                .with("return_url", &request.return_url)
                .browser_url()?;
            Ok(PaymentStart::Action(NextAction::Redirect(url)))
        }
        CheckoutFlow::QrCode => {
            let biz = json!({
                "out_trade_no": request.order_no,
                "total_amount": total,
                "subject": signing::channel_safe_text(&request.subject),
                "time_expire": expire,
            });
            let call = Call::new("alipay.trade.precreate", biz)?
                .with("notify_url", &request.notify_url)
                .post()?;
            Ok(PaymentStart::Call(call))
        }
        CheckoutFlow::DirectCard => Err(unsupported("Alipay takes no card data")),
    }
}

/// Reads an answer: `{"<method>_response": {...}, "sign": "..."}`. A successful answer must
/// carry a valid signature over the raw text of its response member.
pub fn answer(method: &str, response: &HttpResponse) -> Result<Value, ChannelError> {
    if response.status >= 500 {
        return Err(ChannelError::Upstream(format!("HTTP {}", response.status)));
    }
    let body = std::str::from_utf8(&response.body).map_err(|_| malformed("answer is not UTF-8"))?;
    let member = format!("{}_response", method.replace('.', "_"));
    let raw = sdk::json::raw_member(body, &member)
        .or_else(|| sdk::json::raw_member(body, "error_response"))
        .ok_or_else(|| malformed(format!("answer has no {member}")))?;
    let node: Value = serde_json::from_str(raw)?;
    let code = node["code"].as_str().unwrap_or_default();
    let sign =
        sdk::json::raw_member(body, "sign").and_then(|s| serde_json::from_str::<String>(s).ok());
    match sign {
        Some(sign) => signing::verify(raw, &sign)?,
        None if code == "10000" => return Err(bad_signature("successful answer without sign")),
        // Alipay signs business answers; an unsigned error may come from anyone on the path,
        // so it settles nothing: the outcome stays unknown and the host asks again.
        None => return Err(business_error(&node)),
    }
    Ok(node)
}

fn business_error(node: &Value) -> ChannelError {
    let text = |k: &str| node[k].as_str().unwrap_or_default().to_owned();
    ChannelError::Upstream(format!(
        "{} {}: {} {}",
        text("code"),
        text("msg"),
        text("sub_code"),
        text("sub_msg")
    ))
}

pub fn read_precreate(
    context: &PaymentContext,
    response: &HttpResponse,
) -> Result<PaymentOutcome, ChannelError> {
    let node = answer("alipay.trade.precreate", response)?;
    if node["code"] != "10000" {
        return Err(business_error(&node));
    }
    if node["out_trade_no"] != context.order_no.as_str() {
        return Err(malformed("precreate answer is about another order"));
    }
    let qr = node["qr_code"]
        .as_str()
        .ok_or_else(|| malformed("precreate answer without qr_code"))?;
    Ok(PaymentOutcome {
        update: PaymentUpdate {
            order_no: context.order_no.clone(),
            channel_txn_id: None,
            status: PaymentStatus::RequiresAction,
            amount: Some(context.amount.clone()),
            paid_at: None,
            failure: None,
            channel_status: "WAIT_BUYER_PAY".into(),
        },
        action: NextAction::QrCode(qr.to_owned()),
    })
}

pub fn trade_status(word: &str) -> Option<PaymentStatus> {
    Some(match word {
        "TRADE_SUCCESS" | "TRADE_FINISHED" => PaymentStatus::Paid,
        "TRADE_CLOSED" => PaymentStatus::Closed,
        "WAIT_BUYER_PAY" => PaymentStatus::Pending,
        _ => return None,
    })
}

pub fn query(order_no: &str) -> Result<HttpRequest, ChannelError> {
    Call::new("alipay.trade.query", json!({ "out_trade_no": order_no }))?.post()
}

pub fn read_query(
    request: &QueryRequest,
    response: &HttpResponse,
) -> Result<PaymentUpdate, ChannelError> {
    let node = answer("alipay.trade.query", response)?;
    let pending = |status: &str| PaymentUpdate {
        order_no: request.order_no.clone(),
        channel_txn_id: None,
        status: PaymentStatus::Pending,
        amount: None,
        paid_at: None,
        failure: None,
        channel_status: status.to_owned(),
    };
    if node["code"] != "10000" {
        // A page-pay trade exists only once the buyer opened the cashier.
        return match node["sub_code"].as_str() {
            Some("ACQ.TRADE_NOT_EXIST") => Ok(pending("TRADE_NOT_EXIST")),
            _ => Err(business_error(&node)),
        };
    }
    if node["out_trade_no"] != request.order_no.as_str() {
        return Err(malformed("query answer is about another order"));
    }
    let word = node["trade_status"].as_str().unwrap_or_default();
    let mut status =
        trade_status(word).ok_or_else(|| malformed(format!("trade_status {word:?}")))?;
    let paid_at = node["send_pay_date"]
        .as_str()
        .and_then(|t| time::parse_datetime(t, BEIJING));
    // A trade closed after it was paid was closed by a full refund.
    if status == PaymentStatus::Closed && paid_at.is_some() {
        status = PaymentStatus::Refunded;
    }
    let total = node["total_amount"].as_str().unwrap_or_default();
    Ok(PaymentUpdate {
        order_no: request.order_no.clone(),
        channel_txn_id: node["trade_no"].as_str().map(str::to_owned),
        status,
        amount: Some(amount::from_decimal(total, "CNY")?),
        paid_at,
        failure: None,
        channel_status: word.to_owned(),
    })
}

pub fn refund(request: &RefundRequest) -> Result<HttpRequest, ChannelError> {
    let biz = json!({
        "out_trade_no": request.order_no,
        "refund_amount": total_amount(&request.refund_amount)?,
        "out_request_no": request.refund_no,
        "refund_reason": request.reason,
    });
    Call::new("alipay.trade.refund", biz)?.post()
}

pub fn read_refund(
    request: &RefundRequest,
    response: &HttpResponse,
) -> Result<RefundUpdate, ChannelError> {
    let node = answer("alipay.trade.refund", response)?;
    let base = |status, failure| RefundUpdate {
        refund_no: request.refund_no.clone(),
        order_no: request.order_no.clone(),
        channel_refund_id: None,
        status,
        amount: request.refund_amount.clone(),
        failure,
        channel_status: node["fund_change"].as_str().unwrap_or_default().to_owned(),
    };
    if node["code"] == "10000" {
        return Ok(base(RefundStatus::Succeeded, None));
    }
    match node["code"].as_str() {
        // Business refusals (amount too large, trade closed...) are final.
        Some("40004") => Ok(base(
            RefundStatus::Failed,
            Some(Failure {
                code: node["sub_code"].as_str().unwrap_or_default().to_owned(),
                message: node["sub_msg"].as_str().unwrap_or_default().to_owned(),
            }),
        )),
        _ => Err(business_error(&node)),
    }
}

/// A notification: `trade_status_sync` form fields, RSA2-signed.
pub fn notification(request: &InboundRequest) -> Result<PaymentUpdate, ChannelError> {
    let params = form::decode(&request.body);
    signing::verify_notification(&params)?;
    let get = |k| form::get(&params, k).unwrap_or_default();
    if get("app_id") != sdk::setting("app-id")? {
        return Err(bad_signature(format!(
            "app_id {:?} is not ours",
            get("app_id")
        )));
    }
    let word = get("trade_status");
    let mut status =
        trade_status(word).ok_or_else(|| malformed(format!("trade_status {word:?}")))?;
    // A refund shows as a notification with refund_fee: closed when all was refunded.
    if !get("gmt_refund").is_empty() {
        status = if word == "TRADE_CLOSED" {
            PaymentStatus::Refunded
        } else {
            PaymentStatus::PartiallyRefunded
        };
    }
    Ok(PaymentUpdate {
        order_no: get("out_trade_no").to_owned(),
        channel_txn_id: Some(get("trade_no").to_owned()).filter(|t| !t.is_empty()),
        status,
        amount: Some(amount::from_decimal(get("total_amount"), "CNY")?),
        paid_at: time::parse_datetime(get("gmt_payment"), BEIJING),
        failure: None,
        channel_status: word.to_owned(),
    })
}

/// A browser back from the cashier. Alipay signs it, but the host treats every browser return
/// as a claim to confirm, so the plugin does not pretend otherwise.
pub fn browser_return(request: &InboundRequest) -> CallbackVerdict {
    let params = form::decode(request.query.as_bytes());
    match form::get(&params, "out_trade_no") {
        Some(order_no) if !order_no.is_empty() => CallbackVerdict::Unverified(UnverifiedClaim {
            order_no: order_no.to_owned(),
            claimed_status: Some(PaymentStatus::Paid),
        }),
        _ => CallbackVerdict::Rejected(malformed("return without out_trade_no")),
    }
}

pub fn bill_url_request(day: &str) -> Result<HttpRequest, ChannelError> {
    time::require_day(day)?;
    let biz = json!({ "bill_type": "trade", "bill_date": day });
    Call::new("alipay.data.dataservice.bill.downloadurl.query", biz)?.post()
}

#[derive(Deserialize)]
struct BillUrl {
    code: String,
    bill_download_url: Option<String>,
}

/// The bill-URL answer, then the bill itself (a zip with GBK CSV files).
pub fn statement_step(response: &HttpResponse) -> Result<StatementStep, ChannelError> {
    if response.body.starts_with(b"PK\x03\x04") {
        return Ok(StatementStep::Document(response.body.clone()));
    }
    let node = answer("alipay.data.dataservice.bill.downloadurl.query", response)?;
    let answer: BillUrl = serde_json::from_value(node.clone())?;
    match (answer.code.as_str(), answer.bill_download_url) {
        ("10000", Some(url)) => Ok(StatementStep::Follow(http::get(url))),
        _ => Err(business_error(&node)),
    }
}
