//! Reports for operators and finance, read from the ledger: revenue by channel, SKU and day,
//! payment success and time to pay, refund rates, reconciliation days; JSON and CSV. On
//! SQLite and PostgreSQL.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::shop::{Backend, Shop};

both_backends!(a_days_revenue_payments_and_refunds_are_reported_as_json_and_csv);

fn today() -> String {
    coffer::reconcile::Day::of(coffer::store::now_ms(), 0).to_string()
}

async fn report(shop: &Shop, path: &str) -> Value {
    let (status, body) = shop.admin("GET", path, None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

async fn a_days_revenue_payments_and_refunds_are_reported_as_json_and_csv(backend: Backend) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    let card = shop.paid_card_order(&player, "report-1").await;
    let refund = shop
        .call(
            "POST",
            &format!("/v1/orders/{card}/refunds"),
            Some(json!({ "amount_minor": 40 })),
        )
        .await;
    assert_eq!(refund.body["status"], "succeeded", "{}", refund.body);
    let qr = shop.order_qr(&player, "gems-100", "report-2").await;
    let qr_no = qr.body["order_no"].as_str().unwrap().to_owned();
    shop.sim_control(&format!("/_control/alipay/pay/{qr_no}"), json!({}))
        .await;
    shop.wait_for_status(&qr_no, "paid").await;
    let day = today();

    let by_channel = report(&shop, &format!("/v1/admin/reports/revenue?from={day}")).await;
    assert_eq!(
        by_channel,
        json!([
            { "game": "star-knights", "currency": "CNY", "key": "alipay", "orders": 1,
              "gross_minor": 600, "refunds_minor": 0, "fees_minor": 0, "net_minor": 600 },
            { "game": "star-knights", "currency": "USD", "key": "carespay", "orders": 1,
              "gross_minor": 99, "refunds_minor": 40, "fees_minor": 0, "net_minor": 59 },
        ])
    );
    let by_sku = report(
        &shop,
        &format!("/v1/admin/reports/revenue?from={day}&to={day}&group_by=sku&game=star-knights"),
    )
    .await;
    assert!(
        by_sku
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["key"] == "gems-100"),
        "{by_sku}"
    );
    let by_day = report(
        &shop,
        &format!("/v1/admin/reports/revenue?from={day}&group_by=day"),
    )
    .await;
    assert!(
        by_day
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["key"] == day.as_str()),
        "{by_day}"
    );

    let payments = report(&shop, &format!("/v1/admin/reports/payments?from={day}")).await;
    let carespay = payments
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["channel"] == "carespay")
        .unwrap();
    assert_eq!(
        (carespay["attempts"].as_i64(), carespay["paid"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(carespay["success_rate"], 1.0);
    assert!(carespay["median_time_to_pay_ms"].as_i64().unwrap() >= 0);

    let refunds = report(&shop, &format!("/v1/admin/reports/refunds?from={day}")).await;
    let usd = refunds
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["currency"] == "USD")
        .unwrap();
    assert_eq!(
        (usd["refunds"].as_i64(), usd["refunded_minor"].as_i64()),
        (Some(1), Some(40))
    );

    // CSV: a header, then the rows in the same order.
    let csv = shop
        .http
        .get(format!(
            "{}/v1/admin/reports/revenue?from={day}&format=csv",
            shop.base
        ))
        .bearer_auth(crate::shop::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let text = csv.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "game,currency,key,orders,gross_minor,refunds_minor,fees_minor,net_minor"
    );
    assert_eq!(lines[2], "star-knights,USD,carespay,1,99,40,0,59");

    // Bad periods are refused, not guessed.
    for bad in [
        "from=2026-13-01",
        "from=2026-11-30&to=2026-11-01",
        "from=x",
        "until=2026-11-30",
    ] {
        let (status, _) = shop
            .admin("GET", &format!("/v1/admin/reports/revenue?{bad}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
}
