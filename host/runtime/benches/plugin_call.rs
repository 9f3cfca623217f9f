//! Plugin call latency on a fresh sandboxed instance, and plugin load times.
//!
//! Run with `cargo xtask bench`. Prints p50/p99 of:
//! - `create-payment` on TestPay: JSON body, HMAC-SHA256 signature through a sealed key, i.e. a
//!   sign-a-request sized call; every call gets a fresh store and instance;
//! - `route-score`: the same fresh instance with almost no work, to show the fixed cost;
//! - RSA-2048 signatures on one core, with `ring` (used) and the `rsa` crate (used before);
//! - Alipay `create-payment` (QR precreate): RSA2 signing with a 2048-bit sealed key, to show
//!   what a real channel's signature costs on top;
//! - a notification signed the App Store's way (`x5c` chain of three, P-384 root and
//!   intermediate, ES256 leaf) verified through `verify-with-chain` (the chain-probe fixture);
//!
//! and the time to load a plugin cold (compile) and from the artifact cache.
//!
//! Budget (DESIGN.md): p50 <= 15 us, p99 <= 50 us on the 2-core dev machine.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_plugin_runtime::contract::*;
use coffer_plugin_runtime::{
    ArtifactCache, ChannelConfig, ChannelConfigs, Endpoint, KeyRing, Limits, PluginEngine,
    Registry, RsaSigner, SealedKey,
};

const WARMUP_CALLS: usize = 2_000;
const MEASURED_CALLS: usize = 50_000;
const LOAD_ROUNDS: usize = 5;
const RSA_CALLS: usize = 2_000;
const FIRST_CHAIN_CALLS: usize = 20;

fn fixtures_dir() -> PathBuf {
    std::env::var_os("COFFER_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/wasm-fixtures"))
}

fn configs() -> ChannelConfigs {
    let mut keys = KeyRing::default();
    keys.insert("api-secret", SealedKey::Secret(vec![7u8; 32].into()));
    let mut configs = ChannelConfigs::default();
    configs.insert(
        "testpay",
        ChannelConfig {
            settings: [("merchant-id".to_owned(), "M-BENCH".to_owned())].into(),
            endpoints: [(
                "api".to_owned(),
                Endpoint::parse("https://api.testpay.example/v1").unwrap(),
            )]
            .into(),
            keys,
        },
    );
    configs
}

fn request(n: usize) -> PaymentRequest {
    PaymentRequest {
        order_no: format!("ORD-20261124-{n:08}"),
        amount: Money {
            minor: 1999,
            currency: "USD".into(),
        },
        method: "testpay".into(),
        flow: CheckoutFlow::Redirect,
        subject: "100 Gems".into(),
        description: "A pouch of gems for the spring event".into(),
        customer: Customer {
            id: "player-42".into(),
            email: "player42@example.test".into(),
            first_name: "Ada".into(),
            last_name: "Player".into(),
            phone: String::new(),
            ip: "203.0.113.7".into(),
            billing: None,
            shipping: None,
        },
        card: None,
        language: "en".into(),
        return_url: "https://pay.studio.example/v1/return/testpay".into(),
        notify_url: "https://pay.studio.example/v1/callbacks/testpay".into(),
        expires_at: 1_795_506_300,
        started_at: 1_795_505_400,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index]
}

fn report(name: &str, mut samples: Vec<Duration>, wall: Duration) {
    samples.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{name:<28} n={:<6} p50={:>7.1}us p90={:>7.1}us p99={:>7.1}us p99.9={:>7.1}us max={:>8.1}us  {:>8.0} calls/s",
        samples.len(),
        us(percentile(&samples, 0.50)),
        us(percentile(&samples, 0.90)),
        us(percentile(&samples, 0.99)),
        us(percentile(&samples, 0.999)),
        us(*samples.last().unwrap()),
        samples.len() as f64 / wall.as_secs_f64(),
    );
}

async fn load_times(plugin: &Path) {
    let mut cold = Vec::new();
    let mut cached = Vec::new();
    for _ in 0..LOAD_ROUNDS {
        let plugins = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        std::fs::copy(plugin, plugins.path().join("testpay.wasm")).unwrap();
        for samples in [&mut cold, &mut cached] {
            let engine = PluginEngine::new(Limits::default()).unwrap();
            let registry = Registry::new(
                engine,
                plugins.path(),
                ArtifactCache::new(Some(cache.path().to_owned())),
                configs(),
            );
            let started = Instant::now();
            let report = registry.reload().await;
            samples.push(started.elapsed());
            assert_eq!(report.loaded.len(), 1, "{report:?}");
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort_unstable();
        v[v.len() / 2].as_secs_f64() * 1e3
    };
    let size_kib = std::fs::metadata(plugin).unwrap().len() as f64 / 1024.0;
    println!(
        "load testpay.wasm ({size_kib:.0} KiB): cold compile {:.1} ms, from cache {:.1} ms (median of {LOAD_ROUNDS})",
        median(&mut cold),
        median(&mut cached)
    );
}

async fn call_latency() {
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixtures_dir().join("testpay.wasm"),
        plugins.path().join("testpay.wasm"),
    )
    .unwrap();
    let engine = PluginEngine::new(Limits::default()).unwrap();
    let registry = Arc::new(Registry::new(
        engine,
        plugins.path(),
        ArtifactCache::default(),
        configs(),
    ));
    registry.reload().await;
    let channel = registry.get("testpay").expect("testpay loaded");

    let route = RouteContext {
        amount: Money {
            minor: 1999,
            currency: "USD".into(),
        },
        method: "card".into(),
        flow: CheckoutFlow::DirectCard,
        country: "US".into(),
        card_bin: String::new(),
    };
    for n in 0..WARMUP_CALLS {
        channel.create_payment(&request(n), None).await.unwrap();
        channel.route_score(&route).await.unwrap();
    }

    let requests: Vec<_> = (0..MEASURED_CALLS).map(request).collect();
    let mut samples = Vec::with_capacity(MEASURED_CALLS);
    let wall = Instant::now();
    for r in &requests {
        let started = Instant::now();
        let start = channel.create_payment(r, None).await.unwrap();
        samples.push(started.elapsed());
        std::hint::black_box(start);
    }
    report("create-payment (HMAC-signed)", samples, wall.elapsed());

    let mut samples = Vec::with_capacity(MEASURED_CALLS);
    let wall = Instant::now();
    for _ in 0..MEASURED_CALLS {
        let started = Instant::now();
        let quote = channel.route_score(&route).await.unwrap();
        samples.push(started.elapsed());
        std::hint::black_box(quote);
    }
    report("route-score (fixed cost)", samples, wall.elapsed());
}

/// RSA-2048 PKCS#1 v1.5 SHA-256 signatures on one core, with `ring` (what Coffer uses) and
/// with the pure-Rust `rsa` crate (what it used before).
fn rsa_signatures(key: &rsa::PrivateKey) {
    let message = b"app_id=2021000000000001&biz_content={\"out_trade_no\":\"ORD-1\"}";
    for (name, signer) in [
        ("RSA-2048 sign, ring", RsaSigner::new(key.clone())),
        ("RSA-2048 sign, rsa crate", RsaSigner::portable(key.clone())),
    ] {
        let mut samples = Vec::with_capacity(RSA_CALLS);
        let wall = Instant::now();
        for _ in 0..RSA_CALLS {
            let started = Instant::now();
            std::hint::black_box(signer.sign_sha256(message).unwrap());
            samples.push(started.elapsed());
        }
        report(name, samples, wall.elapsed());
    }
}

async fn rsa_signed_call(key: rsa::PrivateKey) {
    let alipay = fixtures_dir().join("alipay.wasm");
    if !alipay.is_file() {
        println!("alipay.wasm not built; skipping the RSA-signed call");
        return;
    }
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(&alipay, plugins.path().join("alipay.wasm")).unwrap();
    let mut keys = KeyRing::default();
    keys.insert(
        "app-private-key",
        SealedKey::RsaPrivate(Box::new(RsaSigner::new(key))),
    );
    let mut configs = ChannelConfigs::default();
    configs.insert(
        "alipay",
        ChannelConfig {
            settings: [("app-id".to_owned(), "2021000000000001".to_owned())].into(),
            endpoints: [(
                "gateway".to_owned(),
                Endpoint::parse("https://openapi.alipay.example/gateway.do").unwrap(),
            )]
            .into(),
            keys,
        },
    );
    let engine = PluginEngine::new(Limits::default()).unwrap();
    let registry = Registry::new(engine, plugins.path(), ArtifactCache::default(), configs);
    registry.reload().await;
    let channel = registry.get("alipay").expect("alipay loaded");
    let mut samples = Vec::with_capacity(RSA_CALLS);
    let wall = Instant::now();
    for n in 0..RSA_CALLS {
        let mut r = request(n);
        r.amount.currency = "CNY".into();
        r.flow = CheckoutFlow::QrCode;
        let started = Instant::now();
        let start = channel.create_payment(&r, None).await.unwrap();
        samples.push(started.elapsed());
        std::hint::black_box(start);
    }
    report("alipay create-payment (RSA2)", samples, wall.elapsed());
}

/// The test chain's files (host/runtime/tests/data/chain), as DER.
fn chain_der(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/chain")
        .join(name);
    let text = std::fs::read(path).unwrap();
    x509_parser::pem::parse_x509_pem(&text).unwrap().1.contents
}

async fn chain_verified_call() {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

    let probe = fixtures_dir().join("chain-probe.wasm");
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(&probe, plugins.path().join("chain-probe.wasm")).unwrap();
    let sources = std::collections::BTreeMap::from([(
        "root".to_owned(),
        coffer_plugin_runtime::KeySource {
            file: Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/chain/root.pem"),
            format: coffer_plugin_runtime::KeyFormat::Pem,
        },
    )]);
    let mut configs = ChannelConfigs::default();
    configs.insert(
        "chain-probe",
        ChannelConfig {
            keys: KeyRing::load(&sources).unwrap(),
            ..Default::default()
        },
    );
    let registry = |configs| {
        let engine = PluginEngine::new(Limits::default()).unwrap();
        Registry::new(engine, plugins.path(), ArtifactCache::default(), configs)
    };
    let rng = ring::rand::SystemRandom::new();
    let leaf = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &chain_der("leaf-private.pem"),
        &rng,
    )
    .unwrap();
    let signature = leaf.sign(&rng, b"ORD-1").unwrap();
    let x5c: Vec<String> = ["leaf.pem", "intermediate.pem", "root.pem"]
        .iter()
        .map(|name| STANDARD.encode(chain_der(name)))
        .collect();
    let body = serde_json::json!({
        "x5c": x5c, "payload": "ORD-1", "signature": STANDARD.encode(signature.as_ref()),
        "signed_at": 1_811_808_000,
    });
    let request = InboundRequest {
        kind: InboundKind::Notify,
        method: HttpMethod::Post,
        path: "/v1/callbacks/chain-probe".into(),
        query: String::new(),
        headers: vec![],
        body: serde_json::to_vec(&body).unwrap(),
    };
    // The first notification of a chain verifies the chain; later ones remember it. A fresh
    // engine each round forgets it.
    let mut first = Vec::with_capacity(FIRST_CHAIN_CALLS);
    let mut busy = Duration::ZERO;
    for _ in 0..FIRST_CHAIN_CALLS {
        let fresh = registry(configs.clone());
        fresh.reload().await;
        let channel = fresh.get("chain-probe").expect("chain-probe loaded");
        let started = Instant::now();
        let outcome = channel.parse_callback(&request).await.unwrap();
        first.push(started.elapsed());
        busy += started.elapsed();
        assert!(matches!(outcome.verdict, CallbackVerdict::Verified(_)));
    }
    report("x5c chain + ES256, 1st", first, busy);
    let registry = registry(configs);
    registry.reload().await;
    let channel = registry.get("chain-probe").expect("chain-probe loaded");
    let mut samples = Vec::with_capacity(RSA_CALLS);
    let wall = Instant::now();
    for _ in 0..RSA_CALLS {
        let started = Instant::now();
        let outcome = channel.parse_callback(&request).await.unwrap();
        samples.push(started.elapsed());
        assert!(matches!(outcome.verdict, CallbackVerdict::Verified(_)));
    }
    report("x5c chain + ES256, later", samples, wall.elapsed());
}

fn main() {
    let plugin = fixtures_dir().join("testpay.wasm");
    assert!(
        plugin.is_file(),
        "{} missing: run `cargo xtask bench`",
        plugin.display()
    );
    // One thread drives the calls, as a request handler would; the epoch ticker has its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        load_times(&plugin).await;
        call_latency().await;
        let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048).unwrap();
        rsa_signatures(&key);
        rsa_signed_call(key).await;
        chain_verified_call().await;
    });
}
