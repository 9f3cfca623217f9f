//! Crash safety: the real `coffer` binary is killed with SIGKILL in the middle of a burst of
//! payment notifications, then started again. Every paid order must reach the sample game
//! server exactly once, and none may be lost, on SQLite and on PostgreSQL.

mod shop;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use coffer_sim::SimConfig;
use reqwest::StatusCode;
use serde_json::{Value, json};
use shop::{ADMIN_TOKEN, Backend, TestDb, fixture, shared_keys};

both_backends!(kill_nine_during_a_burst_of_callbacks_loses_and_doubles_nothing);

const ORDERS: usize = 40;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Host {
    config: std::path::PathBuf,
    log: std::path::PathBuf,
    base: String,
    child: Option<Child>,
}

impl Host {
    async fn start(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_coffer"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.log)
                    .unwrap(),
            ))
            .spawn()
            .unwrap();
        self.child = Some(child);
        let http = reqwest::Client::new();
        // Generous: the first start compiles the plugin, on a machine busy with other tests.
        for _ in 0..2400 {
            if let Ok(r) = http.get(format!("{}/readyz", self.base)).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        panic!("coffer did not become ready:\n{log}");
    }

    fn kill_nine(&mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap(); // SIGKILL: no shutdown, no flush, no goodbye.
        child.wait().unwrap();
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn kill_nine_during_a_burst_of_callbacks_loses_and_doubles_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let keys_dir = dir.path().join("sim-keys");
    std::fs::create_dir_all(&keys_dir).unwrap();
    let keys = shared_keys();
    keys.write_for_coffer(&keys_dir).unwrap();
    // Notifications retried within a second or so (the real schedule x 0.002).
    let sim = coffer_sim::start(
        SimConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            time_scale: 0.002,
        },
        keys,
    )
    .await
    .unwrap();
    let game = coffer_game_server::start("127.0.0.1:0".parse().unwrap(), "")
        .await
        .unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(fixture("alipay.wasm"), plugins.join("alipay.wasm")).unwrap();
    let db = TestDb::create(backend).await;
    let port = free_port();
    let alipay = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/demo.toml"
    ))
    .unwrap()
    .split("[channels.")
    .find(|s| s.starts_with("alipay]"))
    .unwrap()
    .replace("http://127.0.0.1:9100", &sim.sim.base_url)
    .replace("data/sim-keys/", &format!("{}/", keys_dir.display()));
    let config = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
shutdown_grace_s = 1
[log]
filter = "warn"
[plugins]
dir = "{plugins}"
cache_dir = "{cache}"
watch = false
[database]
url = "{url}"
[players.password_hash]
memory_kib = 256
iterations = 1
[delivery]
poll_ms = 20
retry_base_ms = 50
retry_max_ms = 200
[jobs]
interval_s = 1
query_after_s = 1
query_every_s = 1
[[admin.tokens]]
name = "root"
role = "admin"
sha256 = "{token}"
[channels.{alipay}"#,
        plugins = plugins.display(),
        cache = dir.path().join("cache").display(),
        url = db.url,
        token = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            ADMIN_TOKEN.as_bytes()
        )),
    );
    let config_path = dir.path().join("coffer.toml");
    std::fs::write(&config_path, config).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let mut host = Host {
        config: config_path,
        log: dir.path().join("coffer.log"),
        base: base.clone(),
        child: None,
    };
    host.start().await;

    // A game, a SKU, players and their orders, all pending.
    let http = reqwest::Client::new();
    let admin = |method: reqwest::Method, path: &str, body: Value| {
        http.request(method, format!("{base}{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    let created: Value = admin(
        reqwest::Method::POST,
        "/v1/admin/games",
        json!({
            "id": "star-knights", "name": "Star Knights", "default_region": "CN",
            "delivery_url": game.delivery_url
        }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    game.set_secret(created["delivery_secret"].as_str().unwrap());
    let client = coffer_signing::GameClient::new(
        &base,
        created["api_key"]["key_id"].as_str().unwrap(),
        created["api_key"]["secret"].as_str().unwrap(),
    );
    admin(
        reqwest::Method::POST,
        "/v1/admin/games/star-knights/skus",
        json!({
            "code": "gems-100", "kind": "currency_pack", "title": "100 Gems",
            "grants": [{ "item": "gem", "quantity": 100 }],
            "prices": [{ "currency": "CNY", "amount_minor": 600 }]
        }),
    )
    .await
    .unwrap();
    let player: Value = http
        .post(format!("{base}/v1/players"))
        .json(&json!({ "game": "star-knights", "username": "ada", "password": "correct horse" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut order_numbers = Vec::new();
    for i in 0..ORDERS {
        let body = json!({
            "player_id": player["id"], "sku": "gems-100", "merchant_order_no": format!("crash-{i}"),
            "method": "alipay", "flow": "qr_code", "client_ip": "203.0.113.7"
        });
        let answer = client
            .send(
                "POST",
                "/v1/orders",
                Some(&body),
                Some(&format!("crash-{i}")),
            )
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        order_numbers.push(answer.body["order_no"].as_str().unwrap().to_owned());
    }

    // Every player pays; the notifications pour in; halfway through, the host is killed.
    for (i, order_no) in order_numbers.iter().enumerate() {
        let paid = http
            .post(sim.url(&format!("/_control/alipay/pay/{order_no}")))
            .send()
            .await
            .unwrap();
        assert!(paid.status().is_success());
        if i == ORDERS / 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            host.kill_nine();
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    host.start().await;

    // Retried notifications and the recovery job bring every order to the game, once.
    let mut delivered = 0;
    for _ in 0..1200 {
        let list: Value = http
            .get(format!(
                "{base}/v1/admin/deliveries?status=delivered&limit=200"
            ))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        delivered = list["deliveries"].as_array().unwrap().len();
        if delivered == ORDERS && game.ledger().grants_per_order.len() == ORDERS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivered, ORDERS, "every paid order delivered");
    let ledger = game.ledger();
    assert_eq!(ledger.grants_per_order.len(), ORDERS);
    assert!(
        ledger.grants_per_order.values().all(|n| *n == 1),
        "granted exactly once: {:?}",
        ledger.grants_per_order
    );
    assert_eq!(
        ledger.inventories[player["id"].as_str().unwrap()]["gem"],
        100 * ORDERS as i64
    );
    for order_no in &order_numbers {
        assert!(
            ledger.grants_per_order.contains_key(order_no),
            "{order_no} lost"
        );
    }
    let all: Value = http
        .get(format!("{base}/v1/admin/orders?limit=200"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        all["orders"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["status"] == "delivered"),
        "{all}"
    );
    drop(host);
    let mut db = db;
    db.drop_now().await;
}
