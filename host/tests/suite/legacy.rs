//! The old game client, as a test helper: its exact requests (JSON account calls, the
//! urlencoded CaresPay form with every field it sends) against a shop with `[legacy]` on.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::shop::{Backend, Shop};

/// The product the old client's first button sells, as it names it in `productInfo`.
pub const DIAMONDS_12: &str = "钻石礼包-12钻石";

pub async fn legacy_shop(backend: Backend) -> Shop {
    legacy_shop_with(backend, |_| {}).await
}

/// [`legacy_shop`], with the configuration changed by `tweak` too.
pub async fn legacy_shop_with(
    backend: Backend,
    tweak: impl FnOnce(&mut coffer::config::Config),
) -> Shop {
    let shop = Shop::start_with(backend, |config| {
        config.legacy.enabled = true;
        config.legacy.game = "star-knights".into();
        config.legacy.currency = "USD".into();
        config.legacy.products.clear();
        config
            .legacy
            .products
            .insert(DIAMONDS_12.into(), "diamonds-12".into());
        config.legacy.adhoc_sku = "legacy-topup".into();
        tweak(config);
    })
    .await;
    shop.add_sku(json!({
        "code": "diamonds-12", "kind": "currency_pack", "title": "12 Diamonds",
        "grants": [{ "item": "diamond", "quantity": 12 }],
        "prices": [{ "currency": "USD", "amount_minor": 800 }]
    }))
    .await;
    shop.add_sku(json!({
        "code": "legacy-topup", "kind": "currency_pack", "title": "Top-up",
        "grants": [{ "item": "gold", "quantity": 1 }],
        "prices": [{ "currency": "USD", "amount_minor": 100 }]
    }))
    .await;
    shop
}

/// A JSON call as the old client makes it (no credentials unless `token`).
pub async fn json_call(
    shop: &Shop,
    method: &str,
    path: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = shop.http.request(method, shop.url(path));
    if let Some(body) = body {
        request = request.json(&body);
    }
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Registers and logs in; returns the session token.
pub async fn player(shop: &Shop, pid: &str) -> String {
    let (_, registered) = json_call(
        shop,
        "POST",
        "/api/auth/register",
        Some(json!({ "pid": pid, "name": format!("name of {pid}"), "password": "secret-pass" })),
        None,
    )
    .await;
    assert_eq!(registered["success"], true, "{registered}");
    let (_, login) = json_call(
        shop,
        "POST",
        "/api/auth/login",
        Some(json!({ "pid": pid, "password": "secret-pass" })),
        None,
    )
    .await;
    login["token"].as_str().unwrap().to_owned()
}

/// The form the old client posts to `/api/pay`, field for field and in its order, with its
/// own (leaked) merchant key and its own signature.
pub fn pay_form(bill_no: &str, card: &str, amount: &str, product: &str) -> Vec<(String, String)> {
    // The client percent-encodes productInfo itself; the form encoding does it again.
    let product_info: String = product
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    [
        ("shippingEmail", "ada@example.test"),
        ("shippingPhone", "13800000000"),
        ("shippingCountry", "US"),
        ("shippingState", "CA"),
        ("shippingFirstName", "Ada"),
        ("shippingLastName", "Player"),
        ("shippingAddress", "1 Main St"),
        ("apartment", ""),
        ("shippingZipCode", "94105"),
        ("shippingCity", "San Francisco"),
        ("billNo", bill_no),
        ("md5_key", "the-key-the-old-client-shipped"),
        ("currency", "1"),
        ("language", "en"),
        ("merNo", "100140"),
        ("returnURL", "http://119.91.142.92:5001/api/get3DResult"),
        ("noticeUrl", "aaa"),
        ("tradeUrl", "bbb"),
        ("lastName", "Player"),
        ("firstName", "Ada"),
        ("country", "US"),
        ("state", "CA"),
        ("city", "San Francisco"),
        ("address", "1 Main St"),
        ("zipCode", "94105"),
        ("email", "ada@example.test"),
        ("ip", "203.0.113.7"),
        ("cookie", "123"),
        ("phone", "13800000000"),
        ("cardBank", "sdfdghdh"),
        ("productInfo", &product_info),
        ("nationalCode", "us"),
        ("cardTypeId", "1"),
        ("cardNum", card),
        ("month", "12"),
        ("year", "2031"),
        ("cvv2", "123"),
        ("amount", amount),
        ("md5Info", "0123456789abcdef0123456789abcdef"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// `POST /api/pay` with `form`, optionally with a session.
pub async fn pay(
    shop: &Shop,
    form: &[(String, String)],
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = shop.http.post(shop.url("/api/pay")).form(form);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

pub async fn bill_status(shop: &Shop, bill_no: &str) -> Value {
    json_call(
        shop,
        "GET",
        &format!("/api/payment/status/{bill_no}"),
        None,
        None,
    )
    .await
    .1
}

/// The upload the old client makes after a payment.
pub fn record(pid: &str, bill_no: &str, amount: Value) -> Value {
    json!({
        "user_id": pid,
        "user_name": format!("name of {pid}"),
        "amount": amount,
        "order_no": bill_no,
        "pay_time": "2026-11-24 20:15:00",
        "raw_response": { "code": "P0001", "message": "3D支付成功" },
        "product_id": "itemBtn1",
        "product_info": DIAMONDS_12,
        "product_details": { "diamonds": 12, "isFirstCharge": false }
    })
}
