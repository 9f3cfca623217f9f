//! Google Play purchases end to end, on SQLite and PostgreSQL: the game server sends a purchase
//! token and product id, Coffer looks it up with the Play Developer API (a service-account
//! token fetched once and kept), makes one paid order of it and acknowledges it once delivered,
//! retrying while the API fails; pending purchases wait, voided ones are refunded, and a
//! notification pushed by anyone but Google's Pub/Sub changes nothing.

use std::time::Duration;

use crate::shop::{Backend, Shop};
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    a_google_purchase_becomes_a_delivered_order_acknowledged_once_with_one_token,
    an_acknowledgement_is_retried_while_the_api_fails,
    a_pending_purchase_is_not_paid_until_it_is,
    a_proof_sent_again_by_another_player_is_the_same_order,
    a_voided_purchase_refunds_its_order_once_and_the_game_takes_the_items_back,
    a_pushed_void_notification_refunds_and_forged_pushes_change_nothing,
    test_purchases_and_mismatched_products_are_refused,
    purchases_waiting_for_their_delivery_never_hold_back_the_acknowledgement_of_others,
);

const GEMS: &str = "gems_100";

async fn play_shop(backend: Backend) -> (Shop, String) {
    let shop = Shop::start(backend).await;
    shop.add_store_gems("googleplay", GEMS).await;
    let player = shop.add_player("ada").await;
    (shop, player)
}

async fn device_purchase(shop: &Shop, spec: Value) -> String {
    let made = shop
        .sim_control("/_control/googleplay/purchases", spec)
        .await;
    made["token"].as_str().unwrap().to_owned()
}

async fn redeem(shop: &Shop, player: &str, token: &str, product: &str) -> coffer_signing::Answer {
    let body = json!({ "player_id": player, "channel": "googleplay", "token": token,
                       "product_id": product, "region": "US" });
    shop.call("POST", "/v1/store-purchases", Some(body)).await
}

async fn stats(shop: &Shop) -> Value {
    shop.sim_control_get("/_control/googleplay/stats").await
}

/// Waits (bounded) until the simulator took `count` acknowledgements of `token`.
async fn wait_for_acks(shop: &Shop, token: &str, count: u64) {
    for _ in 0..200 {
        if stats(shop).await["acks"][token].as_u64() == Some(count) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "{token} was never acknowledged {count} times: {}",
        stats(shop).await
    );
}

async fn push(shop: &Shop, body: Value) -> u16 {
    let mut body = body;
    body["url"] = json!(shop.url("/v1/callbacks/googleplay"));
    shop.sim_control("/_control/googleplay/rtdn", body).await["status"]
        .as_u64()
        .unwrap() as u16
}

async fn a_google_purchase_becomes_a_delivered_order_acknowledged_once_with_one_token(
    backend: Backend,
) {
    let (shop, player) = play_shop(backend).await;
    let game = shop.connect_game_server().await;
    let first = device_purchase(&shop, json!({ "product_id": GEMS })).await;
    let second = device_purchase(&shop, json!({ "product_id": GEMS, "quantity": 3 })).await;

    let answer = redeem(&shop, &player, &first, GEMS).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["status"], "paid");
    // Google does not tell the price: the catalog's, in the player's region.
    assert_eq!(answer.body["amount"]["amount_minor"], 99);
    assert!(
        answer.body["payment"]["channel_txn_id"]
            .as_str()
            .unwrap()
            .starts_with("GPA."),
        "the order id is the transaction: {}",
        answer.body
    );
    let order_no = answer.body["order_no"].as_str().unwrap().to_owned();
    let more = redeem(&shop, &player, &second, GEMS).await;
    assert_eq!(more.status, StatusCode::CREATED, "{}", more.body);
    assert_eq!(more.body["grants"][0]["quantity"], 300);

    shop.wait_for_status(&order_no, "delivered").await;
    wait_for_acks(&shop, &first, 1).await;
    wait_for_acks(&shop, &second, 1).await;
    assert_eq!(game.ledger().inventories[&player]["gem"], 400);
    // Several acknowledgement runs later, still once each; one token served every call.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let stats = stats(&shop).await;
    assert_eq!(stats["acks"][&first], 1, "{stats}");
    assert_eq!(stats["acks"][&second], 1, "{stats}");
    assert_eq!(
        stats["token_requests"], 1,
        "the access token is kept: {stats}"
    );
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM store_purchases WHERE acknowledged_at IS NOT NULL")
            .await,
        2
    );
    shop.stop().await;
}

async fn an_acknowledgement_is_retried_while_the_api_fails(backend: Backend) {
    let (shop, player) = play_shop(backend).await;
    let _game = shop.connect_game_server().await;
    let token = device_purchase(&shop, json!({ "product_id": GEMS })).await;
    let answer = shop
        .http
        .put(shop.sim.url("/_control/googleplay/ack-failures"))
        .json(&json!({ "count": 3 }))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success());
    let order = redeem(&shop, &player, &token, GEMS).await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
    wait_for_acks(&shop, &token, 1).await;
    assert_eq!(
        stats(&shop).await["ack_failures_left"],
        0,
        "three 503s came first"
    );
    shop.stop().await;
}

async fn a_pending_purchase_is_not_paid_until_it_is(backend: Backend) {
    let (shop, player) = play_shop(backend).await;
    let token = device_purchase(&shop, json!({ "product_id": GEMS, "pending": true })).await;
    let pending = redeem(&shop, &player, &token, GEMS).await;
    assert_eq!(pending.status, StatusCode::CONFLICT, "{}", pending.body);
    assert_eq!(
        pending.body["type"],
        "https://coffer.dev/problems/store-purchase-pending"
    );
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 0);
    assert_eq!(shop.count("SELECT COUNT(*) FROM store_purchases").await, 0);

    shop.sim_control(
        &format!("/_control/googleplay/purchases/{token}/complete"),
        json!({}),
    )
    .await;
    let paid = shop
        .call(
            "POST",
            "/v1/store-purchases",
            Some(
                json!({ "player_id": player, "channel": "googleplay", "token": token,
                         "product_id": GEMS, "region": "CA" }),
            ),
        )
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
    assert_eq!(paid.body["status"], "paid");
    shop.stop().await;
}

async fn a_proof_sent_again_by_another_player_is_the_same_order(backend: Backend) {
    let (shop, ada) = play_shop(backend).await;
    let bob = shop.add_player("bob").await;
    let token = device_purchase(&shop, json!({ "product_id": GEMS })).await;
    let first = redeem(&shop, &ada, &token, GEMS).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = redeem(&shop, &bob, &token, GEMS).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["order_no"], first.body["order_no"]);
    assert_eq!(again.body["player_id"], ada.as_str());
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 1);
    // The second proof was answered from what Coffer knows: Google was asked once.
    assert_eq!(stats(&shop).await["lookups"], 1);
    shop.stop().await;
}

async fn a_voided_purchase_refunds_its_order_once_and_the_game_takes_the_items_back(
    backend: Backend,
) {
    let (shop, player) = play_shop(backend).await;
    let game = shop.connect_game_server().await;
    let token = device_purchase(&shop, json!({ "product_id": GEMS })).await;
    let answer = redeem(&shop, &player, &token, GEMS).await;
    let order_no = answer.body["order_no"].as_str().unwrap().to_owned();
    shop.wait_for_status(&order_no, "delivered").await;
    assert_eq!(game.ledger().inventories[&player]["gem"], 100);

    shop.sim_control(
        &format!("/_control/googleplay/purchases/{token}/void"),
        json!({}),
    )
    .await;
    // The daily poll of an instance that has not needed a token yet fetches its own.
    let fresh = shop.second_instance().await;
    assert_eq!(fresh.state.stores.poll_revoked(30).await, 1);
    let stores = &shop.state().stores;
    shop.wait_for_status(&order_no, "refunded").await;
    // Listed again the next day: nothing more.
    assert_eq!(stores.poll_revoked(30).await, 1);
    fresh.stop().await.unwrap();
    assert_eq!(shop.count("SELECT COUNT(*) FROM refunds").await, 1);
    shop.wait_for_deliveries(|list| {
        list.iter()
            .any(|d| d["type"] == "order.refunded" && d["status"] == "delivered")
    })
    .await;
    assert_eq!(game.ledger().inventories[&player]["gem"], 0);
    shop.stop().await;
}

async fn a_pushed_void_notification_refunds_and_forged_pushes_change_nothing(backend: Backend) {
    let (shop, player) = play_shop(backend).await;
    let token = device_purchase(&shop, json!({ "product_id": GEMS })).await;
    let answer = redeem(&shop, &player, &token, GEMS).await;
    let order_no = answer.body["order_no"].as_str().unwrap().to_owned();
    shop.sim_control(
        &format!("/_control/googleplay/purchases/{token}/void"),
        json!({}),
    )
    .await;

    for fault in [
        "unsigned",
        "forged_key",
        "wrong_audience",
        "wrong_email",
        "expired",
        "other_package",
    ] {
        let status = push(
            &shop,
            json!({ "kind": "voided", "token": token, "fault": fault }),
        )
        .await;
        assert_eq!(status, 400, "{fault}");
    }
    assert_eq!(shop.count("SELECT COUNT(*) FROM refunds").await, 0);

    assert_eq!(push(&shop, json!({ "kind": "test" })).await, 204);
    assert_eq!(
        push(&shop, json!({ "kind": "voided", "token": token })).await,
        204
    );
    shop.wait_for_status(&order_no, "refunded").await;
    assert_eq!(shop.count("SELECT COUNT(*) FROM refunds").await, 1);
    shop.stop().await;
}

async fn test_purchases_and_mismatched_products_are_refused(backend: Backend) {
    let (shop, player) = play_shop(backend).await;
    let tester = device_purchase(&shop, json!({ "product_id": GEMS, "test": true })).await;
    let refused = redeem(&shop, &player, &tester, GEMS).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    assert_eq!(
        refused.body["type"],
        "https://coffer.dev/problems/store-proof-refused"
    );

    let token = device_purchase(&shop, json!({ "product_id": GEMS })).await;
    let other = redeem(&shop, &player, &token, "gems_10000").await;
    assert_eq!(
        other.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        other.body
    );
    let unnamed = redeem(&shop, &player, &token, "").await;
    assert_eq!(
        unnamed.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unnamed.body
    );
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 0);
    shop.stop().await;
}

async fn purchases_waiting_for_their_delivery_never_hold_back_the_acknowledgement_of_others(
    backend: Backend,
) {
    // One acknowledgement per run: the oldest waiting purchase is another game's, whose game
    // server is unreachable, so its order is never delivered.
    let shop = Shop::start_with(backend, |config| config.stores.batch = 1).await;
    shop.add_store_gems("googleplay", GEMS).await;
    let other = shop.add_other_game("moon-miners").await;
    let (status, _) = shop
        .admin(
            "POST",
            "/v1/admin/games/moon-miners/skus",
            Some(json!({
                "code": "ore-10", "kind": "currency_pack", "title": "10 Ore",
                "grants": [{ "item": "ore", "quantity": 10 }],
                "prices": [{ "currency": "USD", "amount_minor": 99 }],
                "store_products": [{ "channel": "googleplay", "product_id": "ore_10" }]
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let miner: Value = shop
        .http
        .post(shop.url("/v1/players"))
        .json(&json!({ "game": "moon-miners", "username": "mia", "password": "correct horse" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stuck = device_purchase(&shop, json!({ "product_id": "ore_10" })).await;
    let stuck_order = other
        .send(
            "POST",
            "/v1/store-purchases",
            Some(
                &json!({ "player_id": miner["id"], "channel": "googleplay", "token": stuck,
                          "product_id": "ore_10" }),
            ),
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        stuck_order.status,
        StatusCode::CREATED,
        "{}",
        stuck_order.body
    );

    let _game = shop.connect_game_server().await;
    let player = shop.add_player("ada").await;
    let token = device_purchase(&shop, json!({ "product_id": GEMS })).await;
    let order = redeem(&shop, &player, &token, GEMS).await;
    shop.wait_for_status(order.body["order_no"].as_str().unwrap(), "delivered")
        .await;
    wait_for_acks(&shop, &token, 1).await;
    assert_eq!(
        stats(&shop).await["acks"].get(&stuck),
        None,
        "not delivered, not acknowledged"
    );
    shop.stop().await;
}
