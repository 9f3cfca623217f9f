//! Alipay's open-platform gateway: page pay (cashier), QR precreate, query, refund, trade bill.
//! RSA2 everywhere: requests verified with the merchant's application public key, answers and
//! notifications signed with Alipay's key.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::keys::{SigningKey, random_hex, sign_sha256_base64, verify_sha256_base64};
use crate::notify::Notification;
use crate::{Sim, page};

pub const APP_ID: &str = "2021000000000001";
/// Alipay retries a notification 8 times over 25 hours: 4m, 10m, 10m, 1h, 2h, 6h, 15h.
const NOTIFY_SCHEDULE: &[u64] = &[0, 240, 600, 600, 3600, 7200, 21_600, 54_000];

#[derive(Debug, Clone)]
struct Trade {
    out_trade_no: String,
    trade_no: String,
    total_cents: i64,
    subject: String,
    body: String,
    status: &'static str,
    notify_url: String,
    return_url: String,
    day: String,
    paid_at: String,
    refunded_cents: i64,
    refunds: Vec<(String, i64)>,
}

/// Alipay's trades, by merchant order number.
#[derive(Default)]
pub struct Ledger {
    trades: Mutex<HashMap<String, Trade>>,
}

pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/gateway.do", get(gateway_get).post(gateway_post))
        .route("/cashier/{out_trade_no}/pay", post(cashier_pay))
        .route("/cashier/{out_trade_no}/close", post(cashier_close))
        .route("/bill/{day}", get(bill))
}

pub(crate) fn parse_form(bytes: &[u8]) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{}", String::from_utf8_lossy(bytes)))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

pub(crate) fn get_param<'a>(params: &'a [(String, String)], name: &str) -> &'a str {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The RSA2 content: sorted `k=v&...` without `sign` (and `sign_type` for notifications).
fn sign_content(params: &[(String, String)], excluded: &[&str]) -> String {
    let mut kept: Vec<_> = params
        .iter()
        .filter(|(k, v)| !v.is_empty() && !excluded.contains(&k.as_str()))
        .collect();
    kept.sort();
    kept.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// `{"<method>_response": node, "sign": "..."}` with the signature over the node's exact text.
fn signed_answer(sim: &Sim, method: &str, node: Value) -> Response {
    let member = format!("{}_response", method.replace('.', "_"));
    let text = node.to_string();
    let sign = sign_sha256_base64(&sim.keys.alipay_platform, text.as_bytes());
    let body = format!("{{\"{member}\":{text},\"sign\":\"{sign}\"}}");
    (
        [(header::CONTENT_TYPE, "application/json;charset=utf-8")],
        body,
    )
        .into_response()
}

fn business_error(sim: &Sim, method: &str, sub_code: &str, sub_msg: &str) -> Response {
    signed_answer(
        sim,
        method,
        json!({ "code": "40004", "msg": "Business Failed", "sub_code": sub_code, "sub_msg": sub_msg }),
    )
}

fn cents(text: &str) -> Option<i64> {
    coffer_money::parse_decimal(text, 2).ok()
}

fn yuan(cents: i64) -> String {
    coffer_money::format_minor(cents, 2)
}

async fn gateway_get(State(sim): State<Arc<Sim>>, RawQuery(query): RawQuery) -> Response {
    let params = parse_form(query.unwrap_or_default().as_bytes());
    gateway(&sim, params).await
}

async fn gateway_post(
    State(sim): State<Arc<Sim>>,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let mut params = parse_form(query.unwrap_or_default().as_bytes());
    params.extend(parse_form(&body));
    gateway(&sim, params).await
}

async fn gateway(sim: &Sim, params: Vec<(String, String)>) -> Response {
    if let Some(fault) = sim.faults.api().await {
        return fault;
    }
    let method = get_param(&params, "method").to_owned();
    let content = sign_content(&params, &["sign"]);
    if get_param(&params, "app_id") != APP_ID
        || !verify_sha256_base64(
            &sim.keys.alipay_app,
            content.as_bytes(),
            get_param(&params, "sign"),
        )
    {
        return signed_answer(
            sim,
            &method,
            json!({ "code": "40002", "msg": "Invalid Arguments", "sub_code": "isv.invalid-signature", "sub_msg": "signature verification failed" }),
        );
    }
    let biz: Value = serde_json::from_str(get_param(&params, "biz_content")).unwrap_or(Value::Null);
    let text = |k: &str| biz[k].as_str().unwrap_or_default().to_owned();
    match method.as_str() {
        "alipay.trade.page.pay" | "alipay.trade.precreate" => {
            let Some(total) = cents(&text("total_amount")).filter(|c| *c > 0) else {
                return business_error(sim, &method, "ACQ.INVALID_PARAMETER", "total_amount");
            };
            let out_trade_no = text("out_trade_no");
            let trade = Trade {
                out_trade_no: out_trade_no.clone(),
                trade_no: format!("2026{}", random_hex(10)),
                total_cents: total,
                subject: text("subject"),
                body: text("body"),
                status: "WAIT_BUYER_PAY",
                notify_url: get_param(&params, "notify_url").to_owned(),
                return_url: get_param(&params, "return_url").to_owned(),
                day: String::new(),
                paid_at: String::new(),
                refunded_cents: 0,
                refunds: vec![],
            };
            let mut trades = sim.alipay.trades.lock().unwrap();
            let existing = trades.entry(out_trade_no.clone()).or_insert(trade).clone();
            drop(trades);
            if existing.total_cents != total {
                return business_error(sim, &method, "ACQ.CONTEXT_INCONSISTENT", "order changed");
            }
            if method == "alipay.trade.page.pay" {
                return Html(page::decision(
                    "Alipay cashier (simulated)",
                    &format!(
                        "Pay {} CNY for {} (order {out_trade_no})",
                        yuan(total),
                        existing.subject
                    ),
                    &format!("/alipay/cashier/{out_trade_no}/pay"),
                    &format!("/alipay/cashier/{out_trade_no}/close"),
                ))
                .into_response();
            }
            signed_answer(
                sim,
                &method,
                json!({ "code": "10000", "msg": "Success", "out_trade_no": out_trade_no,
                        "qr_code": format!("{}/alipay/qr/{out_trade_no}", sim.base_url) }),
            )
        }
        "alipay.trade.query" => {
            let trades = sim.alipay.trades.lock().unwrap();
            match trades.get(&text("out_trade_no")) {
                Some(t) => signed_answer(sim, &method, trade_node(t)),
                None => business_error(sim, &method, "ACQ.TRADE_NOT_EXIST", "trade does not exist"),
            }
        }
        "alipay.trade.refund" => refund(sim, &method, &biz),
        "alipay.data.dataservice.bill.downloadurl.query" => signed_answer(
            sim,
            &method,
            json!({ "code": "10000", "msg": "Success",
                    "bill_download_url": format!("{}/alipay/bill/{}", sim.base_url, text("bill_date")) }),
        ),
        _ => business_error(sim, &method, "isv.invalid-method", "unknown method"),
    }
}

fn trade_node(t: &Trade) -> Value {
    json!({
        "code": "10000", "msg": "Success", "trade_no": t.trade_no, "out_trade_no": t.out_trade_no,
        "trade_status": t.status, "total_amount": yuan(t.total_cents),
        "send_pay_date": t.paid_at,
    })
}

fn refund(sim: &Sim, method: &str, biz: &Value) -> Response {
    let text = |k: &str| biz[k].as_str().unwrap_or_default().to_owned();
    let mut trades = sim.alipay.trades.lock().unwrap();
    let Some(t) = trades.get_mut(&text("out_trade_no")) else {
        return business_error(sim, method, "ACQ.TRADE_NOT_EXIST", "trade does not exist");
    };
    let request_no = text("out_request_no");
    let answer = |t: &Trade, fund_change: &str| {
        json!({ "code": "10000", "msg": "Success", "trade_no": t.trade_no, "out_trade_no": t.out_trade_no,
                "fund_change": fund_change, "refund_fee": yuan(t.refunded_cents) })
    };
    if t.refunds.iter().any(|(no, _)| *no == request_no) {
        let node = answer(t, "N");
        drop(trades);
        return signed_answer(sim, method, node);
    }
    let Some(wanted) = cents(&text("refund_amount")).filter(|c| *c > 0) else {
        return business_error(sim, method, "ACQ.INVALID_PARAMETER", "refund_amount");
    };
    if t.status != "TRADE_SUCCESS" {
        return business_error(
            sim,
            method,
            "ACQ.TRADE_STATUS_ERROR",
            "trade cannot be refunded",
        );
    }
    if t.refunded_cents + wanted > t.total_cents {
        return business_error(
            sim,
            method,
            "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL",
            "refund exceeds the amount paid",
        );
    }
    t.refunded_cents += wanted;
    t.refunds.push((request_no.clone(), wanted));
    if t.refunded_cents == t.total_cents {
        t.status = "TRADE_CLOSED";
    }
    let trade = t.clone();
    drop(trades);
    notify(sim, &trade, Some(&request_no));
    signed_answer(sim, method, answer(&trade, "Y"))
}

fn now_beijing() -> (String, String) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 8 * 3600;
    let day = crate::keys::civil_date(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    let time = format!("{day} {:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
    (day, time)
}

/// The trade's notification; `refund_no` for one about a refund (its `refund_fee` is the
/// trade's refunded total, as Alipay sends it).
fn notify(sim: &Sim, t: &Trade, refund_no: Option<&str>) {
    if t.notify_url.is_empty() {
        return;
    }
    let (_, now) = now_beijing();
    let mut params: Vec<(String, String)> = [
        ("notify_time", now.clone()),
        ("notify_type", "trade_status_sync".into()),
        ("notify_id", random_hex(12)),
        ("app_id", APP_ID.into()),
        ("charset", "utf-8".into()),
        ("version", "1.0".into()),
        ("sign_type", "RSA2".into()),
        ("trade_no", t.trade_no.clone()),
        ("out_trade_no", t.out_trade_no.clone()),
        ("trade_status", t.status.into()),
        ("total_amount", yuan(t.total_cents)),
        ("receipt_amount", yuan(t.total_cents)),
        ("subject", t.subject.clone()),
        ("body", t.body.clone()),
        ("gmt_payment", t.paid_at.clone()),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(request_no) = refund_no {
        params.push(("out_biz_no".into(), request_no.to_owned()));
        params.push(("refund_fee".into(), yuan(t.refunded_cents)));
        params.push(("gmt_refund".into(), now));
    }
    let signed = |key: &SigningKey| {
        let sign = sign_sha256_base64(
            key,
            sign_content(&params, &["sign", "sign_type"]).as_bytes(),
        );
        let mut all = params.clone();
        all.push(("sign".into(), sign));
        crate::carespay::form_body(
            &all.iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect::<Vec<_>>(),
        )
    };
    let headers = vec![(
        header::CONTENT_TYPE.to_string(),
        "application/x-www-form-urlencoded; charset=utf-8".to_owned(),
    )];
    sim.notifier.send(
        Notification {
            channel: "alipay",
            order_no: t.out_trade_no.clone(),
            url: t.notify_url.clone(),
            headers: headers.clone(),
            body: signed(&sim.keys.alipay_platform).into_bytes(),
            // Signed with a key that is not Alipay's.
            forged: Some((headers, signed(&sim.keys.alipay_app).into_bytes())),
            schedule: NOTIFY_SCHEDULE,
            is_ack: |_, body| body == b"success",
        },
        &sim.faults,
    );
}

/// The buyer pays (cashier button, or a scanned QR code through the control API).
pub fn pay(sim: &Sim, out_trade_no: &str) -> Option<String> {
    let trade = {
        let mut trades = sim.alipay.trades.lock().unwrap();
        let t = trades.get_mut(out_trade_no)?;
        if t.status != "WAIT_BUYER_PAY" {
            return None;
        }
        let (day, now) = now_beijing();
        t.status = "TRADE_SUCCESS";
        t.day = day;
        t.paid_at = now;
        t.clone()
    };
    notify(sim, &trade, None);
    Some(return_url(sim, &trade))
}

/// `count` trades paid today, `{prefix}{i}` for i in 0..count, of `cents` each, without
/// notifications: for benchmarks of a day's statement.
pub fn seed_paid(sim: &Sim, prefix: &str, count: usize, cents: i64) {
    let (day, now) = now_beijing();
    let mut trades = sim.alipay.trades.lock().unwrap();
    for i in 0..count {
        let out_trade_no = format!("{prefix}{i}");
        trades.insert(
            out_trade_no.clone(),
            Trade {
                out_trade_no,
                trade_no: format!("2026{prefix}{i:010}"),
                total_cents: cents,
                subject: "100 Gems".into(),
                body: String::new(),
                status: "TRADE_SUCCESS",
                notify_url: String::new(),
                return_url: String::new(),
                day: day.clone(),
                paid_at: now.clone(),
                refunded_cents: 0,
                refunds: Vec::new(),
            },
        );
    }
}

/// A refund made in the merchant's console, not through the API: Alipay only notifies it.
pub fn console_refund(sim: &Sim, out_trade_no: &str, cents: i64) -> bool {
    let trade = {
        let mut trades = sim.alipay.trades.lock().unwrap();
        let Some(t) = trades.get_mut(out_trade_no) else {
            return false;
        };
        if t.status != "TRADE_SUCCESS" || cents <= 0 || t.refunded_cents + cents > t.total_cents {
            return false;
        }
        t.refunded_cents += cents;
        t.refunds
            .push((format!("console-{}", random_hex(6)), cents));
        if t.refunded_cents == t.total_cents {
            t.status = "TRADE_CLOSED";
        }
        t.clone()
    };
    let request_no = trade.refunds.last().expect("just pushed").0.clone();
    notify(sim, &trade, Some(&request_no));
    true
}

/// The synchronous return: signed parameters on the merchant's return URL.
fn return_url(sim: &Sim, t: &Trade) -> String {
    let mut params: Vec<(String, String)> = [
        ("app_id", APP_ID.to_owned()),
        ("out_trade_no", t.out_trade_no.clone()),
        ("trade_no", t.trade_no.clone()),
        ("total_amount", yuan(t.total_cents)),
        ("method", "alipay.trade.page.pay.return".to_owned()),
        ("sign_type", "RSA2".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let sign = sign_sha256_base64(
        &sim.keys.alipay_platform,
        sign_content(&params, &["sign", "sign_type"]).as_bytes(),
    );
    params.push(("sign".into(), sign));
    let query = crate::carespay::form_body(
        &params
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect::<Vec<_>>(),
    );
    let separator = if t.return_url.contains('?') { '&' } else { '?' };
    format!("{}{separator}{query}", t.return_url)
}

async fn cashier_pay(State(sim): State<Arc<Sim>>, Path(out_trade_no): Path<String>) -> Response {
    match pay(&sim, &out_trade_no) {
        Some(url) => Redirect::to(&url).into_response(),
        None => (StatusCode::CONFLICT, "trade cannot be paid").into_response(),
    }
}

async fn cashier_close(State(sim): State<Arc<Sim>>, Path(out_trade_no): Path<String>) -> Response {
    let trade = {
        let mut trades = sim.alipay.trades.lock().unwrap();
        let Some(t) = trades
            .get_mut(&out_trade_no)
            .filter(|t| t.status == "WAIT_BUYER_PAY")
        else {
            return (StatusCode::CONFLICT, "trade cannot be closed").into_response();
        };
        t.status = "TRADE_CLOSED";
        t.clone()
    };
    notify(&sim, &trade, None);
    Html("<!doctype html><p>Payment cancelled.</p>").into_response()
}

/// The trade bill of one day: a zip with the GBK detail CSV, as Alipay serves it.
async fn bill(State(sim): State<Arc<Sim>>, Path(day): Path<String>) -> Response {
    let trades = sim.alipay.trades.lock().unwrap().clone();
    let mut csv = String::from("#支付宝业务明细查询\n#账号：[20880000000000010156]\n");
    csv.push_str(&format!(
        "#起始日期：[{day} 00:00:00]   终止日期：[{day} 23:59:59]\n"
    ));
    csv.push_str("#-----------------------------------------业务明细列表----------------------------------------\n");
    csv.push_str("支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注\n");
    let (mut trade_count, mut refund_count, mut fee_column) = (0, 0, 0);
    let (mut gross, mut refunded) = (0, 0);
    let edits = sim.statements.get("alipay");
    let mut listed: Vec<Trade> = trades
        .values()
        .filter(|t| t.day == day && !edits.drop.contains(&t.out_trade_no))
        .cloned()
        .collect();
    for extra in &edits.extra_payments {
        listed.push(Trade {
            out_trade_no: extra.out_trade_no.clone(),
            trade_no: format!("2026{:012}", extra.amount_minor),
            total_cents: extra.amount_minor,
            subject: "unknown".into(),
            body: String::new(),
            status: "TRADE_SUCCESS",
            notify_url: String::new(),
            return_url: String::new(),
            day: day.clone(),
            paid_at: format!("{day} 12:00:00"),
            refunded_cents: 0,
            refunds: Vec::new(),
        });
    }
    for extra in &edits.extra_refunds {
        if let Some(trade) = listed
            .iter_mut()
            .find(|t| t.out_trade_no == extra.out_trade_no)
        {
            trade.refunds.push((
                format!("console-{}", extra.amount_minor),
                extra.amount_minor,
            ));
        }
    }
    for t in &mut listed {
        if let Some(amount) = edits.amounts.get(&t.out_trade_no) {
            t.total_cents = *amount;
        }
    }
    for t in &listed {
        let fee = (t.total_cents * 6 + 500) / 1000;
        csv.push_str(&format!(
            "{}\t,{}\t,交易,{},{},{},,,,,buyer@example.com,{},{},0.00,0.00,0.00,0.00,0.00,,0.00,0.00,,-{},0.00,\n",
            t.trade_no, t.out_trade_no, t.subject, t.paid_at, t.paid_at, yuan(t.total_cents), yuan(t.total_cents), yuan(fee)
        ));
        (trade_count, fee_column, gross) =
            (trade_count + 1, fee_column - fee, gross + t.total_cents);
        for (request_no, amount) in &t.refunds {
            // The fee of what is refunded comes back to the merchant: positive.
            let fee_back = (amount * 6 + 500) / 1000;
            csv.push_str(&format!(
                "{}\t,{}\t,退款,{},{},{},,,,,buyer@example.com,-{},-{},0.00,0.00,0.00,0.00,0.00,,0.00,0.00,{request_no},{},0.00,\n",
                t.trade_no, t.out_trade_no, t.subject, t.paid_at, t.paid_at, yuan(*amount), yuan(*amount), yuan(fee_back)
            ));
            (refund_count, fee_column, refunded) =
                (refund_count + 1, fee_column + fee_back, refunded + amount);
        }
    }
    csv.push_str("#-----------------------------------------业务明细列表结束------------------------------------\n");
    csv.push_str(&format!(
        "#交易合计：{trade_count}笔，退款合计：{refund_count}笔\n#导出时间：[{day} 09:00:00]\n"
    ));
    let signed = |fen: i64| coffer_money::format_minor(fen, 2);
    let summary = format!(
        "#支付宝业务汇总查询\n#账号：[20880000000000010156]\n\
         门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）,支付宝优惠（元）,商家优惠（元）,卡消费金额（元）,服务费（元）,分润（元）,实收净额（元）\n\
         合计,,{trade_count},{refund_count},{},{},0.00,0.00,0.00,{},0.00,{}\n\
         #导出时间：[{day} 09:00:00]\n",
        signed(gross - refunded),
        signed(gross - refunded),
        signed(fee_column),
        signed(gross - refunded + fee_column)
    );
    let (summary_gbk, _, _) = encoding_rs::GBK.encode(&summary);
    let (gbk, _, _) = encoding_rs::GBK.encode(&csv);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default();
    let compact = day.replace('-', "");
    for (name, bytes) in [
        (
            format!("20880000000000010156_{compact}_业务明细.csv"),
            gbk.to_vec(),
        ),
        (
            format!("20880000000000010156_{compact}_业务明细(汇总).csv"),
            summary_gbk.to_vec(),
        ),
    ] {
        zip.start_file(name, options).expect("zip entry");
        zip.write_all(&bytes).expect("zip write");
    }
    let archive = zip.finish().expect("zip finish").into_inner();
    ([(header::CONTENT_TYPE, "application/zip")], archive).into_response()
}
