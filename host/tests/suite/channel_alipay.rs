//! Alipay against the simulator, through the real plugin runtime and the host's HTTP client.

use crate::channels::*;
use coffer_plugin_runtime::PluginError;
use coffer_plugin_runtime::contract::*;
use coffer_sim::alipay::APP_ID;

async fn alipay() -> ChannelWorld {
    alipay_with_app_id(APP_ID).await
}

async fn alipay_with_app_id(app_id: &str) -> ChannelWorld {
    let app_id = app_id.to_owned();
    ChannelWorld::start("alipay.wasm", move |sim, keys| {
        let pem = |f: &str| keys.join(f).display().to_string();
        format!(
            "[channels.alipay]\n\
             settings = {{ app-id = \"{app_id}\" }}\n\
             endpoints = {{ gateway = \"{sim}/alipay/gateway.do\", bill = \"{sim}/alipay/bill\" }}\n\
             keys = {{ app-private-key = {{ file = {:?}, format = \"pem\" }}, alipay-public-key = {{ file = {:?}, format = \"pem\" }} }}\n",
            pem("alipay-app-private.pem"),
            pem("alipay-public.pem"),
        )
    })
    .await
}

fn qr_payment(world: &ChannelWorld, order_no: &str, minor: i64) -> PaymentRequest {
    let mut request = payment(
        order_no,
        cny(minor),
        CheckoutFlow::QrCode,
        &world.merchant.url,
    );
    request.method = "alipay".into();
    request
}

async fn control(world: &ChannelWorld, path: &str) -> serde_json::Value {
    reqwest::Client::new()
        .post(world.sim.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn verified_payment(verdict: &CallbackVerdict) -> &PaymentUpdate {
    match verdict {
        CallbackVerdict::Verified(CallbackEvent::Payment(update)) => update,
        other => panic!("expected a verified payment notification, got {other:?}"),
    }
}

#[tokio::test]
async fn qr_precreate_then_scan_is_paid_notified_and_queried() {
    let world = alipay().await;
    let outcome = world
        .pay(&qr_payment(&world, "AP-QR-1", 1999))
        .await
        .unwrap();
    assert_eq!(outcome.update.status, PaymentStatus::RequiresAction);
    let NextAction::QrCode(qr) = &outcome.action else {
        panic!("expected a QR code, got {:?}", outcome.action);
    };
    assert!(qr.ends_with("/alipay/qr/AP-QR-1"));

    control(&world, "/_control/alipay/pay/AP-QR-1").await;
    let verdicts = world.merchant.wait_for(1).await;
    let update = verified_payment(&verdicts[0]);
    assert_eq!(update.status, PaymentStatus::Paid);
    assert_eq!(update.amount, Some(cny(1999)));
    assert!(update.channel_txn_id.is_some());

    let update = world.query(&query("AP-QR-1", cny(1999))).await.unwrap();
    assert_eq!(update.status, PaymentStatus::Paid);
    assert!(update.paid_at.is_some());
}

#[tokio::test]
async fn page_pay_is_a_signed_cashier_url_the_gateway_accepts() {
    let world = alipay().await;
    let mut request = qr_payment(&world, "AP-PAGE-1", 1999);
    request.flow = CheckoutFlow::Redirect;
    let PaymentStart::Action(NextAction::Redirect(url)) =
        world.channel.create_payment(&request, None).await.unwrap()
    else {
        panic!("page pay is a redirect");
    };

    // The signature, checked here independently of the plugin with the app's public key.
    let parsed = reqwest::Url::parse(&url).unwrap();
    let mut params: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    let sign = params.iter().find(|(k, _)| k == "sign").unwrap().1.clone();
    params.retain(|(k, v)| k != "sign" && !v.is_empty());
    params.sort();
    let content = params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    assert!(coffer_sim::keys::verify_sha256_base64(
        &world.sim.sim.keys.alipay_app,
        content.as_bytes(),
        &sign
    ));

    let cashier = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(cashier.contains("Pay 19.99 CNY"), "{cashier}");
    let tampered = url.replace("19.99", "0.01");
    let refused = reqwest::get(&tampered).await.unwrap().text().await.unwrap();
    assert!(refused.contains("isv.invalid-signature"), "{refused}");

    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let paid = no_redirects
        .post(world.sim.url("/alipay/cashier/AP-PAGE-1/pay"))
        .send()
        .await
        .unwrap();
    let back = paid.headers()["location"].to_str().unwrap().to_owned();
    assert!(matches!(
        world.browser_return(&back).await,
        CallbackVerdict::Unverified(_)
    ));
    assert_eq!(
        world
            .query(&query("AP-PAGE-1", cny(1999)))
            .await
            .unwrap()
            .status,
        PaymentStatus::Paid
    );
}

#[tokio::test]
async fn unopened_page_pay_trade_is_pending_not_failed() {
    let world = alipay().await;
    let update = world.query(&query("AP-NEVER-1", cny(1999))).await.unwrap();
    assert_eq!(update.status, PaymentStatus::Pending);
    assert_eq!(update.channel_status, "TRADE_NOT_EXIST");
}

#[tokio::test]
async fn tampered_answer_is_refused() {
    let world = alipay().await;
    let request = qr_payment(&world, "AP-TAMPER-1", 1999);
    let PaymentStart::Call(call) = world.channel.create_payment(&request, None).await.unwrap()
    else {
        panic!()
    };
    let mut response = world.http.send(&call).await.unwrap();
    let body = String::from_utf8(response.body.clone()).unwrap();
    response.body = body.replace("/alipay/qr/", "/evil/qr/").into_bytes();
    let context = PaymentContext {
        order_no: "AP-TAMPER-1".into(),
        amount: cny(1999),
        method: "alipay".into(),
        flow: CheckoutFlow::QrCode,
        channel_txn_id: None,
    };
    let error = world
        .channel
        .parse_payment_response(&context, &response)
        .await
        .unwrap_err();
    assert!(
        matches!(error, PluginError::Channel(ChannelError::BadSignature(_))),
        "{error:?}"
    );
}

#[tokio::test]
async fn notification_signed_with_another_key_is_rejected_then_the_genuine_retry_accepted() {
    let world = alipay().await;
    world
        .set_faults(serde_json::json!({ "forge_notifications": 1 }))
        .await;
    world
        .pay(&qr_payment(&world, "AP-FORGE-1", 1999))
        .await
        .unwrap();
    control(&world, "/_control/alipay/pay/AP-FORGE-1").await;
    let verdicts = world.merchant.wait_for(2).await;
    assert!(
        matches!(
            verdicts[0],
            CallbackVerdict::Rejected(ChannelError::BadSignature(_))
        ),
        "{:?}",
        verdicts[0]
    );
    assert_eq!(verified_payment(&verdicts[1]).status, PaymentStatus::Paid);
}

#[tokio::test]
async fn notification_for_another_app_is_rejected() {
    // Our plugin belongs to another app id than the one the simulator notifies for.
    let world = alipay_with_app_id("2021000000009999").await;
    let channel = world.channel.clone();
    let genuine = InboundRequest {
        kind: InboundKind::Notify,
        method: HttpMethod::Post,
        path: "/v1/callbacks/alipay".into(),
        query: String::new(),
        headers: vec![],
        body: signed_notification(&world, APP_ID).into_bytes(),
    };
    let verdict = channel.parse_callback(&genuine).await.unwrap().verdict;
    assert!(
        matches!(&verdict, CallbackVerdict::Rejected(ChannelError::BadSignature(m)) if m.contains("app_id")),
        "{verdict:?}"
    );
}

/// A notification signed with the simulator's Alipay key, built here.
fn signed_notification(world: &ChannelWorld, app_id: &str) -> String {
    let mut params = vec![
        ("app_id", app_id.to_owned()),
        ("out_trade_no", "AP-X-1".to_owned()),
        ("trade_no", "2026000001".to_owned()),
        ("trade_status", "TRADE_SUCCESS".to_owned()),
        ("total_amount", "19.99".to_owned()),
    ];
    params.sort();
    let content = params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let sign = coffer_sim::keys::sign_sha256_base64(
        &world.sim.sim.keys.alipay_platform,
        content.as_bytes(),
    );
    params.push(("sign_type", "RSA2".to_owned()));
    params.push(("sign", sign));
    let mut url = reqwest::Url::parse("http://x/").unwrap();
    url.query_pairs_mut()
        .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())));
    url.query().unwrap().to_owned()
}

#[tokio::test]
async fn refunds_partial_then_full_and_the_gbk_bill() {
    let world = alipay().await;
    world
        .pay(&qr_payment(&world, "AP-RF-1", 1999))
        .await
        .unwrap();
    control(&world, "/_control/alipay/pay/AP-RF-1").await;
    world.merchant.wait_for(1).await;
    let refund =
        |refund_no: &str, minor: i64| world.refund_of("AP-RF-1", refund_no, cny(1999), cny(minor));
    assert_eq!(
        world.refund(&refund("RF-1", 500)).await.unwrap().status,
        RefundStatus::Succeeded
    );
    let too_much = world.refund(&refund("RF-2", 1500)).await.unwrap();
    assert_eq!(too_much.status, RefundStatus::Failed);
    assert_eq!(
        too_much.failure.unwrap().code,
        "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    );
    assert_eq!(
        world.refund(&refund("RF-3", 1499)).await.unwrap().status,
        RefundStatus::Succeeded
    );
    assert_eq!(
        world
            .query(&query("AP-RF-1", cny(1999)))
            .await
            .unwrap()
            .status,
        PaymentStatus::Refunded
    );
    // Refund notifications: partial, then the trade closed by the full refund.
    let verdicts = world.merchant.wait_for(3).await;
    assert_eq!(
        verified_payment(&verdicts[1]).status,
        PaymentStatus::PartiallyRefunded
    );
    assert_eq!(
        verified_payment(&verdicts[2]).status,
        PaymentStatus::Refunded
    );

    let lines = world.statement(&beijing_today()).await.unwrap();
    let trade = lines
        .iter()
        .find(|l| l.kind == StatementEntryKind::Payment)
        .unwrap();
    assert_eq!(trade.order_no.as_deref(), Some("AP-RF-1"));
    assert_eq!(trade.amount, cny(1999));
    assert_eq!(trade.fee, Some(cny(12)));
    let refunds: Vec<(i64, i64)> = lines
        .iter()
        .filter(|l| l.kind == StatementEntryKind::Refund)
        .map(|l| (l.amount.minor, l.fee.as_ref().unwrap().minor))
        .collect();
    // The fee of what is refunded is given back (negative): 0.6% of 5.00 and of 14.99.
    assert_eq!(refunds, [(-500, -3), (-1499, -9)]);
}

#[tokio::test]
async fn only_yuan_is_accepted() {
    let world = alipay().await;
    let mut request = qr_payment(&world, "AP-USD-1", 1999);
    request.amount = money(1999, "USD");
    let error = world
        .channel
        .create_payment(&request, None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, PluginError::Channel(ChannelError::Unsupported(_))),
        "{error:?}"
    );
}

fn beijing_today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 8 * 3600;
    coffer_sim::keys::civil_date(secs / 86_400)
}

#[tokio::test]
async fn reordered_notifications_deliver_a_stale_state_after_a_newer_one() {
    let world = alipay().await;
    world
        .set_faults(serde_json::json!({ "reorder_notifications": true }))
        .await;
    world
        .pay(&qr_payment(&world, "AP-ORDER-1", 1999))
        .await
        .unwrap();
    control(&world, "/_control/alipay/pay/AP-ORDER-1").await;
    world.merchant.wait_for(1).await;
    let refund = world.refund_of("AP-ORDER-1", "RF-1", cny(1999), cny(500));
    world.refund(&refund).await.unwrap();
    let verdicts = world.merchant.wait_for(3).await;
    let states: Vec<PaymentStatus> = verdicts
        .iter()
        .map(|v| verified_payment(v).status)
        .collect();
    // Every copy verifies: ordering is the host's problem, which it must solve by state, not
    // by arrival (a paid notification must not undo a refund).
    assert_eq!(
        states,
        [
            PaymentStatus::Paid,
            PaymentStatus::PartiallyRefunded,
            PaymentStatus::Paid
        ]
    );
}

#[tokio::test]
async fn notification_forms_that_sign_alike_but_read_differently_are_rejected() {
    let world = alipay().await;
    let genuine = signed_notification(&world, APP_ID);
    let notify = |body: String| InboundRequest {
        kind: InboundKind::Notify,
        method: HttpMethod::Post,
        path: "/v1/callbacks/alipay".into(),
        query: String::new(),
        headers: vec![],
        body: body.into_bytes(),
    };
    let accepted = world
        .channel
        .parse_callback(&notify(genuine.clone()))
        .await
        .unwrap();
    assert!(
        matches!(accepted.verdict, CallbackVerdict::Verified(_)),
        "{:?}",
        accepted.verdict
    );
    // An empty duplicate is left out of the signed string but would be read first.
    let duplicated = format!("trade_status=&{genuine}");
    // A value hiding "&key=value" signs like two parameters.
    let folded = genuine.replace("total_amount=19.99", "total_amount=19.99%26gmt_refund%3Dx");
    for (name, body) in [("duplicated", duplicated), ("folded", folded)] {
        let verdict = world
            .channel
            .parse_callback(&notify(body))
            .await
            .unwrap()
            .verdict;
        assert!(
            matches!(
                verdict,
                CallbackVerdict::Rejected(ChannelError::BadSignature(_))
            ),
            "{name}: {verdict:?}"
        );
    }
}

#[tokio::test]
async fn unsigned_refusal_settles_nothing() {
    let world = alipay().await;
    let refund = world.refund_of("AP-UNSIGNED-1", "RF-1", cny(1999), cny(1999));
    // What a man in the middle could answer: a business refusal without Alipay's signature.
    let forged = HttpResponse {
        status: 200,
        headers: vec![],
        body: br#"{"alipay_trade_refund_response":{"code":"40004","msg":"Business Failed","sub_code":"ACQ.TRADE_STATUS_ERROR"}}"#.to_vec(),
    };
    let error = world
        .channel
        .parse_refund_response(&refund, &forged)
        .await
        .unwrap_err();
    assert!(
        matches!(error, PluginError::Channel(ChannelError::Upstream(_))),
        "{error:?}"
    );
}
