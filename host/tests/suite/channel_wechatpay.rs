//! WeChat Pay v3 against the simulator, through the real plugin runtime and the host's HTTP
//! client.

use crate::channels::*;
use base64::Engine as _;
use coffer_plugin_runtime::PluginError;
use coffer_plugin_runtime::contract::*;
use coffer_sim::wechatpay::{APP_ID, MCH_ID, MERCHANT_SERIAL};

async fn wechatpay() -> ChannelWorld {
    wechatpay_trusting(None).await
}

/// With `platform_serial`, the plugin trusts that serial instead of the simulator's.
async fn wechatpay_trusting(platform_serial: Option<&str>) -> ChannelWorld {
    let platform_serial = platform_serial.map(str::to_owned);
    ChannelWorld::start("wechatpay.wasm", move |sim, keys| {
        let file = |f: &str| keys.join(f).display().to_string();
        let serial = platform_serial
            .clone()
            .unwrap_or_else(|| std::fs::read_to_string(keys.join("wechat-platform-serial.txt")).unwrap());
        format!(
            "[channels.wechatpay]\n\
             settings = {{ mch-id = \"{MCH_ID}\", app-id = \"{APP_ID}\", merchant-serial = \"{MERCHANT_SERIAL}\", platform-serial = \"{serial}\" }}\n\
             endpoints = {{ api = \"{sim}/wechatpay\" }}\n\
             keys = {{ merchant-private-key = {{ file = {:?}, format = \"pem\" }}, platform-public-key = {{ file = {:?}, format = \"pem\" }}, api-v3-key = {{ file = {:?}, format = \"raw\" }} }}\n",
            file("wechat-merchant-private.pem"),
            file("wechat-platform-public.pem"),
            file("wechat-api-v3.key"),
        )
    })
    .await
}

fn native(world: &ChannelWorld, order_no: &str, minor: i64) -> PaymentRequest {
    let mut request = payment(
        order_no,
        cny(minor),
        CheckoutFlow::QrCode,
        &world.merchant.url,
    );
    request.method = "wechat-pay".into();
    request
}

async fn scan_and_pay(world: &ChannelWorld, order_no: &str) {
    let response = reqwest::Client::new()
        .post(
            world
                .sim
                .url(&format!("/_control/wechatpay/pay/{order_no}")),
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
}

#[tokio::test]
async fn native_code_then_payment_is_notified_encrypted_and_queried() {
    let world = wechatpay().await;
    let outcome = world.pay(&native(&world, "WX-1", 1999)).await.unwrap();
    assert_eq!(outcome.update.status, PaymentStatus::RequiresAction);
    assert_eq!(
        outcome.action,
        NextAction::QrCode("weixin://wxpay/bizpayurl?pr=WX-1".into())
    );

    scan_and_pay(&world, "WX-1").await;
    let verdicts = world.merchant.wait_for(1).await;
    let CallbackVerdict::Verified(CallbackEvent::Payment(update)) = &verdicts[0] else {
        panic!("expected a verified payment, got {:?}", verdicts[0]);
    };
    assert_eq!(update.status, PaymentStatus::Paid);
    assert_eq!(update.amount, Some(cny(1999)));
    assert!(
        update
            .channel_txn_id
            .as_deref()
            .unwrap()
            .starts_with("4200")
    );
    assert!(update.paid_at.is_some());

    let queried = world.query(&query("WX-1", cny(1999))).await.unwrap();
    assert_eq!(queried.status, PaymentStatus::Paid);
    assert_eq!(queried.channel_txn_id, update.channel_txn_id);
}

#[tokio::test]
async fn authorization_header_verifies_with_the_merchant_public_key() {
    let world = wechatpay().await;
    let PaymentStart::Call(call) = world
        .channel
        .create_payment(&native(&world, "WX-AUTH-1", 100), None)
        .await
        .unwrap()
    else {
        panic!()
    };
    let authorization = call
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .unwrap()
        .1
        .clone();
    let fields: std::collections::HashMap<&str, &str> = authorization
        .trim_start_matches("WECHATPAY2-SHA256-RSA2048 ")
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k, v.trim_matches('"')))
        .collect();
    assert_eq!(fields["mchid"], MCH_ID);
    assert_eq!(fields["serial_no"], MERCHANT_SERIAL);
    // Rebuilt here, independently of the plugin: METHOD\nPATH\ntimestamp\nnonce\nbody\n.
    let message = format!(
        "POST\n/wechatpay/v3/pay/transactions/native\n{}\n{}\n{}\n",
        fields["timestamp"],
        fields["nonce_str"],
        String::from_utf8(call.body.clone()).unwrap()
    );
    assert!(coffer_sim::keys::verify_sha256_base64(
        &world.sim.sim.keys.wechat_merchant,
        message.as_bytes(),
        fields["signature"]
    ));
}

#[tokio::test]
async fn answer_under_an_unknown_platform_serial_is_refused() {
    let world = wechatpay_trusting(Some("00FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF")).await;
    let error = world
        .pay(&native(&world, "WX-SERIAL-1", 1999))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, PluginError::Channel(ChannelError::BadSignature(m)) if m.contains("unknown platform serial")),
        "{error:?}"
    );
}

#[tokio::test]
async fn tampered_stale_and_forged_notifications_are_rejected() {
    let world = wechatpay().await;
    world
        .set_faults(serde_json::json!({ "forge_notifications": 1 }))
        .await;
    world
        .pay(&native(&world, "WX-FORGE-1", 1999))
        .await
        .unwrap();
    scan_and_pay(&world, "WX-FORGE-1").await;
    let verdicts = world.merchant.wait_for(2).await;
    assert!(
        matches!(
            verdicts[0],
            CallbackVerdict::Rejected(ChannelError::BadSignature(_))
        ),
        "{:?}",
        verdicts[0]
    );
    assert!(matches!(verdicts[1], CallbackVerdict::Verified(_)));

    // A genuine envelope, replayed with its body altered or its timestamp outside the window.
    let genuine = envelope(&world, now_s());
    let mut tampered = genuine.clone();
    tampered.body = String::from_utf8(tampered.body)
        .unwrap()
        .replace("TRANSACTION", "TRANSACTIOM")
        .into_bytes();
    let stale = envelope(&world, now_s() - 301);
    for (name, request) in [("tampered", tampered), ("stale", stale)] {
        let verdict = world
            .channel
            .parse_callback(&request)
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
    let verdict = world
        .channel
        .parse_callback(&genuine)
        .await
        .unwrap()
        .verdict;
    assert!(
        matches!(verdict, CallbackVerdict::Verified(_)),
        "{verdict:?}"
    );
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A notification built here: encrypted with the APIv3 key, signed with the platform key.
fn envelope(world: &ChannelWorld, timestamp: i64) -> InboundRequest {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    let keys = &world.sim.sim.keys;
    let resource = serde_json::json!({
        "mchid": MCH_ID, "out_trade_no": "WX-ENV-1", "transaction_id": "4200000001",
        "trade_state": "SUCCESS", "success_time": "2026-11-24T10:00:00+08:00",
        "amount": { "total": 1999, "currency": "CNY" },
    });
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(keys.wechat_api_v3_key.as_bytes()).unwrap();
    let nonce = "0123456789ab";
    let sealed = cipher
        .encrypt(
            &aes_gcm::Nonce::try_from(nonce.as_bytes()).unwrap(),
            Payload {
                msg: resource.to_string().as_bytes(),
                aad: b"transaction",
            },
        )
        .unwrap();
    let body = serde_json::json!({
        "id": "EV-1", "event_type": "TRANSACTION.SUCCESS", "resource_type": "encrypt-resource",
        "resource": { "original_type": "transaction", "algorithm": "AEAD_AES_256_GCM",
                      "ciphertext": base64::engine::general_purpose::STANDARD.encode(sealed),
                      "associated_data": "transaction", "nonce": nonce },
    })
    .to_string();
    let signature = coffer_sim::keys::sign_sha256_base64(
        &keys.wechat_platform,
        format!("{timestamp}\nNONCE1\n{body}\n").as_bytes(),
    );
    InboundRequest {
        kind: InboundKind::Notify,
        method: HttpMethod::Post,
        path: "/v1/callbacks/wechatpay".into(),
        query: String::new(),
        headers: vec![
            ("Wechatpay-Timestamp".into(), timestamp.to_string()),
            ("Wechatpay-Nonce".into(), "NONCE1".into()),
            ("Wechatpay-Signature".into(), signature),
            (
                "Wechatpay-Serial".into(),
                keys.wechat_platform_serial.clone(),
            ),
        ],
        body: body.into_bytes(),
    }
}

#[tokio::test]
async fn refunds_partial_and_full_with_refund_notifications_then_the_bill() {
    let world = wechatpay().await;
    world.pay(&native(&world, "WX-RF-1", 1999)).await.unwrap();
    scan_and_pay(&world, "WX-RF-1").await;
    world.merchant.wait_for(1).await;
    let refund =
        |refund_no: &str, minor: i64| world.refund_of("WX-RF-1", refund_no, cny(1999), cny(minor));
    let first = world.refund(&refund("RF-1", 500)).await.unwrap();
    assert_eq!(first.status, RefundStatus::Succeeded);
    assert!(first.channel_refund_id.is_some());
    let too_much = world.refund(&refund("RF-2", 1500)).await.unwrap();
    assert_eq!(too_much.status, RefundStatus::Failed);
    assert_eq!(
        world.refund(&refund("RF-3", 1499)).await.unwrap().status,
        RefundStatus::Succeeded
    );
    assert_eq!(
        world
            .query(&query("WX-RF-1", cny(1999)))
            .await
            .unwrap()
            .status,
        PaymentStatus::PartiallyRefunded
    );

    let verdicts = world.merchant.wait_for(3).await;
    let refunds: Vec<(String, i64)> = verdicts
        .iter()
        .filter_map(|v| match v {
            CallbackVerdict::Verified(CallbackEvent::Refund(r)) => {
                Some((r.refund_no.clone(), r.amount.minor))
            }
            _ => None,
        })
        .collect();
    assert_eq!(refunds.len(), 2, "{verdicts:?}");
    assert!(refunds.contains(&("RF-1".into(), 500)) && refunds.contains(&("RF-3".into(), 1499)));

    let lines = world.statement(&beijing_today()).await.unwrap();
    let trade = lines
        .iter()
        .find(|l| l.kind == StatementEntryKind::Payment)
        .unwrap();
    assert_eq!(
        (trade.amount.clone(), trade.fee.clone()),
        (cny(1999), Some(cny(12)))
    );
    let mut refunded: Vec<(i64, i64)> = lines
        .iter()
        .filter(|l| l.kind == StatementEntryKind::Refund)
        .map(|l| (l.amount.minor, l.fee.as_ref().unwrap().minor))
        .collect();
    refunded.sort();
    // The fee of a refund is given back: 0.6% of 14.99 is 0.08994 yuan, 9 fen.
    assert_eq!(refunded, [(-1499, -9), (-500, -3)]);
}

#[tokio::test]
async fn lost_create_request_is_found_failed_by_query() {
    let world = wechatpay().await;
    let update = world.query(&query("WX-LOST-1", cny(1999))).await.unwrap();
    assert_eq!(update.status, PaymentStatus::Failed);
    assert_eq!(update.failure.unwrap().code, "ORDER_NOT_EXIST");
}

#[tokio::test]
async fn slow_channel_times_out_in_the_host_client() {
    let world = wechatpay().await;
    world
        .set_faults(serde_json::json!({ "api_delay_ms": 1500 }))
        .await;
    let PaymentStart::Call(call) = world
        .channel
        .create_payment(&native(&world, "WX-SLOW-1", 1999), None)
        .await
        .unwrap()
    else {
        panic!()
    };
    let impatient =
        coffer::channels::http::ChannelHttp::new(std::time::Duration::from_millis(200), 1 << 20);
    let error = impatient.send(&call).await.unwrap_err();
    assert!(
        matches!(error, coffer::channels::http::SendError::Timeout(_)),
        "{error:?}"
    );
}

fn beijing_today() -> String {
    coffer_sim::keys::civil_date((now_s() + 8 * 3600) / 86_400)
}
