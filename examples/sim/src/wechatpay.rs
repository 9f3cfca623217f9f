//! WeChat Pay API v3: native (QR) payments, query, refund, encrypted notifications, trade
//! bill. Requests verified with the merchant's public key, answers and notifications signed
//! with the platform key, notification resources encrypted with the APIv3 key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::Sim;
use crate::keys::{SigningKey, random_hex, sign_sha256_base64, verify_sha256_base64};
use crate::notify::Notification;

pub const MCH_ID: &str = "1900000001";
pub const APP_ID: &str = "wx0000000000000001";
/// The serial of the merchant API certificate Coffer signs under.
pub const MERCHANT_SERIAL: &str = "3775B6A45ACD588826D15E583A95F5DD3A7BB7C9";
/// WeChat Pay retries over 24 hours: 15s, 15s, 30s, 3m, 10m, 20m, 30m, 30m, 30m, 1h, 3h, 3h,
/// 3h, 6h, 6h.
const NOTIFY_SCHEDULE: &[u64] = &[
    0, 15, 15, 30, 180, 600, 1200, 1800, 1800, 1800, 3600, 10_800, 10_800, 10_800, 21_600, 21_600,
];

#[derive(Debug, Clone)]
struct Order {
    out_trade_no: String,
    transaction_id: String,
    total: i64,
    description: String,
    state: &'static str,
    notify_url: String,
    success_time: String,
    day: String,
    refunded: i64,
    refunds: Vec<(String, i64, String)>,
}

#[derive(Default)]
pub struct Ledger {
    orders: Mutex<HashMap<String, Order>>,
}

pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/v3/pay/transactions/native", post(native))
        .route(
            "/v3/pay/transactions/out-trade-no/{out_trade_no}",
            get(query),
        )
        .route("/v3/refund/domestic/refunds", post(refund))
        .route("/v3/bill/tradebill", get(trade_bill))
        .route("/v3/billdownload/file", get(download))
}

fn now() -> (i64, String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let local = secs + 8 * 3600;
    let day = crate::keys::civil_date(local.div_euclid(86_400));
    let s = local.rem_euclid(86_400);
    let time = format!("{day} {:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    (secs, day, time)
}

/// Checks the merchant's `Authorization` header over the request as received.
fn authorized(
    sim: &Sim,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(params) = value.strip_prefix("WECHATPAY2-SHA256-RSA2048 ") else {
        return false;
    };
    let fields: HashMap<&str, &str> = params
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
        .collect();
    let field = |k| fields.get(k).copied().unwrap_or_default();
    let fresh = field("timestamp")
        .parse::<i64>()
        .is_ok_and(|t| (now().0 - t).abs() <= 300);
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let message = format!(
        "{method}\n{path}\n{}\n{}\n{}\n",
        field("timestamp"),
        field("nonce_str"),
        String::from_utf8_lossy(body)
    );
    field("mchid") == MCH_ID
        && field("serial_no") == MERCHANT_SERIAL
        && fresh
        && verify_sha256_base64(
            &sim.keys.wechat_merchant,
            message.as_bytes(),
            field("signature"),
        )
}

/// An answer signed with the platform key: `Wechatpay-*` headers over `ts\nnonce\nbody\n`.
fn signed(sim: &Sim, status: StatusCode, body: Value) -> Response {
    let text = body.to_string();
    let headers = signature_headers(sim, &sim.keys.wechat_platform, &text);
    let mut response = (status, text).into_response();
    for (k, v) in headers {
        response.headers_mut().insert(
            axum::http::HeaderName::try_from(k).unwrap(),
            v.parse().unwrap(),
        );
    }
    response
}

fn signature_headers(sim: &Sim, key: &SigningKey, body: &str) -> Vec<(String, String)> {
    let timestamp = now().0.to_string();
    let nonce = random_hex(16);
    let signature = sign_sha256_base64(key, format!("{timestamp}\n{nonce}\n{body}\n").as_bytes());
    vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("wechatpay-timestamp".to_owned(), timestamp),
        ("wechatpay-nonce".to_owned(), nonce),
        ("wechatpay-signature".to_owned(), signature),
        (
            "wechatpay-serial".to_owned(),
            sim.keys.wechat_platform_serial.clone(),
        ),
    ]
}

fn error(sim: &Sim, status: StatusCode, code: &str, message: &str) -> Response {
    signed(sim, status, json!({ "code": code, "message": message }))
}

/// Applies the API faults, then checks the merchant's signature. `Some(answer)` means: answer
/// this and stop.
async fn refuse(
    sim: &Sim,
    method: Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    if let Some(fault) = sim.faults.api().await {
        return Some(fault);
    }
    (!authorized(sim, &method, uri, headers, body)).then(|| {
        error(
            sim,
            StatusCode::UNAUTHORIZED,
            "SIGN_ERROR",
            "signature verification failed",
        )
    })
}

async fn native(
    State(sim): State<Arc<Sim>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refusal) = refuse(&sim, Method::POST, &uri, &headers, &body).await {
        return refusal;
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error(
            &sim,
            StatusCode::BAD_REQUEST,
            "PARAM_ERROR",
            "body is not JSON",
        );
    };
    let total = request["amount"]["total"].as_i64().unwrap_or(0);
    if request["mchid"] != MCH_ID || request["appid"] != APP_ID || total <= 0 {
        return error(
            &sim,
            StatusCode::BAD_REQUEST,
            "PARAM_ERROR",
            "mchid, appid or amount",
        );
    }
    let out_trade_no = request["out_trade_no"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let order = Order {
        out_trade_no: out_trade_no.clone(),
        transaction_id: format!("4200{}", random_hex(12)),
        total,
        description: request["description"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        state: "NOTPAY",
        notify_url: request["notify_url"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        success_time: String::new(),
        day: String::new(),
        refunded: 0,
        refunds: vec![],
    };
    let existing = sim
        .wechatpay
        .orders
        .lock()
        .unwrap()
        .entry(out_trade_no.clone())
        .or_insert(order)
        .clone();
    if existing.total != total {
        return error(
            &sim,
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "order changed",
        );
    }
    signed(
        &sim,
        StatusCode::OK,
        json!({ "code_url": format!("weixin://wxpay/bizpayurl?pr={out_trade_no}") }),
    )
}

fn transaction(o: &Order) -> Value {
    let mut t = json!({
        "appid": APP_ID, "mchid": MCH_ID, "out_trade_no": o.out_trade_no,
        "trade_state": o.state, "trade_state_desc": o.state, "trade_type": "NATIVE",
        "amount": { "total": o.total, "payer_total": o.total, "currency": "CNY", "payer_currency": "CNY" },
    });
    if o.state != "NOTPAY" {
        t["transaction_id"] = json!(o.transaction_id);
        t["success_time"] = json!(o.success_time);
    }
    t
}

async fn query(
    State(sim): State<Arc<Sim>>,
    OriginalUri(uri): OriginalUri,
    Path(out_trade_no): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refusal) = refuse(&sim, Method::GET, &uri, &headers, b"").await {
        return refusal;
    }
    let order = sim
        .wechatpay
        .orders
        .lock()
        .unwrap()
        .get(&out_trade_no)
        .cloned();
    match order {
        Some(o) => signed(&sim, StatusCode::OK, transaction(&o)),
        None => error(
            &sim,
            StatusCode::NOT_FOUND,
            "ORDER_NOT_EXIST",
            "order does not exist",
        ),
    }
}

async fn refund(
    State(sim): State<Arc<Sim>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refusal) = refuse(&sim, Method::POST, &uri, &headers, &body).await {
        return refusal;
    }
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let (out_trade_no, out_refund_no) = (
        text(&request["out_trade_no"]),
        text(&request["out_refund_no"]),
    );
    let wanted = request["amount"]["refund"].as_i64().unwrap_or(0);
    let mut orders = sim.wechatpay.orders.lock().unwrap();
    let Some(o) = orders.get_mut(&out_trade_no) else {
        return error(
            &sim,
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_EXISTS",
            "order does not exist",
        );
    };
    let answer = |o: &Order, refund_id: &str, refund: i64| {
        json!({ "refund_id": refund_id, "out_refund_no": out_refund_no, "out_trade_no": o.out_trade_no,
                "transaction_id": o.transaction_id, "status": "SUCCESS",
                "amount": { "refund": refund, "total": o.total, "currency": "CNY" } })
    };
    if let Some((_, amount, id)) = o.refunds.iter().find(|(no, _, _)| *no == out_refund_no) {
        let body = answer(o, id, *amount);
        drop(orders);
        return signed(&sim, StatusCode::OK, body);
    }
    if !matches!(o.state, "SUCCESS" | "REFUND") {
        return error(
            &sim,
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "order is not paid",
        );
    }
    if wanted <= 0 || o.refunded + wanted > o.total {
        return error(
            &sim,
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "refund exceeds the amount paid",
        );
    }
    let refund_id = format!("5030{}", random_hex(10));
    o.refunded += wanted;
    o.state = "REFUND";
    o.refunds
        .push((out_refund_no.clone(), wanted, refund_id.clone()));
    let order = o.clone();
    drop(orders);
    let notify_url = text(&request["notify_url"]);
    if !notify_url.is_empty() {
        let resource = json!({
            "mchid": MCH_ID, "out_trade_no": order.out_trade_no, "transaction_id": order.transaction_id,
            "out_refund_no": out_refund_no, "refund_id": refund_id, "refund_status": "SUCCESS",
            "success_time": rfc3339_now(),
            "amount": { "total": order.total, "refund": wanted, "payer_total": order.total, "payer_refund": wanted },
        });
        notify(
            &sim,
            &order.out_trade_no,
            &notify_url,
            "REFUND.SUCCESS",
            "refund",
            resource,
        );
    }
    signed(&sim, StatusCode::OK, answer(&order, &refund_id, wanted))
}

fn rfc3339_now() -> String {
    now().2.replace(' ', "T") + "+08:00"
}

/// A refund made on the merchant platform, not through the API: notified to the order's
/// notification URL.
pub fn console_refund(sim: &Sim, out_trade_no: &str, wanted: i64) -> bool {
    let (order, out_refund_no, refund_id) = {
        let mut orders = sim.wechatpay.orders.lock().unwrap();
        let Some(o) = orders.get_mut(out_trade_no) else {
            return false;
        };
        if !matches!(o.state, "SUCCESS" | "REFUND") || wanted <= 0 || o.refunded + wanted > o.total
        {
            return false;
        }
        let out_refund_no = format!("console{}", random_hex(6));
        let refund_id = format!("5030{}", random_hex(10));
        o.refunded += wanted;
        o.state = "REFUND";
        o.refunds
            .push((out_refund_no.clone(), wanted, refund_id.clone()));
        (o.clone(), out_refund_no, refund_id)
    };
    let resource = json!({
        "mchid": MCH_ID, "out_trade_no": order.out_trade_no, "transaction_id": order.transaction_id,
        "out_refund_no": out_refund_no, "refund_id": refund_id, "refund_status": "SUCCESS",
        "success_time": rfc3339_now(),
        "amount": { "total": order.total, "refund": wanted, "payer_total": order.total, "payer_refund": wanted },
    });
    notify(
        sim,
        &order.out_trade_no,
        &order.notify_url,
        "REFUND.SUCCESS",
        "refund",
        resource,
    );
    true
}

/// The player scans and pays (through the control API).
pub fn pay(sim: &Sim, out_trade_no: &str) -> bool {
    let order = {
        let mut orders = sim.wechatpay.orders.lock().unwrap();
        let Some(o) = orders.get_mut(out_trade_no).filter(|o| o.state == "NOTPAY") else {
            return false;
        };
        let (_, day, _) = now();
        o.state = "SUCCESS";
        o.success_time = rfc3339_now();
        o.day = day;
        o.clone()
    };
    notify(
        sim,
        &order.out_trade_no,
        &order.notify_url,
        "TRANSACTION.SUCCESS",
        "transaction",
        transaction(&order),
    );
    true
}

/// Encrypts the resource with the APIv3 key and signs the envelope with the platform key.
fn notify(
    sim: &Sim,
    order_no: &str,
    url: &str,
    event_type: &str,
    original_type: &str,
    resource: Value,
) {
    let nonce = random_hex(6);
    let cipher =
        Aes256Gcm::new_from_slice(sim.keys.wechat_api_v3_key.as_bytes()).expect("32-byte key");
    let sealed = cipher
        .encrypt(
            &Nonce::try_from(nonce.as_bytes()).expect("12-byte nonce"),
            Payload {
                msg: resource.to_string().as_bytes(),
                aad: original_type.as_bytes(),
            },
        )
        .expect("encryption");
    let envelope = json!({
        "id": random_hex(16), "create_time": rfc3339_now(), "resource_type": "encrypt-resource",
        "event_type": event_type, "summary": "payment succeeded",
        "resource": {
            "original_type": original_type, "algorithm": "AEAD_AES_256_GCM",
            "ciphertext": base64::engine::general_purpose::STANDARD.encode(sealed),
            "associated_data": original_type, "nonce": nonce,
        },
    })
    .to_string();
    let headers = signature_headers(sim, &sim.keys.wechat_platform, &envelope);
    // Signed with a key that is not the platform's.
    let forged_headers = signature_headers(sim, &sim.keys.wechat_merchant, &envelope);
    sim.notifier.send(
        Notification {
            channel: "wechatpay",
            order_no: order_no.to_owned(),
            url: url.to_owned(),
            headers,
            body: envelope.clone().into_bytes(),
            forged: Some((forged_headers, envelope.into_bytes())),
            schedule: NOTIFY_SCHEDULE,
            is_ack: |status, _| (200..300).contains(&status),
        },
        &sim.faults,
    );
}

async fn trade_bill(
    State(sim): State<Arc<Sim>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refusal) = refuse(&sim, Method::GET, &uri, &headers, b"").await {
        return refusal;
    }
    let day = params.get("bill_date").cloned().unwrap_or_default();
    signed(
        &sim,
        StatusCode::OK,
        json!({ "hash_type": "SHA1", "hash_value": "",
                "download_url": format!("{}/wechatpay/v3/billdownload/file?token={day}", sim.base_url) }),
    )
}

/// The bill file: every field prefixed with a backtick, then a summary block.
async fn download(
    State(sim): State<Arc<Sim>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if let Some(refusal) = refuse(&sim, Method::GET, &uri, &headers, b"").await {
        return refusal;
    }
    let day = params.get("token").cloned().unwrap_or_default();
    let orders = sim.wechatpay.orders.lock().unwrap().clone();
    let yuan = |fen: i64| coffer_money::format_minor(fen, 2);
    // Fees in 1e-5 yuan, as the real bill writes them: 0.6% of 19.99 is 0.11994.
    let fee_text = |units: i64| coffer_money::format_minor(units, 5);
    // As WeChat Pay serves it: a BOM, CRLF line ends, a backtick before every field.
    let mut csv = String::from(
        "\u{feff}交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注\r\n",
    );
    let (mut count, mut settled, mut refunded, mut fees) = (0, 0, 0, 0);
    let edits = sim.statements.get("wechatpay");
    let mut listed: Vec<Order> = orders
        .values()
        .filter(|o| o.day == day && !edits.drop.contains(&o.out_trade_no))
        .cloned()
        .collect();
    for extra in &edits.extra_payments {
        listed.push(Order {
            out_trade_no: extra.out_trade_no.clone(),
            transaction_id: format!("4200{:016}", extra.amount_minor),
            total: extra.amount_minor,
            description: "unknown".into(),
            state: "SUCCESS",
            notify_url: String::new(),
            success_time: format!("{day}T12:00:00+08:00"),
            day: day.clone(),
            refunded: 0,
            refunds: Vec::new(),
        });
    }
    for extra in &edits.extra_refunds {
        if let Some(o) = listed
            .iter_mut()
            .find(|o| o.out_trade_no == extra.out_trade_no)
        {
            let id = format!("5030{:016}", extra.amount_minor);
            o.refunds.push((
                format!("console-{}", extra.amount_minor),
                extra.amount_minor,
                id,
            ));
        }
    }
    for o in &mut listed {
        if let Some(minor) = edits.amounts.get(&o.out_trade_no) {
            o.total = *minor;
        }
    }
    for o in &listed {
        let fee = o.total * 6;
        let time = o
            .success_time
            .replace('T', " ")
            .trim_end_matches("+08:00")
            .to_owned();
        csv.push_str(&format!(
            "`{time},`{APP_ID},`{MCH_ID},`0,`,`{},`{},`oUser,`NATIVE,`SUCCESS,`OTHERS,`CNY,`{},`0.00,`0,`0,`0.00,`0.00,`,`,`{},`,`{},`0.60%,`{},`0.00,`\r\n",
            o.transaction_id, o.out_trade_no, yuan(o.total), o.description, fee_text(fee), yuan(o.total)
        ));
        (count, settled, fees) = (count + 1, settled + o.total, fees + fee);
        for (refund_no, amount, refund_id) in &o.refunds {
            // The fee of what is refunded is given back: negative.
            let fee = -amount * 6;
            csv.push_str(&format!(
                "`{time},`{APP_ID},`{MCH_ID},`0,`,`{},`{},`oUser,`NATIVE,`REFUND,`OTHERS,`CNY,`0.00,`0.00,`{refund_id},`{refund_no},`{},`0.00,`ORIGINAL,`SUCCESS,`{},`,`{},`0.60%,`0.00,`{},`\r\n",
                o.transaction_id, o.out_trade_no, yuan(*amount), o.description, fee_text(fee), yuan(*amount)
            ));
            (count, refunded, fees) = (count + 1, refunded + amount, fees + fee);
        }
    }
    csv.push_str("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n");
    csv.push_str(&format!(
        "`{count},`{},`{},`0.00,`{},`{},`{}\r\n",
        yuan(settled),
        yuan(refunded),
        fee_text(fees),
        yuan(settled),
        yuan(refunded)
    ));
    ([(header::CONTENT_TYPE, "text/csv;charset=utf-8")], csv).into_response()
}
