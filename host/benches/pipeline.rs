//! The whole purchase pipeline on SQLite, for two channels: order (through the plugin to the
//! simulator) → the player pays at the simulator → Alipay's signed notification → Coffer marks
//! the order paid → the dispatcher delivers `order.paid` → the sample game server grants it.
//! Simulator, game server, client and Coffer share the machine's cores.
//!
//! Reports completed purchases per second (orders created until every one is granted) and the
//! latency from "the player paid" to "the game granted the items".

use std::time::{Duration, Instant};

use coffer::config::{AdminToken, Config, Role};
use coffer_signing::GameClient;
use coffer_sim::{SimConfig, SimKeys};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const ADMIN: &str = "cof_bench_admin";
const PURCHASES: usize = 1000;
const CLIENTS: usize = 32;

/// How the purchases are paid.
#[derive(Clone, Copy, Debug)]
enum Channel {
    /// Alipay QR: RSA-2048 signatures on the request, the answer and the notification.
    AlipayQr,
    /// CaresPay 3-D Secure: MD5 checksums; the notification is an unsigned claim that Coffer
    /// confirms with a signed query before paying.
    Carespay3ds,
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        run(Channel::AlipayQr).await?;
        run(Channel::Carespay3ds).await
    })
}

async fn run(channel: Channel) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let keys = SimKeys::generate();
    let keys_dir = dir.path().join("sim-keys");
    keys.write_for_coffer(&keys_dir)?;
    let sim = coffer_sim::start(
        SimConfig {
            listen: "127.0.0.1:0".parse()?,
            time_scale: 0.01,
        },
        keys,
    )
    .await?;
    let game = coffer_game_server::start("127.0.0.1:0".parse()?, "").await?;
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins)?;
    let fixtures =
        std::env::var("COFFER_FIXTURES_DIR").unwrap_or_else(|_| "target/wasm-fixtures".into());
    let channel_id = match channel {
        Channel::AlipayQr => "alipay",
        Channel::Carespay3ds => "carespay",
    };
    std::fs::copy(
        format!("{fixtures}/{channel_id}.wasm"),
        plugins.join(format!("{channel_id}.wasm")),
    )?;
    let demo = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/demo.toml"
    ))?
    .replace("http://127.0.0.1:9100", &sim.sim.base_url)
    .replace("data/sim-keys/", &format!("{}/", keys_dir.display()));
    let mut config = Config::from_toml(&demo)?;
    config.channels.retain(|id, _| id == channel_id);
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    config.server.listen = ([127, 0, 0, 1], port).into();
    config.server.public_url = format!("http://127.0.0.1:{port}");
    config.plugins.dir = plugins;
    config.plugins.cache_dir = dir.path().join("cache");
    config.plugins.watch = false;
    config.log.filter = "error".into();
    config.database.url = format!("sqlite://{}", dir.path().join("coffer.db").display());
    config.delivery.poll_ms = 10;
    config.delivery.batch = 128;
    config.jobs.enabled = false;
    config.players.password_hash.memory_kib = 256;
    config.players.password_hash.iterations = 1;
    config.admin.tokens = vec![AdminToken {
        name: "bench".into(),
        role: Role::Admin,
        sha256: hex::encode(Sha256::digest(ADMIN.as_bytes())),
    }];
    let running = coffer::app::start(config).await?;
    let base = format!("http://{}", running.addr);

    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{base}/v1/admin/games"))
        .bearer_auth(ADMIN)
        .json(
            &json!({ "id": "bench", "name": "Bench", "default_region": "CN",
                       "delivery_url": game.delivery_url }),
        )
        .send()
        .await?
        .json()
        .await?;
    game.set_secret(created["delivery_secret"].as_str().unwrap());
    http.post(format!("{base}/v1/admin/games/bench/skus"))
        .bearer_auth(ADMIN)
        .json(
            &json!({ "code": "gems", "kind": "currency_pack", "title": "Gems",
                       "grants": [{ "item": "gem", "quantity": 100 }],
                       "prices": [{ "currency": "CNY", "amount_minor": 600 }] }),
        )
        .send()
        .await?
        .error_for_status()?;
    let player: Value = http
        .post(format!("{base}/v1/players"))
        .json(&json!({ "game": "bench", "username": "bench", "password": "bench password" }))
        .send()
        .await?
        .json()
        .await?;
    let player = player["id"].as_str().unwrap().to_owned();
    let client = GameClient::new(
        &base,
        created["api_key"]["key_id"].as_str().unwrap(),
        created["api_key"]["secret"].as_str().unwrap(),
    );

    // Each client: create an order, pay it at the simulator, remember when.
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let (client, http, player, sim_url) = (
            client.clone(),
            http.clone(),
            player.clone(),
            sim.sim.base_url.clone(),
        );
        tasks.spawn(async move {
            let mut paid_at = Vec::new();
            for i in (c..PURCHASES).step_by(CLIENTS) {
                let body = match channel {
                    Channel::AlipayQr => json!({
                        "player_id": player, "sku": "gems", "merchant_order_no": format!("p-{i}"),
                        "method": "alipay", "flow": "qr_code", "client_ip": "203.0.113.7" }),
                    Channel::Carespay3ds => json!({
                        "player_id": player, "sku": "gems", "merchant_order_no": format!("p-{i}"),
                        "region": "US", "method": "card", "flow": "direct_card", "client_ip": "203.0.113.7",
                        "customer": { "email": "p@example.test", "first_name": "B", "last_name": "P",
                            "billing": { "country": "US", "city": "SF", "line1": "1 Main", "postal_code": "94105" } },
                        "card": { "number": coffer_sim::carespay::CARD_3DS, "expiry_month": 12,
                                  "expiry_year": 2031, "cvc": "123", "holder_name": "B P" } }),
                };
                let order = client.send("POST", "/v1/orders", Some(&body), Some(&format!("p-{i}"))).await.expect("coffer answers");
                assert_eq!(order.status, 201, "{}", order.body);
                let order_no = order.body["order_no"].as_str().unwrap().to_owned();
                let pay = match channel {
                    Channel::AlipayQr => http.post(format!("{sim_url}/_control/alipay/pay/{order_no}")),
                    Channel::Carespay3ds => http
                        .post(format!("{sim_url}/_control/carespay/3ds/{order_no}"))
                        .json(&json!({ "approve": true })),
                };
                pay.send()
                    .await
                    .expect("simulator answers")
                    .error_for_status()
                    .expect("payable");
                paid_at.push((order_no, now_ms()));
            }
            paid_at
        });
    }
    let mut paid_at = Vec::new();
    while let Some(done) = tasks.join_next().await {
        paid_at.extend(done?);
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while game.ledger().grants_per_order.len() < PURCHASES && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed();
    let ledger = game.ledger();
    assert_eq!(
        ledger.grants_per_order.len(),
        PURCHASES,
        "every purchase granted"
    );
    assert!(
        ledger.grants_per_order.values().all(|n| *n == 1),
        "granted once each"
    );
    let mut latencies: Vec<i64> = paid_at
        .iter()
        .map(|(order_no, paid)| ledger.granted_at_ms[order_no] - paid)
        .collect();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "sqlite pipeline, {channel:?}, {CLIENTS} clients: {PURCHASES} purchases completed in {:.2} s = \
         {:.0} purchases/s; paid-to-granted p50 {} ms, p99 {} ms, max {} ms",
        elapsed.as_secs_f64(),
        PURCHASES as f64 / elapsed.as_secs_f64(),
        at(0.50),
        at(0.99),
        latencies[latencies.len() - 1]
    );
    running.stop().await?;
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
