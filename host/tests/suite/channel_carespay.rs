//! CaresPay against the simulator, through the real plugin runtime and the host's HTTP client.

use crate::channels::*;
use coffer_plugin_runtime::PluginError;
use coffer_plugin_runtime::contract::*;
use coffer_sim::carespay::{CARD_3DS, CARD_APPROVED, CARD_DECLINED, MERCHANT_NO};

async fn carespay() -> ChannelWorld {
    carespay_with_md5_key(None).await
}

/// With `md5_key`, the plugin signs with that key instead of the one the gateway knows.
async fn carespay_with_md5_key(md5_key: Option<&'static str>) -> ChannelWorld {
    ChannelWorld::start("carespay.wasm", move |sim, keys| {
        let key_file = match md5_key {
            Some(key) => {
                let file = keys.join("wrong-md5.key");
                std::fs::write(&file, key).unwrap();
                file
            }
            None => keys.join("carespay-md5.key"),
        };
        format!(
            "[channels.carespay]\n\
             settings = {{ merchant-no = \"{MERCHANT_NO}\", trade-url = \"https://game.example\" }}\n\
             endpoints = {{ gateway = \"{sim}/carespay\" }}\n\
             keys = {{ md5-key = {{ file = {:?}, format = \"raw\" }} }}\n",
            key_file.display().to_string()
        )
    })
    .await
}

fn card_payment(world: &ChannelWorld, order_no: &str, number: &str, amount: Money) -> CardPayment {
    CardPayment {
        request: payment(
            order_no,
            amount,
            CheckoutFlow::DirectCard,
            &world.merchant.url,
        ),
        card: card(number),
    }
}

/// A CaresPay notification with a valid checksum is a claim (its checksum does not pin the
/// order); the host confirms it with the signed query.
fn paid_claim(verdict: &CallbackVerdict) -> &UnverifiedClaim {
    match verdict {
        CallbackVerdict::Unverified(claim) if claim.claimed_status == Some(PaymentStatus::Paid) => {
            claim
        }
        other => panic!("expected a claim of payment, got {other:?}"),
    }
}

#[tokio::test]
async fn approved_card_is_paid_and_notified() {
    let world = carespay().await;
    let request = card_payment(&world, "CP-OK-1", CARD_APPROVED, money(1999, "USD"));
    let outcome = world.pay(&request).await.unwrap();
    assert_eq!(outcome.update.status, PaymentStatus::Paid);
    assert_eq!(outcome.update.amount, Some(money(1999, "USD")));
    assert!(
        outcome
            .update
            .channel_txn_id
            .as_deref()
            .unwrap()
            .starts_with("CP")
    );
    assert_eq!(outcome.action, NextAction::None);

    let verdicts = world.merchant.wait_for(1).await;
    assert_eq!(paid_claim(&verdicts[0]).order_no, "CP-OK-1");
    let confirmed = world
        .query(&query("CP-OK-1", money(1999, "USD")))
        .await
        .unwrap();
    assert_eq!(confirmed.status, PaymentStatus::Paid);
}

#[tokio::test]
async fn notification_with_characters_shifted_between_bill_and_order_is_only_a_claim() {
    let world = carespay().await;
    let key = &world.sim.sim.keys.carespay_md5;
    // billNo "CP-SHIFT-10" + orderNo "0CPX" concatenates like "CP-SHIFT-1" + "00CPX": the same
    // checksum for two different orders.
    let md5 = md5_hex(&format!(
        "{MERCHANT_NO}CP-SHIFT-100CPX119.99P0001S0001{key}"
    ));
    let body = format!(
        "merNo={MERCHANT_NO}&billNo=CP-SHIFT-1&orderNo=00CPX&currency=1&amount=19.99&code=P0001&tradeStatus=S0001&md5Info={md5}"
    );
    let request = InboundRequest {
        kind: InboundKind::Notify,
        method: HttpMethod::Post,
        path: "/v1/callbacks/carespay".into(),
        query: String::new(),
        headers: vec![],
        body: body.into_bytes(),
    };
    let verdict = world
        .channel
        .parse_callback(&request)
        .await
        .unwrap()
        .verdict;
    assert!(
        matches!(verdict, CallbackVerdict::Unverified(_)),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn declined_card_fails_with_the_gateway_reason() {
    let world = carespay().await;
    let request = card_payment(&world, "CP-NO-1", CARD_DECLINED, money(1999, "USD"));
    let outcome = world.pay(&request).await.unwrap();
    assert_eq!(outcome.update.status, PaymentStatus::Failed);
    let failure = outcome.update.failure.unwrap();
    assert_eq!(failure.code, "P0002");
    assert_eq!(failure.message, "Card declined");
}

#[tokio::test]
async fn three_d_secure_approved_is_confirmed_by_a_signed_query() {
    let world = carespay().await;
    let request = card_payment(&world, "CP-3DS-1", CARD_3DS, money(5000, "EUR"));
    let outcome = world.pay(&request).await.unwrap();
    assert_eq!(outcome.update.status, PaymentStatus::RequiresAction);
    let NextAction::Redirect(challenge) = &outcome.action else {
        panic!("expected a 3-D Secure redirect, got {:?}", outcome.action);
    };
    assert!(challenge.starts_with(&world.sim.url("/carespay/3ds/")));

    let return_url = decide(&world, "CP-3DS-1", true).await;
    // The browser's return is only a claim...
    assert_eq!(
        world.browser_return(&return_url).await,
        CallbackVerdict::Unverified(UnverifiedClaim {
            order_no: "CP-3DS-1".into(),
            claimed_status: Some(PaymentStatus::Paid),
        })
    );
    // ...which the signed query confirms.
    let update = world
        .query(&query("CP-3DS-1", money(5000, "EUR")))
        .await
        .unwrap();
    assert_eq!(update.status, PaymentStatus::Paid);
    let verdicts = world.merchant.wait_for(1).await;
    paid_claim(&verdicts[0]);
}

#[tokio::test]
async fn three_d_secure_denied_fails() {
    let world = carespay().await;
    let request = card_payment(&world, "CP-3DS-2", CARD_3DS, money(5000, "EUR"));
    world.pay(&request).await.unwrap();
    let return_url = decide(&world, "CP-3DS-2", false).await;
    assert!(matches!(
        world.browser_return(&return_url).await,
        CallbackVerdict::Unverified(UnverifiedClaim {
            claimed_status: Some(PaymentStatus::Failed),
            ..
        })
    ));
    let update = world
        .query(&query("CP-3DS-2", money(5000, "EUR")))
        .await
        .unwrap();
    assert_eq!(update.status, PaymentStatus::Failed);
}

#[tokio::test]
async fn forged_3ds_return_changes_nothing_the_signed_query_says_unpaid() {
    let world = carespay().await;
    let request = card_payment(&world, "CP-FORGE-1", CARD_3DS, money(5000, "EUR"));
    world.pay(&request).await.unwrap();
    // The player crafts a return claiming success, without passing 3-D Secure.
    let forged = "http://127.0.0.1:8080/v1/return/carespay?amount=50.00&billNo=CP-FORGE-1&code=P0001&message=Approved";
    let verdict = world.browser_return(forged).await;
    assert!(
        matches!(verdict, CallbackVerdict::Unverified(_)),
        "{verdict:?}"
    );
    let update = world
        .query(&query("CP-FORGE-1", money(5000, "EUR")))
        .await
        .unwrap();
    assert_eq!(
        update.status,
        PaymentStatus::RequiresAction,
        "the gateway still waits for 3-D Secure"
    );
    assert!(
        world.merchant.verdicts().is_empty(),
        "no notification for an unpaid bill"
    );
}

#[tokio::test]
async fn forged_notification_is_rejected_and_the_genuine_retry_accepted() {
    let world = carespay().await;
    world
        .set_faults(serde_json::json!({ "forge_notifications": 1 }))
        .await;
    let request = card_payment(&world, "CP-NF-1", CARD_APPROVED, money(1999, "USD"));
    world.pay(&request).await.unwrap();
    let verdicts = world.merchant.wait_for(2).await;
    assert!(matches!(
        verdicts[0],
        CallbackVerdict::Rejected(ChannelError::BadSignature(_))
    ));
    paid_claim(&verdicts[1]);
}

#[tokio::test]
async fn duplicated_notifications_arrive_twice_and_verify_alike() {
    let world = carespay().await;
    world
        .set_faults(serde_json::json!({ "duplicate_notifications": true }))
        .await;
    let request = card_payment(&world, "CP-DUP-1", CARD_APPROVED, money(1999, "USD"));
    world.pay(&request).await.unwrap();
    let verdicts = world.merchant.wait_for(2).await;
    assert_eq!(paid_claim(&verdicts[0]), paid_claim(&verdicts[1]));
}

#[tokio::test]
async fn wrong_md5_key_is_refused_by_the_gateway_before_anything_started() {
    let world = carespay_with_md5_key(Some("not-the-gateway-key")).await;
    let request = card_payment(&world, "CP-KEY-1", CARD_APPROVED, money(1999, "USD"));
    // The gateway refused the request itself (E0001): the payment never started, so another
    // attempt may follow at once.
    let outcome = world.pay(&request).await.unwrap();
    assert_eq!(outcome.update.status, PaymentStatus::Failed);
    assert_eq!(outcome.update.failure.unwrap().code, "E0001");
    // A duplicate bill number is no such refusal: a payment with it exists.
    let world = carespay().await;
    let twice = card_payment(&world, "CP-KEY-2", CARD_APPROVED, money(1999, "USD"));
    world.pay(&twice).await.unwrap();
    let error = world.pay(&twice).await.unwrap_err();
    assert!(
        matches!(&error, PluginError::Channel(ChannelError::Upstream(m)) if m.starts_with("E0004")),
        "{error:?}"
    );
}

#[tokio::test]
async fn gateway_outage_is_an_unknown_outcome() {
    let world = carespay().await;
    world
        .set_faults(serde_json::json!({ "api_unavailable": 1 }))
        .await;
    let request = card_payment(&world, "CP-503-1", CARD_APPROVED, money(1999, "USD"));
    let error = world.pay(&request).await.unwrap_err();
    assert!(
        matches!(error, PluginError::Channel(ChannelError::Upstream(_))),
        "{error:?}"
    );
    // The pay request never reached the ledger: the query says so.
    let update = world
        .query(&query("CP-503-1", money(1999, "USD")))
        .await
        .unwrap();
    assert_eq!(update.status, PaymentStatus::Failed);
    assert_eq!(update.failure.unwrap().code, "Q0002");
}

#[tokio::test]
async fn yen_amounts_travel_with_two_decimals() {
    let world = carespay().await;
    let request = card_payment(&world, "CP-JPY-1", CARD_APPROVED, money(500, "JPY"));
    let start = world.create(&request).await.unwrap();
    let PaymentStart::Call(call) = &start else {
        panic!()
    };
    let body = String::from_utf8(call.body.clone()).unwrap();
    assert!(
        body.contains("amount=500.00") && body.contains("currency=6"),
        "{body}"
    );
    let outcome = world
        .pay(&card_payment(
            &world,
            "CP-JPY-2",
            CARD_APPROVED,
            money(500, "JPY"),
        ))
        .await
        .unwrap();
    assert_eq!(outcome.update.amount, Some(money(500, "JPY")));
}

#[tokio::test]
async fn full_and_partial_refunds_then_the_statement() {
    let world = carespay().await;
    let request = card_payment(&world, "CP-RF-1", CARD_APPROVED, money(1999, "USD"));
    let paid = world.pay(&request).await.unwrap().update;
    let usd = |minor| money(minor, "USD");
    let refund = |refund_no: &str, minor: i64| RefundRequest {
        channel_txn_id: paid.channel_txn_id.clone(),
        ..world.refund_of("CP-RF-1", refund_no, usd(1999), usd(minor))
    };
    let partial = world.refund(&refund("RF-1", 500)).await.unwrap();
    assert_eq!(partial.status, RefundStatus::Succeeded);
    assert_eq!(partial.amount, money(500, "USD"));
    let update = world
        .query(&query("CP-RF-1", money(1999, "USD")))
        .await
        .unwrap();
    assert_eq!(update.status, PaymentStatus::PartiallyRefunded);

    let too_much = world.refund(&refund("RF-2", 1500)).await.unwrap();
    assert_eq!(
        too_much.status,
        RefundStatus::Failed,
        "1500 is more than the 1499 left"
    );
    let rest = world.refund(&refund("RF-3", 1499)).await.unwrap();
    assert_eq!(rest.status, RefundStatus::Succeeded);
    let update = world
        .query(&query("CP-RF-1", money(1999, "USD")))
        .await
        .unwrap();
    assert_eq!(update.status, PaymentStatus::Refunded);

    let day = today();
    let lines = world.statement(&day).await.unwrap();
    let sale = lines
        .iter()
        .find(|l| l.kind == StatementEntryKind::Payment)
        .unwrap();
    assert_eq!(sale.amount, money(1999, "USD"));
    assert_eq!(sale.fee, Some(money(60, "USD")));
    let refunds: Vec<i64> = lines
        .iter()
        .filter(|l| l.kind == StatementEntryKind::Refund)
        .map(|l| l.amount.minor)
        .collect();
    assert_eq!(refunds, [-500, -1499]);
}

async fn decide(world: &ChannelWorld, order_no: &str, approve: bool) -> String {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(world.sim.url(&format!("/_control/carespay/3ds/{order_no}")))
        .json(&serde_json::json!({ "approve": approve }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["return_url"].as_str().unwrap().to_owned()
}

fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 86_400;
    coffer_sim::keys::civil_date(days as i64)
}

fn md5_hex(text: &str) -> String {
    use md5::{Digest, Md5};
    hex::encode(Md5::digest(text.as_bytes()))
}

fn form_fields(body: &[u8]) -> std::collections::HashMap<String, String> {
    let url = reqwest::Url::parse(&format!("http://x/?{}", String::from_utf8_lossy(body))).unwrap();
    url.query_pairs().into_owned().collect()
}

#[tokio::test]
async fn pay_request_md5info_matches_an_independent_computation() {
    let world = carespay().await;
    let request = card_payment(&world, "CP-VEC-1", CARD_APPROVED, money(1999, "USD"));
    let PaymentStart::Call(call) = world.create(&request).await.unwrap() else {
        panic!("expected a request")
    };
    let fields = form_fields(&call.body);
    let key = &world.sim.sim.keys.carespay_md5;
    let expected = md5_hex(&format!(
        "{MERCHANT_NO}CP-VEC-1119.99{}{key}",
        request.request.return_url
    ));
    assert_eq!(fields["md5Info"], expected);
    assert_eq!(fields["currency"], "1");
    assert_eq!(
        (fields["month"].as_str(), fields["year"].as_str()),
        ("12", "2031")
    );
    assert_eq!(fields["address"], "1 Market St");
    assert_eq!(fields["tradeUrl"], "https://game.example");
}

/// An answer signed here the way the gateway signs, for `amount` (2 decimals, USD).
fn signed_answer(world: &ChannelWorld, mer_no: &str, amount: &str) -> serde_json::Value {
    let key = &world.sim.sim.keys.carespay_md5;
    let md5 = md5_hex(&format!("{mer_no}CP-ANS-1CP00011{amount}P0001S0001{key}"));
    serde_json::json!({
        "merNo": mer_no, "billNo": "CP-ANS-1", "orderNo": "CP0001", "currency": "1",
        "amount": amount, "code": "P0001", "tradeStatus": "S0001", "message": "Approved",
        "md5Info": md5,
    })
}

async fn read_answer(
    world: &ChannelWorld,
    answer: serde_json::Value,
) -> Result<PaymentOutcome, PluginError> {
    let response = HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "application/json".into())],
        body: answer.to_string().into_bytes(),
    };
    let context = PaymentContext {
        order_no: "CP-ANS-1".into(),
        amount: money(1999, "USD"),
        method: "card".into(),
        flow: CheckoutFlow::DirectCard,
        channel_txn_id: None,
    };
    world
        .channel
        .parse_payment_response(&context, &response)
        .await
}

#[tokio::test]
async fn answers_are_checked_for_signature_merchant_and_amount() {
    let world = carespay().await;
    let genuine = signed_answer(&world, MERCHANT_NO, "19.99");
    assert_eq!(
        read_answer(&world, genuine.clone())
            .await
            .unwrap()
            .update
            .status,
        PaymentStatus::Paid
    );

    let mut tampered = genuine.clone();
    tampered["tradeStatus"] = "S0001".into();
    tampered["amount"] = "1.99".into();
    let error = read_answer(&world, tampered).await.unwrap_err();
    assert!(
        matches!(error, PluginError::Channel(ChannelError::BadSignature(_))),
        "{error:?}"
    );

    let foreign = signed_answer(&world, "99999", "19.99");
    let error = read_answer(&world, foreign).await.unwrap_err();
    assert!(
        matches!(error, PluginError::Channel(ChannelError::BadSignature(_))),
        "{error:?}"
    );

    // Correctly signed, but for another amount than the order's.
    let wrong_amount = signed_answer(&world, MERCHANT_NO, "0.01");
    let error = read_answer(&world, wrong_amount).await.unwrap_err();
    assert!(
        matches!(error, PluginError::Channel(ChannelError::Malformed(_))),
        "{error:?}"
    );
}

#[tokio::test]
async fn unacknowledged_notification_is_retried_until_acknowledged() {
    let world = carespay().await;
    world
        .merchant
        .failing
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let request = card_payment(&world, "CP-RETRY-1", CARD_APPROVED, money(1999, "USD"));
    world.pay(&request).await.unwrap();
    let verdicts = world.merchant.wait_for(3).await;
    assert!(
        verdicts
            .iter()
            .all(|v| matches!(v, CallbackVerdict::Unverified(_)))
    );
    let deliveries = world.deliveries().await;
    let acked: Vec<bool> = deliveries
        .iter()
        .map(|d| d["acked"].as_bool().unwrap())
        .collect();
    assert_eq!(acked, [false, false, true], "{deliveries:?}");
    assert_eq!(deliveries[2]["attempt"], 3);
}

#[tokio::test]
async fn lost_notification_leaves_the_query_to_find_the_payment() {
    let world = carespay().await;
    world
        .set_faults(serde_json::json!({ "drop_notifications": 1 }))
        .await;
    let request = card_payment(&world, "CP-LOST-1", CARD_APPROVED, money(1999, "USD"));
    world.pay(&request).await.unwrap();
    // Another payment's notification arrives: the lost one would have come before it.
    world
        .pay(&card_payment(
            &world,
            "CP-LOST-2",
            CARD_APPROVED,
            money(100, "USD"),
        ))
        .await
        .unwrap();
    let verdicts = world.merchant.wait_for(1).await;
    assert_eq!(paid_claim(&verdicts[0]).order_no, "CP-LOST-2");
    assert!(
        world
            .deliveries()
            .await
            .iter()
            .all(|d| d["order_no"] != "CP-LOST-1")
    );
    let update = world
        .query(&query("CP-LOST-1", money(1999, "USD")))
        .await
        .unwrap();
    assert_eq!(update.status, PaymentStatus::Paid);
}
