//! The world under load: Coffer, the channel simulator and the sample game server, each its own
//! process on loopback, and what the scenarios need in Coffer (a game, SKUs, players, sessions).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::processes::{Process, free_port};

pub const ADMIN_TOKEN: &str = "cof_bench_admin_token";
/// The legacy product the old client's first button sells, and its SKU.
pub const LEGACY_PRODUCT: &str = "钻石礼包-12钻石";
pub const PLAYERS: usize = 32;

/// Where the binaries and plugins come from (the current build, or another one to compare).
pub struct Binaries {
    pub coffer: PathBuf,
    pub sim: PathBuf,
    pub game_server: PathBuf,
    pub plugins: PathBuf,
}

pub struct World {
    pub coffer: Process,
    pub coffer_addr: SocketAddr,
    pub sim_url: String,
    pub game_url: String,
    pub client: coffer_signing::GameClient,
    /// Players of the game (`/v1` ids).
    pub players: Vec<String>,
    /// Legacy players: (pid, session token).
    pub legacy: Vec<(String, String)>,
    pub http: reqwest::Client,
    _sim: Process,
    _game: Process,
    _dir: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        if std::env::var_os("COFFER_BENCH_KEEP").is_some() {
            // Keep the directory (logs, database) for a look afterwards.
            let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().expect("a temp dir"));
            let _ = dir.keep();
        }
    }
}

impl World {
    pub async fn start(binaries: &Binaries, database_url: Option<&str>) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        if std::env::var_os("COFFER_BENCH_KEEP").is_some() {
            eprintln!("logs and database kept in {}", dir.path().display());
        }
        let (sim_port, game_port, coffer_port) = (free_port()?, free_port()?, free_port()?);
        let keys = dir.path().join("sim-keys");
        let mut sim = Process::spawn(
            "coffer-sim",
            &binaries.sim,
            &[
                "--listen".into(),
                format!("127.0.0.1:{sim_port}"),
                "--keys-dir".into(),
                keys.display().to_string(),
                "--time-scale".into(),
                "0.01".into(),
            ],
            dir.path(),
        )?;
        let sim_url = format!("http://127.0.0.1:{sim_port}");
        sim.wait_ready(
            &format!("{sim_url}/_control/faults"),
            Duration::from_secs(60),
        )
        .await?;
        let mut game = Process::spawn(
            "coffer-game-server",
            &binaries.game_server,
            &["--listen".into(), format!("127.0.0.1:{game_port}")],
            dir.path(),
        )?;
        let game_url = format!("http://127.0.0.1:{game_port}");
        game.wait_ready(&format!("{game_url}/_state"), Duration::from_secs(30))
            .await?;

        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins)?;
        for channel in ["carespay", "alipay"] {
            let file = format!("{channel}.wasm");
            std::fs::copy(binaries.plugins.join(&file), plugins.join(&file))
                .with_context(|| format!("{file} in {}", binaries.plugins.display()))?;
        }
        let database = match database_url {
            Some(url) => url.to_owned(),
            None => format!("sqlite://{}", dir.path().join("coffer.db").display()),
        };
        let config = config(
            coffer_port,
            &sim_url,
            &keys,
            &plugins,
            dir.path(),
            &database,
        );
        let config_path = dir.path().join("coffer.toml");
        std::fs::write(&config_path, config)?;
        let mut coffer = Process::spawn(
            "coffer",
            &binaries.coffer,
            &[
                "serve".into(),
                "--config".into(),
                config_path.display().to_string(),
            ],
            dir.path(),
        )?;
        let coffer_addr: SocketAddr = format!("127.0.0.1:{coffer_port}").parse()?;
        coffer
            .wait_ready(
                &format!("http://{coffer_addr}/readyz"),
                Duration::from_secs(120),
            )
            .await?;
        let http = reqwest::Client::new();
        let base = format!("http://{coffer_addr}");
        let admin = |path: &str, body: Value| {
            http.post(format!("{base}{path}"))
                .bearer_auth(ADMIN_TOKEN)
                .json(&body)
                .send()
        };
        let created: Value = admin(
            "/v1/admin/games",
            json!({ "id": "star-knights", "name": "Star Knights", "default_region": "US",
                    "delivery_url": format!("{game_url}/coffer/events") }),
        )
        .await?
        .json()
        .await?;
        let secret = created["delivery_secret"]
            .as_str()
            .context("no delivery secret")?;
        http.put(format!("{game_url}/_control"))
            .json(&json!({ "secret": secret }))
            .send()
            .await?
            .error_for_status()?;
        for sku in [
            json!({ "code": "gems-100", "kind": "currency_pack", "title": "100 Gems",
                    "grants": [{ "item": "gem", "quantity": 100 }],
                    "prices": [{ "region": "CN", "currency": "CNY", "amount_minor": 600 },
                               { "currency": "USD", "amount_minor": 99 }] }),
            json!({ "code": "diamonds-12", "kind": "currency_pack", "title": "12 Diamonds",
                    "grants": [{ "item": "diamond", "quantity": 12 }],
                    "prices": [{ "currency": "USD", "amount_minor": 800 }] }),
        ] {
            let status = admin("/v1/admin/games/star-knights/skus", sku)
                .await?
                .status();
            ensure!(status.is_success(), "cannot add a SKU: {status}");
        }
        let client = coffer_signing::GameClient::new(
            &base,
            created["api_key"]["key_id"].as_str().context("no key id")?,
            created["api_key"]["secret"].as_str().context("no secret")?,
        );
        let mut players = Vec::new();
        let mut legacy = Vec::new();
        for i in 0..PLAYERS {
            let player: Value = http
                .post(format!("{base}/v1/players"))
                .json(
                    &json!({ "game": "star-knights", "username": format!("bench{i:03}"),
                               "password": "bench password" }),
                )
                .send()
                .await?
                .json()
                .await?;
            players.push(player["id"].as_str().context("no player id")?.to_owned());
            let pid = format!("p{i:04}");
            http.post(format!("{base}/api/auth/register"))
                .json(&json!({ "pid": pid, "name": pid, "password": "bench password" }))
                .send()
                .await?;
            let login: Value = http
                .post(format!("{base}/api/auth/login"))
                .json(&json!({ "pid": pid, "password": "bench password" }))
                .send()
                .await?
                .json()
                .await?;
            let token = login["token"].as_str().context("no session token")?;
            legacy.push((pid, token.to_owned()));
        }
        Ok(Self {
            coffer,
            coffer_addr,
            sim_url,
            game_url,
            client,
            players,
            legacy,
            http,
            _sim: sim,
            _game: game,
            _dir: dir,
        })
    }

    /// The SQLite committer's totals so far (batches, jobs); `None` on PostgreSQL.
    pub async fn commits(&self) -> Result<Option<Commits>> {
        let stats: Value = self
            .http
            .get(format!("http://{}/v1/admin/store/stats", self.coffer_addr))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let count = |name: &str| stats["writes"][name].as_u64();
        Ok(count("batches")
            .zip(count("jobs"))
            .map(|(batches, jobs)| Commits { batches, jobs }))
    }

    /// Items granted by the sample game server so far (one per delivered purchase).
    pub async fn granted(&self) -> Result<usize> {
        let state: Value = self
            .http
            .get(format!("{}/_state", self.game_url))
            .send()
            .await?
            .json()
            .await?;
        Ok(state["grants_per_order"]
            .as_object()
            .map_or(0, |grants| grants.len()))
    }
}

/// Commits made by the SQLite committer, and the write jobs they carried.
#[derive(Clone, Copy)]
pub struct Commits {
    pub batches: u64,
    pub jobs: u64,
}

impl Commits {
    /// Jobs per commit between `before` and `self`, formatted for the table.
    pub fn per_commit_since(self, before: Option<Commits>) -> String {
        match before {
            Some(before) if self.batches > before.batches => format!(
                "{:.1}",
                (self.jobs - before.jobs) as f64 / (self.batches - before.batches) as f64
            ),
            _ => "-".into(),
        }
    }
}

fn config(
    port: u16,
    sim_url: &str,
    keys: &Path,
    plugins: &Path,
    dir: &Path,
    database: &str,
) -> String {
    let keys = keys.display();
    format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
shutdown_grace_s = 1
[log]
filter = "error"
[plugins]
dir = "{plugins}"
cache_dir = "{cache}"
watch = false
[database]
url = "{database}"
max_connections = 16
[players.password_hash]
memory_kib = 256
iterations = 1
[delivery]
poll_ms = 10
batch = 128
[jobs]
enabled = false
[[admin.tokens]]
name = "bench"
role = "admin"
sha256 = "{token}"
[legacy]
enabled = true
game = "star-knights"
currency = "USD"
[legacy.products]
"{LEGACY_PRODUCT}" = "diamonds-12"
[channels.carespay]
settings = {{ merchant-no = "80001", trade-url = "http://127.0.0.1:{port}" }}
endpoints = {{ gateway = "{sim_url}/carespay" }}
keys = {{ md5-key = {{ file = "{keys}/carespay-md5.key", format = "raw" }} }}
[channels.alipay]
settings = {{ app-id = "2021000000000001" }}
endpoints = {{ gateway = "{sim_url}/alipay/gateway.do", bill = "{sim_url}/alipay/bill" }}
keys = {{ app-private-key = {{ file = "{keys}/alipay-app-private.pem", format = "pem" }}, alipay-public-key = {{ file = "{keys}/alipay-public.pem", format = "pem" }} }}
"#,
        plugins = plugins.display(),
        cache = dir.join("cache").display(),
        token = hex::encode(Sha256::digest(ADMIN_TOKEN.as_bytes())),
    )
}
