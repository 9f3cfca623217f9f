//! From the channel back to Coffer: notifications and browser returns through the real plugins
//! and the simulator, on SQLite and PostgreSQL. Only verified news moves an order, once.

use crate::shop::{Backend, Shop};
use coffer::channels::{Charged, PaymentReport, PaymentState};
use coffer_sim::carespay::CARD_3DS;
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    a_paid_qr_notification_pays_the_order_once,
    duplicated_notifications_change_the_order_once,
    concurrent_identical_updates_make_one_transition_and_one_event,
    a_forged_notification_changes_nothing_and_the_genuine_retry_pays,
    a_wrong_amount_is_a_conflict_never_paid,
    a_stale_notification_after_payment_changes_nothing,
    a_forged_browser_return_changes_nothing_and_is_escaped,
    three_d_secure_return_is_confirmed_by_a_signed_query,
);

async fn qr_shop(backend: Backend) -> (Shop, String, String) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    let created = shop.order_qr(&player, "gems-100", "cb-1").await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let order_no = created.body["order_no"].as_str().unwrap().to_owned();
    (shop, player, order_no)
}

async fn events(shop: &Shop) -> i64 {
    shop.count("SELECT COUNT(*) FROM outbox_events").await
}

fn update(order_no: &str, state: PaymentState, minor: i64, currency: &str) -> PaymentReport {
    PaymentReport {
        payment_ref: order_no.into(),
        channel_txn_id: Some("2026112422001".into()),
        state,
        charged: Some(Charged::new(minor, currency)),
        reason: None,
        channel_status: "TRADE_SUCCESS".into(),
    }
}

async fn a_paid_qr_notification_pays_the_order_once(backend: Backend) {
    let (shop, _, order_no) = qr_shop(backend).await;
    shop.sim_control(&format!("/_control/alipay/pay/{order_no}"), json!({}))
        .await;
    let detail = shop.wait_for_status(&order_no, "paid").await;
    assert_eq!(detail["attempts"][0]["status"], "paid");
    assert!(detail["order"]["paid_at"].is_i64());
    assert_eq!(events(&shop).await, 1);
    let payload: String = sqlx::query_scalar("SELECT payload FROM outbox_events")
        .fetch_one(shop.store().pool())
        .await
        .unwrap();
    let payload: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(payload["type"], "order.paid");
    assert_eq!(payload["order"]["order_no"], order_no.as_str());
    assert_eq!(
        payload["order"]["grants"],
        json!([{ "item": "gem", "quantity": 100 }])
    );
    // The game sees it too.
    let seen = shop
        .call("GET", &format!("/v1/orders/{order_no}"), None)
        .await;
    assert_eq!(seen.body["status"], "paid");
    shop.stop().await;
}

async fn duplicated_notifications_change_the_order_once(backend: Backend) {
    let (shop, _, order_no) = qr_shop(backend).await;
    shop.set_faults(json!({ "duplicate_notifications": true }))
        .await;
    shop.sim_control(&format!("/_control/alipay/pay/{order_no}"), json!({}))
        .await;
    shop.wait_for_status(&order_no, "paid").await;
    // Let the duplicate arrive too.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(events(&shop).await, 1);
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM order_transitions").await,
        1
    );
    shop.stop().await;
}

async fn concurrent_identical_updates_make_one_transition_and_one_event(backend: Backend) {
    let (shop, _, order_no) = qr_shop(backend).await;
    let orders = shop.running.as_ref().unwrap().state.orders.clone();
    let paid = update(&order_no, PaymentState::Paid, 600, "CNY");
    let results =
        join_all((0..10).map(|_| orders.apply_payment_report("alipay", &paid, "test"))).await;
    let paid_now = results
        .iter()
        .filter(|r| matches!(r, Ok(coffer::orders::Settled::Paid)))
        .count();
    assert_eq!(paid_now, 1, "{results:?}");
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    assert_eq!(events(&shop).await, 1);
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM order_transitions").await,
        1
    );
    shop.stop().await;
}

async fn a_forged_notification_changes_nothing_and_the_genuine_retry_pays(backend: Backend) {
    let (shop, _, order_no) = qr_shop(backend).await;
    shop.set_faults(json!({ "forge_notifications": 1 })).await;
    shop.sim_control(&format!("/_control/alipay/pay/{order_no}"), json!({}))
        .await;
    // The forged first notification is refused; the simulator retries with a genuine one.
    let detail = shop.wait_for_status(&order_no, "paid").await;
    assert_eq!(detail["order"]["status"], "paid");
    let log: Value = shop
        .http
        .get(shop.sim.url("/_control/notifications"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let deliveries = log["deliveries"].as_array().unwrap();
    assert_eq!(deliveries[0]["forged"], true);
    assert_eq!(
        deliveries[0]["acked"], false,
        "the forgery was refused: {log}"
    );
    assert_eq!(
        deliveries[1]["acked"], true,
        "the genuine retry was accepted: {log}"
    );
    assert_eq!(events(&shop).await, 1);

    // A notification nobody signed, posted by hand.
    let forged = shop
        .http
        .post(shop.url("/v1/callbacks/alipay"))
        .form(&[
            ("out_trade_no", order_no.as_str()),
            ("trade_status", "TRADE_SUCCESS"),
            ("total_amount", "6.00"),
            ("sign", "AAAA"),
        ])
        .send()
        .await
        .unwrap();
    assert_ne!(forged.text().await.unwrap(), "success");
    assert_eq!(events(&shop).await, 1);
    shop.stop().await;
}

async fn a_wrong_amount_is_a_conflict_never_paid(backend: Backend) {
    let (shop, _, order_no) = qr_shop(backend).await;
    let orders = shop.running.as_ref().unwrap().state.orders.clone();
    for (minor, currency) in [(1, "CNY"), (600, "USD")] {
        let settled = orders
            .apply_payment_report(
                "alipay",
                &update(&order_no, PaymentState::Paid, minor, currency),
                "test",
            )
            .await
            .unwrap();
        assert_eq!(
            settled,
            coffer::orders::Settled::Conflict(coffer::orders::ConflictKind::AmountMismatch)
        );
    }
    let (_, detail) = shop
        .admin("GET", &format!("/v1/admin/orders/{order_no}"), None)
        .await;
    assert_eq!(detail["order"]["status"], "pending");
    assert_eq!(
        detail["attempts"][0]["failure"]["code"],
        "coffer.amount_mismatch"
    );
    assert_eq!(events(&shop).await, 0);
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM payment_conflicts WHERE kind = 'amount_mismatch'")
            .await,
        1
    );
    // A payment for nothing Coffer knows is kept for an operator too.
    let unknown = orders
        .apply_payment_report(
            "alipay",
            &update("NOSUCHPAYMENT", PaymentState::Paid, 600, "CNY"),
            "test",
        )
        .await
        .unwrap();
    assert_eq!(
        unknown,
        coffer::orders::Settled::Conflict(coffer::orders::ConflictKind::UnknownPayment)
    );
    shop.stop().await;
}

async fn a_stale_notification_after_payment_changes_nothing(backend: Backend) {
    let (shop, _, order_no) = qr_shop(backend).await;
    shop.set_faults(json!({ "reorder_notifications": true }))
        .await;
    shop.sim_control(&format!("/_control/alipay/pay/{order_no}"), json!({}))
        .await;
    shop.wait_for_status(&order_no, "paid").await;
    let orders = shop.running.as_ref().unwrap().state.orders.clone();
    for status in [
        PaymentState::Pending,
        PaymentState::Failed,
        PaymentState::Closed,
    ] {
        let settled = orders
            .apply_payment_report("alipay", &update(&order_no, status, 600, "CNY"), "test")
            .await
            .unwrap();
        assert_eq!(settled, coffer::orders::Settled::Unchanged, "{status:?}");
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let detail = shop.wait_for_status(&order_no, "paid").await;
    assert_eq!(detail["attempts"][0]["status"], "paid");
    assert_eq!(events(&shop).await, 1);
    shop.stop().await;
}

async fn a_forged_browser_return_changes_nothing_and_is_escaped(backend: Backend) {
    let (shop, _, order_no) = qr_shop(backend).await;
    let url = shop.url(&format!(
        "/v1/return/alipay?out_trade_no={order_no}&trade_status=TRADE_SUCCESS&total_amount=6.00&subject=%3Cscript%3Ealert(1)%3C%2Fscript%3E"
    ));
    let page = shop.http.get(url).send().await.unwrap();
    assert_eq!(
        page.headers()["content-security-policy"],
        "default-src 'none'"
    );
    let html = page.text().await.unwrap();
    assert!(
        html.contains("Still confirming") || html.contains("could not"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
    let (_, detail) = shop
        .admin("GET", &format!("/v1/admin/orders/{order_no}"), None)
        .await;
    assert_eq!(
        detail["order"]["status"], "pending",
        "the signed query says the trade is unpaid"
    );
    assert_eq!(events(&shop).await, 0);
    let garbage = shop
        .http
        .get(shop.url("/v1/return/alipay?<b>=1"))
        .send()
        .await
        .unwrap();
    assert!(!garbage.text().await.unwrap().contains("<b>"));
    let unknown = shop
        .http
        .get(shop.url("/v1/return/nochannel"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    shop.stop().await;
}

async fn three_d_secure_return_is_confirmed_by_a_signed_query(backend: Backend) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    let body = json!({
        "player_id": player, "sku": "gems-100", "region": "US", "merchant_order_no": "3ds-1",
        "method": "card", "flow": "direct_card", "channel": "carespay", "client_ip": "203.0.113.7",
        "customer": { "email": "ada@example.test", "first_name": "Ada", "last_name": "Player",
                      "billing": { "country": "US", "city": "SF", "line1": "1 Main", "postal_code": "94105" } },
        "card": { "number": CARD_3DS, "expiry_month": 12, "expiry_year": 2031, "cvc": "123", "holder_name": "Ada" }
    });
    let created = shop.call("POST", "/v1/orders", Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let order_no = created.body["order_no"].as_str().unwrap().to_owned();
    // The cardholder approves; the browser comes back with an unsigned result.
    let decided = shop
        .sim_control(
            &format!("/_control/carespay/3ds/{order_no}"),
            json!({ "approve": true }),
        )
        .await;
    let return_url = decided["return_url"].as_str().unwrap();
    let html = shop
        .http
        .get(return_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Payment received"), "{html}");
    let detail = shop.wait_for_status(&order_no, "paid").await;
    assert_eq!(detail["attempts"][0]["status"], "paid");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        events(&shop).await,
        1,
        "the return and the notification apply once"
    );
    shop.stop().await;
}
