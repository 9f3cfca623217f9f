//! App Store purchases end to end, on SQLite and PostgreSQL: the game server sends a
//! transaction id, Coffer looks it up with the App Store Server API (the simulator, signing with
//! a test chain the configuration trusts) and makes one paid order of it, delivered once; forged
//! and foreign payloads are refused and change nothing; Apple's refund takes the items back.

use crate::shop::{Backend, Shop};
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    a_verified_apple_transaction_becomes_a_paid_delivered_order,
    one_transaction_sent_many_times_concurrently_and_by_another_player_is_one_order,
    forged_and_foreign_signed_transactions_are_refused_and_change_nothing,
    an_unknown_transaction_or_product_is_refused,
    an_apple_refund_refunds_the_order_and_the_game_takes_the_items_back,
    forged_notifications_change_nothing_and_test_notifications_are_acknowledged,
    a_subscription_renews_as_a_new_order_and_its_end_is_told_once,
    an_order_created_beforehand_is_settled_by_its_proof,
);

const GEMS_PRODUCT: &str = "com.coffer.starknights.gems100";

async fn store_shop(backend: Backend) -> (Shop, String) {
    let shop = Shop::start(backend).await;
    shop.add_store_gems("appstore", GEMS_PRODUCT).await;
    let player = shop.add_player("ada").await;
    (shop, player)
}

/// A purchase made on the player's device; returns its transaction id.
async fn device_purchase(shop: &Shop, spec: Value) -> String {
    let made = shop
        .sim_control("/_control/appstore/transactions", spec)
        .await;
    made["transaction_id"].as_str().unwrap().to_owned()
}

async fn redeem(shop: &Shop, player: &str, transaction_id: &str) -> coffer_signing::Answer {
    redeem_with(shop, player, transaction_id, json!({ "region": "US" })).await
}

/// A proof with `more` fields. Signed requests with the same body in the same second are one
/// replayed request: requests sent at once differ by their player's region.
async fn redeem_with(
    shop: &Shop,
    player: &str,
    transaction_id: &str,
    more: Value,
) -> coffer_signing::Answer {
    let mut body = json!({ "player_id": player, "channel": "appstore", "token": transaction_id });
    for (key, value) in more.as_object().into_iter().flatten() {
        body[key] = value.clone();
    }
    shop.call("POST", "/v1/store-purchases", Some(body)).await
}

async fn notify(shop: &Shop, body: Value) -> u16 {
    let mut body = body;
    body["url"] = json!(shop.url("/v1/callbacks/appstore"));
    let answer = shop.sim_control("/_control/appstore/notify", body).await;
    answer["status"].as_u64().unwrap() as u16
}

async fn a_verified_apple_transaction_becomes_a_paid_delivered_order(backend: Backend) {
    let (shop, player) = store_shop(backend).await;
    let game = shop.connect_game_server().await;
    let transaction = device_purchase(
        &shop,
        json!({ "product_id": GEMS_PRODUCT, "price_milli": 1990, "quantity": 2 }),
    )
    .await;

    let answer = redeem(&shop, &player, &transaction).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let order = &answer.body;
    assert_eq!(order["status"], "paid");
    assert_eq!(order["sku"], "gems-100");
    assert_eq!(order["player_id"], player.as_str());
    // What the player paid the store, not the catalog's price.
    assert_eq!(order["amount"]["amount_minor"], 199);
    assert_eq!(order["amount"]["currency"], "USD");
    assert_eq!(order["grants"][0]["quantity"], 200, "two units bought");
    assert_eq!(order["payment"]["channel"], "appstore");
    assert_eq!(order["payment"]["channel_txn_id"], transaction.as_str());
    assert_eq!(
        order["merchant_order_no"],
        format!("appstore:{transaction}").as_str()
    );

    let order_no = order["order_no"].as_str().unwrap();
    shop.wait_for_status(order_no, "delivered").await;
    assert_eq!(game.ledger().inventories[&player]["gem"], 200);
    shop.stop().await;
}

async fn one_transaction_sent_many_times_concurrently_and_by_another_player_is_one_order(
    backend: Backend,
) {
    let (shop, ada) = store_shop(backend).await;
    let bob = shop.add_player("bob").await;
    let game = shop.connect_game_server().await;
    let transaction = device_purchase(&shop, json!({ "product_id": GEMS_PRODUCT })).await;

    let players = [&ada, &ada, &bob, &ada, &bob, &ada];
    let regions = ["US", "CA", "GB", "DE", "FR", "JP"];
    let answers = join_all(
        players
            .iter()
            .zip(regions)
            .map(|(p, region)| redeem_with(&shop, p, &transaction, json!({ "region": region }))),
    )
    .await;
    let created: Vec<_> = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    let order_no = created[0].body["order_no"].clone();
    for answer in &answers {
        assert!(
            matches!(answer.status, StatusCode::CREATED | StatusCode::OK),
            "{answer:?}"
        );
        assert_eq!(
            answer.body["order_no"], order_no,
            "every answer names the one order"
        );
    }
    let owner = created[0].body["player_id"].as_str().unwrap().to_owned();

    // Sent again later, by anyone: the same order, nothing more granted.
    let again = redeem_with(&shop, &bob, &transaction, json!({ "region": "BR" })).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["order_no"], order_no);
    shop.wait_for_status(order_no.as_str().unwrap(), "delivered")
        .await;
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 1);
    assert_eq!(shop.count("SELECT COUNT(*) FROM store_purchases").await, 1);
    let inventories = game.ledger().inventories;
    let granted: i64 = inventories.values().filter_map(|i| i.get("gem")).sum();
    assert_eq!(granted, 100, "one grant: {inventories:?}");
    assert_eq!(inventories[&owner]["gem"], 100);
    shop.stop().await;
}

async fn forged_and_foreign_signed_transactions_are_refused_and_change_nothing(backend: Backend) {
    let (shop, player) = store_shop(backend).await;
    for fault in [
        "self_signed",
        "rogue_chain",
        "tampered",
        "wrong_bundle",
        "sandbox",
    ] {
        let transaction =
            device_purchase(&shop, json!({ "product_id": GEMS_PRODUCT, "fault": fault })).await;
        let answer = redeem(&shop, &player, &transaction).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{fault}: {}",
            answer.body
        );
        assert_eq!(
            answer.body["type"], "https://coffer.dev/problems/store-proof-refused",
            "{fault}"
        );
    }
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 0);
    assert_eq!(shop.count("SELECT COUNT(*) FROM store_purchases").await, 0);
    assert_eq!(shop.count("SELECT COUNT(*) FROM outbox_events").await, 0);
    shop.stop().await;
}

async fn an_unknown_transaction_or_product_is_refused(backend: Backend) {
    let (shop, player) = store_shop(backend).await;
    let unknown = redeem(&shop, &player, "2000000999999999").await;
    assert_eq!(
        unknown.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        unknown.body
    );
    assert_eq!(
        unknown.body["type"],
        "https://coffer.dev/problems/store-proof-refused"
    );

    let not_digits = redeem(&shop, &player, "../../admin").await;
    assert_eq!(not_digits.status, StatusCode::UNPROCESSABLE_ENTITY);

    let other_product = device_purchase(
        &shop,
        json!({ "product_id": "com.coffer.starknights.sword" }),
    )
    .await;
    let answer = redeem(&shop, &player, &other_product).await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.body
    );
    assert_eq!(
        answer.body["type"],
        "https://coffer.dev/problems/unknown-store-product"
    );

    // The proof names one product, the store sold another.
    let gems = device_purchase(&shop, json!({ "product_id": GEMS_PRODUCT })).await;
    let mislabelled = shop
        .call(
            "POST",
            "/v1/store-purchases",
            Some(
                json!({ "player_id": player, "channel": "appstore", "token": gems,
                         "product_id": "com.coffer.starknights.gems10000" }),
            ),
        )
        .await;
    assert_eq!(mislabelled.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        mislabelled.body["type"],
        "https://coffer.dev/problems/store-proof-refused"
    );

    let stranger = redeem(&shop, "no-such-player", &gems).await;
    assert_eq!(
        stranger.body["type"],
        "https://coffer.dev/problems/unknown-player"
    );
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 0);
    shop.stop().await;
}

async fn an_apple_refund_refunds_the_order_and_the_game_takes_the_items_back(backend: Backend) {
    let (shop, player) = store_shop(backend).await;
    let game = shop.connect_game_server().await;
    let transaction = device_purchase(&shop, json!({ "product_id": GEMS_PRODUCT })).await;
    let answer = redeem(&shop, &player, &transaction).await;
    let order_no = answer.body["order_no"].as_str().unwrap().to_owned();
    shop.wait_for_status(&order_no, "delivered").await;
    assert_eq!(game.ledger().inventories[&player]["gem"], 100);

    let refund = json!({ "notification_type": "REFUND", "transaction_id": transaction });
    assert_eq!(notify(&shop, refund.clone()).await, 200);
    let detail = shop.wait_for_status(&order_no, "refunded").await;
    assert_eq!(detail["order"]["refunded"]["amount_minor"], 199);
    // Apple repeats a notification until it gets a 200: once is what counts.
    assert_eq!(notify(&shop, refund).await, 200);
    assert_eq!(shop.count("SELECT COUNT(*) FROM refunds").await, 1);
    shop.wait_for_deliveries(|list| {
        list.iter()
            .filter(|d| d["type"] == "order.refunded" && d["status"] == "delivered")
            .count()
            == 1
    })
    .await;
    assert_eq!(game.ledger().inventories[&player]["gem"], 0);

    // A refunded transaction cannot be redeemed again for a new order.
    let again = redeem_with(&shop, &player, &transaction, json!({ "region": "CA" })).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["order_no"], order_no.as_str());
    assert_eq!(again.body["status"], "refunded");
    shop.stop().await;
}

async fn forged_notifications_change_nothing_and_test_notifications_are_acknowledged(
    backend: Backend,
) {
    let (shop, player) = store_shop(backend).await;
    let transaction = device_purchase(&shop, json!({ "product_id": GEMS_PRODUCT })).await;
    let answer = redeem(&shop, &player, &transaction).await;
    let order_no = answer.body["order_no"].as_str().unwrap().to_owned();

    for fault in [
        "self_signed",
        "rogue_chain",
        "tampered",
        "wrong_bundle",
        "sandbox",
    ] {
        let forged = json!({
            "notification_type": "REFUND", "transaction_id": transaction, "fault": fault
        });
        assert_eq!(notify(&shop, forged).await, 400, "{fault}");
    }
    let (_, detail) = shop
        .admin("GET", &format!("/v1/admin/orders/{order_no}"), None)
        .await;
    assert_ne!(detail["order"]["status"], "refunded");
    assert_eq!(shop.count("SELECT COUNT(*) FROM refunds").await, 0);

    assert_eq!(
        notify(&shop, json!({ "notification_type": "TEST" })).await,
        200
    );
    shop.stop().await;
}

async fn a_subscription_renews_as_a_new_order_and_its_end_is_told_once(backend: Backend) {
    let (shop, player) = store_shop(backend).await;
    const MONTHLY: &str = "com.coffer.starknights.monthly";
    shop.add_sku(json!({
        "code": "monthly-card", "kind": "subscription", "title": "Monthly Card",
        "period_days": 30, "grants": [{ "item": "monthly-card-day", "quantity": 30 }],
        "prices": [{ "currency": "USD", "amount_minor": 499 }],
        "store_products": [{ "channel": "appstore", "product_id": MONTHLY }]
    }))
    .await;
    let subscription = json!({ "product_id": MONTHLY, "price_milli": 4990,
                               "kind": "Auto-Renewable Subscription" });
    let first = device_purchase(&shop, subscription.clone()).await;
    let answer = redeem(&shop, &player, &first).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["sku"], "monthly-card");

    let mut renewal = subscription.clone();
    renewal["renews"] = json!(first);
    let second = device_purchase(&shop, renewal).await;
    // Renewal info signed by someone else: the whole notification is refused.
    let forged = json!({ "notification_type": "DID_RENEW", "transaction_id": second,
                         "renewal_fault": "rogue_chain" });
    assert_eq!(notify(&shop, forged).await, 400);
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 1);

    let renew = json!({ "notification_type": "DID_RENEW", "transaction_id": second });
    assert_eq!(notify(&shop, renew.clone()).await, 200);
    assert_eq!(notify(&shop, renew).await, 200, "Apple repeats itself");
    let (_, list) = shop
        .admin("GET", "/v1/admin/orders?game=star-knights", None)
        .await;
    let orders = list["orders"].as_array().unwrap();
    assert_eq!(orders.len(), 2, "{list}");
    for order in orders {
        assert_eq!(
            order["player_id"],
            player.as_str(),
            "the subscriber's: {order}"
        );
        assert_eq!(order["sku"], "monthly-card");
        assert_eq!(order["status"], "paid");
    }

    let expired = json!({ "notification_type": "EXPIRED", "subtype": "VOLUNTARY",
                          "transaction_id": second });
    assert_eq!(notify(&shop, expired.clone()).await, 200);
    assert_eq!(notify(&shop, expired).await, 200);
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'subscription.expired'")
            .await,
        1,
        "the game is told once"
    );
    shop.stop().await;
}

/// A store order created by the game server before the purchase (flow `store`).
async fn store_order(shop: &Shop, player: &str, merchant_order_no: &str) -> coffer_signing::Answer {
    let body = json!({
        "player_id": player, "sku": "gems-100", "merchant_order_no": merchant_order_no,
        "method": "appstore", "flow": "store", "channel": "appstore", "client_ip": "203.0.113.7"
    });
    shop.call("POST", "/v1/orders", Some(body)).await
}

async fn an_order_created_beforehand_is_settled_by_its_proof(backend: Backend) {
    let (shop, player) = store_shop(backend).await;
    let created = store_order(&shop, &player, "pre-1").await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["status"], "pending");
    assert!(
        created.body.get("payment").is_none(),
        "nothing to pay at Coffer: {}",
        created.body
    );
    let order_no = created.body["order_no"].clone();
    let retry = shop
        .call(
            "POST",
            &format!("/v1/orders/{}/payments", order_no.as_str().unwrap()),
            Some(json!({ "method": "appstore", "flow": "store", "channel": "appstore" })),
        )
        .await;
    assert_eq!(
        retry.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        retry.body
    );

    // Bob cannot pay Ada's order with his purchase.
    let bob = shop.add_player("bob").await;
    let transaction = device_purchase(
        &shop,
        json!({ "product_id": GEMS_PRODUCT, "price_milli": 990 }),
    )
    .await;
    let refused = redeem_with(&shop, &bob, &transaction, json!({ "order_no": order_no })).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    let unknown = redeem_with(
        &shop,
        &player,
        &transaction,
        json!({ "order_no": "01M8ZZZZZZZZZZZZZZZZZZZZZZ" }),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);

    let settled = redeem_with(
        &shop,
        &player,
        &transaction,
        json!({ "order_no": order_no }),
    )
    .await;
    assert_eq!(settled.status, StatusCode::OK, "{}", settled.body);
    assert_eq!(settled.body["order_no"], order_no);
    assert_eq!(settled.body["status"], "paid");
    assert_eq!(settled.body["merchant_order_no"], "pre-1");
    assert_eq!(
        settled.body["payment"]["channel_txn_id"],
        transaction.as_str()
    );
    let again = redeem(&shop, &player, &transaction).await;
    assert_eq!(
        again.body["order_no"], order_no,
        "the proof is spent on that order"
    );
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 1);

    // A purchase at another price than the order's makes an order of its own; the one
    // created beforehand keeps waiting (and expires, giving back what it held).
    let waiting = store_order(&shop, &player, "pre-2").await.body["order_no"].clone();
    let dearer = device_purchase(
        &shop,
        json!({ "product_id": GEMS_PRODUCT, "price_milli": 1990 }),
    )
    .await;
    let own = redeem_with(&shop, &player, &dearer, json!({ "order_no": waiting })).await;
    assert_eq!(own.status, StatusCode::CREATED, "{}", own.body);
    assert_ne!(own.body["order_no"], waiting);
    assert_eq!(own.body["amount"]["amount_minor"], 199);
    let (_, detail) = shop
        .admin(
            "GET",
            &format!("/v1/admin/orders/{}", waiting.as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(detail["order"]["status"], "pending");
    shop.stop().await;
}
