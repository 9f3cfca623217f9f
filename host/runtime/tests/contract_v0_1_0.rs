//! Plugins built for contract 0.1.0, kept byte for byte in `plugins-v0.1.0/`, load beside the
//! newest ones and answer in the newest types. (`cargo xtask test` also runs the channels' own
//! tests against them.)

mod common;

use std::path::PathBuf;

use coffer_plugin_runtime::contract::*;
use coffer_plugin_runtime::{CONTRACT_VERSION, SecretCard};
use common::*;

fn kept(name: &str) -> PathBuf {
    kept_plugin("0.1.0", name)
}

/// The kept 0.1.0 TestPay, installed as the channel's plugin beside the newest fixtures.
async fn with_old_testpay() -> TestRegistry {
    let world = TestRegistry::with(&["hostile.wasm"]).await;
    world.write(
        "testpay.wasm",
        &std::fs::read(kept("testpay.wasm")).unwrap(),
    );
    let report = world.registry.reload().await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    world
}

#[test]
fn the_kept_plugins_are_the_released_bytes() {
    assert_eq!(
        check_kept_digests("0.1.0"),
        4,
        "alipay, carespay, testpay and wechatpay"
    );
}

#[tokio::test]
async fn a_0_1_0_plugin_loads_beside_newer_ones_and_says_which_contract_it_speaks() {
    let world = with_old_testpay().await;
    let contract = |id: &str| {
        world
            .registry
            .statuses()
            .into_iter()
            .find(|s| s.channel == id)
            .map(|s| s.contract_version)
    };
    assert_eq!(contract("testpay").as_deref(), Some("0.1.0"));
    assert_eq!(contract("hostile").as_deref(), Some(CONTRACT_VERSION));
}

#[tokio::test]
async fn a_0_1_0_plugin_is_given_the_card_and_answers_in_the_newest_types() {
    let world = with_old_testpay().await;
    let channel = world.registry.get("testpay").unwrap();
    let request = PaymentRequest {
        flow: CheckoutFlow::DirectCard,
        method: "card".into(),
        ..payment_request("ORD-OLD-1", "100 Gems")
    };
    let card = SecretCard::new("4242424242424242", 12, 2031, "123", "Ada Lovelace");
    let PaymentStart::Call(call) = channel.create_payment(&request, Some(&card)).await.unwrap()
    else {
        panic!("TestPay sends card payments to its API");
    };
    let body: serde_json::Value = serde_json::from_slice(&call.body).unwrap();
    assert_eq!(body["card"]["number"], "4242424242424242");
    assert_eq!(body["order_no"], "ORD-OLD-1");

    let csv = "type,order_no,txn_id,amount,currency,fee,time,status\n\
               payment,ORD-OLD-1,TP-9,19.99,USD,0.58,1795505400,paid\n\
               refund,ORD-OLD-1,TP-9,-5.00,USD,,1795509000,refunded\n";
    let lines = channel.parse_statement(csv.as_bytes()).await.unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        (
            lines[1].kind,
            lines[1].amount.clone(),
            lines[1].refund_no.clone()
        ),
        (StatementEntryKind::Refund, usd(-500), None),
        "0.1.0 has no refund numbers on statement lines"
    );
    let quote = channel
        .route_score(&RouteContext {
            amount: usd(1999),
            method: "card".into(),
            flow: CheckoutFlow::DirectCard,
            country: "US".into(),
            card_bin: "424242".into(),
        })
        .await
        .unwrap();
    assert!(quote.is_some(), "TestPay carries USD cards");
}
