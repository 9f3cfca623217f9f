//! CaresPay, a card gateway (2D and 3-D Secure), as merchant integrations know it.
//!
//! Signatures (lower-case hex MD5, the key appended; see plugins/carespay for what is certain
//! and what is inferred):
//! - pay request: MD5(merNo + billNo + currency + amount + returnURL + md5Key)
//! - answers and notifications: MD5(merNo + billNo + orderNo + currency + amount + code +
//!   tradeStatus + md5Key)
//! - query: MD5("merNo=..&billNo=..&key=.."); refund: MD5("amount=..&merNo=..&orderNo=..&key=..");
//!   batch list: MD5("merNo=..&date=..&key=..")
//!
//! Test cards: 4242424242424242 approved, 4000000000000002 declined, 4000000000003220 needs
//! 3-D Secure; any other number is declined as invalid.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use md5::{Digest, Md5};
use serde_json::{Value, json};

use crate::notify::Notification;
use crate::{Sim, page};

pub const MERCHANT_NO: &str = "80001";
pub const CARD_APPROVED: &str = "4242424242424242";
pub const CARD_DECLINED: &str = "4000000000000002";
pub const CARD_3DS: &str = "4000000000003220";
/// CaresPay's schedule is not public; this one is inferred (seconds before each attempt).
const NOTIFY_SCHEDULE: &[u64] = &[0, 60, 300, 1800, 7200];

#[derive(Debug, Clone)]
struct Payment {
    bill_no: String,
    order_no: String,
    amount: String,
    currency: String,
    code: &'static str,
    trade_status: &'static str,
    message: String,
    return_url: String,
    notify_url: String,
    refunded_cents: i64,
    day: String,
    refunds: Vec<(String, String)>,
}

/// CaresPay's payments, by bill number.
#[derive(Default)]
pub struct Ledger {
    payments: Mutex<HashMap<String, Payment>>,
    /// Gateway order number → bill number.
    by_order_no: Mutex<HashMap<String, String>>,
}

pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/carespay/pay", post(pay))
        .route("/query/order", post(query))
        .route("/refund", post(refund))
        .route("/query/batchlist", post(batch_list))
        .route("/3ds/{order_no}", get(challenge_page))
        .route("/3ds/{order_no}/approve", post(approve))
        .route("/3ds/{order_no}/deny", post(deny))
}

fn md5_hex(text: &str) -> String {
    hex::encode(Md5::digest(text.as_bytes()))
}

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map_or("", String::as_str)
}

/// Applies the API faults, then checks a `MD5("k1=v1&k2=v2&key=..")` signature over the named
/// fields and the merchant number. `Some(answer)` means: answer this and stop.
async fn refuse_unsigned(
    sim: &Sim,
    form: &HashMap<String, String>,
    signed: &[&str],
) -> Option<Response> {
    if let Some(fault) = sim.faults.api().await {
        return Some(fault);
    }
    let pairs: Vec<String> = signed
        .iter()
        .map(|k| format!("{k}={}", field(form, k)))
        .collect();
    let expected = md5_hex(&format!(
        "{}&key={}",
        pairs.join("&"),
        sim.keys.carespay_md5
    ));
    let valid = field(form, "merNo") == MERCHANT_NO && field(form, "signature") == expected;
    (!valid).then(|| error("E0001", "signature verification failed"))
}

fn answer_md5(sim: &Sim, p: &Payment) -> String {
    md5_hex(&format!(
        "{MERCHANT_NO}{}{}{}{}{}{}{}",
        p.bill_no, p.order_no, p.currency, p.amount, p.code, p.trade_status, sim.keys.carespay_md5
    ))
}

fn answer_json(sim: &Sim, p: &Payment, auth_3d_url: Option<String>) -> Value {
    let mut answer = json!({
        "merNo": MERCHANT_NO,
        "billNo": p.bill_no,
        "orderNo": p.order_no,
        "amount": p.amount,
        "currency": p.currency,
        "code": p.code,
        "message": p.message,
        "tradeStatus": p.trade_status,
        "md5Info": answer_md5(sim, p),
        "auth3DUrl": auth_3d_url,
    });
    if sim.faults.get().unsigned_answers {
        let fields = answer.as_object_mut().expect("an object");
        fields.remove("merNo");
        fields.remove("md5Info");
    }
    answer
}

fn error(code: &str, message: &str) -> Response {
    Json(json!({ "code": code, "message": message })).into_response()
}

fn luhn_ok(number: &str) -> bool {
    let digits: Vec<u32> = number.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() < 12 || digits.len() != number.len() {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            if i % 2 == 1 {
                if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
            } else {
                *d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

async fn pay(State(sim): State<Arc<Sim>>, Form(form): Form<HashMap<String, String>>) -> Response {
    if let Some(fault) = sim.faults.api().await {
        return fault;
    }
    let f = |n| field(&form, n);
    if f("merNo") != MERCHANT_NO {
        return error("E0002", "unknown merchant");
    }
    let expected = md5_hex(&format!(
        "{}{}{}{}{}{}",
        f("merNo"),
        f("billNo"),
        f("currency"),
        f("amount"),
        f("returnURL"),
        sim.keys.carespay_md5
    ));
    if f("md5Info") != expected {
        return error("E0001", "md5Info verification failed");
    }
    // The notification address is `noticeUrl`, as the merchant integrations send it.
    if f("billNo").is_empty() || f("amount").is_empty() || f("noticeUrl").is_empty() {
        return error("E0003", "missing required field");
    }
    if sim
        .carespay
        .payments
        .lock()
        .unwrap()
        .contains_key(f("billNo"))
    {
        return error("E0004", "duplicate billNo");
    }
    let order_no = format!("CP{}", crate::keys::random_hex(8).to_uppercase());
    let (code, trade_status, message) = match f("cardNum") {
        CARD_APPROVED if luhn_ok(CARD_APPROVED) => ("P0001", "S0001", "Approved"),
        CARD_3DS => ("P0004", "S0003", "3-D Secure authentication required"),
        CARD_DECLINED => ("P0002", "S0002", "Card declined"),
        _ => ("P0002", "S0002", "Invalid card number"),
    };
    let payment = Payment {
        bill_no: f("billNo").to_owned(),
        order_no: order_no.clone(),
        amount: f("amount").to_owned(),
        currency: f("currency").to_owned(),
        code,
        trade_status,
        message: message.to_owned(),
        return_url: f("returnURL").to_owned(),
        notify_url: f("noticeUrl").to_owned(),
        refunded_cents: 0,
        day: today(),
        refunds: vec![],
    };
    let auth_3d_url =
        (code == "P0004").then(|| format!("{}/carespay/3ds/{order_no}", sim.base_url));
    let answer = answer_json(&sim, &payment, auth_3d_url);
    if code == "P0001" {
        notify(&sim, &payment);
    }
    sim.carespay
        .by_order_no
        .lock()
        .unwrap()
        .insert(order_no, payment.bill_no.clone());
    sim.carespay
        .payments
        .lock()
        .unwrap()
        .insert(payment.bill_no.clone(), payment);
    Json(answer).into_response()
}

fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    crate::keys::civil_date(days as i64)
}

fn notify(sim: &Sim, p: &Payment) {
    let fields = |md5: String| {
        let pairs = [
            ("merNo", MERCHANT_NO.to_owned()),
            ("billNo", p.bill_no.clone()),
            ("orderNo", p.order_no.clone()),
            ("amount", p.amount.clone()),
            ("currency", p.currency.clone()),
            ("code", p.code.to_owned()),
            ("tradeStatus", p.trade_status.to_owned()),
            ("message", p.message.clone()),
            ("md5Info", md5),
        ];
        form_body(&pairs)
    };
    let headers = vec![(
        header::CONTENT_TYPE.to_string(),
        "application/x-www-form-urlencoded".to_owned(),
    )];
    sim.notifier.send(
        Notification {
            channel: "carespay",
            order_no: p.bill_no.clone(),
            url: p.notify_url.clone(),
            headers: headers.clone(),
            body: fields(answer_md5(sim, p)).into_bytes(),
            forged: Some((headers, fields("0".repeat(32)).into_bytes())),
            schedule: NOTIFY_SCHEDULE,
            is_ack: |status, body| status == 200 && body.trim_ascii() == b"success",
        },
        &sim.faults,
    );
}

pub(crate) fn form_body(pairs: &[(&str, String)]) -> String {
    let mut out = reqwest::Url::parse("http://x/").unwrap();
    out.query_pairs_mut()
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
    out.query().unwrap_or_default().to_owned()
}

async fn challenge_page(State(sim): State<Arc<Sim>>, Path(order_no): Path<String>) -> Response {
    let Some(p) = payment_by_order_no(&sim, &order_no) else {
        return (StatusCode::NOT_FOUND, "unknown payment").into_response();
    };
    Html(page::decision(
        "CaresPay 3-D Secure",
        &format!(
            "Confirm the payment of {} (currency {}) for order {}",
            p.amount, p.currency, p.bill_no
        ),
        &format!("/carespay/3ds/{order_no}/approve"),
        &format!("/carespay/3ds/{order_no}/deny"),
    ))
    .into_response()
}

fn payment_by_order_no(sim: &Sim, order_no: &str) -> Option<Payment> {
    let bill_no = sim
        .carespay
        .by_order_no
        .lock()
        .unwrap()
        .get(order_no)
        .cloned()?;
    sim.carespay.payments.lock().unwrap().get(&bill_no).cloned()
}

async fn approve(State(sim): State<Arc<Sim>>, Path(order_no): Path<String>) -> Response {
    browser_decision(&sim, &order_no, true)
}

async fn deny(State(sim): State<Arc<Sim>>, Path(order_no): Path<String>) -> Response {
    browser_decision(&sim, &order_no, false)
}

fn browser_decision(sim: &Sim, order_no: &str, approve: bool) -> Response {
    let Some(bill_no) = sim
        .carespay
        .by_order_no
        .lock()
        .unwrap()
        .get(order_no)
        .cloned()
    else {
        return (StatusCode::NOT_FOUND, "unknown payment").into_response();
    };
    match decide_3ds(sim, &bill_no, approve) {
        Some(url) => Redirect::to(&url).into_response(),
        None => (StatusCode::CONFLICT, "no challenge pending").into_response(),
    }
}

/// Completes a pending 3-D Secure challenge; returns where the browser goes back to.
pub fn decide_3ds(sim: &Sim, bill_no: &str, approve: bool) -> Option<String> {
    let payment = {
        let mut payments = sim.carespay.payments.lock().unwrap();
        let p = payments.get_mut(bill_no)?;
        if p.code != "P0004" {
            return None;
        }
        (p.code, p.trade_status, p.message) = if approve {
            ("P0001", "S0001", "Approved".to_owned())
        } else {
            (
                "P0002",
                "S0002",
                "3-D Secure authentication failed".to_owned(),
            )
        };
        p.clone()
    };
    notify(sim, &payment);
    // The browser comes back unsigned: amount, billNo, code, message.
    let query = form_body(&[
        ("amount", payment.amount.clone()),
        ("billNo", payment.bill_no.clone()),
        ("code", payment.code.to_owned()),
        ("message", payment.message.clone()),
    ]);
    let separator = if payment.return_url.contains('?') {
        '&'
    } else {
        '?'
    };
    Some(format!("{}{separator}{query}", payment.return_url))
}

async fn query(State(sim): State<Arc<Sim>>, Form(form): Form<HashMap<String, String>>) -> Response {
    if let Some(refusal) = refuse_unsigned(&sim, &form, &["merNo", "billNo"]).await {
        return refusal;
    }
    let f = |n| field(&form, n);
    match sim.carespay.payments.lock().unwrap().get(f("billNo")) {
        Some(p) => Json(answer_json(&sim, p, None)).into_response(),
        None => error("Q0002", "order not found"),
    }
}

async fn refund(
    State(sim): State<Arc<Sim>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(refusal) = refuse_unsigned(&sim, &form, &["amount", "merNo", "orderNo"]).await {
        return refusal;
    }
    let f = |n| field(&form, n);
    let Some(bill_no) = sim
        .carespay
        .by_order_no
        .lock()
        .unwrap()
        .get(f("orderNo"))
        .cloned()
    else {
        return error("R0002", "order not found");
    };
    let mut payments = sim.carespay.payments.lock().unwrap();
    let p = payments.get_mut(&bill_no).expect("indexed payments exist");
    let refund_no = f("refundNo").to_owned();
    let respond = |p: &Payment, code: &str, message: &str| {
        Json(json!({
            "code": code,
            "message": message,
            "merNo": MERCHANT_NO,
            "billNo": p.bill_no,
            "orderNo": p.order_no,
            "refundNo": refund_no,
            "refundAmount": f("amount"),
            "currency": p.currency,
            "tradeStatus": p.trade_status,
        }))
        .into_response()
    };
    if p.refunds.iter().any(|(no, _)| *no == refund_no) {
        return respond(p, "R0001", "Refund already accepted");
    }
    let (Ok(paid), Ok(wanted)) = (cents(&p.amount), cents(f("amount"))) else {
        return respond(p, "R0002", "invalid amount");
    };
    if !matches!(p.trade_status, "S0001" | "S0006")
        || wanted <= 0
        || p.refunded_cents + wanted > paid
    {
        return respond(p, "R0002", "refund not allowed");
    }
    p.refunded_cents += wanted;
    p.trade_status = if p.refunded_cents == paid {
        "S0005"
    } else {
        "S0006"
    };
    p.refunds.push((refund_no.clone(), f("amount").to_owned()));
    respond(p, "R0001", "Refund accepted")
}

fn cents(amount: &str) -> Result<i64, coffer_money::AmountError> {
    coffer_money::parse_decimal(amount, 2)
}

async fn batch_list(
    State(sim): State<Arc<Sim>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if let Some(refusal) = refuse_unsigned(&sim, &form, &["merNo", "date"]).await {
        return refusal;
    }
    let f = |n| field(&form, n);
    let edits = sim.statements.get("carespay");
    let decimal = |minor: i64| coffer_money::format_minor(minor, 2);
    let mut listed: Vec<Payment> = sim
        .carespay
        .payments
        .lock()
        .unwrap()
        .values()
        .filter(|p| p.day == f("date") && !edits.drop.contains(&p.bill_no))
        .cloned()
        .collect();
    for extra in &edits.extra_payments {
        listed.push(Payment {
            bill_no: extra.out_trade_no.clone(),
            order_no: format!("CPX{}", extra.amount_minor),
            amount: decimal(extra.amount_minor),
            currency: "1".into(),
            code: "P0001",
            trade_status: "S0001",
            message: String::new(),
            return_url: String::new(),
            notify_url: String::new(),
            refunded_cents: 0,
            day: f("date").to_owned(),
            refunds: Vec::new(),
        });
    }
    for extra in &edits.extra_refunds {
        if let Some(p) = listed.iter_mut().find(|p| p.bill_no == extra.out_trade_no) {
            p.refunds.push((
                format!("console-{}", extra.amount_minor),
                decimal(extra.amount_minor),
            ));
        }
    }
    for p in &mut listed {
        if let Some(minor) = edits.amounts.get(&p.bill_no) {
            p.amount = decimal(*minor);
        }
    }
    let mut list = Vec::new();
    for p in &listed {
        if matches!(p.trade_status, "S0001" | "S0005" | "S0006") {
            list.push(json!({
                "tradeType": "SALE", "billNo": p.bill_no, "orderNo": p.order_no, "amount": p.amount,
                "currency": p.currency, "fee": fee(&p.amount), "tradeTime": format!("{} 12:00:00", p.day),
                "tradeStatus": "S0001",
            }));
        }
        for (refund_no, amount) in &p.refunds {
            list.push(json!({
                "tradeType": "REFUND", "billNo": p.bill_no, "orderNo": p.order_no, "refundNo": refund_no,
                "amount": amount, "currency": p.currency, "fee": "0.00",
                "tradeTime": format!("{} 13:00:00", p.day), "tradeStatus": p.trade_status,
            }));
        }
    }
    Json(json!({ "code": "B0001", "merNo": MERCHANT_NO, "date": f("date"), "list": list }))
        .into_response()
}

/// 3% of the amount, rounded half up: the simulated gateway's fee.
fn fee(amount: &str) -> String {
    let c = cents(amount).unwrap_or(0);
    coffer_money::format_minor((c * 3 + 50) / 100, 2)
}
