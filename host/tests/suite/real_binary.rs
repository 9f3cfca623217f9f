//! The real `coffer` binary, as an operator runs it, under what a test inside the process
//! cannot do to it: killed with SIGKILL in the middle of a burst of payment notifications
//! (every paid order must reach the sample game server exactly once, none lost), killed in the
//! middle of a request whose client then retries it, and held by thousands of idle sockets
//! under a low open-file limit (game servers and channels must still get through). SQLite and
//! PostgreSQL where storage is involved.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::shop::{ADMIN_TOKEN, Backend, TestDb, fixture, shared_keys};
use coffer_sim::{RunningSim, SimConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};

both_backends!(
    kill_nine_during_a_burst_of_callbacks_loses_and_doubles_nothing,
    a_request_cut_by_kill_nine_is_retried_with_its_key_at_once,
);

const ORDERS: usize = 40;

/// Compiled plugins, shared by every world of this binary (compiling is the slow part).
fn shared_plugin_cache() -> std::path::PathBuf {
    static CACHE: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    CACHE
        .get_or_init(|| tempfile::tempdir().unwrap())
        .path()
        .join("cache")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary, started (and restarted) with one configuration file.
struct Host {
    config: std::path::PathBuf,
    log: std::path::PathBuf,
    base: String,
    /// The process's open-file limit, when the test lowers it.
    file_limit: Option<u64>,
    child: Option<Child>,
}

impl Host {
    async fn start(&mut self) {
        let mut command = Command::new(env!("CARGO_BIN_EXE_coffer"));
        command
            .args(["serve", "--config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.log)
                    .unwrap(),
            ));
        if let Some(limit) = self.file_limit {
            // SAFETY: setrlimit is async-signal-safe, and nothing else runs between fork and
            // exec here.
            unsafe {
                command.pre_exec(move || rlimit::setrlimit(rlimit::Resource::NOFILE, limit, limit));
            }
        }
        self.child = Some(command.spawn().unwrap());
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

/// The binary with the Alipay and CaresPay plugins against the simulator, the sample game
/// server, a game, a SKU and a player.
struct World {
    host: Host,
    sim: RunningSim,
    game: coffer_game_server::RunningGameServer,
    http: reqwest::Client,
    client: coffer_signing::GameClient,
    player: String,
    db: TestDb,
    _dir: tempfile::TempDir,
}

impl World {
    /// `extra` is appended to the configuration file (more sections).
    async fn start(backend: Backend, file_limit: Option<u64>, extra: &str) -> Self {
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
        let demo = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/demo.toml"
        ))
        .unwrap();
        let mut channels = String::new();
        for channel in ["alipay", "carespay"] {
            std::fs::copy(
                fixture(&format!("{channel}.wasm")),
                plugins.join(format!("{channel}.wasm")),
            )
            .unwrap();
            let section = demo
                .split("[channels.")
                .find(|s| s.starts_with(&format!("{channel}]")))
                .unwrap()
                .replace("http://127.0.0.1:9100", &sim.sim.base_url)
                .replace("data/sim-keys/", &format!("{}/", keys_dir.display()));
            channels.push_str(&format!("[channels.{section}\n"));
        }
        let db = TestDb::create(backend).await;
        let port = free_port();
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
[orders]
channel_timeout_ms = 5000
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
{extra}
{channels}"#,
            plugins = plugins.display(),
            cache = shared_plugin_cache().display(),
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
            file_limit,
            child: None,
        };
        host.start().await;

        let http = reqwest::Client::new();
        let created: Value = http
            .post(format!("{base}/v1/admin/games"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({
                "id": "star-knights", "name": "Star Knights", "default_region": "CN",
                "delivery_url": game.delivery_url
            }))
            .send()
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
        http.post(format!("{base}/v1/admin/games/star-knights/skus"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({
                "code": "gems-100", "kind": "currency_pack", "title": "100 Gems",
                "grants": [{ "item": "gem", "quantity": 100 }],
                "prices": [{ "currency": "CNY", "amount_minor": 600 },
                           { "region": "US", "currency": "USD", "amount_minor": 99 }]
            }))
            .send()
            .await
            .unwrap();
        let player: Value = http
            .post(format!("{base}/v1/players"))
            .json(
                &json!({ "game": "star-knights", "username": "ada", "password": "correct horse" }),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self {
            host,
            sim,
            game,
            http,
            client,
            player: player["id"].as_str().unwrap().to_owned(),
            db,
            _dir: dir,
        }
    }

    fn qr_order(&self, merchant_order_no: &str) -> Value {
        json!({
            "player_id": self.player, "sku": "gems-100", "merchant_order_no": merchant_order_no,
            "method": "alipay", "flow": "qr_code", "client_ip": "203.0.113.7"
        })
    }

    async fn admin_get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.host.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn stop(mut self) {
        if let Some(mut child) = self.host.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.db.drop_now().await;
    }
}

async fn kill_nine_during_a_burst_of_callbacks_loses_and_doubles_nothing(backend: Backend) {
    let mut world = World::start(backend, None, "").await;
    let mut order_numbers = Vec::new();
    for i in 0..ORDERS {
        let merchant_order_no = format!("crash-{i}");
        let answer = world
            .client
            .send(
                "POST",
                "/v1/orders",
                Some(&world.qr_order(&merchant_order_no)),
                Some(&merchant_order_no),
            )
            .await
            .unwrap();
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        order_numbers.push(answer.body["order_no"].as_str().unwrap().to_owned());
    }

    // Every player pays; the notifications pour in; halfway through, the host is killed.
    for (i, order_no) in order_numbers.iter().enumerate() {
        let paid = world
            .http
            .post(world.sim.url(&format!("/_control/alipay/pay/{order_no}")))
            .send()
            .await
            .unwrap();
        assert!(paid.status().is_success());
        if i == ORDERS / 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            world.host.kill_nine();
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    world.host.start().await;

    // Retried notifications and the recovery job bring every order to the game, once.
    let mut delivered = 0;
    for _ in 0..1200 {
        let list = world
            .admin_get("/v1/admin/deliveries?status=delivered&limit=200")
            .await;
        delivered = list["deliveries"].as_array().unwrap().len();
        if delivered == ORDERS && world.game.ledger().grants_per_order.len() == ORDERS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(delivered, ORDERS, "every paid order delivered");
    let ledger = world.game.ledger();
    assert_eq!(ledger.grants_per_order.len(), ORDERS);
    assert!(
        ledger.grants_per_order.values().all(|n| *n == 1),
        "granted exactly once: {:?}",
        ledger.grants_per_order
    );
    assert_eq!(
        ledger.inventories[&world.player]["gem"],
        100 * ORDERS as i64
    );
    for order_no in &order_numbers {
        assert!(
            ledger.grants_per_order.contains_key(order_no),
            "{order_no} lost"
        );
    }
    let all = world.admin_get("/v1/admin/orders?limit=200").await;
    assert!(
        all["orders"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["status"] == "delivered"),
        "{all}"
    );
    world.stop().await;
}

/// After a kill -9, a client retrying with the same Idempotency-Key is not locked out until the
/// dead process's lock expires: the restarted process takes its keys over at once.
async fn a_request_cut_by_kill_nine_is_retried_with_its_key_at_once(backend: Backend) {
    let mut world = World::start(backend, None, "").await;
    // The channel is slow: the request is mid-way when the process dies.
    world
        .http
        .put(world.sim.url("/_control/faults"))
        .json(&json!({ "api_delay_ms": 3000 }))
        .send()
        .await
        .unwrap();
    let body = world.qr_order("cut-1");
    let client = world.client.clone();
    let cut = tokio::spawn({
        let body = body.clone();
        async move {
            client
                .send("POST", "/v1/orders", Some(&body), Some("k-cut"))
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    world.host.kill_nine();
    assert!(
        cut.await.unwrap().is_err(),
        "the client lost its connection"
    );
    world
        .http
        .put(world.sim.url("/_control/faults"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    world.host.start().await;
    // A retry is signed anew; within the same second its bytes would be the first request's
    // (signatures carry whole seconds), which is a replay, answered only from the key's record.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let retried = world
        .client
        .send("POST", "/v1/orders", Some(&body), Some("k-cut"))
        .await
        .unwrap();
    assert_ne!(
        retried.body["type"].as_str().unwrap_or_default(),
        "https://coffer.dev/problems/idempotency-key-in-use",
        "{}",
        retried.body
    );
    // The order the cut request made is the one the retry is told about.
    let listed = world
        .admin_get("/v1/admin/orders?merchant_order_no=cut-1")
        .await;
    let order_no = listed["orders"][0]["order_no"].clone();
    assert!(order_no.is_string(), "{listed}");
    assert!(
        retried.body["order_no"] == order_no,
        "{} names {order_no}",
        retried.body
    );
    world.stop().await;
}

/// Thousands of sockets that send half a request line, against a process with 1,024 file
/// descriptors: the listeners keep only as many connections as fit, close the idlest for each
/// newcomer, and close what stays silent; signed API calls, the channel's notifications and
/// the legacy routes keep answering at their usual pace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_sockets_keep_neither_game_servers_nor_channels_out() {
    let legacy_port = free_port();
    let world = World::start(
        Backend::Sqlite,
        Some(1024),
        &format!(
            "[legacy]\nenabled = true\ngame = \"star-knights\"\n\
             listen = [\"127.0.0.1:{legacy_port}\"]\n"
        ),
    )
    .await;
    let main = world.host.base.trim_start_matches("http://").to_owned();
    let legacy = format!("127.0.0.1:{legacy_port}");

    // A connection that never says anything: closed to make room, or after the header timeout
    // (10 s, the default) at the latest.
    let mut silent = tokio::net::TcpStream::connect(&main).await.unwrap();

    // 3,000 sockets, each with half a request line, held open.
    let mut idle = Vec::new();
    for i in 0..3000 {
        let target = if i % 2 == 0 { &main } else { &legacy };
        let mut socket = tokio::net::TcpStream::connect(target).await.unwrap();
        use tokio::io::AsyncWriteExt;
        socket.write_all(b"POST /v1/orders HTT").await.unwrap();
        idle.push(socket);
    }

    // Game-server calls, the channel's notifications, the legacy routes: each answers quickly.
    let mut slowest = Duration::ZERO;
    let mut paid = Vec::new();
    for i in 0..10 {
        let started = Instant::now();
        let round = async {
            let catalog = world
                .client
                .send("GET", "/v1/catalog?region=CN", None, None)
                .await
                .unwrap();
            assert_eq!(catalog.status, StatusCode::OK);
            let merchant_order_no = format!("busy-{i}");
            let order = world
                .client
                .send(
                    "POST",
                    "/v1/orders",
                    Some(&world.qr_order(&merchant_order_no)),
                    Some(&merchant_order_no),
                )
                .await
                .unwrap();
            assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
            let health = world
                .http
                .get(format!("http://{legacy}/api/health"))
                .send()
                .await
                .unwrap();
            assert_eq!(health.status(), StatusCode::OK);
            order
        };
        // Bounded: without the limits, a call waits forever for a listener out of descriptors.
        let order = tokio::time::timeout(Duration::from_secs(20), round)
            .await
            .expect("the service answers while idle sockets are held");
        slowest = slowest.max(started.elapsed());
        let order_no = order.body["order_no"].as_str().unwrap().to_owned();
        let paid_at_sim = world
            .http
            .post(world.sim.url(&format!("/_control/alipay/pay/{order_no}")))
            .send()
            .await
            .unwrap();
        assert!(paid_at_sim.status().is_success());
        paid.push(order_no);
    }
    assert!(
        slowest < Duration::from_secs(2),
        "a round of calls took {slowest:?}"
    );
    // The notifications got through: every order is paid.
    for order_no in &paid {
        let mut status = Value::Null;
        for _ in 0..200 {
            let order = world
                .client
                .send("GET", &format!("/v1/orders/{order_no}"), None, None)
                .await
                .unwrap();
            status = order.body["status"].clone();
            if status == "paid" || status == "delivered" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(
            status == "paid" || status == "delivered",
            "{order_no}: {status}"
        );
    }
    // Most idle sockets were closed to make room: the process holds at most what fits.
    let mut closed = 0;
    for socket in &mut idle {
        use tokio::io::AsyncReadExt;
        let mut byte = [0u8; 1];
        if let Ok(Ok(0) | Err(_)) =
            tokio::time::timeout(Duration::from_millis(1), socket.read(&mut byte)).await
        {
            closed += 1;
        }
    }
    assert!(
        closed >= 2000,
        "only {closed} of 3000 idle sockets were closed"
    );
    // And the silent one, after the header timeout.
    use tokio::io::AsyncReadExt;
    let mut byte = [0u8; 1];
    let ended = tokio::time::timeout(Duration::from_secs(15), silent.read(&mut byte)).await;
    assert!(
        matches!(ended, Ok(Ok(0)) | Ok(Err(_))),
        "a silent connection stays open: {ended:?}"
    );
    world.stop().await;
}
