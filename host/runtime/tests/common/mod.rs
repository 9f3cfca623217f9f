//! Builds the worlds the runtime tests run in: engines, channel configurations, registries in
//! temporary plugin directories, and requests.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use coffer_plugin_runtime::contract::*;
use coffer_plugin_runtime::{
    ChannelConfig, ChannelConfigs, Clock, Endpoint, KeyRing, Limits, PluginEngine, Registry,
    SealedKey,
};

pub const TESTPAY_SECRET: &[u8] = b"testpay-shared-secret";
pub const TESTPAY_API: &str = "http://127.0.0.1:9/testpay";
/// 2026-11-24T07:30:00Z.
pub const NOW_MS: i64 = 1_795_505_400_000;

/// Where `cargo xtask build-plugins` put the compiled fixtures.
pub fn fixtures_dir() -> PathBuf {
    let dir = std::env::var_os("COFFER_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/wasm-fixtures")
        });
    assert!(
        dir.join("testpay.wasm").is_file(),
        "plugin fixtures missing in {}: run `cargo xtask build-plugins` (or `cargo xtask test`)",
        dir.display()
    );
    dir
}

pub fn fixture(name: &str) -> PathBuf {
    fixtures_dir().join(name)
}

/// A clock the test sets.
#[derive(Default)]
pub struct TestClock(AtomicI64);

impl TestClock {
    pub fn set_ms(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub fn test_limits() -> Limits {
    Limits {
        call_timeout: Duration::from_millis(250),
        ..Limits::default()
    }
}

pub fn engine_with_clock() -> (PluginEngine, Arc<TestClock>) {
    engine_with_limits(test_limits())
}

pub fn engine_with_limits(limits: Limits) -> (PluginEngine, Arc<TestClock>) {
    let clock = Arc::new(TestClock::default());
    clock.set_ms(NOW_MS);
    let engine = PluginEngine::with_clock(limits, clock.clone()).unwrap();
    (engine, clock)
}

fn secret(bytes: &[u8]) -> SealedKey {
    SealedKey::Secret(bytes.to_vec().into())
}

pub fn configs() -> ChannelConfigs {
    let mut configs = ChannelConfigs::default();
    let mut keys = KeyRing::default();
    keys.insert("api-secret", secret(TESTPAY_SECRET));
    configs.insert(
        "testpay",
        ChannelConfig {
            settings: [("merchant-id".to_owned(), "M-1001".to_owned())].into(),
            endpoints: [("api".to_owned(), Endpoint::parse(TESTPAY_API).unwrap())].into(),
            keys,
        },
    );
    let mut keys = KeyRing::default();
    keys.insert("own-secret", secret(b"hostile-own-secret"));
    configs.insert(
        "hostile",
        ChannelConfig {
            endpoints: [(
                "api".to_owned(),
                Endpoint::parse("http://127.0.0.1:9/hostile").unwrap(),
            )]
            .into(),
            keys,
            ..Default::default()
        },
    );
    configs
}

/// A registry over a fresh temporary plugins directory holding copies of `fixtures`.
pub struct TestRegistry {
    pub dir: tempfile::TempDir,
    pub registry: Arc<Registry>,
    pub clock: Arc<TestClock>,
}

impl TestRegistry {
    pub async fn with(fixtures: &[&str]) -> Self {
        Self::with_configs(fixtures, configs()).await
    }

    pub async fn with_configs(fixtures: &[&str], configs: ChannelConfigs) -> Self {
        Self::build(fixtures, configs, test_limits()).await
    }

    pub async fn with_limits(fixtures: &[&str], limits: Limits) -> Self {
        Self::build(fixtures, configs(), limits).await
    }

    async fn build(fixtures: &[&str], configs: ChannelConfigs, limits: Limits) -> Self {
        let dir = tempfile::tempdir().unwrap();
        for name in fixtures {
            std::fs::copy(fixture(name), dir.path().join(name)).unwrap();
        }
        let (engine, clock) = engine_with_limits(limits);
        let registry = Arc::new(Registry::new(
            engine,
            dir.path(),
            Default::default(),
            configs,
        ));
        let report = registry.reload().await;
        assert!(
            report.failed.is_empty(),
            "fixtures failed to load: {:?}",
            report.failed
        );
        Self {
            dir,
            registry,
            clock,
        }
    }

    /// Copies a fixture into the plugins directory under `as_name`, atomically.
    pub fn install(&self, fixture_name: &str, as_name: &str) {
        let temp = self.dir.path().join(format!("{as_name}.partial"));
        std::fs::copy(fixture(fixture_name), &temp).unwrap();
        std::fs::rename(temp, self.dir.path().join(as_name)).unwrap();
    }

    pub fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.dir.path().join(name), bytes).unwrap();
    }
}

pub fn usd(minor: i64) -> Money {
    Money {
        minor,
        currency: "USD".into(),
    }
}

pub fn payment_request(order_no: &str, subject: &str) -> PaymentRequest {
    PaymentRequest {
        order_no: order_no.into(),
        amount: usd(1999),
        method: "testpay".into(),
        flow: CheckoutFlow::Redirect,
        subject: subject.into(),
        description: String::new(),
        customer: Customer {
            id: "player-1".into(),
            email: "player@example.test".into(),
            first_name: "Ada".into(),
            last_name: "Player".into(),
            phone: String::new(),
            ip: "203.0.113.7".into(),
            billing: None,
            shipping: None,
        },
        card: None,
        language: "en".into(),
        return_url: "http://127.0.0.1:8080/v1/return/testpay".into(),
        notify_url: "http://127.0.0.1:8080/v1/callbacks/testpay".into(),
        expires_at: NOW_MS / 1000 + 900,
        started_at: NOW_MS / 1000,
    }
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The plugins kept byte for byte from contract `version` (`tests/plugins-v<version>/`).
pub fn kept_plugin(version: &str, name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/plugins-v{version}"))
        .join(name)
}

/// Checks every kept plugin of `version` against the digest its README gives; returns how many.
pub fn check_kept_digests(version: &str) -> usize {
    use sha2::{Digest, Sha256};
    let readme = std::fs::read_to_string(kept_plugin(version, "README.md")).unwrap();
    let mut checked = 0;
    for row in readme.lines().filter(|l| l.contains(".wasm |")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let (file, digest) = (cells[1], cells[2]);
        let bytes = std::fs::read(kept_plugin(version, file)).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&bytes)), digest, "{file}");
        checked += 1;
    }
    checked
}
