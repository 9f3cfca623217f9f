//! Reconciliation against Alipay's statement, served by the simulator in Alipay's real layout
//! (a zip of GBK CSV files): a clean day finds nothing and posts the fees once, each injected
//! discrepancy is found and named, and a payment the channel took while its notification was
//! lost becomes paid, once. On SQLite and PostgreSQL.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::shop::{Backend, Shop};

both_backends!(
    a_clean_day_finds_nothing_and_posts_each_fee_once,
    each_discrepancy_in_the_statement_is_found_and_named,
    a_payment_whose_notification_was_lost_is_settled_by_reconciliation_once,
);

/// Today in Beijing, the day Alipay's statement of these payments carries.
fn beijing_today() -> String {
    coffer::reconcile::Day::of(coffer::store::now_ms(), 8 * 3600).to_string()
}

/// An Alipay QR order of 6 CNY, paid at the simulator; returns its order number.
async fn paid_qr(shop: &Shop, player: &str, merchant_order_no: &str) -> String {
    let created = shop.order_qr(player, "gems-100", merchant_order_no).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let order_no = created.body["order_no"].as_str().unwrap().to_owned();
    shop.sim_control(&format!("/_control/alipay/pay/{order_no}"), json!({}))
        .await;
    shop.wait_for_status(&order_no, "paid").await;
    order_no
}

async fn reconcile(shop: &Shop) -> Value {
    let (status, body) = shop
        .admin(
            "POST",
            "/v1/admin/reconciliations",
            Some(json!({ "channel": "alipay", "day": beijing_today() })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

fn kinds(summary: &Value) -> BTreeSet<(String, String)> {
    summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_owned(),
                f["payment_ref"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn fees_posted(shop: &Shop) -> i64 {
    let (_, balances) = shop.admin("GET", "/v1/admin/ledger/balances", None).await;
    balances
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["account"] == "fees:alipay")
        .map(|b| b["debits_minor"].as_i64().unwrap() - b["credits_minor"].as_i64().unwrap())
        .sum()
}

async fn a_clean_day_finds_nothing_and_posts_each_fee_once(backend: Backend) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    let first = paid_qr(&shop, &player, "rc-1").await;
    paid_qr(&shop, &player, "rc-2").await;
    let refund = shop
        .call(
            "POST",
            &format!("/v1/orders/{first}/refunds"),
            Some(json!({ "amount_minor": 200 })),
        )
        .await;
    assert_eq!(refund.status, StatusCode::CREATED, "{}", refund.body);
    assert_eq!(refund.body["status"], "succeeded", "{}", refund.body);

    let summary = reconcile(&shop).await;
    assert_eq!(summary["findings"], json!([]), "{summary}");
    assert_eq!(
        (summary["lines"].as_i64(), summary["matched"].as_i64()),
        (Some(3), Some(3))
    );
    // 0.6% of 6.00 twice (4 fen each), and the 1 fen of the 2.00 refunded given back.
    assert_eq!(summary["fees"], json!([["CNY", 4 + 4 - 1]]), "{summary}");
    assert_eq!(fees_posted(&shop).await, 7);

    // The same day again: the same answer, nothing posted twice.
    let again = reconcile(&shop).await;
    assert_eq!(again["findings"], json!([]));
    assert_eq!(fees_posted(&shop).await, 7);
    let (status, stored) = shop
        .admin(
            "GET",
            &format!("/v1/admin/reconciliations/alipay/{}", beijing_today()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (stored["status"].as_str(), stored["findings"].clone()),
        (Some("done"), json!([]))
    );
}

async fn each_discrepancy_in_the_statement_is_found_and_named(backend: Backend) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    let short = paid_qr(&shop, &player, "rc-short").await;
    let changed = paid_qr(&shop, &player, "rc-amount").await;
    let refunded = paid_qr(&shop, &player, "rc-refund").await;
    let matched = paid_qr(&shop, &player, "rc-ok").await;
    shop.http
        .put(shop.sim.url("/_control/statements/alipay"))
        .json(&json!({
            "drop": [short],
            "amounts": { changed.clone(): 599 },
            "extra_payments": [{ "out_trade_no": "NEVER-SEEN-1", "amount_minor": 600 }],
            "extra_refunds": [{ "out_trade_no": refunded.clone(), "amount_minor": 300 }],
        }))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();

    let summary = reconcile(&shop).await;
    let expected: BTreeSet<(String, String)> = [
        ("short", short.as_str()),
        ("amount_mismatch", changed.as_str()),
        ("long", "NEVER-SEEN-1"),
        ("refund_not_recorded", refunded.as_str()),
    ]
    .into_iter()
    .map(|(k, r)| (k.to_owned(), r.to_owned()))
    .collect();
    assert_eq!(kinds(&summary), expected, "{summary}");
    let mismatch = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "amount_mismatch")
        .unwrap();
    assert_eq!(
        (
            mismatch["statement_minor"].as_i64(),
            mismatch["local_minor"].as_i64()
        ),
        (Some(599), Some(600))
    );
    // Only the lines that agree are matched, and only their fees posted.
    assert_eq!(summary["matched"], 2, "{summary}");
    assert!(!kinds(&summary).iter().any(|(_, r)| *r == matched));
    assert_eq!(fees_posted(&shop).await, 4 + 4);
}

async fn a_payment_whose_notification_was_lost_is_settled_by_reconciliation_once(backend: Backend) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    let created = shop.order_qr(&player, "gems-100", "rc-lost").await;
    let order_no = created.body["order_no"].as_str().unwrap().to_owned();
    shop.set_faults(json!({ "drop_notifications": 1 })).await;
    shop.sim_control(&format!("/_control/alipay/pay/{order_no}"), json!({}))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, detail) = shop
        .admin("GET", &format!("/v1/admin/orders/{order_no}"), None)
        .await;
    assert_eq!(
        detail["order"]["status"], "pending",
        "the notification was lost"
    );

    let summary = reconcile(&shop).await;
    assert_eq!(
        kinds(&summary),
        BTreeSet::from([("long_settled".to_owned(), order_no.clone())]),
        "{summary}"
    );
    shop.wait_for_status(&order_no, "paid").await;
    // Again: already paid, nothing to settle, one order.paid event in all.
    let again = reconcile(&shop).await;
    assert_eq!(again["findings"], json!([]), "{again}");
    let paid_events = shop
        .count("SELECT CAST(COUNT(*) AS BIGINT) FROM outbox_events WHERE kind = 'order.paid'")
        .await;
    assert_eq!(paid_events, 1);
}
