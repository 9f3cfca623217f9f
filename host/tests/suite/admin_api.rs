//! The service over real HTTP: health, the admin API's access rules, plugin listing, reload and
//! quotes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::channels::fixture;

use coffer::config::{AdminToken, ChannelSection, Config, Role};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const VIEWER_TOKEN: &str = "cof_viewer_test_token";
const OPERATOR_TOKEN: &str = "cof_operator_test_token";

fn token(name: &str, role: Role, token: &str) -> AdminToken {
    AdminToken {
        name: name.into(),
        role,
        sha256: hex::encode(Sha256::digest(token.as_bytes())),
    }
}

struct World {
    _dir: tempfile::TempDir,
    plugins: PathBuf,
    base: String,
    http: reqwest::Client,
    running: Option<coffer::app::Running>,
}

impl World {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        std::fs::copy(fixture("testpay.wasm"), plugins.join("testpay.wasm")).unwrap();
        let secret = dir.path().join("testpay.hex");
        std::fs::write(&secret, "00112233445566778899aabbccddeeff").unwrap();

        let mut config = Config::default();
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.plugins.dir = plugins.clone();
        config.plugins.cache_dir = PathBuf::new();
        config.plugins.watch = false;
        config.database.url = format!("sqlite://{}", dir.path().join("coffer.db").display());
        config.admin.tokens = vec![
            token("dashboard", Role::Viewer, VIEWER_TOKEN),
            token("ops", Role::Operator, OPERATOR_TOKEN),
        ];
        let keys = format!(
            "[channels.testpay]\nsettings = {{ merchant-id = \"M-1\", fee-bps = \"300\" }}\n\
             endpoints = {{ api = \"http://127.0.0.1:9/testpay\" }}\n\
             keys = {{ api-secret = {{ file = {:?}, format = \"hex\" }} }}\n",
            secret.display().to_string()
        );
        let channels: BTreeMap<String, ChannelSection> = Config::from_toml(&keys).unwrap().channels;
        config.channels = channels;

        let running = coffer::app::start(config).await.unwrap();
        Self {
            base: format!("http://{}", running.addr),
            _dir: dir,
            plugins,
            http: reqwest::Client::new(),
            running: Some(running),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = self.http.get(self.url(path));
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.unwrap();
        (
            response.status(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, String, Value) {
        let mut request = self.http.post(self.url(path)).json(&body);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.unwrap();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (
            response.status(),
            content_type,
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn stop(mut self) {
        self.running.take().unwrap().stop().await.unwrap();
    }
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let world = World::start().await;
    let response = world.http.get(world.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("x-request-id"));
    let (status, body) = world.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "ready": true, "channels": 1 }));
    world.stop().await;
}

#[tokio::test]
async fn admin_routes_refuse_missing_wrong_and_weak_tokens() {
    let world = World::start().await;
    let (status, body) = world.get("/v1/admin/plugins", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["status"], 401);
    let (status, _) = world.get("/v1/admin/plugins", Some("cof_guess")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The right token under another scheme is not a bearer token.
    let basic = world
        .http
        .get(world.url("/v1/admin/plugins"))
        .header("authorization", format!("Basic {VIEWER_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    let lower_case_scheme = world
        .http
        .get(world.url("/v1/admin/plugins"))
        .header("authorization", format!("bearer {VIEWER_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower_case_scheme.status(), StatusCode::OK);
    // A viewer may look but not reload.
    let (status, content_type, body) = world
        .post("/v1/admin/plugins/reload", Some(VIEWER_TOKEN), json!({}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["title"], "Role too low");
    world.stop().await;
}

#[tokio::test]
async fn lists_plugins_with_versions_hashes_and_configuration_gaps() {
    let world = World::start().await;
    let (status, body) = world.get("/v1/admin/plugins", Some(VIEWER_TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["contract_version"],
        coffer_plugin_runtime::CONTRACT_VERSION
    );
    let testpay = &body["channels"][0];
    assert_eq!(testpay["channel"], "testpay");
    assert_eq!(testpay["version"], "1.0.0");
    assert_eq!(testpay["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(testpay["missing_keys"], json!([]));
    assert!(testpay["loaded_at_ms"].as_u64().unwrap() > 0);
    assert_eq!(body["failures"], json!([]));
    world.stop().await;
}

#[tokio::test]
async fn reload_swaps_in_a_new_version_and_reports_a_broken_file() {
    let world = World::start().await;
    std::fs::copy(
        fixture("testpay-v2.wasm"),
        world.plugins.join("testpay.wasm"),
    )
    .unwrap();
    let (status, _, report) = world
        .post("/v1/admin/plugins/reload", Some(OPERATOR_TOKEN), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["loaded"], json!([["testpay", "2.0.0"]]));

    std::fs::write(world.plugins.join("testpay.wasm"), b"not wasm").unwrap();
    let (_, _, report) = world
        .post("/v1/admin/plugins/reload", Some(OPERATOR_TOKEN), json!({}))
        .await;
    assert_eq!(report["failed"][0]["still_serving"], "testpay");
    let (_, body) = world.get("/v1/admin/plugins", Some(VIEWER_TOKEN)).await;
    assert_eq!(
        body["channels"][0]["version"], "2.0.0",
        "the good version keeps serving"
    );
    assert!(
        body["failures"][0]["error"]
            .as_str()
            .unwrap()
            .contains("not a valid WebAssembly component")
    );
    world.stop().await;
}

#[tokio::test]
async fn quote_asks_the_plugin_and_rejects_bad_input() {
    let world = World::start().await;
    let request = json!({ "amount_minor": 10000, "currency": "USD", "method": "card", "flow": "direct-card" });
    let (status, _, body) = world
        .post(
            "/v1/admin/plugins/testpay/quote",
            Some(VIEWER_TOKEN),
            request,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["quote"]["fee_minor"], 300,
        "fee-bps from the channel's settings"
    );

    let (status, _, body) = world
        .post(
            "/v1/admin/plugins/testpay/quote",
            Some(VIEWER_TOKEN),
            json!({ "amount_minor": 100, "currency": "GBP", "method": "card" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["quote"], Value::Null, "TestPay does not take GBP");

    for (bad, expected) in [
        (
            json!({ "amount_minor": 100, "currency": "usd", "method": "card" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "amount_minor": -1, "currency": "USD", "method": "card" }),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({ "amount_minor": 1.5, "currency": "USD", "method": "card" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, content_type, body) = world
            .post(
                "/v1/admin/plugins/testpay/quote",
                Some(VIEWER_TOKEN),
                bad.clone(),
            )
            .await;
        assert_eq!(status, expected, "{bad}");
        assert_eq!(content_type, "application/problem+json", "{bad}");
        assert!(body["detail"].is_string(), "{bad}: {body}");
    }
    let (status, content_type, _) = world
        .post(
            "/v1/admin/plugins/nosuch/quote",
            Some(VIEWER_TOKEN),
            json!({ "amount_minor": 1, "currency": "USD", "method": "card" }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(content_type, "application/problem+json");
    world.stop().await;
}

#[tokio::test]
async fn a_missing_key_file_stops_the_start_naming_the_key() {
    let config = Config::from_toml(
        "[channels.testpay]\nkeys = { api-secret = { file = \"/nonexistent/key.hex\", format = \"hex\" } }\n",
    )
    .unwrap();
    let error = match coffer::app::start(config).await {
        Ok(_) => panic!("must not start without its keys"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        error.contains("api-secret") && error.contains("/nonexistent/key.hex"),
        "{error}"
    );
}
