//! What an outside test pass found (as a user, an attacker and a load would see Coffer): replayed
//! signed requests, bodies that are not objects, NUL and invalid UTF-8, unknown regions and
//! filters, answers out of shape. Each test failed before its fix; SQLite and PostgreSQL where
//! storage is involved.

use crate::shop::{ADMIN_TOKEN, Backend, Shop};
use crate::{legacy, shop};
use coffer_signing::signature_header;
use coffer_sim::carespay::{CARD_APPROVED, CARD_DECLINED};
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    a_replayed_signed_refund_refunds_once,
    a_replayed_payment_retry_charges_the_card_once,
    a_replayed_profile_update_is_refused,
    requests_that_move_money_need_an_idempotency_key,
    bodies_that_are_not_objects_change_nothing,
    nul_characters_are_refused_on_every_route,
    invalid_utf8_in_legacy_forms_is_refused_not_replaced,
    unknown_regions_are_refused_not_priced,
    unknown_admin_filters_are_refused,
    alipay_notifications_about_subjects_with_ampersands_are_accepted,
    refunds_made_in_a_channels_console_reach_the_game,
    carespay_answers_without_a_signature_still_settle_payments,
    a_payment_whose_caller_hung_up_is_recorded_at_once,
    a_channel_503_does_not_block_the_next_attempt_for_minutes,
    the_3ds_return_page_asks_the_channel_even_right_after_a_status_poll,
    a_key_held_by_a_dead_instance_is_taken_over_at_once,
    nobody_but_the_payer_writes_a_payment_record,
    the_old_client_claims_its_anonymous_payment_and_the_game_learns_whose_it_was,
);

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Sends exactly these signed bytes (as a captured request would be sent again).
async fn send_signed(
    shop: &Shop,
    method: &str,
    path: &str,
    body: &[u8],
    signed_at: i64,
    idempotency_key: Option<&str>,
) -> (StatusCode, Value) {
    let signature = signature_header(&shop.game.secret, signed_at, method, path, body);
    let mut request = shop
        .http
        .request(method.parse().unwrap(), shop.url(path))
        .header("coffer-key", &shop.game.key_id)
        .header("coffer-signature", signature)
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(key) = idempotency_key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn kind(body: &Value) -> &str {
    body["type"]
        .as_str()
        .and_then(|t| t.rsplit('/').next())
        .unwrap_or("")
}

async fn paid_order(backend: Backend) -> (Shop, String, String) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    let order_no = shop.paid_card_order(&player, "replay-1").await;
    (shop, player, order_no)
}

async fn a_replayed_signed_refund_refunds_once(backend: Backend) {
    let (shop, _, order_no) = paid_order(backend).await;
    let path = format!("/v1/orders/{order_no}/refunds");
    let body = br#"{"amount_minor":10,"reason":"goodwill"}"#;
    let t = now_s();
    let (first, refund) = send_signed(&shop, "POST", &path, body, t, Some("rf-a")).await;
    assert_eq!(first, StatusCode::CREATED, "{refund}");
    // The captured bytes again, as they were, then under other keys (the key is not signed).
    let (again, same) = send_signed(&shop, "POST", &path, body, t, Some("rf-a")).await;
    assert_eq!(again, StatusCode::CREATED);
    assert_eq!(
        same["refund_no"], refund["refund_no"],
        "the first answer, again"
    );
    for key in [Some("rf-b"), None] {
        let (status, refused) = send_signed(&shop, "POST", &path, body, t, key).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused}");
        assert_eq!(kind(&refused), "signature-replayed");
    }
    assert_eq!(shop.count("SELECT COUNT(*) FROM refunds").await, 1);
    // Signed anew, the same refund is another operation.
    let (fresh, _) = send_signed(&shop, "POST", &path, body, t - 1, Some("rf-c")).await;
    assert_eq!(fresh, StatusCode::CREATED);
    assert_eq!(shop.count("SELECT COUNT(*) FROM refunds").await, 2);
    shop.stop().await;
}

async fn a_replayed_payment_retry_charges_the_card_once(backend: Backend) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    let card = |number: &str| {
        json!({ "method": "card", "flow": "direct_card", "channel": "carespay",
                "customer": { "email": "a@example.test", "first_name": "Ada", "last_name": "P",
                              "billing": { "country": "US", "city": "SF", "line1": "1 Main", "postal_code": "94105" } },
                "card": { "number": number, "expiry_month": 12, "expiry_year": 2031,
                          "cvc": "123", "holder_name": "Ada P" } })
    };
    let mut order = card(CARD_DECLINED);
    for (k, v) in [
        ("player_id", json!(player)),
        ("sku", json!("gems-100")),
        ("region", json!("US")),
        ("merchant_order_no", json!("retry-1")),
        ("client_ip", json!("203.0.113.7")),
    ] {
        order[k] = v;
    }
    let declined = shop.call("POST", "/v1/orders", Some(order)).await;
    assert_eq!(declined.status, StatusCode::PAYMENT_REQUIRED);
    let order_no = declined.body["order"]["order_no"].as_str().unwrap();
    let path = format!("/v1/orders/{order_no}/payments");
    let body = card(CARD_APPROVED).to_string().into_bytes();
    let t = now_s();
    let (paid, _) = send_signed(&shop, "POST", &path, &body, t, Some("pay-2")).await;
    assert_eq!(paid, StatusCode::OK);
    for key in ["pay-3", "pay-4"] {
        let (status, _) = send_signed(&shop, "POST", &path, &body, t, Some(key)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM payment_attempts").await,
        2,
        "one declined attempt, one paid: the card was sent to the channel once"
    );
    shop.stop().await;
}

async fn a_replayed_profile_update_is_refused(backend: Backend) {
    let shop = legacy::legacy_shop(backend).await;
    legacy::player(&shop, "p1").await;
    let path = "/api/users/p1";
    let t = now_s();
    let grant = br#"{"gold":900}"#;
    let (status, answer) = send_signed(&shop, "PUT", path, grant, t, None).await;
    assert_eq!((status, &answer["success"]), (StatusCode::OK, &json!(true)));
    // The player spends some gold; the captured grant must not reset it.
    let (_, spent) = send_signed(&shop, "PUT", path, br#"{"gold":100}"#, t, None).await;
    assert_eq!(spent["success"], true);
    let (replayed, refused) = send_signed(&shop, "PUT", path, grant, t, None).await;
    assert_eq!(replayed, StatusCode::UNAUTHORIZED, "{refused}");
    assert_eq!(refused["success"], false, "the legacy shape: {refused}");
    let (_, profile) = legacy::json_call(&shop, "GET", path, None, None).await;
    assert_eq!(profile["data"]["gold"], 100);
    shop.stop().await;
}

async fn requests_that_move_money_need_an_idempotency_key(backend: Backend) {
    let (shop, player, order_no) = paid_order(backend).await;
    let order = shop.qr_order(&player, "gems-100", "no-key");
    let paths_and_bodies = [
        ("/v1/orders".to_owned(), order),
        (format!("/v1/orders/{order_no}/refunds"), json!({})),
        (
            format!("/v1/orders/{order_no}/payments"),
            json!({ "method": "alipay", "flow": "qr_code" }),
        ),
    ];
    for (path, body) in paths_and_bodies {
        let answer = shop
            .client
            .send("POST", &path, Some(&body), None)
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(kind(&answer.body), "idempotency-key-required");
    }
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 1);
    assert_eq!(shop.count("SELECT COUNT(*) FROM refunds").await, 0);
    shop.stop().await;
}

async fn bodies_that_are_not_objects_change_nothing(backend: Backend) {
    let (shop, _, order_no) = paid_order(backend).await;
    let path = format!("/v1/orders/{order_no}/refunds");
    for (i, body) in ["[]", "[1]", "7", "null", "\"x\""].iter().enumerate() {
        let key = format!("array-{i}");
        let (status, refused) =
            send_signed(&shop, "POST", &path, body.as_bytes(), now_s(), Some(&key)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {refused}");
        assert_eq!(kind(&refused), "malformed-json");
    }
    assert_eq!(shop.count("SELECT COUNT(*) FROM refunds").await, 0);
    let players_before = shop.count("SELECT COUNT(*) FROM players").await;
    for (path, body) in [
        (
            "/v1/players",
            json!(["star-knights", "eve", "a long password"]),
        ),
        (
            "/v1/players/login",
            json!(["star-knights", "ada", "correct horse"]),
        ),
    ] {
        let response = shop
            .http
            .post(shop.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    let quote = shop
        .http
        .post(shop.url("/v1/admin/plugins/carespay/quote"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!([{ "currency": "USD", "minor": 100 }, "card", "direct_card"]))
        .send()
        .await
        .unwrap();
    assert_eq!(quote.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM players").await,
        players_before
    );
    shop.stop().await;
}

async fn nul_characters_are_refused_on_every_route(backend: Backend) {
    let shop = legacy::legacy_shop(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    let order_no = shop.paid_card_order(&player, "nul-1").await;
    let before = (
        shop.count("SELECT COUNT(*) FROM orders").await,
        shop.count("SELECT COUNT(*) FROM players").await,
    );
    // Without credentials.
    let anonymous = [
        (
            "POST",
            "/v1/players/login",
            Some(json!({ "game": "star-knights", "username": "ada\u{0}", "password": "x" })),
        ),
        (
            "POST",
            "/api/auth/login",
            Some(json!({ "pid": "p\u{0}", "password": "secret-pass" })),
        ),
        ("GET", "/api/users/%00", None),
        ("GET", "/api/payment/status/%00", None),
    ];
    for (method, path, body) in anonymous {
        let (status, answer) = legacy::json_call(&shop, method, path, body, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        if path.starts_with("/api/") {
            assert_eq!(answer["success"], false, "{path}: legacy shape");
        } else {
            assert_eq!(kind(&answer), "invalid-text", "{path}");
        }
    }
    let mut form = legacy::pay_form("10014\u{0}01", CARD_APPROVED, "8", legacy::DIAMONDS_12);
    form.retain(|(k, _)| k != "md5Info");
    let (status, paid) = legacy::pay(&shop, &form, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{paid}");
    assert_eq!(paid["code"], "ERROR");
    // Signed and admin routes.
    let mut order = shop.qr_order(&player, "gems-100", "nul\u{0}2");
    order["device"] = json!("x");
    assert_eq!(
        shop.call("POST", "/v1/orders", Some(order)).await.status,
        StatusCode::BAD_REQUEST
    );
    let refund = shop
        .call(
            "POST",
            &format!("/v1/orders/{order_no}/refunds"),
            Some(json!({ "reason": "\u{0}" })),
        )
        .await;
    assert_eq!(refund.status, StatusCode::BAD_REQUEST);
    for path in [
        "/v1/admin/players?search=%00",
        "/v1/admin/deliveries?order_no=%00",
        "/v1/admin/orders?merchant_order_no=a%00",
    ] {
        let (status, answer) = shop.admin("GET", path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert_eq!(answer["status"], 400);
    }
    assert_eq!(
        (
            shop.count("SELECT COUNT(*) FROM orders").await,
            shop.count("SELECT COUNT(*) FROM players").await
        ),
        before
    );
    assert_eq!(shop.count("SELECT COUNT(*) FROM refunds").await, 0);
    shop.stop().await;
}

async fn invalid_utf8_in_legacy_forms_is_refused_not_replaced(backend: Backend) {
    let shop = legacy::legacy_shop(backend).await;
    let register = shop
        .http
        .post(shop.url("/api/auth/register"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("pid=%FF%FE&name=x&password=secret-pass")
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), StatusCode::BAD_REQUEST);
    let refused: Value = register.json().await.unwrap();
    assert_eq!(refused["success"], false);
    let token = legacy::player(&shop, "p2").await;
    let form: String = legacy::pay_form("1001400000000042", CARD_APPROVED, "3", "x")
        .into_iter()
        .map(|(k, v)| {
            let v = if k == "productInfo" {
                "%FF%FE".to_owned()
            } else {
                url_encode(&v)
            };
            format!("{k}={v}")
        })
        .collect::<Vec<_>>()
        .join("&");
    let paid = shop
        .http
        .post(shop.url("/api/pay"))
        .bearer_auth(&token)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), StatusCode::BAD_REQUEST);
    let refused: Value = paid.json().await.unwrap();
    assert_eq!(refused["code"], "ERROR");
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 0);
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM players WHERE username LIKE '%\u{FFFD}%'")
            .await,
        0
    );
    shop.stop().await;
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn unknown_regions_are_refused_not_priced(backend: Backend) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    let mut order = shop.qr_order(&player, "gems-100", "zz-1");
    order["region"] = json!("ZZ");
    let answer = shop.call("POST", "/v1/orders", Some(order)).await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.body
    );
    assert!(
        answer.body["detail"].as_str().unwrap().contains("region"),
        "{}",
        answer.body
    );
    let catalog = shop.call("GET", "/v1/catalog?region=ZZ", None).await;
    assert_eq!(catalog.status, StatusCode::BAD_REQUEST);
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 0);
    shop.stop().await;
}

async fn unknown_admin_filters_are_refused(backend: Backend) {
    let shop = Shop::start(backend).await;
    for path in [
        "/v1/admin/orders?before=abc",
        "/v1/admin/orders?status=bogus",
        "/v1/admin/orders?limit=5000",
        "/v1/admin/orders?colour=red",
        "/v1/admin/deliveries?status=bogus",
        "/v1/admin/deliveries?game=Not%20A%20Game",
        "/v1/admin/deliveries?limit=0",
    ] {
        let (status, answer) = shop.admin("GET", path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert_eq!(answer["status"], 400, "{path}: problem+json");
    }
    let (status, _) = shop
        .admin("GET", "/v1/admin/deliveries?status=dead&limit=10", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    shop.stop().await;
}

/// Answers produced by extractors, the router and the body limit keep their family's shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_keeps_the_shape_of_its_routes() {
    let shop = legacy::legacy_shop(Backend::Sqlite).await;
    let problem = |response: reqwest::Response| async move {
        let status = response.status();
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let allow = response
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: Value = response.json().await.unwrap();
        assert_eq!(content_type, "application/problem+json", "{body}");
        assert_eq!(body["status"], status.as_u16());
        (status, allow)
    };
    let (status, _) = problem(
        shop.http
            .get(shop.url("/v1/orders/%FF"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Signed, so that they pass authentication and reach the router.
    let signed = |method: &str, path: &str| {
        let signature = signature_header(&shop.game.secret, now_s(), method, path, b"");
        shop.http
            .request(method.parse().unwrap(), shop.url(path))
            .header("coffer-key", &shop.game.key_id)
            .header("coffer-signature", signature)
            .send()
    };
    let (status, allow) = problem(signed("PUT", "/v1/orders").await.unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(allow.unwrap().contains("POST"));
    let (status, _) = problem(signed("DELETE", "/v1/orders/x").await.unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = problem(shop.http.put(shop.url("/v1/orders")).send().await.unwrap()).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "unsigned: refused before routing"
    );

    // A 10 MB body: answered as soon as its length is known (raw, since an HTTP client would
    // still be writing the body when the answer comes and the connection closes).
    let mut request = "POST /api/auth/register HTTP/1.1\r\nHost: coffer\r\n\
                       Content-Type: application/json\r\nContent-Length: 10485760\r\n\r\n"
        .to_owned();
    request.push_str(&" ".repeat(1100 << 10));
    let (head, body) = raw_exchange(&shop, &request).await;
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    assert_eq!(body["success"], false, "{body}");

    let form = legacy::pay_form("1001400000000077", CARD_APPROVED, "8", legacy::DIAMONDS_12);
    let (status, refused) = legacy::pay(&shop, &form, Some("not-a-session")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused["code"], "ERROR", "{refused}");
    shop.stop().await;
}

/// Writes `request` on a fresh connection and reads one answer: its head and its JSON body.
async fn raw_exchange(shop: &Shop, request: &str) -> (String, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = shop.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    let answer = loop {
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buffer))
            .await
            .expect("an answer in time")
            .unwrap();
        received.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length || n == 0 {
                break (head.to_owned(), body[..length.min(body.len())].to_owned());
            }
        }
        assert!(n > 0, "closed before a whole answer: {text}");
    };
    (
        answer.0,
        serde_json::from_str(&answer.1).unwrap_or(Value::Null),
    )
}

/// WeChat Pay's plugin answers a refusal with 500; a forgery must get a 4xx (a 5xx pages the
/// on-call engineer and asks the channel to retry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_notifications_get_a_4xx_on_every_channel() {
    let shop = Shop::start(Backend::Sqlite).await;
    for channel in ["wechatpay", "alipay"] {
        let response = shop
            .http
            .post(shop.url(&format!("/v1/callbacks/{channel}")))
            .header("content-type", "application/json")
            .header("wechatpay-signature", "Zm9yZ2Vk")
            .header("wechatpay-timestamp", now_s().to_string())
            .header("wechatpay-nonce", "n")
            .header("wechatpay-serial", "0")
            .body(r#"{"id":"forged","resource":{}}"#)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_client_error(),
            "{channel}: {}",
            response.status()
        );
    }
    shop.stop().await;
}

async fn alipay_notifications_about_subjects_with_ampersands_are_accepted(backend: Backend) {
    let shop = Shop::start(backend).await;
    shop.add_sku(json!({
        "code": "bundle", "kind": "bundle", "title": "Gems & Gold / 50% = more",
        "grants": [{ "item": "gem", "quantity": 50 }],
        "prices": [{ "currency": "CNY", "amount_minor": 600 }]
    }))
    .await;
    let player = shop.add_player("ada").await;
    let created = shop.order_qr(&player, "bundle", "amp-1").await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let order_no = created.body["order_no"].as_str().unwrap().to_owned();
    shop.sim_control(&format!("/_control/alipay/pay/{order_no}"), json!({}))
        .await;
    shop.wait_for_status(&order_no, "paid").await;
    let deliveries = shop.sim_control_get("/_control/notifications").await;
    let first = deliveries["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["order_no"] == order_no.as_str() && d["attempt"] == 1)
        .cloned()
        .unwrap();
    assert_eq!(
        first["acked"], true,
        "the first notification is accepted: {first}"
    );
    shop.stop().await;
}

async fn refunds_made_in_a_channels_console_reach_the_game(backend: Backend) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    let paid_by = |channel: &'static str, merchant_order_no: &'static str| {
        let shop = &shop;
        let player = player.clone();
        async move {
            let mut body = shop.qr_order(&player, "gems-100", merchant_order_no);
            if channel == "wechatpay" {
                body["method"] = json!("wechat-pay");
            }
            let created = shop.call("POST", "/v1/orders", Some(body)).await;
            assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
            let order_no = created.body["order_no"].as_str().unwrap().to_owned();
            shop.sim_control(&format!("/_control/{channel}/pay/{order_no}"), json!({}))
                .await;
            shop.wait_for_status(&order_no, "paid").await;
            order_no
        }
    };
    let refunded_events =
        || shop.count("SELECT COUNT(*) FROM outbox_events WHERE kind = 'order.refunded'");

    // WeChat Pay tells of each refund with its own number and amount; told twice, recorded once.
    let wechat = paid_by("wechatpay", "console-1").await;
    shop.set_faults(json!({ "duplicate_notifications": true }))
        .await;
    shop.sim_control(
        &format!("/_control/wechatpay/refund/{wechat}"),
        json!({ "amount_minor": 200 }),
    )
    .await;
    let detail = shop.wait_for_status(&wechat, "partially_refunded").await;
    assert_eq!(detail["order"]["refunded"]["amount_minor"], 200, "{detail}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    shop.set_faults(json!({})).await;
    assert_eq!(
        shop.count("SELECT COUNT(*) FROM refunds WHERE origin = 'channel'")
            .await,
        1
    );
    assert_eq!(refunded_events().await, 1);

    // Alipay tells only that the whole payment was refunded: the rest is recorded.
    let alipay = paid_by("alipay", "console-2").await;
    shop.sim_control(
        &format!("/_control/alipay/refund/{alipay}"),
        json!({ "amount_minor": 600 }),
    )
    .await;
    let detail = shop.wait_for_status(&alipay, "refunded").await;
    assert_eq!(detail["order"]["refunded"]["amount_minor"], 600);
    assert_eq!(refunded_events().await, 2);

    // A partial refund of an amount Alipay does not tell: parked for an operator.
    let partial = paid_by("alipay", "console-3").await;
    shop.sim_control(
        &format!("/_control/alipay/refund/{partial}"),
        json!({ "amount_minor": 100 }),
    )
    .await;
    let mut parked = 0;
    for _ in 0..100 {
        parked = shop
            .count("SELECT COUNT(*) FROM payment_conflicts WHERE kind = 'refund_at_channel_unknown_amount'")
            .await;
        if parked == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(parked, 1);
    shop.wait_for_status(&partial, "paid").await;
    assert_eq!(refunded_events().await, 2);
    shop.stop().await;
}

async fn carespay_answers_without_a_signature_still_settle_payments(backend: Backend) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    shop.set_faults(json!({ "unsigned_answers": true })).await;
    // The pay answer, unsigned: paid at once.
    shop.paid_card_order(&player, "unsigned-1").await;
    // The query answer, unsigned: a 3-D Secure payment confirmed after the browser's return.
    let mut body = shop.qr_order(&player, "gems-100", "unsigned-2");
    for (k, v) in [
        ("method", json!("card")),
        ("flow", json!("direct_card")),
        ("region", json!("US")),
        (
            "customer",
            json!({ "email": "a@example.test", "first_name": "Ada", "last_name": "P",
                    "billing": { "country": "US", "city": "SF", "line1": "1 Main", "postal_code": "94105" } }),
        ),
        (
            "card",
            json!({ "number": coffer_sim::carespay::CARD_3DS, "expiry_month": 12,
                    "expiry_year": 2031, "cvc": "123", "holder_name": "Ada P" }),
        ),
    ] {
        body[k] = v;
    }
    let created = shop.call("POST", "/v1/orders", Some(body)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let order_no = created.body["order_no"].as_str().unwrap().to_owned();
    let decided = shop
        .sim_control(
            &format!("/_control/carespay/3ds/{order_no}"),
            json!({ "approve": true }),
        )
        .await;
    let page = shop
        .http
        .get(decided["return_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Payment received"), "{page}");
    shop.stop().await;
}

/// A card order body (CaresPay, US), for `card`.
fn card_order(shop: &Shop, player: &str, merchant_order_no: &str, card: &str) -> Value {
    let mut body = shop.qr_order(player, "gems-100", merchant_order_no);
    for (k, v) in [
        ("method", json!("card")),
        ("flow", json!("direct_card")),
        ("region", json!("US")),
        ("channel", json!("carespay")),
        (
            "customer",
            json!({ "email": "a@example.test", "first_name": "Ada", "last_name": "P",
                    "billing": { "country": "US", "city": "SF", "line1": "1 Main", "postal_code": "94105" } }),
        ),
        (
            "card",
            json!({ "number": card, "expiry_month": 12, "expiry_year": 2031,
                    "cvc": "123", "holder_name": "Ada P" }),
        ),
    ] {
        body[k] = v;
    }
    body
}

async fn a_payment_whose_caller_hung_up_is_recorded_at_once(backend: Backend) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    // The channel takes a while; the game server gives up (closes the connection) first.
    shop.set_faults(json!({ "api_delay_ms": 1000 })).await;
    let body = card_order(&shop, &player, "hang-up-1", CARD_APPROVED).to_string();
    let signature = signature_header(
        &shop.game.secret,
        now_s(),
        "POST",
        "/v1/orders",
        body.as_bytes(),
    );
    let gave_up = shop
        .http
        .post(shop.url("/v1/orders"))
        .header("coffer-key", &shop.game.key_id)
        .header("coffer-signature", signature)
        .header("idempotency-key", "hang-up-1")
        .header("content-type", "application/json")
        .body(body)
        .timeout(std::time::Duration::from_millis(300))
        .send()
        .await;
    assert!(gave_up.is_err(), "the client hung up before the answer");
    shop.set_faults(json!({})).await;
    // The channel charged the card: the order is paid as soon as its answer is in, not when
    // a recovery query finds it minutes later.
    let mut status = Value::Null;
    for _ in 0..100 {
        let (_, listed) = shop
            .admin("GET", "/v1/admin/orders?merchant_order_no=hang-up-1", None)
            .await;
        status = listed["orders"][0]["status"].clone();
        if status == "paid" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, "paid");
    shop.stop().await;
}

async fn a_channel_503_does_not_block_the_next_attempt_for_minutes(backend: Backend) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    shop.set_faults(json!({ "api_unavailable": 1 })).await;
    let first = shop
        .call(
            "POST",
            "/v1/orders",
            Some(card_order(&shop, &player, "busy-1", CARD_APPROVED)),
        )
        .await;
    assert_eq!(first.status, StatusCode::BAD_GATEWAY, "{}", first.body);
    assert_eq!(kind(&first.body), "payment-outcome-unknown");
    let order_no = first.body["order"]["order_no"].as_str().unwrap();
    // At once, with another card: the unknown attempt is asked about first (the gateway never
    // saw it), then the new one goes through.
    let mut choice = card_order(&shop, &player, "busy-1", CARD_APPROVED);
    for field in [
        "player_id",
        "sku",
        "region",
        "merchant_order_no",
        "client_ip",
        "device",
    ] {
        choice.as_object_mut().unwrap().remove(field);
    }
    let second = shop
        .call(
            "POST",
            &format!("/v1/orders/{order_no}/payments"),
            Some(choice),
        )
        .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.body["status"], "paid");
    shop.stop().await;
}

async fn the_3ds_return_page_asks_the_channel_even_right_after_a_status_poll(backend: Backend) {
    let shop = legacy::legacy_shop(backend).await;
    let token = legacy::player(&shop, "p3ds").await;
    // Notifications lost: only a query can tell the payment went through.
    shop.set_faults(json!({ "drop_notifications": 10 })).await;
    let bill = "1001400000007001";
    let (_, answer) = legacy::pay(
        &shop,
        &legacy::pay_form(
            bill,
            coffer_sim::carespay::CARD_3DS,
            "8",
            legacy::DIAMONDS_12,
        ),
        Some(&token),
    )
    .await;
    assert_eq!(answer["code"], "P0004", "{answer}");
    // The old client polls every 3 s; a poll lands just before the cardholder returns.
    let order_no = answer["orderNo"].as_str().unwrap();
    let polled = legacy::bill_status(&shop, bill).await;
    assert_eq!(polled["data"]["status"], "PENDING");
    let decided = shop
        .sim_control(
            &format!("/_control/carespay/3ds/{order_no}"),
            json!({ "approve": true }),
        )
        .await;
    let page = shop
        .http
        .get(decided["return_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("支付成功"), "{page}");
    shop.stop().await;
}

async fn a_key_held_by_a_dead_instance_is_taken_over_at_once(backend: Backend) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    let body = shop.qr_order(&player, "gems-100", "crashed-1");
    // What a process killed mid-request leaves: the key running, held by an instance that is
    // no longer registered (a process started at its address since).
    let fingerprint = coffer::orders::idempotency::fingerprint("POST", "/v1/orders", &body);
    sqlx::query(
        "INSERT INTO idempotency_keys (game_id, idempotency_key, request_sha256, state, \
         response_status, response_body, created_at, locked_at, instance_id) \
         VALUES ('star-knights', 'k-crashed', $1, 'running', NULL, NULL, $2, $2, 'in_gone')",
    )
    .bind(fingerprint)
    .bind(now_s() * 1000)
    .execute(shop.store().pool())
    .await
    .unwrap();
    let retried = shop.order_with_key("k-crashed", &body).await;
    assert_eq!(retried.status, StatusCode::CREATED, "{}", retried.body);
    // A key held by a live instance (this one) is still in use.
    sqlx::query("UPDATE idempotency_keys SET state = 'running', instance_id = (SELECT id FROM instances LIMIT 1) WHERE idempotency_key = 'k-crashed'")
        .execute(shop.store().pool())
        .await
        .unwrap();
    let mut again = body.clone();
    again["device"] = json!("ios");
    let fingerprint = coffer::orders::idempotency::fingerprint("POST", "/v1/orders", &again);
    sqlx::query(
        "UPDATE idempotency_keys SET request_sha256 = $1 WHERE idempotency_key = 'k-crashed'",
    )
    .bind(fingerprint)
    .execute(shop.store().pool())
    .await
    .unwrap();
    let busy = shop.order_with_key("k-crashed", &again).await;
    assert_eq!(busy.status, StatusCode::CONFLICT);
    assert_eq!(kind(&busy.body), "idempotency-key-in-use");
    shop.stop().await;
}

async fn nobody_but_the_payer_writes_a_payment_record(backend: Backend) {
    let shop = legacy::legacy_shop(backend).await;
    let token = legacy::player(&shop, "payer").await;
    let bill = "1001400000008001";
    let (_, paid) = legacy::pay(
        &shop,
        &legacy::pay_form(bill, CARD_APPROVED, "8", legacy::DIAMONDS_12),
        Some(&token),
    )
    .await;
    assert_eq!(paid["code"], "P0001");
    let mut forged = legacy::record("payer", bill, json!(8));
    forged["product_info"] = json!("FORGED BY ANONYMOUS");
    let (_, refused) =
        legacy::json_call(&shop, "POST", "/api/payments/record", Some(forged), None).await;
    assert_eq!(refused["success"], false, "{refused}");
    let (_, done) = legacy::json_call(
        &shop,
        "POST",
        "/api/payments/record",
        Some(legacy::record("payer", bill, json!(8))),
        Some(&token),
    )
    .await;
    assert_eq!(done["success"], true, "{done}");
    let (_, listed) =
        legacy::json_call(&shop, "GET", "/api/payments/user/payer", None, Some(&token)).await;
    assert_eq!(
        listed["data"][0]["product_info"],
        legacy::DIAMONDS_12,
        "{listed}"
    );
    shop.stop().await;
}

async fn the_old_client_claims_its_anonymous_payment_and_the_game_learns_whose_it_was(
    backend: Backend,
) {
    let shop = legacy::legacy_shop_with(backend, |config| config.legacy.claim_window_s = 2).await;
    let game = shop.connect_game_server().await;
    legacy::player(&shop, "claimer").await;
    legacy::player(&shop, "other").await;
    let player_id: String = sqlx::query_scalar("SELECT id FROM players WHERE username = 'claimer'")
        .fetch_one(shop.store().pool())
        .await
        .unwrap();
    // The unchanged client: pays without a session, then uploads its record naming its player.
    let bill = "1001400000009001";
    let (_, paid) = legacy::pay(
        &shop,
        &legacy::pay_form(bill, CARD_APPROVED, "8", legacy::DIAMONDS_12),
        None,
    )
    .await;
    assert_eq!(paid["code"], "P0001");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        game.ledger().inventories.is_empty(),
        "the delivery waits for the claim"
    );
    let upload = |pid: &str, bill: &str| {
        legacy::json_call(
            &shop,
            "POST",
            "/api/payments/record",
            Some(legacy::record(pid, bill, json!(8))),
            None,
        )
    };
    let (_, claimed) = upload("claimer", bill).await;
    assert_eq!(claimed["success"], true, "{claimed}");
    let (_, stolen) = upload("other", bill).await;
    assert_eq!(stolen["success"], false, "claimed once: {stolen}");
    shop.wait_for_deliveries(|d| d.len() == 1 && d[0]["status"] == "delivered")
        .await;
    assert_eq!(game.ledger().inventories[&player_id]["diamond"], 12);
    let (_, theirs) = legacy::json_call(
        &shop,
        "GET",
        "/api/payments/user/claimer",
        None,
        Some(shop::ADMIN_TOKEN),
    )
    .await;
    assert_eq!(theirs["data"][0]["order_no"], bill, "{theirs}");

    // Too late: the window is over; the delivery went out as the guest's.
    let late = "1001400000009002";
    legacy::pay(
        &shop,
        &legacy::pay_form(late, CARD_APPROVED, "8", legacy::DIAMONDS_12),
        None,
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let (_, refused) = upload("claimer", late).await;
    assert_eq!(refused["success"], false, "{refused}");
    shop.wait_for_deliveries(|d| d.len() == 2 && d.iter().all(|e| e["status"] == "delivered"))
        .await;
    shop.stop().await;
}

/// 200 players logging in at once, with real password hashing: they queue in order; past what
/// can be answered within a few seconds they are told when to come back (429 + Retry-After),
/// never that the service is broken (503).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_logins_queues_fairly_and_never_answers_503() {
    // The production cost (19 MiB, 2 passes): 200 checks take several seconds on 2 cores.
    let shop = legacy::legacy_shop_with(Backend::Sqlite, |config| {
        config.players.password_hash = Default::default();
    })
    .await;
    shop.add_player("ada").await;
    legacy::player(&shop, "p-burst").await;
    let login = |i: usize| {
        let request = if i.is_multiple_of(2) {
            shop.http.post(shop.url("/v1/players/login")).json(
                &json!({ "game": "star-knights", "username": "ada", "password": "correct horse" }),
            )
        } else {
            shop.http
                .post(shop.url("/api/auth/login"))
                .json(&json!({ "pid": "p-burst", "password": "secret-pass" }))
        };
        async move {
            let response = request.send().await.unwrap();
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            (response.status(), retry_after)
        }
    };
    let answers = futures::future::join_all((0..200).map(login)).await;
    let ok = answers.iter().filter(|(s, _)| *s == StatusCode::OK).count();
    for (status, retry_after) in &answers {
        assert!(
            *status == StatusCode::OK
                || (*status == StatusCode::TOO_MANY_REQUESTS
                    && retry_after.is_some_and(|s| s >= 1)),
            "{status} {retry_after:?}"
        );
    }
    assert!(ok >= 20, "only {ok} of 200 logins got through");
    shop.stop().await;
}
