//! Orders through the real service, the real plugins and the channel simulator, on SQLite and
//! PostgreSQL: idempotency, stock, purchase limits, prices, payment attempts, channel failures.

use std::collections::HashSet;

use crate::shop::{Backend, Shop, VIEWER_TOKEN};
use coffer_sim::carespay::{CARD_3DS, CARD_APPROVED, CARD_DECLINED};
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    qr_order_reaches_the_simulator_and_returns_a_scannable_code,
    card_orders_pay_at_once_or_ask_for_3ds,
    declined_card_keeps_the_order_open_for_another_attempt,
    channel_timeout_leaves_the_order_pending_and_blocks_a_double_charge,
    unreachable_channel_is_an_unknown_outcome,
    same_key_same_body_replays_the_stored_answer,
    same_key_other_body_is_refused,
    fifty_concurrent_requests_with_one_key_make_one_order,
    merchant_order_numbers_are_unique_per_game,
    two_hundred_buyers_for_a_hundred_units_never_oversell,
    purchase_limits_hold_under_concurrency,
    prices_follow_the_region_and_currency,
    bad_orders_change_nothing,
    orders_are_visible_only_to_their_game,
    operators_list_orders_with_filters,
    a_crashing_plugin_is_routed_around_and_changes_nothing,
    the_store_refuses_illegal_and_stale_transitions,
);

fn card_order(player: &str, merchant_order_no: &str, number: &str) -> Value {
    json!({
        "player_id": player,
        "sku": "gems-100",
        "region": "US",
        "merchant_order_no": merchant_order_no,
        "method": "card",
        "flow": "direct_card",
        "channel": "carespay",
        "client_ip": "203.0.113.7",
        "customer": {
            "email": "ada@example.test", "first_name": "Ada", "last_name": "Player",
            "phone": "+1 555 0100",
            "billing": { "country": "US", "state": "CA", "city": "San Francisco",
                         "line1": "1 Market St", "postal_code": "94105" }
        },
        "card": { "number": number, "expiry_month": 12, "expiry_year": 2031, "cvc": "123",
                  "holder_name": "Ada Player" }
    })
}

async fn ready_shop(backend: Backend) -> (Shop, String) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    (shop, player)
}

async fn qr_order_reaches_the_simulator_and_returns_a_scannable_code(backend: Backend) {
    let (shop, player) = ready_shop(backend).await;
    let answer = shop.order_qr(&player, "gems-100", "m-1").await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let order = &answer.body;
    assert_eq!(order["status"], "pending");
    assert_eq!(
        order["amount"],
        json!({ "amount_minor": 600, "currency": "CNY", "amount": "6.00" })
    );
    assert_eq!(order["grants"], json!([{ "item": "gem", "quantity": 100 }]));
    assert_eq!(
        order["payment"]["channel"], "alipay",
        "the only channel for alipay/qr_code"
    );
    assert_eq!(order["payment"]["status"], "requires_action");
    let action = &order["payment"]["next_action"];
    assert_eq!(action["type"], "qr_code");
    let content = action["content"].as_str().unwrap();
    assert!(content.starts_with("http"), "{content}");

    let order_no = order["order_no"].as_str().unwrap();
    // The QR code can still be paid until the order expires: no second attempt meanwhile.
    let other = shop
        .call(
            "POST",
            &format!("/v1/orders/{order_no}/payments"),
            Some(json!({ "method": "wechat-pay", "flow": "qr_code" })),
        )
        .await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.body);
    assert!(
        other.body["type"]
            .as_str()
            .unwrap()
            .ends_with("attempt-in-progress")
    );
    assert!(order_no.len() <= 32 && order_no.bytes().all(|b| b.is_ascii_alphanumeric()));
    let fetched = shop
        .call("GET", &format!("/v1/orders/{order_no}"), None)
        .await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert_eq!(fetched.body["order_no"], order_no);
    assert_eq!(fetched.body["payment"]["next_action"], *action);
    shop.stop().await;
}

async fn card_orders_pay_at_once_or_ask_for_3ds(backend: Backend) {
    let (shop, player) = ready_shop(backend).await;
    let paid = shop
        .call(
            "POST",
            "/v1/orders",
            Some(card_order(&player, "card-1", CARD_APPROVED)),
        )
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
    assert_eq!(paid.body["status"], "paid");
    assert_eq!(paid.body["amount"]["currency"], "USD");
    assert_eq!(paid.body["payment"]["status"], "paid");
    assert!(paid.body["paid_at"].is_i64());

    let challenged = shop
        .call(
            "POST",
            "/v1/orders",
            Some(card_order(&player, "card-2", CARD_3DS)),
        )
        .await;
    assert_eq!(
        challenged.status,
        StatusCode::CREATED,
        "{}",
        challenged.body
    );
    assert_eq!(challenged.body["status"], "pending");
    let action = &challenged.body["payment"]["next_action"];
    assert_eq!(action["type"], "redirect", "{action}");
    // The 3-D Secure page is served by the simulator: the URL is usable.
    let page = reqwest::get(action["url"].as_str().unwrap()).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);

    // Card data is never stored, not even in the idempotency table or the attempts.
    for table in [
        "orders",
        "payment_attempts",
        "idempotency_keys",
        "order_transitions",
    ] {
        let rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT CAST(COUNT(*) AS TEXT) FROM {table} WHERE 0 = 1"
        )))
        .fetch_all(shop.store().pool())
        .await
        .unwrap();
        assert_eq!(rows, vec!["0".to_owned()]);
    }
    let dump: Vec<String> = sqlx::query_scalar(
        "SELECT COALESCE(next_action, '') || channel_status || COALESCE(failure_message, '') FROM payment_attempts",
    )
    .fetch_all(shop.store().pool())
    .await
    .unwrap();
    assert!(!dump.concat().contains("4242424242424242"));
    shop.stop().await;
}

async fn declined_card_keeps_the_order_open_for_another_attempt(backend: Backend) {
    let (shop, player) = ready_shop(backend).await;
    let declined = shop
        .call(
            "POST",
            "/v1/orders",
            Some(card_order(&player, "card-1", CARD_DECLINED)),
        )
        .await;
    assert_eq!(
        declined.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        declined.body
    );
    assert!(
        declined.body["type"]
            .as_str()
            .unwrap()
            .ends_with("payment-declined")
    );
    let order = &declined.body["order"];
    assert_eq!(order["status"], "pending");
    assert_eq!(order["payment"]["failure"]["code"], "P0002");
    let order_no = order["order_no"].as_str().unwrap();

    // Another card on the same order: attempt 2, paid.
    let retry = card_order(&player, "card-1", CARD_APPROVED);
    let mut choice = retry.as_object().unwrap().clone();
    for field in [
        "player_id",
        "sku",
        "region",
        "merchant_order_no",
        "client_ip",
    ] {
        choice.remove(field);
    }
    let path = format!("/v1/orders/{order_no}/payments");
    let second = shop
        .call("POST", &path, Some(Value::Object(choice.clone())))
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.body["status"], "paid");
    assert_eq!(second.body["payment"]["attempt_no"], 2);

    // A paid order takes no more attempts. (Another operation: not the same signed bytes,
    // which within the same second would be refused as a replay.)
    choice.insert("language".into(), json!("fr"));
    let third = shop.call("POST", &path, Some(Value::Object(choice))).await;
    assert_eq!(third.status, StatusCode::CONFLICT);
    let (_, detail) = shop
        .admin("GET", &format!("/v1/admin/orders/{order_no}"), None)
        .await;
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(
        (
            attempts[0]["status"].as_str(),
            attempts[1]["status"].as_str()
        ),
        (Some("failed"), Some("paid"))
    );
    let transitions = shop.count("SELECT COUNT(*) FROM order_transitions").await;
    assert_eq!(transitions, 1, "pending -> paid, recorded once");
    shop.stop().await;
}

async fn channel_timeout_leaves_the_order_pending_and_blocks_a_double_charge(backend: Backend) {
    let shop = Shop::start_with(backend, |c| c.orders.channel_timeout_ms = 300).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    reqwest::Client::new()
        .put(shop.sim.url("/_control/faults"))
        .json(&json!({ "api_delay_ms": 1500 }))
        .send()
        .await
        .unwrap();
    let answer = shop
        .call(
            "POST",
            "/v1/orders",
            Some(card_order(&player, "slow-1", CARD_APPROVED)),
        )
        .await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{}", answer.body);
    assert!(
        answer.body["type"]
            .as_str()
            .unwrap()
            .ends_with("payment-outcome-unknown")
    );
    let order = &answer.body["order"];
    assert_eq!(order["status"], "pending");
    assert_eq!(order["payment"]["status"], "unknown");
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 1);

    // The card may have been charged: another attempt is refused until a query settles it.
    let order_no = order["order_no"].as_str().unwrap();
    let retry = json!({ "method": "alipay", "flow": "qr_code" });
    let refused = shop
        .call(
            "POST",
            &format!("/v1/orders/{order_no}/payments"),
            Some(retry),
        )
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(
        refused.body["type"]
            .as_str()
            .unwrap()
            .ends_with("attempt-in-progress")
    );
    shop.stop().await;
}

async fn unreachable_channel_is_an_unknown_outcome(backend: Backend) {
    let shop = Shop::start_with(backend, |c| {
        let testpay = c.channels.get_mut("testpay").unwrap();
        testpay
            .endpoints
            .insert("api".into(), "http://127.0.0.1:9/testpay".into());
    })
    .await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    // Nothing listens on port 9 (discard).
    let mut body = card_order(&player, "tp-1", CARD_APPROVED);
    body["channel"] = json!("testpay");
    let answer = shop.call("POST", "/v1/orders", Some(body)).await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY, "{}", answer.body);
    assert_eq!(answer.body["order"]["payment"]["status"], "unknown");
    assert_eq!(
        answer.body["order"]["payment"]["failure"]["code"],
        "coffer.no_answer"
    );
    shop.stop().await;
}

async fn same_key_same_body_replays_the_stored_answer(backend: Backend) {
    let (shop, player) = ready_shop(backend).await;
    let body = shop.qr_order(&player, "gems-100", "m-1");
    let first = shop.order_with_key("key-1", &body).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(first.headers.get("idempotent-replayed").is_none());
    // Same parameters, different layout: still the same request.
    let reordered: Value = serde_json::from_str(&body.to_string()).unwrap();
    let second = shop.order_with_key("key-1", &reordered).await;
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(second.headers["idempotent-replayed"], "true");
    assert_eq!(second.body, first.body, "byte-for-byte the stored answer");
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 1);

    // An answer that changed nothing is not stored: fixing the request with the same key works.
    let mut bad = shop.qr_order(&player, "no-such-sku", "m-2");
    let refused = shop.order_with_key("key-2", &bad).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    bad["sku"] = json!("gems-100");
    let fixed = shop.order_with_key("key-2", &bad).await;
    assert_eq!(fixed.status, StatusCode::CREATED, "{}", fixed.body);
    shop.stop().await;
}

async fn same_key_other_body_is_refused(backend: Backend) {
    let (shop, player) = ready_shop(backend).await;
    let first = shop
        .order_with_key("key-1", &shop.qr_order(&player, "gems-100", "m-1"))
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let other = shop
        .order_with_key("key-1", &shop.qr_order(&player, "gems-100", "m-2"))
        .await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        other.body["type"]
            .as_str()
            .unwrap()
            .ends_with("idempotency-key-reused")
    );
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 1);
    shop.stop().await;
}

async fn fifty_concurrent_requests_with_one_key_make_one_order(backend: Backend) {
    let (shop, player) = ready_shop(backend).await;
    let body = shop.qr_order(&player, "gems-100", "m-race");
    let answers = join_all((0..50).map(|_| shop.order_with_key("race-key", &body))).await;
    let mut order_numbers = HashSet::new();
    for answer in &answers {
        match answer.status {
            StatusCode::CREATED => {
                order_numbers.insert(answer.body["order_no"].as_str().unwrap().to_owned());
            }
            StatusCode::CONFLICT => {
                assert!(
                    answer.body["type"]
                        .as_str()
                        .unwrap()
                        .ends_with("idempotency-key-in-use")
                );
            }
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    assert_eq!(order_numbers.len(), 1, "every success is the same order");
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 1);
    assert_eq!(shop.count("SELECT COUNT(*) FROM payment_attempts").await, 1);
    shop.stop().await;
}

async fn merchant_order_numbers_are_unique_per_game(backend: Backend) {
    let (shop, player) = ready_shop(backend).await;
    let first = shop.order_qr(&player, "gems-100", "m-1").await;
    assert_eq!(first.status, StatusCode::CREATED);
    // The same purchase asked for again (another request, not a replay of the same bytes).
    let mut same_purchase = shop.qr_order(&player, "gems-100", "m-1");
    same_purchase["device"] = json!("retried");
    let again = shop.call("POST", "/v1/orders", Some(same_purchase)).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(
        again.body["order_no"], first.body["order_no"],
        "the existing order is named"
    );
    // Concurrent requests for one purchase under different keys: still one order.
    let answers = join_all((0..10).map(|i| {
        let mut body = shop.qr_order(&player, "gems-100", "m-2");
        body["device"] = json!(format!("device {i}"));
        shop.call("POST", "/v1/orders", Some(body))
    }))
    .await;
    let created = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 1);
    assert!(
        answers
            .iter()
            .all(|a| a.status == StatusCode::CREATED || a.status == StatusCode::CONFLICT)
    );
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 2);
    shop.stop().await;
}

async fn two_hundred_buyers_for_a_hundred_units_never_oversell(backend: Backend) {
    let shop = Shop::start(backend).await;
    shop.add_sku(json!({
        "code": "dragon-egg", "kind": "one_time", "title": "Dragon Egg",
        "grants": [{ "item": "dragon-egg", "quantity": 1 }],
        "prices": [{ "currency": "CNY", "amount_minor": 3000 }],
        "stock_total": 100
    }))
    .await;
    let players = join_all((0..200).map(|i| shop.add_player_named(i))).await;
    let answers = join_all(
        players
            .iter()
            .enumerate()
            .map(|(i, player)| shop.order_qr(player, "dragon-egg", &format!("egg-{i}"))),
    )
    .await;
    let created = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    let sold_out = answers
        .iter()
        .filter(|a| {
            a.status == StatusCode::CONFLICT
                && a.body["type"].as_str().unwrap().ends_with("sold-out")
        })
        .count();
    let others: Vec<_> = answers
        .iter()
        .filter(|a| a.status != StatusCode::CREATED && a.status != StatusCode::CONFLICT)
        .map(|a| (a.status, a.body.clone()))
        .collect();
    assert_eq!((created, sold_out), (100, 100), "other answers: {others:?}");
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 100);
    assert_eq!(
        shop.count("SELECT stock_reserved FROM skus WHERE code = 'dragon-egg'")
            .await,
        100
    );
    // Stock cannot be lowered below what orders hold.
    let (status, _) = shop
        .admin(
            "PUT",
            "/v1/admin/games/star-knights/skus/dragon-egg",
            Some(json!({
                "code": "dragon-egg", "kind": "one_time", "title": "Dragon Egg",
                "grants": [{ "item": "dragon-egg", "quantity": 1 }],
                "prices": [{ "currency": "CNY", "amount_minor": 3000 }],
                "stock_total": 99
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let catalog = shop.call("GET", "/v1/catalog", None).await;
    assert_eq!(
        catalog.body["items"][0]["stock_left"], 0,
        "the catalog shows current stock"
    );
    // The operator sees how the writes were committed: on SQLite every order (and every
    // refusal that wrote nothing) was a job of the committer, several to a commit at most.
    let (status, stats) = shop.admin("GET", "/v1/admin/store/stats", None).await;
    assert_eq!(status, StatusCode::OK);
    match backend {
        Backend::Sqlite => {
            assert_eq!(stats["backend"], "sqlite");
            let writes = &stats["writes"];
            let jobs = writes["jobs"].as_u64().unwrap();
            let batches = writes["batches"].as_u64().unwrap();
            assert!(
                jobs >= 200,
                "200 players and 100 orders were written: {writes}"
            );
            assert!(batches >= 1 && batches <= jobs, "{writes}");
            assert!(writes["largest_batch"].as_u64().unwrap() <= 128, "{writes}");
        }
        Backend::Postgres => assert_eq!(stats, json!({ "backend": "postgres", "writes": null })),
    }
    shop.stop().await;
}

async fn purchase_limits_hold_under_concurrency(backend: Backend) {
    let (shop, player) = ready_shop(backend).await;
    shop.add_sku(json!({
        "code": "starter", "kind": "bundle", "title": "First-purchase bonus",
        "grants": [{ "item": "gem", "quantity": 300 }],
        "prices": [{ "currency": "CNY", "amount_minor": 100 }],
        "per_player_limit": 1
    }))
    .await;
    let answers =
        join_all((0..10).map(|i| shop.order_qr(&player, "starter", &format!("s-{i}")))).await;
    let created = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    assert_eq!(
        created, 1,
        "once per player, even when asked ten times at once"
    );
    let limited = answers
        .iter()
        .find(|a| a.status == StatusCode::CONFLICT)
        .unwrap();
    assert!(
        limited.body["type"]
            .as_str()
            .unwrap()
            .ends_with("purchase-limit-reached")
    );
    let other = shop.add_player("bob").await;
    let theirs = shop.order_qr(&other, "starter", "s-bob").await;
    assert_eq!(
        theirs.status,
        StatusCode::CREATED,
        "the limit is per player"
    );
    shop.stop().await;
}

async fn prices_follow_the_region_and_currency(backend: Backend) {
    let (shop, player) = ready_shop(backend).await;
    let mut body = card_order(&player, "r-1", CARD_3DS);
    let us = shop.call("POST", "/v1/orders", Some(body.clone())).await;
    assert_eq!(us.body["amount"]["amount_minor"], 99);
    assert_eq!(us.body["amount"]["currency"], "USD");
    assert_eq!(us.body["region"], "US");
    body["merchant_order_no"] = json!("r-2");
    body["currency"] = json!("EUR");
    let eur = shop.call("POST", "/v1/orders", Some(body)).await;
    assert_eq!(eur.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(eur.body["type"].as_str().unwrap().ends_with("no-price"));
    let cn = shop.order_qr(&player, "gems-100", "r-3").await;
    assert_eq!(
        cn.body["amount"]["amount_minor"], 600,
        "no region: the game's default (CN)"
    );
    shop.stop().await;
}

async fn bad_orders_change_nothing(backend: Backend) {
    let (shop, player) = ready_shop(backend).await;
    shop.add_sku(json!({
        "code": "later", "kind": "bundle", "title": "Not yet",
        "grants": [{ "item": "gem", "quantity": 1 }],
        "prices": [{ "currency": "CNY", "amount_minor": 100 }],
        "stock_total": 5,
        "sale_starts_at": coffer::store::now_ms() + 3_600_000
    }))
    .await;
    let cases: Vec<(Value, &str)> = vec![
        (
            shop.qr_order("pl_nobody", "gems-100", "b-1"),
            "unknown-player",
        ),
        (shop.qr_order(&player, "no-such-sku", "b-2"), "unknown-sku"),
        (shop.qr_order(&player, "later", "b-3"), "sku-not-on-sale"),
        (
            {
                let mut b = shop.qr_order(&player, "gems-100", "b-4");
                b["method"] = json!("bitcoin");
                b
            },
            "no-channel",
        ),
        (
            {
                let mut b = shop.qr_order(&player, "gems-100", "b-5");
                b["client_ip"] = json!("not-an-ip");
                b
            },
            "invalid-order",
        ),
        (
            {
                let mut b = shop.qr_order(&player, "gems-100", "b-6");
                b["channel"] = json!("wechatpay");
                b
            },
            "no-channel",
        ),
        (
            {
                let mut b = card_order(&player, "b-7", CARD_APPROVED);
                b.as_object_mut().unwrap().remove("card");
                b
            },
            "invalid-order",
        ),
        (
            {
                let mut b = shop.qr_order(&player, "gems-100", "b-8");
                b["amount_minor"] = json!(1);
                b
            },
            "invalid-body",
        ),
    ];
    for (body, problem) in cases {
        let answer = shop.call("POST", "/v1/orders", Some(body)).await;
        assert!(
            answer.status.is_client_error(),
            "{problem}: {}",
            answer.body
        );
        assert!(
            answer.body["type"].as_str().unwrap().ends_with(problem),
            "{problem}: {}",
            answer.body
        );
    }
    let malformed = shop
        .client
        .send(
            "POST",
            "/v1/orders",
            Some(&json!("not an object")),
            Some("m-1"),
        )
        .await
        .unwrap();
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(
        malformed.body["type"]
            .as_str()
            .unwrap()
            .ends_with("malformed-json"),
        "{}",
        malformed.body
    );
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 0);
    assert_eq!(shop.count("SELECT COUNT(*) FROM payment_attempts").await, 0);
    assert_eq!(
        shop.count("SELECT CAST(COALESCE(SUM(stock_reserved), 0) AS BIGINT) FROM skus")
            .await,
        0
    );
    assert_eq!(
        shop.count("SELECT CAST(COALESCE(SUM(purchases), 0) AS BIGINT) FROM purchase_counts")
            .await,
        0
    );
    shop.stop().await;
}

async fn orders_are_visible_only_to_their_game(backend: Backend) {
    let (shop, player) = ready_shop(backend).await;
    let created = shop.order_qr(&player, "gems-100", "v-1").await;
    let order_no = created.body["order_no"].as_str().unwrap().to_owned();
    let other = shop.add_other_game("moon-farm").await;
    let peek = other
        .send("GET", &format!("/v1/orders/{order_no}"), None, None)
        .await
        .unwrap();
    assert_eq!(peek.status, StatusCode::NOT_FOUND);
    // Nor can it buy for another game's player.
    let mut body = shop.qr_order(&player, "gems-100", "v-2");
    body["sku"] = json!("gems-100");
    let steal = other
        .send("POST", "/v1/orders", Some(&body), Some("steal-1"))
        .await
        .unwrap();
    assert_eq!(steal.status, StatusCode::UNPROCESSABLE_ENTITY);
    let missing = shop.call("GET", "/v1/orders/NOSUCHORDER", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    shop.stop().await;
}

async fn operators_list_orders_with_filters(backend: Backend) {
    let (shop, player) = ready_shop(backend).await;
    for i in 0..3 {
        shop.order_qr(&player, "gems-100", &format!("l-{i}")).await;
    }
    shop.call(
        "POST",
        "/v1/orders",
        Some(card_order(&player, "l-paid", CARD_APPROVED)),
    )
    .await;
    let (status, page) = shop
        .admin_as(
            VIEWER_TOKEN,
            "GET",
            "/v1/admin/orders?game=star-knights&status=pending&limit=2",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let first = page["orders"].as_array().unwrap();
    assert_eq!(first.len(), 2);
    let before = page["next_before"].as_str().unwrap();
    let (_, rest) = shop
        .admin(
            "GET",
            &format!("/v1/admin/orders?status=pending&before={before}"),
            None,
        )
        .await;
    assert_eq!(rest["orders"].as_array().unwrap().len(), 1);
    let (_, paid) = shop
        .admin("GET", "/v1/admin/orders?status=paid", None)
        .await;
    assert_eq!(paid["orders"][0]["merchant_order_no"], "l-paid");
    let (status, _) = shop
        .admin("GET", "/v1/admin/orders?status=teleported", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    shop.stop().await;
}

async fn a_crashing_plugin_is_routed_around_and_changes_nothing(backend: Backend) {
    // The hostile fixture's route-score breaks the contract (a score of 5000) on every call.
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("own-secret.hex");
    std::fs::write(&key, "00112233445566778899aabbccddeeff").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let shop = Shop::start_with_plugins(backend, &["hostile.wasm"], |c| {
        let section = coffer::config::Config::from_toml(&format!(
            "[channels.hostile]\nendpoints = {{ api = \"http://127.0.0.1:9/hostile\" }}\n\
             keys = {{ own-secret = {{ file = {:?}, format = \"hex\" }} }}\n",
            key.display().to_string()
        ))
        .unwrap()
        .channels
        .remove("hostile")
        .unwrap();
        c.channels.insert("hostile".into(), section);
    })
    .await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    let mut forced = card_order(&player, "h-1", CARD_APPROVED);
    forced["channel"] = json!("hostile");
    let refused = shop.call("POST", "/v1/orders", Some(forced)).await;
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.body
    );
    assert!(
        refused.body["type"]
            .as_str()
            .unwrap()
            .ends_with("channels-unavailable")
    );
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 0);

    // Left to the router, the broken channel is skipped and a working one carries the order.
    let mut routed = card_order(&player, "h-2", CARD_APPROVED);
    routed.as_object_mut().unwrap().remove("channel");
    let paid = shop.call("POST", "/v1/orders", Some(routed)).await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
    assert_ne!(paid.body["payment"]["channel"], "hostile");
    shop.stop().await;
}

async fn the_store_refuses_illegal_and_stale_transitions(backend: Backend) {
    use coffer::orders::{OrderNo, OrderStatus, TransitionError, transition};
    let (shop, player) = ready_shop(backend).await;
    let created = shop.order_qr(&player, "gems-100", "t-1").await;
    let order_no = OrderNo::parse(created.body["order_no"].as_str().unwrap()).unwrap();
    let store = shop.store().clone();

    let try_transition = |from: OrderStatus, to: OrderStatus, reason: &'static str| {
        store.write(
            (order_no.clone(), from, to, reason),
            |tx, (order_no, from, to, reason)| {
                Box::pin(async move { transition(tx, order_no, *from, *to, reason).await })
            },
        )
    };
    // Illegal: pending cannot be delivered or refunded.
    for to in [
        OrderStatus::Delivered,
        OrderStatus::Refunded,
        OrderStatus::Pending,
    ] {
        let result = try_transition(OrderStatus::Pending, to, "test").await;
        assert!(
            matches!(result, Err(TransitionError::Illegal(_))),
            "pending -> {to}: {result:?}"
        );
    }
    // Stale: the order is not paid, so "paid -> delivered" finds nothing to move.
    let moved = try_transition(OrderStatus::Paid, OrderStatus::Delivered, "test")
        .await
        .unwrap();
    assert!(!moved);
    // Legal and current: applied once; the same move again finds nothing.
    assert!(
        try_transition(OrderStatus::Pending, OrderStatus::Closed, "expired")
            .await
            .unwrap()
    );
    assert!(
        !try_transition(OrderStatus::Pending, OrderStatus::Closed, "again")
            .await
            .unwrap()
    );
    let (_, detail) = shop
        .admin("GET", &format!("/v1/admin/orders/{order_no}"), None)
        .await;
    assert_eq!(detail["order"]["status"], "closed");
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM order_transitions").await,
        1
    );
    shop.stop().await;
}
