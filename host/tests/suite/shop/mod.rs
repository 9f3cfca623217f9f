//! A world for commerce tests: the real service on a random port, against a fresh database
//! (a SQLite file, or a PostgreSQL database of its own that is dropped afterwards), with the
//! channel simulator and the channel plugins loaded, one game, and a signed client for it.

pub use crate::support::{fixture, shared_keys};

mod db;

use std::path::PathBuf;
use std::sync::OnceLock;

use coffer::config::{AdminToken, Config, Role};
use coffer_signing::{Answer, GameClient};
use coffer_sim::{RunningSim, SimConfig};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub use db::{Backend, TestDb};

pub const ADMIN_TOKEN: &str = "cof_admin_test_token";
pub const VIEWER_TOKEN: &str = "cof_viewer_test_token";
pub const OPERATOR_TOKEN: &str = "cof_operator_test_token";

/// Runs an async test body once per backend: `both_backends!(name, other_name);` makes
/// `sqlite::name` and `postgres::name` from `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::shop::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::shop::Backend::Postgres).await
                }
            )*
        }
    };
}

/// Compiled plugins are cached across the tests of one binary (compiling is the slow part).
fn shared_plugin_cache() -> PathBuf {
    static CACHE: OnceLock<tempfile::TempDir> = OnceLock::new();
    CACHE
        .get_or_init(|| tempfile::tempdir().unwrap())
        .path()
        .join("cache")
}

fn admin_token(name: &str, role: Role, token: &str) -> AdminToken {
    AdminToken {
        name: name.into(),
        role,
        sha256: hex::encode(Sha256::digest(token.as_bytes())),
    }
}

/// The game every shop starts with.
pub struct GameCredentials {
    pub id: String,
    pub key_id: String,
    pub secret: String,
}

pub struct Shop {
    pub base: String,
    pub http: reqwest::Client,
    pub sim: RunningSim,
    pub game: GameCredentials,
    pub client: GameClient,
    pub running: Option<coffer::app::Running>,
    /// The configuration it was started with.
    pub config: Config,
    pub db: TestDb,
    _dir: tempfile::TempDir,
}

impl Shop {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts with the test defaults, changed by `tweak`.
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        Self::start_with_plugins(backend, &[], tweak).await
    }

    /// Also loads the test fixtures named in `extra_plugins` (e.g. "hostile.wasm").
    pub async fn start_with_plugins(
        backend: Backend,
        extra_plugins: &[&str],
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        // Shown for failing tests only (the test writer is captured).
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
            .try_init();
        let dir = tempfile::tempdir().unwrap();
        let keys_dir = dir.path().join("sim-keys");
        std::fs::create_dir_all(&keys_dir).unwrap();
        let keys = shared_keys();
        keys.write_for_coffer(&keys_dir).unwrap();
        let sim = coffer_sim::start(
            SimConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                time_scale: 0.001,
            },
            keys,
        )
        .await
        .unwrap();

        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        let standard = [
            "carespay.wasm",
            "alipay.wasm",
            "wechatpay.wasm",
            "testpay.wasm",
            "appstore.wasm",
            "googleplay.wasm",
            "unionpay.wasm",
        ];
        for plugin in standard.iter().chain(extra_plugins) {
            std::fs::copy(fixture(plugin), plugins.join(plugin)).unwrap();
        }
        let testpay_secret = dir.path().join("demo-keys/testpay-api-secret.hex");
        std::fs::create_dir_all(testpay_secret.parent().unwrap()).unwrap();
        std::fs::write(&testpay_secret, "00112233445566778899aabbccddeeff").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&testpay_secret, std::fs::Permissions::from_mode(0o600)).unwrap();

        // The demo's channel sections, pointed at this simulator and these key files.
        let demo = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/demo.toml"
        ))
        .unwrap()
        .replace("http://127.0.0.1:9100", &sim.sim.base_url)
        .replace("data/sim-keys/", &format!("{}/", keys_dir.display()))
        .replace(
            "data/demo-keys/",
            &format!("{}/demo-keys/", dir.path().display()),
        );
        let mut config = Config::from_toml(&demo).unwrap();
        config.plugins.dir = plugins;
        config.plugins.cache_dir = shared_plugin_cache();
        config.plugins.watch = false;
        config.admin.tokens = vec![
            admin_token("root", Role::Admin, ADMIN_TOKEN),
            admin_token("ops", Role::Operator, OPERATOR_TOKEN),
            admin_token("dashboard", Role::Viewer, VIEWER_TOKEN),
        ];
        // Cheap password hashing: the tests are about behaviour, not cost.
        config.players.password_hash.memory_kib = 256;
        config.players.password_hash.iterations = 1;
        config.orders.channel_timeout_ms = 3_000;
        // Deliveries retried within milliseconds, not minutes.
        config.delivery.poll_ms = 20;
        config.delivery.retry_base_ms = 30;
        config.delivery.retry_max_ms = 100;
        config.delivery.timeout_ms = 2_000;
        // Reconciliation runs when a test asks for it, not at start.
        config.reconcile.enabled = false;
        // Store purchases acknowledged within a tenth of a second of their delivery.
        config.stores.acknowledge_every_ms = 100;
        let db = TestDb::create(backend).await;
        config.database.url = db.url.clone();
        tweak(&mut config);

        // A known port, so the callback URLs given to channels point back here. Picked free,
        // but another test may take it before Coffer binds it: then try another.
        let mut attempts = 0;
        let running = loop {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            config.server.listen = ([127, 0, 0, 1], port).into();
            config.server.public_url = format!("http://127.0.0.1:{port}");
            match coffer::app::start(config.clone()).await {
                Ok(running) => break running,
                Err(e) if attempts < 5 && format!("{e:#}").contains("cannot listen") => {
                    attempts += 1;
                }
                Err(e) => panic!("coffer did not start: {e:#}"),
            }
        };
        let base = format!("http://{}", running.addr);
        let http = reqwest::Client::new();
        let created: Value = http
            .post(format!("{base}/v1/admin/games"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({
                "id": "star-knights",
                "name": "Star Knights",
                "default_region": "CN",
                "delivery_url": "http://127.0.0.1:9/deliveries",
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let game = GameCredentials {
            id: "star-knights".into(),
            key_id: created["api_key"]["key_id"].as_str().unwrap().into(),
            secret: created["api_key"]["secret"].as_str().unwrap().into(),
        };
        let client = GameClient::new(&base, &game.key_id, &game.secret);
        Self {
            base,
            http,
            sim,
            game,
            client,
            running: Some(running),
            config,
            db,
            _dir: dir,
        }
    }

    /// Another Coffer instance on the same database (and plugins), on its own port.
    pub async fn second_instance(&self) -> coffer::app::Running {
        let mut config = self.config.clone();
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        coffer::app::start(config).await.unwrap()
    }

    /// Starts the sample game server and points the game's deliveries at it.
    pub async fn connect_game_server(&self) -> coffer_game_server::RunningGameServer {
        let server = coffer_game_server::start("127.0.0.1:0".parse().unwrap(), "")
            .await
            .unwrap();
        let (status, _) = self
            .admin(
                "PATCH",
                "/v1/admin/games/star-knights",
                Some(json!({ "delivery_url": server.delivery_url })),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (_, secret) = self
            .admin("POST", "/v1/admin/games/star-knights/delivery-secret", None)
            .await;
        server.set_secret(secret["delivery_secret"].as_str().unwrap());
        server
    }

    /// A card order paid at once (CaresPay, test card 4242...), in USD; returns its number.
    pub async fn paid_card_order(&self, player: &str, merchant_order_no: &str) -> String {
        let body = json!({
            "player_id": player, "sku": "gems-100", "region": "US",
            "merchant_order_no": merchant_order_no, "method": "card", "flow": "direct_card",
            "channel": "carespay", "client_ip": "203.0.113.7",
            "customer": { "email": "ada@example.test", "first_name": "Ada", "last_name": "Player",
                          "billing": { "country": "US", "city": "SF", "line1": "1 Main", "postal_code": "94105" } },
            "card": { "number": coffer_sim::carespay::CARD_APPROVED, "expiry_month": 12,
                      "expiry_year": 2031, "cvc": "123", "holder_name": "Ada Player" }
        });
        let answer = self.call("POST", "/v1/orders", Some(body)).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        assert_eq!(answer.body["status"], "paid");
        answer.body["order_no"].as_str().unwrap().to_owned()
    }

    /// Waits (bounded) until `check` holds for the delivery list.
    pub async fn wait_for_deliveries(&self, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let mut last = Vec::new();
        for _ in 0..400 {
            let (_, list) = self
                .admin("GET", "/v1/admin/deliveries?limit=200", None)
                .await;
            last = list["deliveries"].as_array().cloned().unwrap_or_default();
            if check(&last) {
                return last;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("deliveries never reached the expected state: {last:?}");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn store(&self) -> &coffer::store::Store {
        &self.running.as_ref().unwrap().state.store
    }

    /// The running service's areas, for what a test drives directly (a store poll).
    pub fn state(&self) -> &coffer::app::AppState {
        &self.running.as_ref().unwrap().state
    }

    /// An admin-API call with `token`.
    pub async fn admin_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn admin(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.admin_as(ADMIN_TOKEN, method, path, body).await
    }

    /// A signed game-server call; a POST gets an Idempotency-Key of its own (each call is a new
    /// operation).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        static SEQUENCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let key = (method == "POST").then(|| {
            let n = SEQUENCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            format!("auto-{}-{n}", std::process::id())
        });
        self.client
            .send(method, path, body.as_ref(), key.as_deref())
            .await
            .unwrap()
    }

    /// A signed `POST /v1/orders` with an Idempotency-Key.
    pub async fn order_with_key(&self, key: &str, body: &Value) -> Answer {
        self.client
            .send("POST", "/v1/orders", Some(body), Some(key))
            .await
            .unwrap()
    }

    /// Adds a SKU to the game (the spec's missing fields get defaults).
    pub async fn add_sku(&self, spec: Value) -> Value {
        let (status, body) = self
            .admin("POST", "/v1/admin/games/star-knights/skus", Some(spec))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// The usual SKU: 100 gems for 6.00 CNY in China, 0.99 USD elsewhere.
    pub async fn add_gems(&self) -> Value {
        self.add_sku(json!({
            "code": "gems-100",
            "kind": "currency_pack",
            "title": "100 Gems",
            "grants": [{ "item": "gem", "quantity": 100 }],
            "prices": [
                { "region": "CN", "currency": "CNY", "amount_minor": 600 },
                { "currency": "USD", "amount_minor": 99 }
            ]
        }))
        .await
    }

    /// The usual SKU at 0.99 USD, sold in `channel`'s store as `product_id`.
    pub async fn add_store_gems(&self, channel: &str, product_id: &str) -> Value {
        self.add_sku(json!({
            "code": "gems-100",
            "kind": "currency_pack",
            "title": "100 Gems",
            "grants": [{ "item": "gem", "quantity": 100 }],
            "prices": [{ "currency": "USD", "amount_minor": 99 }],
            "store_products": [{ "channel": channel, "product_id": product_id }]
        }))
        .await
    }

    /// Registers a player of the game and returns their id.
    pub async fn add_player(&self, username: &str) -> String {
        let response = self
            .http
            .post(self.url("/v1/players"))
            .json(
                &json!({ "game": self.game.id, "username": username, "password": "correct horse" }),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().to_owned()
    }

    /// Creates a second game and returns a signed client for it.
    pub async fn add_other_game(&self, id: &str) -> GameClient {
        let (status, created) = self
            .admin(
                "POST",
                "/v1/admin/games",
                Some(json!({
                    "id": id, "name": id, "default_region": "JP",
                    "delivery_url": "https://other.example/coffer"
                })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        GameClient::new(
            &self.base,
            created["api_key"]["key_id"].as_str().unwrap(),
            created["api_key"]["secret"].as_str().unwrap(),
        )
    }

    /// A signed `POST /v1/orders` for an Alipay QR payment (see [`Shop::qr_order`]).
    pub fn order_qr<'s>(
        &'s self,
        player: &str,
        sku: &str,
        merchant_order_no: &str,
    ) -> impl Future<Output = Answer> + use<'s> {
        // The body is built now, so the future borrows only the shop.
        let body = self.qr_order(player, sku, merchant_order_no);
        async move { self.call("POST", "/v1/orders", Some(body)).await }
    }

    /// Registers player number `i` ("buyer-<i>").
    pub async fn add_player_named(&self, i: usize) -> String {
        self.add_player(&format!("buyer-{i}")).await
    }

    /// An order body for an Alipay QR payment of `sku`.
    pub fn qr_order(&self, player: &str, sku: &str, merchant_order_no: &str) -> Value {
        json!({
            "player_id": player,
            "sku": sku,
            "merchant_order_no": merchant_order_no,
            "method": "alipay",
            "flow": "qr_code",
            "client_ip": "203.0.113.7",
            "device": "android"
        })
    }

    /// Waits (bounded) until the order has `status`; returns the order as last seen.
    pub async fn wait_for_status(&self, order_no: &str, status: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..200 {
            let (_, detail) = self
                .admin("GET", &format!("/v1/admin/orders/{order_no}"), None)
                .await;
            if detail["order"]["status"] == status {
                return detail;
            }
            last = detail;
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("order {order_no} never became {status}: {last}");
    }

    /// The simulator's control API.
    pub async fn sim_control(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(self.sim.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// A GET on the simulator's control API.
    pub async fn sim_control_get(&self, path: &str) -> Value {
        self.http
            .get(self.sim.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub async fn set_faults(&self, faults: Value) {
        let response = self
            .http
            .put(self.sim.url("/_control/faults"))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }

    /// Counts rows of a table (for "nothing changed" checks).
    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(self.store().pool())
            .await
            .unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.unwrap();
        }
        self.db.drop_now().await;
    }
}
