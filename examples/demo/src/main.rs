//! `coffer-demo`: one purchase through the demo started by `cargo xtask demo`, step by step:
//! a game, a SKU and a player; an Alipay QR order; the player "scans and pays" at the
//! simulator; Alipay notifies Coffer; Coffer delivers `order.paid` to the sample game server,
//! which grants the gems. Run again for another purchase.

use std::time::Duration;

use anyhow::{Context, bail};
use coffer_signing::GameClient;
use serde_json::{Value, json};

const COFFER: &str = "http://127.0.0.1:8080";
const SIM: &str = "http://127.0.0.1:9100";
const GAME_SERVER: &str = "http://127.0.0.1:9200";
const ADMIN: &str = "demo-admin-token";

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

async fn admin(
    http: &reqwest::Client,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    let mut request = http
        .request(method, format!("{COFFER}{path}"))
        .bearer_auth(ADMIN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .context("is Coffer running? (cargo xtask demo)")?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let post = reqwest::Method::POST;
    for _ in 0..100 {
        if http
            .get(format!("{COFFER}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    step(
        1,
        "A game, with its delivery URL pointing at the sample game server",
    );
    let (status, created) = admin(
        &http,
        post.clone(),
        "/v1/admin/games",
        Some(json!({
            "id": "star-knights", "name": "Star Knights", "default_region": "CN",
            "delivery_url": format!("{GAME_SERVER}/coffer/events")
        })),
    )
    .await?;
    let (key_id, secret) = if status == 201 {
        (
            created["api_key"]["key_id"].clone(),
            created["api_key"]["secret"].clone(),
        )
    } else {
        // It exists from an earlier run: a fresh API key (the secrets are shown only once).
        let (_, key) = admin(
            &http,
            post.clone(),
            "/v1/admin/games/star-knights/api-keys",
            Some(json!({ "grace_s": 0 })),
        )
        .await?;
        (key["key_id"].clone(), key["secret"].clone())
    };
    let (_, delivery) = admin(
        &http,
        post.clone(),
        "/v1/admin/games/star-knights/delivery-secret",
        None,
    )
    .await?;
    http.put(format!("{GAME_SERVER}/_control"))
        .json(&json!({ "secret": delivery["delivery_secret"] }))
        .send()
        .await
        .context("is the sample game server running?")?;
    let (key_id, secret) = (
        key_id.as_str().unwrap_or_default(),
        secret.as_str().unwrap_or_default(),
    );
    println!("    game star-knights, API key {key_id}");

    step(2, "Something to sell: 100 gems for 6.00 CNY");
    admin(&http, post.clone(), "/v1/admin/games/star-knights/skus", Some(json!({
        "code": "gems-100", "kind": "currency_pack", "title": "100 Gems",
        "grants": [{ "item": "gem", "quantity": 100 }],
        "prices": [{ "region": "CN", "currency": "CNY", "amount_minor": 600 }, { "currency": "USD", "amount_minor": 99 }],
        // Sold in the app stores too (docs/stores.md): the stores' product ids for it.
        "store_products": [
            { "channel": "appstore", "product_id": "com.coffer.starknights.gems100" },
            { "channel": "googleplay", "product_id": "gems_100" }
        ]
    }))).await?;

    step(3, "A player registers (the game client calls this)");
    let registered: Value = http
        .post(format!("{COFFER}/v1/players"))
        .json(&json!({ "game": "star-knights", "username": "ada", "password": "correct horse" }))
        .send()
        .await?
        .json()
        .await?;
    let player = match registered["id"].as_str() {
        Some(id) => id.to_owned(),
        None => {
            let (_, found) = admin(
                &http,
                reqwest::Method::GET,
                "/v1/admin/players?game=star-knights&search=ada",
                None,
            )
            .await?;
            // The search also matches other names containing "ada": take the one named so.
            found["players"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["username"] == "ada")
                .and_then(|p| p["id"].as_str())
                .context("player ada")?
                .to_owned()
        }
    };
    println!("    player {player}");

    step(
        4,
        "The game server creates an order (signed request, Idempotency-Key)",
    );
    let client = GameClient::new(COFFER, key_id, secret);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let merchant_order_no = format!("demo-{stamp}");
    let order = client
        .send(
            "POST",
            "/v1/orders",
            Some(&json!({
                "player_id": player, "sku": "gems-100", "merchant_order_no": merchant_order_no,
                "method": "alipay", "flow": "qr_code", "client_ip": "203.0.113.7"
            })),
            Some(&merchant_order_no),
        )
        .await?;
    if order.status != 201 {
        bail!("order refused: {} {}", order.status, order.body);
    }
    let order_no = order.body["order_no"]
        .as_str()
        .context("order_no")?
        .to_owned();
    println!(
        "    order {order_no}: {}, {} {}",
        order.body["status"], order.body["amount"]["amount"], order.body["amount"]["currency"]
    );
    println!(
        "    show the player this QR code: {}",
        order.body["payment"]["next_action"]["content"]
    );

    step(5, "The player scans it and pays (at the Alipay simulator)");
    http.post(format!("{SIM}/_control/alipay/pay/{order_no}"))
        .send()
        .await?
        .error_for_status()?;
    println!("    Alipay now sends its signed notification to {COFFER}/v1/callbacks/alipay");

    step(
        6,
        "Coffer verifies it, marks the order paid, and delivers order.paid to the game",
    );
    let mut last = String::new();
    for _ in 0..100 {
        let seen = client
            .send("GET", &format!("/v1/orders/{order_no}"), None, None)
            .await?;
        let status = seen.body["status"].as_str().unwrap_or_default().to_owned();
        if status != last {
            println!("    order status: {status}");
            last = status;
        }
        if last == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    step(7, "The sample game server granted the items, once");
    let ledger: Value = http
        .get(format!("{GAME_SERVER}/_state"))
        .send()
        .await?
        .json()
        .await?;
    println!(
        "    {player} now has {} gems",
        ledger["inventories"][&player]["gem"]
    );

    step(
        8,
        "The books: today's revenue of the demo game, and the ledger's check",
    );
    // Without `from`, the report is today's (UTC).
    let (_, revenue) = admin(
        &http,
        reqwest::Method::GET,
        "/v1/admin/reports/revenue?game=star-knights",
        None,
    )
    .await?;
    println!(
        "    {:<10} {:<8} {:>6} {:>12} {:>12} {:>10} {:>12}",
        "channel", "currency", "orders", "gross", "refunds", "fees", "net"
    );
    for row in revenue.as_array().into_iter().flatten() {
        let minor = |name: &str| row[name].as_i64().unwrap_or_default();
        println!(
            "    {:<10} {:<8} {:>6} {:>12} {:>12} {:>10} {:>12}",
            row["key"].as_str().unwrap_or_default(),
            row["currency"].as_str().unwrap_or_default(),
            minor("orders"),
            minor("gross_minor"),
            minor("refunds_minor"),
            minor("fees_minor"),
            minor("net_minor"),
        );
    }
    println!("    (amounts in minor units; add &format=csv for a spreadsheet)");
    let (_, check) = admin(&http, reqwest::Method::GET, "/v1/admin/ledger/check", None).await?;
    println!(
        "    ledger check: {} transfers, {} violations",
        check["transfers"],
        check["violations"].as_array().map_or(0, Vec::len)
    );

    println!("\nGo on by hand (see README):");
    println!("  export COFFER_KEY_ID={key_id} COFFER_SECRET={secret}");
    println!("  cargo run -q -p coffer-signing --bin coffer-call -- GET /v1/orders/{order_no}");
    Ok(())
}
