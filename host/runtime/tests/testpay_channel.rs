//! The TestPay plugin end to end through the real runtime: what it signs, what it refuses.

mod common;

use coffer_plugin_runtime::contract::*;
use coffer_plugin_runtime::{Channel, PluginError};
use common::*;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// TestPay's signature computed here, independently of the plugin.
fn hmac_hex(message: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(TESTPAY_SECRET).unwrap();
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// A channel answer signed the way TestPay signs: HMAC over "timestamp\nbody".
fn signed_answer(status: u16, timestamp_s: i64, body: &str) -> HttpResponse {
    let signature = hmac_hex(format!("{timestamp_s}\n{body}").as_bytes());
    HttpResponse {
        status,
        headers: vec![
            ("X-TestPay-Timestamp".into(), timestamp_s.to_string()),
            ("X-TestPay-Signature".into(), signature),
        ],
        body: body.as_bytes().to_vec(),
    }
}

fn now_s() -> i64 {
    NOW_MS / 1000
}

fn context() -> PaymentContext {
    PaymentContext {
        order_no: "ORD-1".into(),
        amount: usd(1999),
        method: "testpay".into(),
        flow: CheckoutFlow::Redirect,
        channel_txn_id: None,
    }
}

const PAID: &str = r#"{"order_no":"ORD-1","txn_id":"TP-9","status":"paid","amount":"19.99","currency":"USD","paid_at":1795505400}"#;

async fn testpay() -> (TestRegistry, std::sync::Arc<Channel>) {
    let world = TestRegistry::with(&["testpay.wasm"]).await;
    let channel = world.registry.get("testpay").unwrap();
    (world, channel)
}

#[tokio::test]
async fn create_payment_is_signed_with_the_sealed_secret() {
    let (_world, channel) = testpay().await;
    let start = channel
        .create_payment(&payment_request("ORD-1", "100 Gems"), None)
        .await
        .unwrap();
    let PaymentStart::Call(request) = start else {
        panic!("expected a request: {start:?}");
    };
    assert_eq!(request.method, HttpMethod::Post);
    assert_eq!(request.url, format!("{TESTPAY_API}/payments"));
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["amount"], "19.99");
    assert_eq!(body["merchant_id"], "M-1001");
    assert_eq!(body["order_no"], "ORD-1");
    let timestamp = header(&request.headers, "x-testpay-timestamp").unwrap();
    assert_eq!(timestamp, now_s().to_string());
    let mut message = format!("{timestamp}\nPOST\n/testpay/payments\n").into_bytes();
    message.extend_from_slice(&request.body);
    assert_eq!(
        header(&request.headers, "x-testpay-signature"),
        Some(hmac_hex(&message).as_str())
    );
    assert_eq!(
        header(&request.headers, "user-agent"),
        Some("coffer-testpay/1.0.0")
    );
}

#[tokio::test]
async fn signed_paid_answer_becomes_a_paid_update() {
    let (_world, channel) = testpay().await;
    let outcome = channel
        .parse_payment_response(&context(), &signed_answer(200, now_s(), PAID))
        .await
        .unwrap();
    assert_eq!(outcome.update.status, PaymentStatus::Paid);
    assert_eq!(outcome.update.amount, Some(usd(1999)));
    assert_eq!(outcome.update.channel_txn_id.as_deref(), Some("TP-9"));
    assert_eq!(outcome.action, NextAction::None);
}

/// What the plugin makes of an answer to `create-payment` that it must refuse.
async fn refusal_of(answer: HttpResponse) -> ChannelError {
    let (_world, channel) = testpay().await;
    match channel.parse_payment_response(&context(), &answer).await {
        Err(PluginError::Channel(error)) => error,
        other => panic!("expected a channel error, got {other:?}"),
    }
}

#[tokio::test]
async fn tampered_answer_is_refused() {
    let mut answer = signed_answer(200, now_s(), PAID);
    answer.body = PAID.replace("19.99", "0.01").into_bytes();
    let error = refusal_of(answer).await;
    assert!(matches!(error, ChannelError::BadSignature(_)), "{error:?}");
}

#[tokio::test]
async fn answer_signed_with_another_secret_is_refused() {
    let mut answer = signed_answer(200, now_s(), PAID);
    answer.headers[1].1 = "00".repeat(32);
    let error = refusal_of(answer).await;
    assert!(matches!(error, ChannelError::BadSignature(_)), "{error:?}");
}

#[tokio::test]
async fn stale_answer_is_refused_even_if_signed() {
    let error = refusal_of(signed_answer(200, now_s() - 301, PAID)).await;
    assert!(matches!(error, ChannelError::BadSignature(_)), "{error:?}");
}

#[tokio::test]
async fn answer_in_another_currency_is_refused() {
    let error = refusal_of(signed_answer(200, now_s(), &PAID.replace("USD", "EUR"))).await;
    assert!(matches!(error, ChannelError::Malformed(_)), "{error:?}");
}

#[tokio::test]
async fn server_error_means_outcome_unknown() {
    let answer = HttpResponse {
        status: 502,
        headers: vec![],
        body: b"bad gateway".to_vec(),
    };
    let error = refusal_of(answer).await;
    assert!(matches!(error, ChannelError::Upstream(_)), "{error:?}");
}

#[tokio::test]
async fn signed_notification_is_verified_and_forged_one_rejected() {
    let (_world, channel) = testpay().await;
    let answer = signed_answer(200, now_s(), PAID);
    let mut notify = InboundRequest {
        kind: InboundKind::Notify,
        method: HttpMethod::Post,
        path: "/v1/callbacks/testpay".into(),
        query: String::new(),
        headers: answer.headers,
        body: answer.body,
    };
    let outcome = channel.parse_callback(&notify).await.unwrap();
    let CallbackVerdict::Verified(CallbackEvent::Payment(update)) = outcome.verdict else {
        panic!("expected a verified payment: {:?}", outcome.verdict);
    };
    assert_eq!(update.status, PaymentStatus::Paid);
    assert_eq!(outcome.ack_accepted.status, 200);

    notify.body = PAID.replace("ORD-1", "ORD-2").into_bytes();
    let outcome = channel.parse_callback(&notify).await.unwrap();
    assert!(matches!(
        outcome.verdict,
        CallbackVerdict::Rejected(ChannelError::BadSignature(_))
    ));
    assert_eq!(outcome.ack_rejected.status, 400);
}

#[tokio::test]
async fn browser_return_is_only_an_unverified_claim() {
    let (_world, channel) = testpay().await;
    let forged = InboundRequest {
        kind: InboundKind::BrowserReturn,
        method: HttpMethod::Get,
        path: "/v1/return/testpay".into(),
        query: "order_no=ORD-1&status=paid".into(),
        headers: vec![],
        body: vec![],
    };
    let outcome = channel.parse_callback(&forged).await.unwrap();
    assert_eq!(
        outcome.verdict,
        CallbackVerdict::Unverified(UnverifiedClaim {
            order_no: "ORD-1".into(),
            claimed_status: Some(PaymentStatus::Paid),
        })
    );
}

#[tokio::test]
async fn query_refund_and_statement_round_trip() {
    let (_world, channel) = testpay().await;
    let query = QueryRequest {
        order_no: "ORD-1".into(),
        channel_txn_id: Some("TP-9".into()),
        amount: usd(1999),
        started_at: NOW_MS / 1000,
    };
    let request = channel.build_query(&query).await.unwrap();
    assert_eq!(request.url, format!("{TESTPAY_API}/payments/ORD-1"));
    let update = channel
        .parse_query_response(&query, &signed_answer(200, now_s(), PAID))
        .await
        .unwrap();
    assert_eq!(update.status, PaymentStatus::Paid);

    let refund = RefundRequest {
        refund_no: "RF-1".into(),
        order_no: "ORD-1".into(),
        channel_txn_id: Some("TP-9".into()),
        order_amount: usd(1999),
        refund_amount: usd(500),
        reason: "player request".into(),
        notify_url: "http://127.0.0.1:8080/v1/callbacks/testpay".into(),
    };
    let request = channel.build_refund(&refund).await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["amount"], "5.00");
    let answer = r#"{"refund_no":"RF-1","order_no":"ORD-1","refund_id":"R-7","status":"succeeded","amount":"5.00","currency":"USD"}"#;
    let update = channel
        .parse_refund_response(&refund, &signed_answer(200, now_s(), answer))
        .await
        .unwrap();
    assert_eq!(update.status, RefundStatus::Succeeded);
    assert_eq!(update.amount, usd(500));

    let request = channel.build_statement_request("2026-11-23").await.unwrap();
    assert!(request.url.ends_with("/statements/2026-11-23"));
    let csv = "type,order_no,txn_id,amount,currency,fee,time,status\n\
               payment,ORD-1,TP-9,19.99,USD,0.58,1795505400,paid\n\
               refund,ORD-1,TP-9,-5.00,USD,,1795509000,refunded\n";
    let StatementStep::Document(document) = channel
        .parse_statement_response("2026-11-23", &signed_answer(200, now_s(), csv))
        .await
        .unwrap()
    else {
        panic!("expected the document");
    };
    let lines = channel.parse_statement(&document).await.unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].fee, Some(usd(58)));
    assert_eq!(lines[1].kind, StatementEntryKind::Refund);
    assert_eq!(lines[1].amount, usd(-500));
}

#[tokio::test]
async fn route_score_quotes_a_fee_or_declines() {
    let (_world, channel) = testpay().await;
    let mut context = RouteContext {
        amount: usd(10_000),
        method: "card".into(),
        flow: CheckoutFlow::DirectCard,
        country: "US".into(),
        card_bin: "424242".into(),
    };
    let quote = channel.route_score(&context).await.unwrap().unwrap();
    assert_eq!(quote.fee, usd(290));
    context.amount.currency = "GBP".into();
    assert_eq!(channel.route_score(&context).await.unwrap(), None);
}

#[tokio::test]
async fn unconfigured_channel_loads_but_reports_what_is_missing() {
    let world = TestRegistry::with_configs(&["testpay.wasm"], Default::default()).await;
    let channel = world.registry.get("testpay").unwrap();
    let status = channel.status();
    assert_eq!(status.missing_keys, ["api-secret"]);
    assert_eq!(status.missing_settings, ["merchant-id"]);
    assert_eq!(status.missing_endpoints, ["api"]);
    let error = channel
        .create_payment(&payment_request("ORD-1", "100 Gems"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(error, PluginError::Channel(ChannelError::Config(_))),
        "{error:?}"
    );
}

#[tokio::test]
async fn malformed_caller_input_is_reported_not_guessed_at() {
    let (_world, channel) = testpay().await;
    let error = channel
        .build_statement_request("yesterday")
        .await
        .unwrap_err();
    assert!(
        matches!(error, PluginError::Channel(ChannelError::Malformed(_))),
        "{error:?}"
    );
    let mut request = payment_request("ORD-1", "100 Gems");
    request.amount.currency = "XXX".into();
    let error = channel.create_payment(&request, None).await.unwrap_err();
    assert!(
        matches!(error, PluginError::Channel(ChannelError::Unsupported(_))),
        "{error:?}"
    );
}
