//! UnionPay's online gateway through the whole service, on SQLite and PostgreSQL: the cashier
//! form, the signed notification, the query when the notification is lost, the refund and its
//! notification; forged notifications (a bad signature, another company's certificate from the
//! same CA, a self-signed one, a changed amount) are refused and change nothing.

use crate::shop::{Backend, Shop};
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    a_unionpay_payment_is_paid_by_its_signed_notification,
    a_lost_notification_is_found_by_query_when_the_player_comes_back,
    a_unionpay_refund_is_accepted_then_notified,
    forged_unionpay_notifications_are_refused,
);

/// An order paid through UnionPay's cashier, the form already posted by the player's browser.
async fn cashier(backend: Backend) -> (Shop, String) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    let created = shop
        .call(
            "POST",
            "/v1/orders",
            Some(json!({
                "player_id": player, "sku": "gems-100", "merchant_order_no": "up-1",
                "method": "unionpay", "flow": "redirect", "channel": "unionpay",
                "client_ip": "203.0.113.7"
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let action = &created.body["payment"]["next_action"];
    assert_eq!(action["type"], "post_form", "{action}");
    let url = action["url"].as_str().unwrap();
    assert!(
        url.ends_with("/unionpay/gateway/api/frontTransReq.do"),
        "{url}"
    );
    let fields: Vec<(String, String)> = action["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f[0].as_str().unwrap().into(), f[1].as_str().unwrap().into()))
        .collect();
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(field("txnAmt"), "600", "fen");
    assert_eq!(field("currencyCode"), "156");
    assert_eq!(field("txnTime").len(), 14);
    // The player's browser submits the form.
    let page = shop.http.post(url).form(&fields).send().await.unwrap();
    assert_eq!(
        page.status(),
        StatusCode::OK,
        "the cashier took the signed form"
    );
    (shop, created.body["order_no"].as_str().unwrap().to_owned())
}

async fn pay(shop: &Shop, order_no: &str, how: Value) -> Value {
    shop.sim_control(&format!("/_control/unionpay/pay/{order_no}"), how)
        .await
}

async fn a_unionpay_payment_is_paid_by_its_signed_notification(backend: Backend) {
    let (shop, order_no) = cashier(backend).await;
    assert_eq!(pay(&shop, &order_no, json!({})).await["status"], 200);
    let detail = shop.wait_for_status(&order_no, "paid").await;
    assert_eq!(detail["order"]["amount"]["amount_minor"], 600);
    assert_eq!(detail["order"]["amount"]["currency"], "CNY");
    let attempt = &detail["attempts"][0];
    assert!(
        attempt["channel_txn_id"]
            .as_str()
            .is_some_and(|q| q.len() >= 18),
        "UnionPay's queryId is kept: {detail}"
    );
    shop.stop().await;
}

async fn a_lost_notification_is_found_by_query_when_the_player_comes_back(backend: Backend) {
    let (shop, order_no) = cashier(backend).await;
    pay(&shop, &order_no, json!({ "lose_notification": true })).await;
    let (_, detail) = shop
        .admin("GET", &format!("/v1/admin/orders/{order_no}"), None)
        .await;
    assert_eq!(detail["order"]["status"], "pending");
    // UnionPay posts the browser back to the frontUrl; what it claims is confirmed by query.
    let page = shop
        .http
        .post(shop.url(&format!("/v1/return/unionpay?order_no={order_no}")))
        .form(&[("orderId", order_no.as_str()), ("respCode", "00")])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Payment received"));
    shop.wait_for_status(&order_no, "paid").await;
    shop.stop().await;
}

async fn a_unionpay_refund_is_accepted_then_notified(backend: Backend) {
    let (shop, order_no) = cashier(backend).await;
    pay(&shop, &order_no, json!({})).await;
    shop.wait_for_status(&order_no, "paid").await;
    let refund = shop
        .call(
            "POST",
            &format!("/v1/orders/{order_no}/refunds"),
            Some(json!({ "amount_minor": 200, "reason": "player asked" })),
        )
        .await;
    assert_eq!(refund.status, StatusCode::CREATED, "{}", refund.body);
    assert_eq!(
        refund.body["status"], "pending",
        "UnionPay answers, then notifies"
    );
    let detail = shop.wait_for_status(&order_no, "partially_refunded").await;
    assert_eq!(detail["order"]["refunded"]["amount_minor"], 200);
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM refunds WHERE status = 'succeeded'")
            .await,
        1
    );
    // More than is left is refused before UnionPay is asked, and nothing is given back.
    let too_much = shop
        .call(
            "POST",
            &format!("/v1/orders/{order_no}/refunds"),
            Some(json!({ "amount_minor": 500 })),
        )
        .await;
    assert_ne!(too_much.status, StatusCode::CREATED, "{}", too_much.body);
    shop.stop().await;
}

async fn forged_unionpay_notifications_are_refused(backend: Backend) {
    let (shop, order_no) = cashier(backend).await;
    for fault in [
        "bad_signature",
        "rogue_cert",
        "self_signed",
        "tampered_amount",
    ] {
        let answer = pay(&shop, &order_no, json!({ "fault": fault })).await;
        assert_eq!(answer["status"], 400, "{fault}");
    }
    let (_, detail) = shop
        .admin("GET", &format!("/v1/admin/orders/{order_no}"), None)
        .await;
    assert_eq!(detail["order"]["status"], "pending");
    assert_eq!(shop.count("SELECT COUNT(*) FROM outbox_events").await, 0);
    assert_eq!(pay(&shop, &order_no, json!({})).await["status"], 200);
    shop.wait_for_status(&order_no, "paid").await;
    shop.stop().await;
}
