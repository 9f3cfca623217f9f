//! Refunds through the plugins and the simulator, on SQLite and PostgreSQL: never more than was
//! paid, idempotent, and the game told once so it can take the items back.

use crate::shop::{Backend, Shop};
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    a_full_refund_moves_the_order_and_the_game_takes_the_items_back,
    partial_refunds_never_exceed_what_was_paid,
    concurrent_refunds_cannot_give_back_more_than_was_paid,
    a_retried_refund_with_one_key_refunds_once,
    unpaid_orders_cannot_be_refunded,
);

async fn paid(backend: Backend) -> (Shop, String, String) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    let order_no = shop.paid_card_order(&player, "rf-1").await;
    (shop, player, order_no)
}

/// A signed refund request; without `key`, a new operation with a key of its own.
async fn refund(
    shop: &Shop,
    order_no: &str,
    body: Value,
    key: Option<&str>,
) -> coffer_signing::Answer {
    match key {
        Some(key) => shop
            .client
            .send(
                "POST",
                &format!("/v1/orders/{order_no}/refunds"),
                Some(&body),
                Some(key),
            )
            .await
            .unwrap(),
        None => {
            shop.call(
                "POST",
                &format!("/v1/orders/{order_no}/refunds"),
                Some(body),
            )
            .await
        }
    }
}

async fn a_full_refund_moves_the_order_and_the_game_takes_the_items_back(backend: Backend) {
    let (shop, player, order_no) = paid(backend).await;
    let game = shop.connect_game_server().await;
    shop.wait_for_status(&order_no, "delivered").await;
    assert_eq!(game.ledger().inventories[&player]["gem"], 100);

    let answer = refund(
        &shop,
        &order_no,
        json!({ "reason": "player request" }),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["amount"]["amount_minor"], 99);
    let detail = shop.wait_for_status(&order_no, "refunded").await;
    assert_eq!(detail["order"]["refunded"]["amount_minor"], 99);
    shop.wait_for_deliveries(|list| {
        list.len() == 2
            && list.iter().all(|d| d["status"] == "delivered")
            && list.iter().any(|d| d["type"] == "order.refunded")
    })
    .await;
    assert_eq!(game.ledger().inventories[&player]["gem"], 0, "revoked");
    let again = refund(&shop, &order_no, json!({}), None).await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    shop.stop().await;
}

async fn partial_refunds_never_exceed_what_was_paid(backend: Backend) {
    let (shop, _, order_no) = paid(backend).await;
    let first = refund(&shop, &order_no, json!({ "amount_minor": 30 }), None).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    shop.wait_for_status(&order_no, "partially_refunded").await;
    let too_much = refund(&shop, &order_no, json!({ "amount_minor": 70 }), None).await;
    assert_eq!(
        too_much.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        too_much.body
    );
    assert!(
        too_much.body["type"]
            .as_str()
            .unwrap()
            .ends_with("not-refundable")
    );
    let rest = refund(&shop, &order_no, json!({ "amount_minor": 69 }), None).await;
    assert_eq!(rest.status, StatusCode::CREATED, "{}", rest.body);
    let detail = shop.wait_for_status(&order_no, "refunded").await;
    assert_eq!(detail["order"]["refunded"]["amount_minor"], 99);
    for bad in [
        json!({ "amount_minor": 1 }),
        json!({ "amount_minor": 0 }),
        json!({ "amount_minor": -5 }),
    ] {
        let answer = refund(&shop, &order_no, bad, None).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'order.refunded'")
            .await,
        2
    );
    shop.stop().await;
}

async fn concurrent_refunds_cannot_give_back_more_than_was_paid(backend: Backend) {
    let (shop, _, order_no) = paid(backend).await;
    // Five different operations (not replays of one signed request) racing for what is left.
    let answers = join_all((0..5).map(|i| {
        refund(
            &shop,
            &order_no,
            json!({ "amount_minor": 50, "reason": format!("ticket {i}") }),
            None,
        )
    }))
    .await;
    let accepted = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    assert_eq!(
        accepted,
        1,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let held = "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM refunds WHERE status <> 'failed'";
    assert_eq!(shop.count(held).await, 50);
    shop.stop().await;
}

async fn a_retried_refund_with_one_key_refunds_once(backend: Backend) {
    let (shop, _, order_no) = paid(backend).await;
    let first = refund(
        &shop,
        &order_no,
        json!({ "amount_minor": 10 }),
        Some("rf-key"),
    )
    .await;
    let second = refund(
        &shop,
        &order_no,
        json!({ "amount_minor": 10 }),
        Some("rf-key"),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(second.body["refund_no"], first.body["refund_no"]);
    assert_eq!(shop.count("SELECT COUNT(*) FROM refunds").await, 1);
    shop.stop().await;
}

async fn unpaid_orders_cannot_be_refunded(backend: Backend) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    let created = shop.order_qr(&player, "gems-100", "np-1").await;
    let order_no = created.body["order_no"].as_str().unwrap();
    let answer = refund(&shop, order_no, json!({}), None).await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    let missing = refund(&shop, "NOSUCHORDER", json!({}), None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(shop.count("SELECT COUNT(*) FROM refunds").await, 0);
    shop.stop().await;
}
