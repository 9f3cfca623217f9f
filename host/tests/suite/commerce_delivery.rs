//! From paid to delivered: the outbox, the dispatcher and the sample game server, on SQLite and
//! PostgreSQL. Every paid order reaches the game exactly once, whatever the game server does.

use crate::shop::{Backend, OPERATOR_TOKEN, Shop};
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    paid_orders_are_delivered_once_and_marked_delivered,
    a_game_server_failing_five_times_gets_the_event_once,
    a_game_down_for_the_whole_window_is_dead_lettered_then_redelivered,
    a_game_that_cannot_check_the_signature_gets_nothing_applied,
    two_instances_never_send_an_event_twice,
);

async fn ready(backend: Backend) -> (Shop, String) {
    ready_with(backend, |_| {}).await
}

async fn ready_with(
    backend: Backend,
    tweak: impl FnOnce(&mut coffer::config::Config),
) -> (Shop, String) {
    let shop = Shop::start_with(backend, tweak).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    (shop, player)
}

fn all_delivered(count: usize) -> impl Fn(&[Value]) -> bool {
    move |list| list.len() == count && list.iter().all(|d| d["status"] == "delivered")
}

async fn paid_orders_are_delivered_once_and_marked_delivered(backend: Backend) {
    let (shop, player) = ready(backend).await;
    let game = shop.connect_game_server().await;
    let mut orders = Vec::new();
    for i in 0..3 {
        orders.push(shop.paid_card_order(&player, &format!("d-{i}")).await);
    }
    let deliveries = shop.wait_for_deliveries(all_delivered(3)).await;
    assert!(
        deliveries
            .iter()
            .all(|d| d["attempts"] == 1 && d["type"] == "order.paid")
    );
    let ledger = game.ledger();
    assert_eq!(ledger.inventories[&player]["gem"], 300);
    assert!(ledger.grants_per_order.values().all(|n| *n == 1));
    assert_eq!(ledger.grants_per_order.len(), 3);
    for order_no in &orders {
        shop.wait_for_status(order_no, "delivered").await;
    }
    // Operators see each attempt.
    let event_id = deliveries[0]["event_id"].as_str().unwrap();
    let (_, detail) = shop
        .admin("GET", &format!("/v1/admin/deliveries/{event_id}"), None)
        .await;
    assert_eq!(detail["attempts"][0]["http_status"], 200);
    shop.stop().await;
}

async fn a_game_server_failing_five_times_gets_the_event_once(backend: Backend) {
    let (shop, player) = ready(backend).await;
    let game = shop.connect_game_server().await;
    game.control(coffer_game_server::Control {
        fail_next: 5,
        ..Default::default()
    });
    let order_no = shop.paid_card_order(&player, "f-1").await;
    let deliveries = shop.wait_for_deliveries(all_delivered(1)).await;
    assert_eq!(deliveries[0]["attempts"], 6);
    let event_id = deliveries[0]["event_id"].as_str().unwrap();
    let (_, detail) = shop
        .admin("GET", &format!("/v1/admin/deliveries/{event_id}"), None)
        .await;
    let statuses: Vec<Value> = detail["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["http_status"].clone())
        .collect();
    assert_eq!(
        statuses,
        vec![
            json!(500),
            json!(500),
            json!(500),
            json!(500),
            json!(500),
            json!(200)
        ]
    );
    assert_eq!(game.ledger().grants_per_order[&order_no], 1);
    assert_eq!(game.ledger().inventories[&player]["gem"], 100);
    shop.wait_for_status(&order_no, "delivered").await;
    shop.stop().await;
}

async fn a_game_down_for_the_whole_window_is_dead_lettered_then_redelivered(backend: Backend) {
    let (shop, player) = ready_with(backend, |c| c.delivery.give_up_after_s = 1).await;
    let game = shop.connect_game_server().await;
    game.control(coffer_game_server::Control {
        down: true,
        ..Default::default()
    });
    let order_no = shop.paid_card_order(&player, "down-1").await;
    let deliveries = shop
        .wait_for_deliveries(|list| list.len() == 1 && list[0]["status"] == "dead")
        .await;
    assert!(deliveries[0]["attempts"].as_i64().unwrap() > 1);
    assert!(
        deliveries[0]["last_error"]
            .as_str()
            .unwrap()
            .contains("503")
    );
    let (_, detail) = shop
        .admin("GET", &format!("/v1/admin/orders/{order_no}"), None)
        .await;
    assert_eq!(detail["order"]["status"], "paid", "paid, not delivered");
    assert_eq!(game.ledger().received, 0);

    // The game is back; an operator re-delivers every dead event.
    game.control(coffer_game_server::Control::default());
    let (status, queued) = shop
        .admin_as(
            OPERATOR_TOKEN,
            "POST",
            "/v1/admin/deliveries/redeliver-dead",
            Some(json!({})),
        )
        .await;
    assert_eq!((status, &queued["queued"]), (StatusCode::OK, &json!(1)));
    shop.wait_for_deliveries(all_delivered(1)).await;
    shop.wait_for_status(&order_no, "delivered").await;
    assert_eq!(game.ledger().grants_per_order[&order_no], 1);

    // Re-delivering a delivered event (the game lost its data) is harmless: it deduplicates.
    let event_id = deliveries[0]["event_id"].as_str().unwrap();
    let (status, _) = shop
        .admin_as(
            OPERATOR_TOKEN,
            "POST",
            &format!("/v1/admin/deliveries/{event_id}/redeliver"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..200 {
        if game.ledger().received >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let ledger = game.ledger();
    assert_eq!(ledger.received, 2);
    assert_eq!(ledger.grants_per_order[&order_no], 1, "applied once");
    let (status, _) = shop
        .admin("POST", "/v1/admin/deliveries/ev_nothing/redeliver", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    shop.stop().await;
}

async fn a_game_that_cannot_check_the_signature_gets_nothing_applied(backend: Backend) {
    let (shop, player) = ready(backend).await;
    let game = shop.connect_game_server().await;
    game.set_secret("cds_not_the_right_one");
    let order_no = shop.paid_card_order(&player, "sig-1").await;
    for _ in 0..200 {
        if game.ledger().refused >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(game.ledger().refused >= 2, "refused and retried");
    assert!(game.ledger().applied.is_empty());
    // With the right secret the retries get through.
    let (_, secret) = shop
        .admin("POST", "/v1/admin/games/star-knights/delivery-secret", None)
        .await;
    game.set_secret(secret["delivery_secret"].as_str().unwrap());
    shop.wait_for_deliveries(all_delivered(1)).await;
    assert_eq!(game.ledger().grants_per_order[&order_no], 1);
    shop.stop().await;
}

async fn two_instances_never_send_an_event_twice(backend: Backend) {
    let (shop, player) = ready(backend).await;
    let game = shop.connect_game_server().await;
    let second = shop.second_instance().await;
    for i in 0..30 {
        shop.paid_card_order(&player, &format!("two-{i}")).await;
    }
    shop.wait_for_deliveries(all_delivered(30)).await;
    let ledger = game.ledger();
    assert_eq!(ledger.received, 30, "no event was sent twice");
    assert_eq!(ledger.grants_per_order.len(), 30);
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM delivery_attempts").await,
        30
    );
    second.stop().await.unwrap();
    shop.stop().await;
}
