//! Order creation throughput and latency, through the real service over HTTP, with the
//! channel played by the simulator on the same machine: CaresPay direct card (MD5-signed, the
//! channel answers "paid" at once, so each order also records its payment).
//!
//! `cargo xtask bench` runs it on SQLite, and on PostgreSQL when one is reachable at
//! `COFFER_TEST_POSTGRES` (default the local server). Two measurements per backend:
//! - closed loop: 32 clients creating orders back to back, the most the service sustains;
//! - open loop: a steady 300 and 500 orders/s for 6 s each, the latency a game server sees.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use coffer::config::{AdminToken, Config, Role};
use coffer_signing::GameClient;
use coffer_sim::{SimConfig, SimKeys};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Connection;

const ADMIN: &str = "cof_bench_admin";

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let keys = SimKeys::generate();
        bench("sqlite", None, &keys).await?;
        let admin = std::env::var("COFFER_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        match sqlx::PgConnection::connect(&admin).await {
            Ok(connection) => {
                connection.close().await?;
                bench("postgres", Some(&admin), &keys).await?;
            }
            Err(e) => println!("postgres: skipped ({e})"),
        }
        Ok(())
    })
}

struct World {
    client: GameClient,
    players: Vec<String>,
    sequence: AtomicU64,
}

async fn bench(label: &str, postgres_admin: Option<&str>, keys: &SimKeys) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let keys_dir = dir.path().join("sim-keys");
    keys.write_for_coffer(&keys_dir)?;
    // Real retry schedule: the refused notifications are retried only minutes later.
    let sim = coffer_sim::start(
        SimConfig {
            listen: "127.0.0.1:0".parse()?,
            time_scale: 1.0,
        },
        keys.clone(),
    )
    .await?;
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins)?;
    let fixtures =
        std::env::var("COFFER_FIXTURES_DIR").unwrap_or_else(|_| "target/wasm-fixtures".into());
    std::fs::copy(
        format!("{fixtures}/carespay.wasm"),
        plugins.join("carespay.wasm"),
    )?;
    let demo = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/demo.toml"
    ))?
    .replace("http://127.0.0.1:9100", &sim.sim.base_url)
    .replace("data/sim-keys/", &format!("{}/", keys_dir.display()));
    let mut config = Config::from_toml(&demo)?;
    config.channels.retain(|id, _| id == "carespay");
    config.server.listen = "127.0.0.1:0".parse()?;
    // Callbacks are not measured here: the simulator's notifications go nowhere (refused at
    // once) instead of adding their retries to the load.
    config.server.public_url = "http://127.0.0.1:9".into();
    config.plugins.dir = plugins;
    config.plugins.cache_dir = dir.path().join("cache");
    config.plugins.watch = false;
    config.log.filter = "error".into();
    // Order creation alone: the events it writes are not delivered here (the pipeline
    // benchmark measures that), and no recovery job runs.
    config.delivery.enabled = false;
    config.jobs.enabled = false;
    config.admin.tokens = vec![AdminToken {
        name: "bench".into(),
        role: Role::Admin,
        sha256: hex::encode(Sha256::digest(ADMIN.as_bytes())),
    }];
    config.players.password_hash.memory_kib = 256;
    config.players.password_hash.iterations = 1;
    let database = match postgres_admin {
        None => {
            config.database.url = format!("sqlite://{}", dir.path().join("coffer.db").display());
            None
        }
        Some(admin) => {
            let name = format!("coffer_bench_{}", std::process::id());
            let mut connection = sqlx::PgConnection::connect(admin).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name}"
            )))
            .execute(&mut connection)
            .await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut connection)
                .await?;
            let (base, _) = admin.rsplit_once('/').unwrap();
            config.database.url = format!("{base}/{name}");
            config.database.max_connections = 16;
            Some((admin.to_owned(), name))
        }
    };
    let running = coffer::app::start(config).await?;
    let base = format!("http://{}", running.addr);
    let world = Arc::new(setup(&base).await?);

    // Warm up: connections, plugin instances, caches.
    closed_loop(&world, 16, 300).await;
    let (elapsed, mut latencies) = closed_loop(&world, 32, 3000).await;
    let rate = latencies.len() as f64 / elapsed.as_secs_f64();
    println!(
        "{label}: closed loop, 32 clients: {} orders in {:.2} s = {rate:.0} orders/s; {}",
        latencies.len(),
        elapsed.as_secs_f64(),
        summary(&mut latencies)
    );
    for rate in [300, 500] {
        let mut latencies = open_loop(&world, rate, Duration::from_secs(6)).await;
        println!(
            "{label}: open loop at {rate} orders/s for 6 s: {}",
            summary(&mut latencies)
        );
    }

    running.stop().await?;
    if let Some((admin, name)) = database {
        let mut connection = sqlx::PgConnection::connect(&admin).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut connection)
        .await?;
    }
    Ok(())
}

async fn setup(base: &str) -> anyhow::Result<World> {
    let http = reqwest::Client::new();
    let created: Value = http
        .post(format!("{base}/v1/admin/games"))
        .bearer_auth(ADMIN)
        .json(
            &json!({ "id": "bench", "name": "Bench", "default_region": "US",
                       "delivery_url": "http://127.0.0.1:9/" }),
        )
        .send()
        .await?
        .json()
        .await?;
    http.post(format!("{base}/v1/admin/games/bench/skus"))
        .bearer_auth(ADMIN)
        .json(
            &json!({ "code": "gems", "kind": "currency_pack", "title": "Gems",
                       "grants": [{ "item": "gem", "quantity": 100 }],
                       "prices": [{ "currency": "USD", "amount_minor": 99 }] }),
        )
        .send()
        .await?
        .error_for_status()?;
    let mut players = Vec::new();
    for i in 0..64 {
        let player: Value = http
            .post(format!("{base}/v1/players"))
            .json(&json!({ "game": "bench", "username": format!("p{i:03}"), "password": "bench password" }))
            .send()
            .await?
            .json()
            .await?;
        players.push(player["id"].as_str().unwrap().to_owned());
    }
    Ok(World {
        client: GameClient::new(
            base,
            created["api_key"]["key_id"].as_str().unwrap(),
            created["api_key"]["secret"].as_str().unwrap(),
        ),
        players,
        sequence: AtomicU64::new(0),
    })
}

/// Creates one order and returns how long it took.
async fn one_order(world: &World) -> Duration {
    let n = world.sequence.fetch_add(1, Ordering::Relaxed);
    let body = json!({
        "player_id": world.players[n as usize % world.players.len()],
        "sku": "gems",
        "merchant_order_no": format!("bench-{n}"),
        "method": "card", "flow": "direct_card",
        "client_ip": "203.0.113.7",
        "customer": { "email": "p@example.test", "first_name": "B", "last_name": "P",
                      "billing": { "country": "US", "city": "SF", "line1": "1 Main", "postal_code": "94105" } },
        "card": { "number": coffer_sim::carespay::CARD_APPROVED, "expiry_month": 12,
                  "expiry_year": 2031, "cvc": "123", "holder_name": "B P" }
    });
    let started = Instant::now();
    let answer = world
        .client
        .send("POST", "/v1/orders", Some(&body), Some(&format!("k-{n}")))
        .await
        .expect("the service answers");
    assert_eq!(answer.status, 201, "{}", answer.body);
    started.elapsed()
}

async fn closed_loop(
    world: &Arc<World>,
    clients: usize,
    total: usize,
) -> (Duration, Vec<Duration>) {
    let started = Instant::now();
    let per_client = total / clients;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let world = world.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::with_capacity(per_client);
            for _ in 0..per_client {
                latencies.push(one_order(&world).await);
            }
            latencies
        });
    }
    let mut all = Vec::with_capacity(total);
    while let Some(latencies) = tasks.join_next().await {
        all.extend(latencies.expect("client task"));
    }
    (started.elapsed(), all)
}

async fn open_loop(world: &Arc<World>, per_second: u64, duration: Duration) -> Vec<Duration> {
    let mut ticker = tokio::time::interval(Duration::from_micros(1_000_000 / per_second));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let count = per_second * duration.as_secs();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..count {
        ticker.tick().await;
        let world = world.clone();
        tasks.spawn(async move { one_order(&world).await });
    }
    let mut all = Vec::with_capacity(count as usize);
    while let Some(latency) = tasks.join_next().await {
        all.push(latency.expect("client task"));
    }
    all
}

fn summary(latencies: &mut [Duration]) -> String {
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        at(0.50).as_secs_f64() * 1000.0,
        at(0.99).as_secs_f64() * 1000.0,
        latencies[latencies.len() - 1].as_secs_f64() * 1000.0
    )
}
