//! What the app store calls cost in Coffer, per call, with the real plugins:
//!
//! - App Store: `build-lookup` (a JWT signed ES256 with the sealed in-app purchase key, per
//!   call) and `parse-lookup` of a "Get Transaction Info" answer (its `signedTransactionInfo`
//!   verified: the `x5c` chain of three up to the configured root, ES256, bundle and
//!   environment), the chain verified on a fresh engine (1st) and remembered (later);
//! - Google Play: the access-token exchange as Coffer does it (`build-access-token-request`, a
//!   JWT-bearer grant signed RS256 with the sealed service-account key, and reading the token
//!   endpoint's answer), done once per token lifetime, then a lookup with the kept token
//!   (`build-lookup` and `parse-lookup`), done per purchase.
//!
//! The network round trips to Apple and Google are theirs, not measured here. Run with
//! `cargo xtask bench` (or `cargo bench -p coffer-plugin-runtime --bench store_calls` with
//! `COFFER_FIXTURES_DIR` set).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use coffer_plugin_runtime::contract::*;
use coffer_plugin_runtime::{
    ArtifactCache, ChannelConfig, ChannelConfigs, Endpoint, KeyFormat, KeyRing, KeySource, Limits,
    PluginEngine, Registry,
};
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

const CALLS: usize = 2_000;
const FIRST_CALLS: usize = 20;
/// 2027-06-01T00:00:00Z, in milliseconds: within every test certificate's validity.
const SIGNED_AT_MS: i64 = 1_811_808_000_000;

fn fixtures_dir() -> PathBuf {
    std::env::var_os("COFFER_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/wasm-fixtures"))
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn pem_der(name: &str) -> Vec<u8> {
    let text = std::fs::read(data(name)).unwrap();
    x509_parser::pem::parse_x509_pem(&text).unwrap().1.contents
}

fn report(name: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    let at = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let total: Duration = samples.iter().sum();
    println!(
        "{name:<34} n={:<5} p50={:>8.1}us p90={:>8.1}us p99={:>8.1}us  {:>7.0} calls/s on one core",
        samples.len(),
        us(at(0.50)),
        us(at(0.90)),
        us(at(0.99)),
        samples.len() as f64 / total.as_secs_f64(),
    );
}

fn pem_key(file: &str) -> KeySource {
    KeySource {
        file: data(file),
        format: KeyFormat::Pem,
    }
}

fn config(
    settings: &[(&str, &str)],
    endpoints: &[(&str, &str)],
    keys: &[(&str, KeySource)],
) -> ChannelConfig {
    let keys: BTreeMap<String, KeySource> = keys
        .iter()
        .map(|(name, source)| ((*name).to_owned(), source.clone()))
        .collect();
    ChannelConfig {
        settings: settings
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        endpoints: endpoints
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Endpoint::parse(v).unwrap()))
            .collect(),
        keys: KeyRing::load(&keys).unwrap(),
    }
}

fn configs() -> ChannelConfigs {
    let mut configs = ChannelConfigs::default();
    configs.insert(
        "appstore",
        config(
            &[
                ("issuer-id", "57246542-96fe-1a63-e053-0824d011072a"),
                ("key-id", "BENCHKEY01"),
                ("bundle-id", "com.coffer.bench"),
                ("environment", "Production"),
            ],
            &[("api", "https://api.storekit.itunes.apple.com")],
            &[
                ("api-key", pem_key("test-ec-p256-private.pem")),
                ("apple-root", pem_key("chain/root.pem")),
            ],
        ),
    );
    configs.insert(
        "googleplay",
        config(
            &[
                ("package-name", "com.coffer.bench"),
                (
                    "service-account-email",
                    "bench@coffer.iam.gserviceaccount.com",
                ),
                (
                    "push-audience",
                    "https://coffer.example/v1/callbacks/googleplay",
                ),
                (
                    "push-service-account",
                    "push@coffer.iam.gserviceaccount.com",
                ),
                ("push-key-ids", "none"),
            ],
            &[
                ("api", "https://androidpublisher.googleapis.com"),
                ("oauth", "https://oauth2.googleapis.com"),
            ],
            &[("service-account-key", pem_key("test-rsa-private.pem"))],
        ),
    );
    configs
}

async fn registry(plugins: &Path) -> Registry {
    let engine = PluginEngine::new(Limits::default()).unwrap();
    let registry = Registry::new(engine, plugins, ArtifactCache::default(), configs());
    let report = registry.reload().await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    registry
}

/// A "Get Transaction Info" answer: the transaction signed by the test chain's leaf.
fn transaction_answer(transaction_id: &str) -> HttpResponse {
    let claims = serde_json::json!({
        "transactionId": transaction_id, "originalTransactionId": transaction_id,
        "bundleId": "com.coffer.bench", "productId": "gems100", "purchaseDate": SIGNED_AT_MS,
        "quantity": 1, "type": "Consumable", "signedDate": SIGNED_AT_MS,
        "environment": "Production", "storefront": "USA", "price": 990, "currency": "USD",
    });
    let x5c: Vec<String> = ["chain/leaf.pem", "chain/intermediate.pem", "chain/root.pem"]
        .iter()
        .map(|name| STANDARD.encode(pem_der(name)))
        .collect();
    let header = serde_json::json!({ "alg": "ES256", "x5c": x5c });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let rng = ring::rand::SystemRandom::new();
    let leaf = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &pem_der("chain/leaf-private.pem"),
        &rng,
    )
    .unwrap();
    let signature = leaf.sign(&rng, input.as_bytes()).unwrap();
    let jws = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()));
    HttpResponse {
        status: 200,
        headers: vec![],
        body: serde_json::to_vec(&serde_json::json!({ "signedTransactionInfo": jws })).unwrap(),
    }
}

async fn app_store(plugins: &Path) {
    let proof = StoreProof {
        token: "2000000812345678".into(),
        product_id: String::new(),
    };
    let answer = transaction_answer(&proof.token);
    let mut first = Vec::with_capacity(FIRST_CALLS);
    for _ in 0..FIRST_CALLS {
        let fresh = registry(plugins).await;
        let channel = fresh.get("appstore").unwrap();
        let started = Instant::now();
        let purchase = channel.parse_store_lookup(&proof, &answer).await.unwrap();
        first.push(started.elapsed());
        assert_eq!(purchase.state, StorePurchaseState::Purchased);
    }
    report("App Store verify (chain + ES256), 1st", first);
    let registry = registry(plugins).await;
    let channel = registry.get("appstore").unwrap();
    let (mut built, mut verified) = (Vec::new(), Vec::new());
    for _ in 0..CALLS {
        let started = Instant::now();
        channel.build_store_lookup(&proof).await.unwrap();
        built.push(started.elapsed());
        let started = Instant::now();
        channel.parse_store_lookup(&proof, &answer).await.unwrap();
        verified.push(started.elapsed());
    }
    report("App Store lookup request (JWT ES256)", built);
    report("App Store verify (chain + ES256)", verified);
}

async fn google_play(plugins: &Path) {
    let registry = registry(plugins).await;
    let channel = registry.get("googleplay").unwrap();
    let token_answer = HttpResponse {
        status: 200,
        headers: vec![],
        body: br#"{"access_token":"ya29.bench","expires_in":3599,"token_type":"Bearer"}"#.to_vec(),
    };
    let mut exchanges = Vec::with_capacity(CALLS / 4);
    for _ in 0..CALLS / 4 {
        let started = Instant::now();
        let request = channel.build_access_token_request().await.unwrap();
        assert!(request.is_some());
        channel
            .parse_access_token_response(&token_answer)
            .await
            .unwrap();
        exchanges.push(started.elapsed());
    }
    report("Google token exchange (RS256 grant)", exchanges);
    assert!(channel.access_token().is_some(), "the token is kept");
    let proof = StoreProof {
        token: "bench-purchase-token".into(),
        product_id: "gems_100".into(),
    };
    let purchase = HttpResponse {
        status: 200,
        headers: vec![],
        body: br#"{"purchaseTimeMillis":"1795505400000","purchaseState":0,"orderId":"GPA.1","acknowledgementState":0,"productId":"gems_100","quantity":1}"#.to_vec(),
    };
    let mut lookups = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        channel.build_store_lookup(&proof).await.unwrap();
        channel.parse_store_lookup(&proof, &purchase).await.unwrap();
        lookups.push(started.elapsed());
    }
    report("Google lookup, token kept", lookups);
}

fn main() {
    let fixtures = fixtures_dir();
    let plugins = tempfile::tempdir().unwrap();
    for name in ["appstore.wasm", "googleplay.wasm"] {
        let from = fixtures.join(name);
        assert!(
            from.is_file(),
            "{} missing: run `cargo xtask bench`",
            from.display()
        );
        std::fs::copy(&from, plugins.path().join(name)).unwrap();
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        app_store(plugins.path()).await;
        google_play(plugins.path()).await;
    });
}
