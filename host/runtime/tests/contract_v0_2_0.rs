//! Plugins built for contract 0.2.0, kept byte for byte in `plugins-v0.2.0/`, load beside the
//! newest ones, answer in the newest types, and are no app store. (`cargo xtask test` also runs
//! the TestPay and chain tests against them.)

mod common;

use std::path::PathBuf;

use coffer_plugin_runtime::contract::*;
use coffer_plugin_runtime::{CONTRACT_VERSION, PluginError};
use common::*;

fn kept(name: &str) -> PathBuf {
    kept_plugin("0.2.0", name)
}

/// The kept 0.2.0 TestPay and chain probe, installed beside the newest fixtures.
async fn with_kept_plugins() -> TestRegistry {
    let world = TestRegistry::with(&["hostile.wasm"]).await;
    for name in ["testpay.wasm", "chain-probe.wasm"] {
        world.write(name, &std::fs::read(kept(name)).unwrap());
    }
    let report = world.registry.reload().await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    world
}

#[test]
fn the_kept_plugins_are_the_built_bytes() {
    assert_eq!(check_kept_digests("0.2.0"), 2, "chain-probe and testpay");
}

#[tokio::test]
async fn a_0_2_0_plugin_loads_beside_newer_ones_and_says_which_contract_it_speaks() {
    let world = with_kept_plugins().await;
    let contract = |id: &str| {
        world
            .registry
            .statuses()
            .into_iter()
            .find(|s| s.channel == id)
            .map(|s| s.contract_version)
    };
    assert_eq!(contract("testpay").as_deref(), Some("0.2.0"));
    assert_eq!(contract("chain-probe").as_deref(), Some("0.2.0"));
    assert_eq!(contract("hostile").as_deref(), Some(CONTRACT_VERSION));
}

#[tokio::test]
async fn a_0_2_0_plugin_pays_and_parses_in_the_newest_types() {
    let world = with_kept_plugins().await;
    let channel = world.registry.get("testpay").unwrap();
    let request = payment_request("ORD-V2-1", "100 Gems");
    let PaymentStart::Call(call) = channel.create_payment(&request, None).await.unwrap() else {
        panic!("TestPay sends payments to its API");
    };
    assert!(call.url.starts_with(TESTPAY_API), "{}", call.url);
    let csv = "type,order_no,txn_id,amount,currency,fee,time,status\n\
               payment,ORD-V2-1,TP-9,19.99,USD,0.58,1795505400,paid\n";
    let lines = channel.parse_statement(csv.as_bytes()).await.unwrap();
    assert_eq!(lines[0].amount, usd(1999));
}

#[tokio::test]
async fn a_0_2_0_plugin_is_no_app_store_and_is_not_asked_to_be_one() {
    let world = with_kept_plugins().await;
    let channel = world.registry.get("testpay").unwrap();
    let proof = StoreProof {
        token: "2000000000000001".into(),
        product_id: "gems".into(),
    };
    let refused = channel.build_store_lookup(&proof).await.unwrap_err();
    assert!(
        matches!(&refused, PluginError::Channel(ChannelError::Unsupported(why)) if why.contains("0.2.0")),
        "{refused:?}"
    );
    assert_eq!(channel.build_access_token_request().await.ok(), Some(None));
    assert!(channel.needs_no_access_token());
}
