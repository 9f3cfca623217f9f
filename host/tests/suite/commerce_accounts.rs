//! Games, signed game-server requests, players and the catalog, on SQLite and PostgreSQL.

use crate::shop::{Backend, OPERATOR_TOKEN, Shop, VIEWER_TOKEN};
use coffer_signing::signature_header;
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    signed_requests_are_checked_for_key_time_and_content,
    rotated_keys_expire_and_disabled_games_are_refused,
    a_disabled_game_ends_its_players_sessions,
    admin_routes_check_roles_and_secrets_are_shown_once,
    players_register_log_in_and_log_out,
    wrong_passwords_and_unknown_names_look_the_same,
    expired_sessions_are_refused,
    players_edit_only_their_own_profile,
    admins_search_players_page_by_page,
    catalog_shows_regional_prices_and_follows_changes,
    invalid_skus_are_refused_and_change_nothing,
);

fn now_s() -> i64 {
    coffer::store::now_ms() / 1000
}

/// A raw request with a hand-made signature header.
async fn raw(
    shop: &Shop,
    method: &str,
    path: &str,
    body: &str,
    key: &str,
    sig: &str,
) -> (StatusCode, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let response = shop
        .http
        .request(method, shop.url(path))
        .header("coffer-key", key)
        .header("coffer-signature", sig)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn signed_requests_are_checked_for_key_time_and_content(backend: Backend) {
    let shop = Shop::start(backend).await;
    let secret = shop.game.secret.clone();
    let key = shop.game.key_id.clone();
    let ok = shop.call("GET", "/v1/catalog?region=CN", None).await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);

    let missing = shop.http.get(shop.url("/v1/catalog")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let problem: Value = missing.json().await.unwrap();
    assert_eq!(
        problem["type"],
        "https://coffer.dev/problems/signature-missing"
    );

    let sig = signature_header(&secret, now_s(), "GET", "/v1/catalog", b"");
    let (status, problem) = raw(&shop, "GET", "/v1/catalog", "", "ck_nobody", &sig).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("unknown-api-key")
    );

    let stale = signature_header(&secret, now_s() - 301, "GET", "/v1/catalog", b"");
    let (status, problem) = raw(&shop, "GET", "/v1/catalog", "", &key, &stale).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("signature-stale")
    );

    // Signed for one body, sent with another: an order for someone else's benefit.
    let body = r#"{"sku":"gems-100"}"#;
    let sig = signature_header(&secret, now_s(), "POST", "/v1/orders", body.as_bytes());
    let (status, problem) = raw(
        &shop,
        "POST",
        "/v1/orders",
        r#"{"sku":"gems-999"}"#,
        &key,
        &sig,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("signature-mismatch")
    );

    // Signed for another path or query.
    let sig = signature_header(&secret, now_s(), "GET", "/v1/catalog?region=CN", b"");
    let (status, _) = raw(&shop, "GET", "/v1/catalog?region=US", "", &key, &sig).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let wrong_secret = signature_header("cs_guess", now_s(), "GET", "/v1/catalog", b"");
    let (status, _) = raw(&shop, "GET", "/v1/catalog", "", &key, &wrong_secret).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, problem) = raw(&shop, "GET", "/v1/catalog", "", &key, "v1=abc").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        problem["type"]
            .as_str()
            .unwrap()
            .ends_with("signature-malformed")
    );
    shop.stop().await;
}

async fn rotated_keys_expire_and_disabled_games_are_refused(backend: Backend) {
    let shop = Shop::start(backend).await;
    let (status, key) = shop
        .admin(
            "POST",
            "/v1/admin/games/star-knights/api-keys",
            Some(json!({ "grace_s": 0 })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let old = shop.call("GET", "/v1/catalog", None).await;
    assert_eq!(
        old.status,
        StatusCode::UNAUTHORIZED,
        "a key rotated with no grace is revoked"
    );
    let fresh = coffer_signing::GameClient::new(
        &shop.base,
        key["key_id"].as_str().unwrap(),
        key["secret"].as_str().unwrap(),
    );
    let answer = fresh.send("GET", "/v1/catalog", None, None).await.unwrap();
    assert_eq!(answer.status, StatusCode::OK);

    // With a grace period both keys work.
    let (_, newer) = shop
        .admin(
            "POST",
            "/v1/admin/games/star-knights/api-keys",
            Some(json!({})),
        )
        .await;
    assert_eq!(
        fresh
            .send("GET", "/v1/catalog", None, None)
            .await
            .unwrap()
            .status,
        StatusCode::OK
    );
    let newest = coffer_signing::GameClient::new(
        &shop.base,
        newer["key_id"].as_str().unwrap(),
        newer["secret"].as_str().unwrap(),
    );
    assert_eq!(
        newest
            .send("GET", "/v1/catalog", None, None)
            .await
            .unwrap()
            .status,
        StatusCode::OK
    );

    let (status, game) = shop
        .admin(
            "PATCH",
            "/v1/admin/games/star-knights",
            Some(json!({ "enabled": false })),
        )
        .await;
    assert_eq!((status, &game["enabled"]), (StatusCode::OK, &json!(false)));
    let refused = newest.send("GET", "/v1/catalog", None, None).await.unwrap();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    shop.stop().await;
}

async fn a_disabled_game_ends_its_players_sessions(backend: Backend) {
    let shop = Shop::start(backend).await;
    shop.add_player("ada").await;
    let (_, session) = login(&shop, "ada", "correct horse").await;
    let token = session["token"].as_str().unwrap();
    assert_eq!(me(&shop, token).await, StatusCode::OK);
    shop.admin(
        "PATCH",
        "/v1/admin/games/star-knights",
        Some(json!({ "enabled": false })),
    )
    .await;
    assert_eq!(me(&shop, token).await, StatusCode::UNAUTHORIZED);
    let (status, _) = login(&shop, "ada", "correct horse").await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "no new sessions either"
    );
    shop.stop().await;
}

async fn admin_routes_check_roles_and_secrets_are_shown_once(backend: Backend) {
    let shop = Shop::start(backend).await;
    let new_game = json!({
        "id": "moon-farm", "name": "Moon Farm", "default_region": "JP",
        "delivery_url": "https://moon.example/coffer"
    });
    let (status, _) = shop
        .admin_as(
            OPERATOR_TOKEN,
            "POST",
            "/v1/admin/games",
            Some(new_game.clone()),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "creating games needs the admin role"
    );
    let (status, created) = shop
        .admin("POST", "/v1/admin/games", Some(new_game.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(
        created["api_key"]["secret"]
            .as_str()
            .unwrap()
            .starts_with("cs_")
    );
    assert!(
        created["delivery_secret"]
            .as_str()
            .unwrap()
            .starts_with("cds_")
    );
    let (status, _) = shop.admin("POST", "/v1/admin/games", Some(new_game)).await;
    assert_eq!(status, StatusCode::CONFLICT);

    let (status, listed) = shop
        .admin_as(VIEWER_TOKEN, "GET", "/v1/admin/games", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let text = listed.to_string();
    assert!(text.contains("moon-farm") && text.contains("star-knights"));
    assert!(
        !text.contains("cs_") && !text.contains("cds_"),
        "listings never show secrets: {text}"
    );

    for bad in [
        json!({ "id": "Bad Id", "name": "x", "default_region": "JP", "delivery_url": "https://a.b" }),
        json!({ "id": "ok-id", "name": "x", "default_region": "JPN", "delivery_url": "https://a.b" }),
        json!({ "id": "ok-id", "name": "x", "default_region": "JP", "delivery_url": "file:///etc" }),
    ] {
        let (status, body) = shop.admin("POST", "/v1/admin/games", Some(bad)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    assert_eq!(shop.count("SELECT COUNT(*) FROM games").await, 2);

    let (status, secret) = shop
        .admin("POST", "/v1/admin/games/moon-farm/delivery-secret", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(secret["delivery_secret"], created["delivery_secret"]);
    shop.stop().await;
}

async fn login(shop: &Shop, username: &str, password: &str) -> (StatusCode, Value) {
    let response = shop
        .http
        .post(shop.url("/v1/players/login"))
        .json(&json!({ "game": shop.game.id, "username": username, "password": password }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn me(shop: &Shop, token: &str) -> StatusCode {
    shop.http
        .get(shop.url("/v1/players/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn players_register_log_in_and_log_out(backend: Backend) {
    let shop = Shop::start(backend).await;
    let id = shop.add_player("ada").await;
    let (status, session) = login(&shop, "ada", "correct horse").await;
    assert_eq!(status, StatusCode::OK, "{session}");
    assert_eq!(session["player"]["id"], id.as_str());
    let token = session["token"].as_str().unwrap().to_owned();
    assert_eq!(me(&shop, &token).await, StatusCode::OK);

    // Only a digest of the token and an argon2id hash of the password are stored.
    let stored: String = sqlx::query_scalar("SELECT password_hash FROM players WHERE id = $1")
        .bind(id.clone())
        .fetch_one(shop.store().pool())
        .await
        .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    let tokens: Vec<String> = sqlx::query_scalar("SELECT token_sha256 FROM player_sessions")
        .fetch_all(shop.store().pool())
        .await
        .unwrap();
    assert!(!tokens.contains(&token));

    let duplicate = shop
        .http
        .post(shop.url("/v1/players"))
        .json(&json!({ "game": "star-knights", "username": "ada", "password": "another one" }))
        .send()
        .await
        .unwrap();
    assert_eq!(duplicate.status(), StatusCode::CONFLICT);
    let weak = shop
        .http
        .post(shop.url("/v1/players"))
        .json(&json!({ "game": "star-knights", "username": "bob", "password": "short" }))
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let unknown_game = shop
        .http
        .post(shop.url("/v1/players"))
        .json(&json!({ "game": "no-such-game", "username": "bob", "password": "long enough" }))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_game.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(shop.count("SELECT COUNT(*) FROM players").await, 1);

    let logout = shop
        .http
        .post(shop.url("/v1/players/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(me(&shop, &token).await, StatusCode::UNAUTHORIZED);
    shop.stop().await;
}

async fn wrong_passwords_and_unknown_names_look_the_same(backend: Backend) {
    let shop = Shop::start(backend).await;
    shop.add_player("ada").await;
    let (wrong_status, wrong) = login(&shop, "ada", "incorrect horse").await;
    let (unknown_status, unknown) = login(&shop, "nobody", "incorrect horse").await;
    assert_eq!(wrong_status, StatusCode::UNAUTHORIZED);
    assert_eq!((wrong_status, &wrong), (unknown_status, &unknown));
    assert_eq!(shop.count("SELECT COUNT(*) FROM player_sessions").await, 0);
    shop.stop().await;
}

async fn expired_sessions_are_refused(backend: Backend) {
    let shop = Shop::start_with(backend, |c| c.players.session_ttl_s = 1).await;
    shop.add_player("ada").await;
    let (_, session) = login(&shop, "ada", "correct horse").await;
    let token = session["token"].as_str().unwrap();
    assert_eq!(me(&shop, token).await, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(me(&shop, token).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me(&shop, "cps_forged").await, StatusCode::UNAUTHORIZED);
    shop.stop().await;
}

async fn players_edit_only_their_own_profile(backend: Backend) {
    let shop = Shop::start(backend).await;
    let ada = shop.add_player("ada").await;
    let bob = shop.add_player("bob").await;
    let (_, session) = login(&shop, "ada", "correct horse").await;
    let token = session["token"].as_str().unwrap();
    let patch = |id: &str, token: &str, body: Value| {
        shop.http
            .patch(shop.url(&format!("/v1/players/{id}")))
            .bearer_auth(token.to_owned())
            .json(&body)
            .send()
    };
    let own = patch(&ada, token, json!({ "display_name": "Ada L." }))
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    let others = patch(&bob, token, json!({ "display_name": "pwned" }))
        .await
        .unwrap();
    assert_eq!(others.status(), StatusCode::FORBIDDEN);
    let viewer = patch(&bob, VIEWER_TOKEN, json!({ "display_name": "x" }))
        .await
        .unwrap();
    assert_eq!(viewer.status(), StatusCode::FORBIDDEN);
    let anonymous = patch(&bob, "cps_nobody", json!({ "display_name": "x" }))
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let (_, bob_now) = shop
        .admin("GET", &format!("/v1/admin/players/{bob}"), None)
        .await;
    assert_eq!(
        bob_now["display_name"], "bob",
        "refused edits change nothing"
    );
    let operator = patch(&bob, OPERATOR_TOKEN, json!({ "email": "bob@example.test" }))
        .await
        .unwrap();
    assert_eq!(operator.status(), StatusCode::OK);
    let bad = patch(&ada, token, json!({ "email": "not mail" }))
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let sneaky = patch(&ada, token, json!({ "username": "root" }))
        .await
        .unwrap();
    assert_eq!(
        sneaky.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are refused"
    );
    shop.stop().await;
}

async fn admins_search_players_page_by_page(backend: Backend) {
    let shop = Shop::start(backend).await;
    for name in ["knight_1", "knight_2", "knight_3", "mage_1", "magexs"] {
        shop.add_player(name).await;
    }
    let (status, page) = shop
        .admin_as(
            VIEWER_TOKEN,
            "GET",
            "/v1/admin/players?game=star-knights&search=KNIGHT&limit=2&page=1",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        (page["total"].as_i64(), page["pages"].as_i64()),
        (Some(3), Some(2))
    );
    assert_eq!(page["players"].as_array().unwrap().len(), 2);
    let (_, second) = shop
        .admin(
            "GET",
            "/v1/admin/players?search=knight&limit=2&page=2",
            None,
        )
        .await;
    assert_eq!(second["players"].as_array().unwrap().len(), 1);
    let (_, underscore) = shop.admin("GET", "/v1/admin/players?search=e_", None).await;
    assert_eq!(
        underscore["total"], 1,
        "LIKE wildcards in a search are literal: {underscore}"
    );
    let (_, percent) = shop
        .admin("GET", "/v1/admin/players?search=%25", None)
        .await;
    assert_eq!(percent["total"], 0, "{percent}");
    let (status, _) = shop
        .admin("GET", "/v1/admin/players?limit=1000", None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = shop
        .admin_as("cof_wrong", "GET", "/v1/admin/players", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    shop.stop().await;
}

async fn catalog_shows_regional_prices_and_follows_changes(backend: Backend) {
    let shop = Shop::start(backend).await;
    shop.add_gems().await;
    let cn = shop.call("GET", "/v1/catalog?region=CN", None).await;
    assert_eq!(
        cn.body["items"][0]["prices"],
        json!([{ "amount_minor": 600, "currency": "CNY", "amount": "6.00" }])
    );
    let us = shop.call("GET", "/v1/catalog?region=us", None).await;
    assert_eq!(us.body["items"][0]["prices"][0]["currency"], "USD");
    let default_region = shop.call("GET", "/v1/catalog", None).await;
    assert_eq!(
        default_region.body["region"], "CN",
        "the game's default region"
    );
    let bad = shop.call("GET", "/v1/catalog?region=China", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    // A change shows at once (the cache is invalidated), and a disabled SKU disappears.
    let mut spec = json!({
        "code": "gems-100", "kind": "currency_pack", "title": "100 Gems",
        "grants": [{ "item": "gem", "quantity": 110 }],
        "prices": [{ "region": "CN", "currency": "CNY", "amount_minor": 500 }]
    });
    let (status, _) = shop
        .admin_as(
            OPERATOR_TOKEN,
            "PUT",
            "/v1/admin/games/star-knights/skus/gems-100",
            Some(spec.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let cn = shop.call("GET", "/v1/catalog?region=CN", None).await;
    assert_eq!(cn.body["items"][0]["prices"][0]["amount_minor"], 500);
    assert_eq!(cn.body["items"][0]["grants"][0]["quantity"], 110);
    let us = shop.call("GET", "/v1/catalog?region=US", None).await;
    assert_eq!(us.body["items"], json!([]), "no price for the US any more");
    spec["enabled"] = json!(false);
    shop.admin(
        "PUT",
        "/v1/admin/games/star-knights/skus/gems-100",
        Some(spec),
    )
    .await;
    let cn = shop.call("GET", "/v1/catalog?region=CN", None).await;
    assert_eq!(cn.body["items"], json!([]));

    // Sale windows.
    let now = coffer::store::now_ms();
    shop.add_sku(json!({
        "code": "lunar-bundle", "kind": "bundle", "title": "Lunar Bundle",
        "grants": [{ "item": "lantern", "quantity": 1 }, { "item": "gem", "quantity": 50 }],
        "prices": [{ "currency": "USD", "amount_minor": 499 }],
        "sale_starts_at": now + 3_600_000
    }))
    .await;
    let cn = shop.call("GET", "/v1/catalog?region=CN", None).await;
    assert_eq!(cn.body["items"], json!([]), "not on sale yet");
    let (status, _) = shop
        .admin_as(
            VIEWER_TOKEN,
            "GET",
            "/v1/admin/games/star-knights/skus/lunar-bundle",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "operators still see it");
    shop.stop().await;
}

async fn invalid_skus_are_refused_and_change_nothing(backend: Backend) {
    let shop = Shop::start(backend).await;
    let base = json!({
        "code": "gems-100", "kind": "currency_pack", "title": "100 Gems",
        "grants": [{ "item": "gem", "quantity": 100 }],
        "prices": [{ "region": "CN", "currency": "CNY", "amount_minor": 600 }]
    });
    let variants = [
        ("prices", json!([{ "currency": "CNY", "amount_minor": 0 }])),
        (
            "prices",
            json!([{ "currency": "DOGE", "amount_minor": 100 }]),
        ),
        (
            "prices",
            json!([{ "currency": "CNY", "amount_minor": 6.5 }]),
        ),
        ("grants", json!([])),
        ("kind", json!("subscription")),
        ("stock_total", json!(-1)),
        ("code", json!("../etc")),
    ];
    for (field, value) in variants {
        let mut spec = base.clone();
        spec[field] = value;
        let (status, body) = shop
            .admin("POST", "/v1/admin/games/star-knights/skus", Some(spec))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {body}");
        assert_eq!(body["status"], 422);
    }
    let (status, _) = shop
        .admin_as(
            VIEWER_TOKEN,
            "POST",
            "/v1/admin/games/star-knights/skus",
            Some(base.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = shop
        .admin("POST", "/v1/admin/games/no-game/skus", Some(base))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(shop.count("SELECT COUNT(*) FROM skus").await, 0);
    shop.stop().await;
}
