//! `/_control`: drive the simulator from a test or a terminal.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Faults, Sim};

pub fn router() -> Router<Arc<Sim>> {
    Router::new()
        .route("/faults", get(get_faults).put(put_faults))
        .route(
            "/statements/{channel}",
            axum::routing::put(put_statement_edits),
        )
        .route("/notifications", get(notifications))
        .route("/carespay/3ds/{order_no}", post(carespay_3ds))
        .route("/alipay/pay/{out_trade_no}", post(alipay_pay))
        .route("/alipay/seed", post(alipay_seed))
        .route("/wechatpay/pay/{out_trade_no}", post(wechatpay_pay))
        .route("/appstore/transactions", post(appstore_transaction))
        .route("/appstore/notify", post(appstore_notify))
        .route("/googleplay/purchases", post(googleplay_purchase))
        .route(
            "/googleplay/purchases/{token}/{change}",
            post(googleplay_change),
        )
        .route(
            "/googleplay/ack-failures",
            axum::routing::put(googleplay_ack_failures),
        )
        .route("/googleplay/stats", get(googleplay_stats))
        .route("/googleplay/rtdn", post(googleplay_rtdn))
        .route(
            "/unionpay/pay/{order_id}",
            post(crate::unionpay::control_pay),
        )
        .route("/alipay/refund/{out_trade_no}", post(alipay_console_refund))
        .route(
            "/wechatpay/refund/{out_trade_no}",
            post(wechatpay_console_refund),
        )
}

/// A purchase made on a device: `{ transaction_id, signed_transaction }`.
async fn appstore_transaction(
    State(sim): State<Arc<Sim>>,
    Json(new): Json<crate::appstore::NewTransaction>,
) -> Json<Value> {
    Json(crate::appstore::create_transaction(&sim, new))
}

/// A Server Notification V2 sent to Coffer: `{ status }`, Coffer's answer.
async fn appstore_notify(
    State(sim): State<Arc<Sim>>,
    Json(notify): Json<crate::appstore::Notify>,
) -> Result<Json<Value>, (axum::http::StatusCode, String)> {
    match crate::appstore::notify(&sim, notify).await {
        Ok(status) => Ok(Json(json!({ "status": status }))),
        Err(why) => Err((axum::http::StatusCode::CONFLICT, why)),
    }
}

/// A purchase made on an Android device: `{ token, order_id }`.
async fn googleplay_purchase(
    State(sim): State<Arc<Sim>>,
    Json(new): Json<crate::googleplay::NewPurchase>,
) -> Json<Value> {
    Json(crate::googleplay::create_purchase(&sim, new))
}

/// `complete` a pending purchase or `void` one.
async fn googleplay_change(
    State(sim): State<Arc<Sim>>,
    Path((token, change)): Path<(String, String)>,
) -> Result<Json<Value>, (axum::http::StatusCode, String)> {
    if crate::googleplay::change_purchase(&sim, &token, &change) {
        Ok(Json(json!({ "changed": change })))
    } else {
        Err((
            axum::http::StatusCode::CONFLICT,
            format!("cannot {change} purchase {token}"),
        ))
    }
}

#[derive(Deserialize)]
struct AckFailures {
    count: u64,
}

/// The next `count` acknowledgements are refused with a 503.
async fn googleplay_ack_failures(
    State(sim): State<Arc<Sim>>,
    Json(failures): Json<AckFailures>,
) -> Json<Value> {
    crate::googleplay::fail_acks(&sim, failures.count);
    Json(json!({ "ack_failures_left": failures.count }))
}

async fn googleplay_stats(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(crate::googleplay::stats(&sim))
}

/// A developer notification pushed to Coffer: `{ status }`, Coffer's answer.
async fn googleplay_rtdn(
    State(sim): State<Arc<Sim>>,
    Json(push): Json<crate::googleplay::Push>,
) -> Result<Json<Value>, (axum::http::StatusCode, String)> {
    match crate::googleplay::push(&sim, push).await {
        Ok(status) => Ok(Json(json!({ "status": status }))),
        Err(why) => Err((axum::http::StatusCode::CONFLICT, why)),
    }
}

#[derive(Deserialize)]
struct ConsoleRefund {
    amount_minor: i64,
}

/// A refund made in Alipay's merchant console (notified, never asked for through the API).
async fn alipay_console_refund(
    State(sim): State<Arc<Sim>>,
    Path(out_trade_no): Path<String>,
    Json(refund): Json<ConsoleRefund>,
) -> Result<Json<Value>, (axum::http::StatusCode, String)> {
    if crate::alipay::console_refund(&sim, &out_trade_no, refund.amount_minor) {
        Ok(Json(json!({ "refunded": refund.amount_minor })))
    } else {
        Err((
            axum::http::StatusCode::CONFLICT,
            format!("trade {out_trade_no} cannot be refunded that much"),
        ))
    }
}

/// A refund made on WeChat Pay's merchant platform.
async fn wechatpay_console_refund(
    State(sim): State<Arc<Sim>>,
    Path(out_trade_no): Path<String>,
    Json(refund): Json<ConsoleRefund>,
) -> Result<Json<Value>, (axum::http::StatusCode, String)> {
    if crate::wechatpay::console_refund(&sim, &out_trade_no, refund.amount_minor) {
        Ok(Json(json!({ "refunded": refund.amount_minor })))
    } else {
        Err((
            axum::http::StatusCode::CONFLICT,
            format!("order {out_trade_no} cannot be refunded that much"),
        ))
    }
}

/// The discrepancies `channel`'s statements carry from now on (replacing earlier ones).
async fn put_statement_edits(
    State(sim): State<Arc<Sim>>,
    Path(channel): Path<String>,
    Json(edits): Json<crate::statements::StatementEdits>,
) -> Json<crate::statements::StatementEdits> {
    sim.statements.set(&channel, edits.clone());
    Json(edits)
}

#[derive(Deserialize)]
struct Seed {
    prefix: String,
    count: usize,
    amount_minor: i64,
}

/// Paid trades of today, without notifications (for statement benchmarks).
async fn alipay_seed(State(sim): State<Arc<Sim>>, Json(seed): Json<Seed>) -> Json<Value> {
    crate::alipay::seed_paid(&sim, &seed.prefix, seed.count, seed.amount_minor);
    Json(json!({ "seeded": seed.count }))
}

async fn get_faults(State(sim): State<Arc<Sim>>) -> Json<Faults> {
    Json(sim.faults.get())
}

async fn put_faults(State(sim): State<Arc<Sim>>, Json(faults): Json<Faults>) -> Json<Faults> {
    sim.faults.set(faults.clone());
    Json(faults)
}

async fn notifications(State(sim): State<Arc<Sim>>) -> Json<Value> {
    Json(json!({ "deliveries": sim.notifier.deliveries() }))
}

#[derive(Deserialize)]
struct Decision {
    approve: bool,
}

/// The cardholder's 3-D Secure decision, without a browser. Answers the URL the browser would
/// be sent back to.
async fn carespay_3ds(
    State(sim): State<Arc<Sim>>,
    Path(order_no): Path<String>,
    Json(decision): Json<Decision>,
) -> Result<Json<Value>, (axum::http::StatusCode, String)> {
    let return_url = crate::carespay::decide_3ds(&sim, &order_no, decision.approve).ok_or((
        axum::http::StatusCode::NOT_FOUND,
        format!("no 3-D Secure challenge for {order_no}"),
    ))?;
    Ok(Json(json!({ "return_url": return_url })))
}

/// The buyer pays an Alipay trade (as if the QR code was scanned). Answers the return URL.
async fn alipay_pay(
    State(sim): State<Arc<Sim>>,
    Path(out_trade_no): Path<String>,
) -> Result<Json<Value>, (axum::http::StatusCode, String)> {
    let return_url = crate::alipay::pay(&sim, &out_trade_no).ok_or((
        axum::http::StatusCode::CONFLICT,
        format!("no payable trade {out_trade_no}"),
    ))?;
    Ok(Json(json!({ "return_url": return_url })))
}

/// The player scans the WeChat Pay code and pays.
async fn wechatpay_pay(
    State(sim): State<Arc<Sim>>,
    Path(out_trade_no): Path<String>,
) -> Result<Json<Value>, (axum::http::StatusCode, String)> {
    if crate::wechatpay::pay(&sim, &out_trade_no) {
        Ok(Json(json!({ "paid": out_trade_no })))
    } else {
        Err((
            axum::http::StatusCode::CONFLICT,
            format!("no payable order {out_trade_no}"),
        ))
    }
}
