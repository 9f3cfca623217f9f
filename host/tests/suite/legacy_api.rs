//! The old three-service system's game client against Coffer: its exact requests get its old
//! response shapes, and none of the old holes is open (each test below would pass on the old
//! services only by failing). SQLite and PostgreSQL.

use crate::legacy::{
    DIAMONDS_12, bill_status, json_call, legacy_shop, legacy_shop_with, pay, pay_form, player,
    record,
};
use crate::shop;
use crate::shop::{Backend, OPERATOR_TOKEN, Shop, VIEWER_TOKEN};
use coffer_sim::carespay::{CARD_3DS, CARD_APPROVED};
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    account_calls_get_the_old_shapes,
    a_card_payment_goes_the_old_way_and_is_signed_by_coffer,
    three_d_secure_is_paid_only_after_the_signed_query,
    players_cannot_change_level_or_gold_or_read_others,
    records_are_accepted_only_for_orders_coffer_saw_paid,
    paid_legacy_orders_are_delivered_once,
    bad_payment_forms_change_nothing,
    a_channel_timeout_is_settled_by_the_status_poll,
    concurrent_duplicates_make_one_player_and_one_order,
);

async fn account_calls_get_the_old_shapes(backend: Backend) {
    let shop = legacy_shop(backend).await;
    let (status, registered) = json_call(
        &shop,
        "POST",
        "/api/auth/register",
        Some(json!({ "pid": "p1001", "name": "test1732480000123", "password": "hunter22" })),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(registered["success"], true);
    assert_eq!(registered["message"], "注册成功");
    let data = &registered["data"];
    assert!(data["id"].is_i64(), "{registered}");
    assert_eq!(
        (&data["pid"], &data["name"], &data["level"], &data["gold"]),
        (
            &json!("p1001"),
            &json!("test1732480000123"),
            &json!(1),
            &json!(500)
        )
    );
    let keys: Vec<_> = data.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys.len(), 5, "{keys:?}");

    // The password is an Argon2id hash, never the text.
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM players WHERE username = $1")
        .bind("p1001")
        .fetch_one(shop.store().pool())
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("hunter22"));

    let (_, duplicate) = json_call(
        &shop,
        "POST",
        "/api/auth/register",
        Some(json!({ "pid": "p1001", "name": "other", "password": "hunter22" })),
        None,
    )
    .await;
    assert_eq!(
        duplicate,
        json!({ "success": false, "message": "玩家ID已存在" })
    );
    let (_, incomplete) = json_call(
        &shop,
        "POST",
        "/api/auth/register",
        Some(json!({ "pid": "p1002", "name": "" })),
        None,
    )
    .await;
    assert_eq!(
        incomplete,
        json!({ "success": false, "message": "请填写完整信息" })
    );

    let (status, login) = json_call(
        &shop,
        "POST",
        "/api/auth/login",
        Some(json!({ "pid": "p1001", "password": "hunter22" })),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(login["success"], true);
    assert_eq!(login["message"], "登录成功");
    assert_eq!(login["data"]["icon"], "1");
    assert_eq!(login["data"]["gold"], 500);
    assert_eq!(login["data"]["id"], data["id"]);
    assert!(login["token"].as_str().unwrap().starts_with("cps_"));
    for wrong in [
        json!({ "pid": "p1001", "password": "wrong-one" }),
        json!({ "pid": "nobody", "password": "hunter22" }),
    ] {
        let (_, refused) = json_call(&shop, "POST", "/api/auth/login", Some(wrong), None).await;
        assert_eq!(
            refused,
            json!({ "success": false, "message": "玩家ID或密码错误" })
        );
    }

    let (_, profile) = json_call(&shop, "GET", "/api/users/p1001", None, None).await;
    assert_eq!(profile["success"], true);
    assert_eq!(profile["data"]["pid"], "p1001");
    let created_at = profile["data"]["created_at"].as_str().unwrap();
    assert!(
        created_at.ends_with('Z') && created_at.len() == 24,
        "{created_at}"
    );
    let (_, missing) = json_call(&shop, "GET", "/api/users/ghost", None, None).await;
    assert_eq!(
        missing,
        json!({ "success": false, "message": "用户不存在" })
    );

    let (_, list) = json_call(
        &shop,
        "GET",
        "/api/users?page=1&limit=20&search=p10",
        None,
        Some(VIEWER_TOKEN),
    )
    .await;
    assert_eq!(list["success"], true);
    assert_eq!(list["data"]["users"][0]["pid"], "p1001");
    assert_eq!(
        list["data"]["pagination"],
        json!({ "page": 1, "limit": 20, "total": 1, "pages": 1 })
    );

    let (_, health) = json_call(&shop, "GET", "/api/health", None, None).await;
    assert_eq!(
        (&health["success"], &health["message"]),
        (&json!(true), &json!("服务器运行正常"))
    );
    let (_, health) = json_call(&shop, "GET", "/health", None, None).await;
    assert_eq!(health["status"], "ok");
    let (status, unknown) = json_call(&shop, "GET", "/api/nothing-here", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        unknown,
        json!({ "success": false, "message": "接口不存在" })
    );
    shop.stop().await;
}

async fn a_card_payment_goes_the_old_way_and_is_signed_by_coffer(backend: Backend) {
    let shop = legacy_shop(backend).await;
    player(&shop, "p2001").await;
    // The old client: no session on /api/pay, its own md5Info and md5_key. The simulator
    // checks the real key's signature, so this pays only because Coffer signed it.
    let (status, answer) = pay(
        &shop,
        &pay_form("1001404732000616", CARD_APPROVED, "8", DIAMONDS_12),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["code"], "P0001");
    assert_eq!(answer["billNo"], "1001404732000616");
    assert_eq!(answer["amount"], "8.00");
    assert_eq!(answer["auth3DUrl"], Value::Null);

    let status = bill_status(&shop, "1001404732000616").await;
    assert_eq!(status["success"], true);
    assert_eq!(status["data"]["billNo"], "1001404732000616");
    assert_eq!(status["data"]["status"], "PAID");
    assert!(status["data"]["updatedAt"].is_i64());
    let unknown = bill_status(&shop, "1001400000000000").await;
    assert_eq!(
        unknown,
        json!({ "success": false, "message": "未找到该订单的支付状态" })
    );

    // The order is Coffer's, priced by the catalog; the card is nowhere in the database.
    let (sku, amount): (String, i64) = sqlx::query_as(
        "SELECT sku_code, amount_minor FROM orders WHERE merchant_order_no = '1001404732000616'",
    )
    .fetch_one(shop.store().pool())
    .await
    .unwrap();
    assert_eq!((sku.as_str(), amount), ("diamonds-12", 800));
    // The player's address is the connection's, not the one the form claims.
    let ip: String = sqlx::query_scalar("SELECT client_ip FROM orders")
        .fetch_one(shop.store().pool())
        .await
        .unwrap();
    assert_eq!(ip, "127.0.0.1");
    assert_no_card_stored(&shop, CARD_APPROVED).await;

    // Paid anonymously, the payment is listed (the listings are Coffer's paid orders) without
    // a player until the old client's record upload, from the address that paid and soon
    // after, names one (tests/hardening.rs has the whole claim).
    let (_, all) = json_call(&shop, "GET", "/api/payments/all", None, Some(VIEWER_TOKEN)).await;
    assert_eq!(all["data"][0]["order_no"], "1001404732000616", "{all}");
    assert_eq!(all["data"][0]["user_id"], "", "paid anonymously");
    let (_, claimed) = json_call(
        &shop,
        "POST",
        "/api/payments/record",
        Some(record("p2001", "1001404732000616", json!(8))),
        None,
    )
    .await;
    assert_eq!(claimed["success"], true, "{claimed}");

    // With the login token on /api/pay (one header), the order is the player's and the
    // client's upload is accepted; the listings show it with the old columns.
    let (_, login) = json_call(
        &shop,
        "POST",
        "/api/auth/login",
        Some(json!({ "pid": "p2001", "password": "secret-pass" })),
        None,
    )
    .await;
    let token = login["token"].as_str().unwrap();
    let (_, answer) = pay(
        &shop,
        &pay_form("1001404732000617", CARD_APPROVED, "8", DIAMONDS_12),
        Some(token),
    )
    .await;
    assert_eq!(answer["code"], "P0001", "{answer}");
    let (_, recorded) = json_call(
        &shop,
        "POST",
        "/api/payments/record",
        Some(record("p2001", "1001404732000617", json!(8))),
        Some(token),
    )
    .await;
    assert_eq!(recorded, json!({ "success": true, "message": "记录成功" }));
    let (_, mine) = json_call(&shop, "GET", "/api/payments/user/p2001", None, Some(token)).await;
    let rows = mine["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{mine}");
    let row = &rows[0];

    assert_eq!(row["user_id"], "p2001");
    assert_eq!(row["user_name"], "name of p2001");
    assert_eq!(row["amount"], "8.00");
    assert_eq!(row["order_no"], "1001404732000617");
    assert_eq!(row["product_id"], "itemBtn1");
    assert_eq!(row["product_info"], DIAMONDS_12);
    let details: Value = serde_json::from_str(row["product_details"].as_str().unwrap()).unwrap();
    assert_eq!(details["diamonds"], 12);
    assert!(row["pay_time"].as_str().unwrap().ends_with('Z'));
    let mut keys: Vec<_> = row.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "amount",
            "created_at",
            "id",
            "order_no",
            "pay_time",
            "product_details",
            "product_id",
            "product_info",
            "user_id",
            "user_name"
        ]
    );
    shop.stop().await;
}

/// No text column of the order tables holds the card number.
async fn assert_no_card_stored(shop: &Shop, card: &str) {
    for (table, columns) in [
        (
            "orders",
            "merchant_order_no || subject || client_ip || device || grants",
        ),
        (
            "payment_attempts",
            "payment_ref || channel_status || COALESCE(channel_txn_id, '') || COALESCE(next_action, '') || COALESCE(failure_message, '')",
        ),
        ("outbox_events", "payload"),
    ] {
        let texts: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT {columns} FROM {table}"
        )))
        .fetch_all(shop.store().pool())
        .await
        .unwrap();
        for text in texts {
            assert!(!text.contains(card), "{table} holds the card: {text}");
            assert!(!text.contains(&card[..12]), "{table}: {text}");
        }
    }
}

async fn three_d_secure_is_paid_only_after_the_signed_query(backend: Backend) {
    let shop = legacy_shop(backend).await;
    let token = player(&shop, "p3001").await;
    let (status, answer) = pay(
        &shop,
        &pay_form("1001400000003001", CARD_3DS, "8", DIAMONDS_12),
        Some(&token),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["code"], "P0004");
    assert!(answer["auth3DUrl"].as_str().unwrap().starts_with("http"));
    assert_eq!(
        bill_status(&shop, "1001400000003001").await["data"]["status"],
        "PENDING"
    );

    // A forged "success" return, the old way to get free diamonds: nothing changes, and the
    // page escapes what it prints.
    let forged = shop
        .http
        .get(shop.url(
            "/api/get3DResult?amount=8.00&billNo=1001400000003001&code=P0001&message=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::OK);
    let csp = forged.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    let html = forged.text().await.unwrap();
    assert!(!html.contains("支付成功"), "{html}");
    assert!(html.contains("正在确认支付结果"), "{html}");
    assert!(!html.contains("alert(1)"), "{html}");
    assert_eq!(
        bill_status(&shop, "1001400000003001").await["data"]["status"],
        "PENDING"
    );
    assert_eq!(shop.count("SELECT COUNT(*) FROM outbox_events").await, 0);
    // The forged return made Coffer ask the channel; it asks about one payment at most every
    // two seconds, however many returns arrive.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let unknown = shop
        .http
        .get(shop.url("/api/get3DResult?billNo=%3Cb%3Enope%3C%2Fb%3E&code=P0001"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let html = unknown.text().await.unwrap();
    assert!(
        html.contains("&lt;b&gt;nope&lt;/b&gt;") && !html.contains("<b>nope"),
        "{html}"
    );

    // The cardholder really approves; the browser comes back to the old path.
    let order_no: String =
        sqlx::query_scalar("SELECT order_no FROM orders WHERE merchant_order_no = $1")
            .bind("1001400000003001")
            .fetch_one(shop.store().pool())
            .await
            .unwrap();
    // Someone names a bill after this payment's channel reference (the return carries it):
    // the return still finds the payment it came back from.
    let (_, decoy) = pay(
        &shop,
        &pay_form(&order_no, CARD_APPROVED, "8", DIAMONDS_12),
        None,
    )
    .await;
    assert_eq!(decoy["code"], "P0001", "{decoy}");
    let decided = shop
        .sim_control(
            &format!("/_control/carespay/3ds/{order_no}"),
            json!({ "approve": true }),
        )
        .await;
    let return_url = decided["return_url"].as_str().unwrap();
    assert!(return_url.contains("/api/get3DResult?"), "{return_url}");
    let html = shop
        .http
        .get(return_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("支付成功"), "{html}");
    assert!(html.contains("1001400000003001"), "{html}");
    assert_eq!(
        bill_status(&shop, "1001400000003001").await["data"]["status"],
        "PAID"
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM outbox_events").await,
        2,
        "one for the 3-D Secure payment, one for the decoy"
    );
    // Paid with a session: the order is the player's own.
    let owner: String = sqlx::query_scalar(
        "SELECT p.username FROM orders o JOIN players p ON p.id = o.player_id \
         WHERE o.merchant_order_no = '1001400000003001'",
    )
    .fetch_one(shop.store().pool())
    .await
    .unwrap();
    assert_eq!(owner, "p3001");
    shop.stop().await;
}

async fn players_cannot_change_level_or_gold_or_read_others(backend: Backend) {
    let shop = legacy_shop(backend).await;
    let ada = player(&shop, "ada01").await;
    let _bob = player(&shop, "bob01").await;
    let put = |body: Value, token: Option<&'static str>| {
        let shop = &shop;
        async move { json_call(shop, "PUT", "/api/users/ada01", Some(body), token).await }
    };

    // The old service let anyone set anyone's gold.
    let (status, answer) = put(json!({ "gold": 999999 }), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{answer}");
    assert_eq!(answer["success"], false);
    let ada_token: &'static str = Box::leak(ada.into_boxed_str());
    let (status, answer) = put(json!({ "gold": 999999, "level": 99 }), Some(ada_token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert_eq!(answer["message"], "等级和金币只能由游戏服务器或管理员修改");
    let (status, _) = put(json!({ "gold": 10 }), Some(VIEWER_TOKEN)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, answer) = put(json!({ "icon": "7" }), Some(ada_token)).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({ "success": true, "message": "更新成功" }));
    let (status, _) = json_call(
        &shop,
        "PUT",
        "/api/users/bob01",
        Some(json!({ "icon": "7" })),
        Some(ada_token),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "another player's profile");
    let (status, _) = put(json!({ "icon": "3" }), Some("cps_not-a-session")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The game server (signed) and operators may.
    let signed = shop
        .call("PUT", "/api/users/ada01", Some(json!({ "gold": 750 })))
        .await;
    assert_eq!(signed.status, StatusCode::OK, "{}", signed.body);
    let (status, _) = put(json!({ "level": 5 }), Some(OPERATOR_TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, profile) = json_call(&shop, "GET", "/api/users/ada01", None, None).await;
    assert_eq!(
        (
            &profile["data"]["gold"],
            &profile["data"]["level"],
            &profile["data"]["icon"]
        ),
        (&json!(750), &json!(5), &json!("7"))
    );

    // Listings: operators only; a player sees only their own payments.
    for path in ["/api/users", "/api/payments/all"] {
        let (status, _) = json_call(&shop, "GET", path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        let (status, _) = json_call(&shop, "GET", path, None, Some(ada_token)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    let (status, mine) = json_call(
        &shop,
        "GET",
        "/api/payments/user/ada01",
        None,
        Some(ada_token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(mine, json!({ "success": true, "data": [] }));
    let (status, _) = json_call(
        &shop,
        "GET",
        "/api/payments/user/bob01",
        None,
        Some(ada_token),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    shop.stop().await;
}

async fn records_are_accepted_only_for_orders_coffer_saw_paid(backend: Backend) {
    let shop = legacy_shop(backend).await;
    let rec01 = player(&shop, "rec01").await;
    player(&shop, "rec02").await;
    let upload = |body: Value, token: Option<&str>| {
        let (shop, token) = (&shop, token.map(str::to_owned));
        async move {
            json_call(
                shop,
                "POST",
                "/api/payments/record",
                Some(body),
                token.as_deref(),
            )
            .await
        }
    };
    // Out of thin air: no such order.
    let (_, refused) = upload(record("rec01", "1001409999999999", json!(8)), None).await;
    assert_eq!(refused["success"], false, "{refused}");
    // A pending 3-D Secure order: not paid yet.
    pay(
        &shop,
        &pay_form("1001400000005001", CARD_3DS, "8", DIAMONDS_12),
        Some(&rec01),
    )
    .await;
    let (_, refused) = upload(record("rec01", "1001400000005001", json!(8)), None).await;
    assert_eq!(refused["message"], "订单尚未支付，无法记录");
    // Paid, but the wrong amount.
    pay(
        &shop,
        &pay_form("1001400000005002", CARD_APPROVED, "8", DIAMONDS_12),
        Some(&rec01),
    )
    .await;
    let (_, refused) = upload(
        record("rec01", "1001400000005002", json!(800)),
        Some(&rec01),
    )
    .await;
    assert_eq!(refused["success"], false);
    assert!(
        refused["message"].as_str().unwrap().contains("金额"),
        "{refused}"
    );
    let (_, missing) = upload(
        json!({ "user_id": "rec01", "order_no": "1001400000005002" }),
        None,
    )
    .await;
    assert_eq!(
        missing,
        json!({ "success": false, "message": "缺少必要参数" })
    );
    // The right one, by the player who paid, twice (harmless); without the session (anyone),
    // or by someone else, it is refused.
    for amount in [json!("8.00"), json!(8)] {
        let (_, done) = upload(record("rec01", "1001400000005002", amount), Some(&rec01)).await;
        assert_eq!(done["success"], true, "{done}");
    }
    let (_, forged) = upload(record("rec01", "1001400000005002", json!(8)), None).await;
    assert_eq!(forged["success"], false, "{forged}");
    let (_, stolen) = upload(record("rec02", "1001400000005002", json!(8)), None).await;
    assert_eq!(stolen["success"], false, "{stolen}");

    // An anonymous payment: the game server or an operator may say whose it was (the old
    // client's own claim is in tests/hardening.rs).
    pay(
        &shop,
        &pay_form("1001400000005003", CARD_APPROVED, "12.5", "自定义充值"),
        None,
    )
    .await;
    let (status, _) = upload(
        record("rec02", "1001400000005003", json!(12.5)),
        Some(VIEWER_TOKEN),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a read-only token");

    // Listings are Coffer's paid orders: the anonymous one is there, unattributed.
    let (_, all) = json_call(&shop, "GET", "/api/payments/all", None, Some(VIEWER_TOKEN)).await;
    let rows = all["data"].as_array().unwrap();
    let bills: Vec<&str> = rows
        .iter()
        .map(|r| r["order_no"].as_str().unwrap())
        .collect();
    assert_eq!(bills.len(), 2, "{all}");
    assert!(
        !bills.contains(&"1001400000005001"),
        "pending is not a payment"
    );
    let topup = rows
        .iter()
        .find(|r| r["order_no"] == "1001400000005003")
        .unwrap();
    assert_eq!(topup["amount"], "12.50", "the ad-hoc amount as sent");
    assert_eq!(
        (&topup["id"], &topup["user_id"]),
        (&Value::Null, &json!(""))
    );
    let (_, attributed) = upload(
        record("rec02", "1001400000005003", json!("12.50")),
        Some(OPERATOR_TOKEN),
    )
    .await;
    assert_eq!(attributed["success"], true, "{attributed}");
    let (_, theirs) = json_call(
        &shop,
        "GET",
        "/api/payments/user/rec02",
        None,
        Some(VIEWER_TOKEN),
    )
    .await;
    assert_eq!(
        theirs["data"][0]["order_no"], "1001400000005003",
        "{theirs}"
    );
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM legacy_payment_records")
            .await,
        2
    );
    shop.stop().await;
}

async fn paid_legacy_orders_are_delivered_once(backend: Backend) {
    let shop = legacy_shop(backend).await;
    let game = shop.connect_game_server().await;
    let token = player(&shop, "gift01").await;
    let (_, answer) = pay(
        &shop,
        &pay_form("1001400000006001", CARD_APPROVED, "8", DIAMONDS_12),
        Some(&token),
    )
    .await;
    assert_eq!(answer["code"], "P0001", "{answer}");
    let deliveries = shop
        .wait_for_deliveries(|d| d.len() == 1 && d[0]["status"] == "delivered")
        .await;
    assert_eq!(deliveries[0]["type"], "order.paid");
    let player_id: String = sqlx::query_scalar("SELECT id FROM players WHERE username = 'gift01'")
        .fetch_one(shop.store().pool())
        .await
        .unwrap();
    let ledger = game.ledger();
    assert_eq!(
        ledger.inventories[&player_id]["diamond"], 12,
        "granted once, to the paying player"
    );
    assert!(ledger.grants_per_order.values().all(|n| *n == 1));
    shop.stop().await;
}

async fn bad_payment_forms_change_nothing(backend: Backend) {
    let shop = legacy_shop(backend).await;
    let cases: Vec<(Vec<(String, String)>, &str)> = vec![
        // The client's price for a mapped product must be the catalog's.
        (
            pay_form("1001400000007001", CARD_APPROVED, "0.01", DIAMONDS_12),
            "金额",
        ),
        (
            pay_form("1001400000007002", CARD_APPROVED, "-8", DIAMONDS_12),
            "amount",
        ),
        (
            pay_form("1001400000007003", "4242", "8", DIAMONDS_12),
            "card",
        ),
        (pay_form("", CARD_APPROVED, "8", DIAMONDS_12), "billNo"),
        // Ad-hoc amounts (products not mapped) stay within the configured bounds.
        (
            pay_form("1001400000007004", CARD_APPROVED, "0.50", "自定义充值"),
            "金额须在",
        ),
        (
            pay_form("1001400000007005", CARD_APPROVED, "5000", "自定义充值"),
            "金额须在",
        ),
    ];
    for (form, expected) in cases {
        let (status, answer) = pay(&shop, &form, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["code"], "ERROR");
        assert!(
            answer["message"].as_str().unwrap().contains(expected),
            "{expected}: {answer}"
        );
    }
    // A bill number used twice is one order.
    let form = pay_form("1001400000007009", CARD_APPROVED, "8", DIAMONDS_12);
    assert_eq!(pay(&shop, &form, None).await.1["code"], "P0001");
    let (status, again) = pay(&shop, &form, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 1);
    assert_eq!(shop.count("SELECT COUNT(*) FROM payment_attempts").await, 1);

    // A disabled game sells nothing and registers nobody, and says so.
    let (status, _) = shop
        .admin(
            "PATCH",
            "/v1/admin/games/star-knights",
            Some(json!({ "enabled": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let form = pay_form("1001400000007010", CARD_APPROVED, "8", DIAMONDS_12);
    let (status, answer) = pay(&shop, &form, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    let (status, answer) = json_call(
        &shop,
        "POST",
        "/api/auth/register",
        Some(json!({ "pid": "late", "name": "Late", "password": "long enough" })),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 1);
    shop.stop().await;
}

async fn a_channel_timeout_is_settled_by_the_status_poll(backend: Backend) {
    let shop = legacy_shop_with(backend, |c| c.orders.channel_timeout_ms = 300).await;
    let token = player(&shop, "slow01").await;
    shop.http
        .put(shop.sim.url("/_control/faults"))
        .json(&json!({ "api_delay_ms": 1500 }))
        .send()
        .await
        .unwrap();
    let (status, answer) = pay(
        &shop,
        &pay_form("1001400000008001", CARD_APPROVED, "8", DIAMONDS_12),
        Some(&token),
    )
    .await;
    // The card may have been charged: not a failure, an outcome to be found out, and the
    // player is told not to pay again.
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["code"], "P0003");
    assert!(answer["message"].as_str().unwrap().contains("请勿重复支付"));
    assert_eq!(answer["billNo"], "1001400000008001");
    assert_eq!(
        bill_status(&shop, "1001400000008001").await["data"]["status"],
        "PENDING"
    );
    shop.http
        .put(shop.sim.url("/_control/faults"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    // The client polls the bill as it does after 3-D Secure; the poll asks CaresPay (signed)
    // instead of guessing. The simulator dropped the payment with the cut-off request, so
    // the signed answer is "no such payment": FAILED, nothing to deliver.
    let mut last = Value::Null;
    for _ in 0..40 {
        last = bill_status(&shop, "1001400000008001").await;
        if last["data"]["status"] != "PENDING" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(last["data"]["status"], "FAILED", "{last}");
    assert_eq!(shop.count("SELECT COUNT(*) FROM outbox_events").await, 0);
    // The player pays again under a new bill number, and that one goes through.
    let (_, answer) = pay(
        &shop,
        &pay_form("1001400000008002", CARD_APPROVED, "8", DIAMONDS_12),
        Some(&token),
    )
    .await;
    assert_eq!(answer["code"], "P0001", "{answer}");
    assert_eq!(
        bill_status(&shop, "1001400000008002").await["data"]["status"],
        "PAID"
    );
    shop.stop().await;
}

async fn concurrent_duplicates_make_one_player_and_one_order(backend: Backend) {
    let shop = legacy_shop(backend).await;
    // The old client retries on a slow answer: ten registrations of one pid at once.
    let registrations = futures::future::join_all((0..10).map(|_| {
        json_call(
            &shop,
            "POST",
            "/api/auth/register",
            Some(json!({ "pid": "twin", "name": "Twin", "password": "long enough" })),
            None,
        )
    }))
    .await;
    let created = registrations
        .iter()
        .filter(|(_, body)| body["success"] == true)
        .count();
    assert_eq!(created, 1, "{registrations:?}");
    assert!(
        registrations
            .iter()
            .filter(|(_, body)| body["success"] != true)
            .all(|(_, body)| body["message"] == "玩家ID已存在"),
        "{registrations:?}"
    );
    assert_eq!(shop.count("SELECT COUNT(*) FROM legacy_profiles").await, 1);

    // Ten payments of one bill at once: one charge.
    let form = pay_form("1001400000009001", CARD_APPROVED, "8", DIAMONDS_12);
    let answers = futures::future::join_all((0..10).map(|_| pay(&shop, &form, None))).await;
    let paid = answers.iter().filter(|(_, a)| a["code"] == "P0001").count();
    assert_eq!(paid, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .filter(|(_, a)| a["code"] != "P0001")
            .all(|(status, _)| *status == StatusCode::CONFLICT),
        "{answers:?}"
    );
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 1);
    assert_eq!(shop.count("SELECT COUNT(*) FROM payment_attempts").await, 1);
    shop.stop().await;
}

/// `[legacy] listen`: the old ports serve the legacy routes and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_ports_serve_only_the_legacy_routes() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let shop = Shop::start_with(Backend::Sqlite, |config| {
        config.legacy.enabled = true;
        config.legacy.game = "star-knights".into();
        config.legacy.listen = vec![([127, 0, 0, 1], port).into()];
    })
    .await;
    let old = format!("http://127.0.0.1:{port}");
    let health: Value = shop
        .http
        .get(format!("{old}/api/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["success"], true);
    let admin = shop
        .http
        .get(format!("{old}/v1/admin/orders"))
        .bearer_auth(shop::ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), StatusCode::NOT_FOUND, "no admin API there");
    // The browser game may call from another origin.
    let preflight = shop
        .http
        .request(reqwest::Method::OPTIONS, format!("{old}/api/auth/login"))
        .header("origin", "https://game.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    shop.stop().await;
}
