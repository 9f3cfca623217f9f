//! `verify-with-chain` end to end: a plugin hands the host a notification's certificate chain
//! (the App Store's way, with a test chain in tests/data/chain) and gets a verdict it can trust.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coffer_plugin_runtime::contract::*;
use coffer_plugin_runtime::{
    ChannelConfig, ChannelConfigs, KeyFormat, KeyRing, KeySource, PluginError,
};
use common::*;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

/// 2027-06-01T00:00:00Z: within every test certificate's validity.
const SIGNED_AT: i64 = 1_811_808_000;

fn chain_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/chain")
        .join(name)
}

fn pem_contents(name: &str) -> Vec<u8> {
    let text = std::fs::read(chain_file(name)).unwrap();
    let (_, block) = x509_parser::pem::parse_x509_pem(&text).unwrap();
    block.contents
}

/// The probe's configuration, with the test root as its trust anchor when `with_root`.
fn configs(with_root: bool) -> ChannelConfigs {
    let sources = BTreeMap::from([(
        "root".to_owned(),
        KeySource {
            file: chain_file("root.pem"),
            format: KeyFormat::Pem,
        },
    )]);
    let keys = if with_root {
        KeyRing::load(&sources).unwrap()
    } else {
        KeyRing::default()
    };
    let mut configs = ChannelConfigs::default();
    configs.insert(
        "chain-probe",
        ChannelConfig {
            keys,
            ..Default::default()
        },
    );
    configs
}

/// A notification whose `payload` the leaf's key signs, carrying `chain` as its `x5c`.
fn notification(chain: &[&str], payload: &str, signed_payload: &str) -> InboundRequest {
    let leaf = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        &pem_contents("leaf-private.pem"),
        &SystemRandom::new(),
    )
    .unwrap();
    let signature = leaf
        .sign(&SystemRandom::new(), signed_payload.as_bytes())
        .unwrap();
    let x5c: Vec<String> = chain
        .iter()
        .map(|name| STANDARD.encode(pem_contents(name)))
        .collect();
    let body = serde_json::json!({
        "x5c": x5c,
        "payload": payload,
        "signature": STANDARD.encode(signature.as_ref()),
        "signed_at": SIGNED_AT,
    });
    InboundRequest {
        kind: InboundKind::Notify,
        method: HttpMethod::Post,
        path: "/v1/callbacks/chain-probe".into(),
        query: String::new(),
        headers: vec![],
        body: serde_json::to_vec(&body).unwrap(),
    }
}

const GENUINE: [&str; 3] = ["leaf.pem", "intermediate.pem", "root.pem"];

async fn verdict_of(request: &InboundRequest) -> CallbackVerdict {
    let world = TestRegistry::with_configs(&["chain-probe.wasm"], configs(true)).await;
    let channel = world.registry.get("chain-probe").unwrap();
    channel.parse_callback(request).await.unwrap().verdict
}

#[tokio::test]
async fn a_notification_signed_under_the_configured_root_is_verified() {
    let verdict = verdict_of(&notification(&GENUINE, "ORD-77", "ORD-77")).await;
    let CallbackVerdict::Verified(CallbackEvent::Payment(update)) = verdict else {
        panic!("expected a verified payment, got {verdict:?}");
    };
    assert_eq!(
        (update.order_no.as_str(), update.status),
        ("ORD-77", PaymentStatus::Paid)
    );
}

#[tokio::test]
async fn a_tampered_payload_is_rejected() {
    let verdict = verdict_of(&notification(&GENUINE, "ORD-78", "ORD-77")).await;
    assert!(
        matches!(&verdict, CallbackVerdict::Rejected(ChannelError::BadSignature(why)) if why.contains("did not sign")),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn a_chain_to_another_root_is_rejected_as_a_forgery() {
    let rogue = [
        "leaf-under-rogue.pem",
        "rogue-intermediate.pem",
        "rogue-root.pem",
    ];
    let verdict = verdict_of(&notification(&rogue, "ORD-77", "ORD-77")).await;
    assert!(
        matches!(&verdict, CallbackVerdict::Rejected(ChannelError::BadSignature(why)) if why.contains("not signed by")),
        "{verdict:?}"
    );
    let short = ["leaf.pem", "intermediate.pem"];
    let verdict = verdict_of(&notification(&short, "ORD-77", "ORD-77")).await;
    assert!(
        matches!(&verdict, CallbackVerdict::Rejected(ChannelError::BadSignature(why)) if why.contains("2 certificates")),
        "{verdict:?}"
    );
}

#[tokio::test]
async fn without_a_configured_root_the_call_is_stopped() {
    let world = TestRegistry::with_configs(&["chain-probe.wasm"], configs(false)).await;
    let channel = world.registry.get("chain-probe").unwrap();
    let error = channel
        .parse_callback(&notification(&GENUINE, "ORD-77", "ORD-77"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, PluginError::KeyDenied { key, .. } if key == "root"),
        "{error:?}"
    );
}
