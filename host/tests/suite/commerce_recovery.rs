//! Recovery jobs on SQLite and PostgreSQL: a lost notification is found by a signed query, and
//! expired orders are closed, giving back their stock, but never when they were paid.

use crate::shop::{Backend, Shop};
use reqwest::StatusCode;
use serde_json::json;

both_backends!(
    a_lost_notification_is_found_by_the_query_job,
    expired_orders_are_closed_and_give_back_stock_and_limits,
    an_expired_order_paid_at_the_channel_is_paid_not_closed,
    an_expired_order_is_kept_while_its_channel_cannot_answer,
    money_that_arrives_after_the_close_is_kept_and_takes_the_stock_again,
);

fn jobs_now() -> coffer::config::JobsConfig {
    coffer::config::JobsConfig {
        query_after_s: 0,
        query_every_s: 0,
        ..Default::default()
    }
}

async fn run_jobs(shop: &Shop) -> coffer::jobs::JobReport {
    let orders = &shop.running.as_ref().unwrap().state.orders;
    coffer::jobs::run_once(orders, &jobs_now()).await
}

/// Moves the order's deadline `ago_ms` into the past (0 = long overdue: the Unix epoch).
async fn expire_at(shop: &Shop, order_no: &str, at_ms: i64) {
    sqlx::query("UPDATE orders SET expires_at = $1 WHERE order_no = $2")
        .bind(at_ms)
        .bind(order_no.to_owned())
        .execute(shop.store().pool())
        .await
        .unwrap();
}

/// Long overdue: whatever the channel says about a payment still waiting, it is over.
async fn expire(shop: &Shop, order_no: &str) {
    expire_at(shop, order_no, 0).await;
}

async fn pay_silently(shop: &Shop, order_no: &str) {
    shop.set_faults(json!({ "drop_notifications": 10 })).await;
    shop.sim_control(&format!("/_control/alipay/pay/{order_no}"), json!({}))
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let (_, detail) = shop
        .admin("GET", &format!("/v1/admin/orders/{order_no}"), None)
        .await;
    assert_eq!(
        detail["order"]["status"], "pending",
        "the notification was lost"
    );
}

async fn started(backend: Backend) -> (Shop, String) {
    let shop = Shop::start_with(backend, |c| c.jobs.enabled = false).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    (shop, player)
}

async fn a_lost_notification_is_found_by_the_query_job(backend: Backend) {
    let (shop, player) = started(backend).await;
    let created = shop.order_qr(&player, "gems-100", "lost-1").await;
    let order_no = created.body["order_no"].as_str().unwrap().to_owned();
    pay_silently(&shop, &order_no).await;
    let report = run_jobs(&shop).await;
    assert_eq!(report.recovered, 1);
    shop.wait_for_status(&order_no, "paid").await;
    assert_eq!(shop.count("SELECT COUNT(*) FROM outbox_events").await, 1);
    // Running again finds nothing more to do.
    assert_eq!(run_jobs(&shop).await, coffer::jobs::JobReport::default());
    shop.stop().await;
}

async fn expired_orders_are_closed_and_give_back_stock_and_limits(backend: Backend) {
    let (shop, player) = started(backend).await;
    shop.add_sku(json!({
        "code": "dragon-egg", "kind": "one_time", "title": "Dragon Egg",
        "grants": [{ "item": "dragon-egg", "quantity": 1 }],
        "prices": [{ "currency": "CNY", "amount_minor": 3000 }],
        "stock_total": 1
    }))
    .await;
    let bob = shop.add_player("bob").await;
    let first = shop.order_qr(&player, "dragon-egg", "egg-1").await;
    assert_eq!(first.status, StatusCode::CREATED);
    let order_no = first.body["order_no"].as_str().unwrap().to_owned();
    let sold_out = shop.order_qr(&bob, "dragon-egg", "egg-2").await;
    assert_eq!(sold_out.status, StatusCode::CONFLICT);

    expire(&shop, &order_no).await;
    let report = run_jobs(&shop).await;
    assert_eq!(report.closed, 1);
    let detail = shop.wait_for_status(&order_no, "closed").await;
    assert_eq!(detail["order"]["status"], "closed");
    assert_eq!(
        shop.count("SELECT stock_reserved FROM skus WHERE code = 'dragon-egg'")
            .await,
        0
    );
    // The first player's once-only purchase is given back, and the unit is for sale again.
    let held = "SELECT CAST(COALESCE(SUM(purchases), 0) AS BIGINT) FROM purchase_counts";
    assert_eq!(shop.count(held).await, 0);
    let bobs = shop.order_qr(&bob, "dragon-egg", "egg-3").await;
    assert_eq!(bobs.status, StatusCode::CREATED, "{}", bobs.body);
    assert_eq!(run_jobs(&shop).await.closed, 0, "closed once");
    shop.stop().await;
}

async fn an_expired_order_paid_at_the_channel_is_paid_not_closed(backend: Backend) {
    let (shop, player) = started(backend).await;
    let created = shop.order_qr(&player, "gems-100", "late-1").await;
    let order_no = created.body["order_no"].as_str().unwrap().to_owned();
    pay_silently(&shop, &order_no).await;
    expire(&shop, &order_no).await;
    let orders = &shop.running.as_ref().unwrap().state.orders;
    let order = coffer::orders::OrderNo::parse(&order_no).unwrap();
    assert_eq!(
        orders.close_if_expired(&order).await.unwrap(),
        coffer::orders::Expiry::Paid
    );
    shop.wait_for_status(&order_no, "paid").await;
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM order_transitions WHERE to_status = 'closed'")
            .await,
        0
    );
    shop.stop().await;
}

async fn an_expired_order_is_kept_while_its_channel_cannot_answer(backend: Backend) {
    let (shop, player) = started(backend).await;
    let created = shop.order_qr(&player, "gems-100", "kept-1").await;
    let order_no = created.body["order_no"].as_str().unwrap().to_owned();
    // Just expired: the channel's word decides.
    expire_at(&shop, &order_no, coffer::store::now_ms() - 1000).await;
    shop.set_faults(json!({ "api_unavailable": 5 })).await;
    assert_eq!(
        run_jobs(&shop).await.closed,
        0,
        "kept while the payment cannot be confirmed"
    );
    shop.set_faults(json!({})).await;
    assert_eq!(
        run_jobs(&shop).await.closed,
        0,
        "kept while the channel says it is still payable"
    );
    let (_, detail) = shop
        .admin("GET", &format!("/v1/admin/orders/{order_no}"), None)
        .await;
    assert_eq!(detail["order"]["status"], "pending");
    // Long overdue, the channel's payment window is over: closed.
    expire(&shop, &order_no).await;
    assert_eq!(run_jobs(&shop).await.closed, 1);
    shop.stop().await;
}

async fn money_that_arrives_after_the_close_is_kept_and_takes_the_stock_again(backend: Backend) {
    let (shop, player) = started(backend).await;
    shop.add_sku(json!({
        "code": "dragon-egg", "kind": "bundle", "title": "Dragon Egg",
        "grants": [{ "item": "dragon-egg", "quantity": 1 }],
        "prices": [{ "currency": "CNY", "amount_minor": 3000 }],
        "stock_total": 2
    }))
    .await;
    let created = shop.order_qr(&player, "dragon-egg", "late-egg").await;
    let order_no = created.body["order_no"].as_str().unwrap().to_owned();
    expire(&shop, &order_no).await;
    assert_eq!(run_jobs(&shop).await.closed, 1);
    let stock = "SELECT stock_reserved FROM skus WHERE code = 'dragon-egg'";
    assert_eq!(shop.count(stock).await, 0);
    // The player paid at the channel anyway: the money is recorded, never dropped.
    shop.sim_control(&format!("/_control/alipay/pay/{order_no}"), json!({}))
        .await;
    shop.wait_for_status(&order_no, "paid").await;
    assert_eq!(shop.count(stock).await, 1, "the unit is taken again");
    assert_eq!(shop.count("SELECT COUNT(*) FROM outbox_events").await, 1);
    shop.stop().await;
}
