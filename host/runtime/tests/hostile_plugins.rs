//! A plugin that attacks its sandbox fails only its own call, with an error that says what it
//! did, and the very next call on the same plugin works.

mod common;

use std::sync::Arc;
use std::time::Duration;

use coffer_plugin_runtime::contract::*;
use coffer_plugin_runtime::{Channel, Limits, PluginError};
use common::*;

async fn hostile() -> (TestRegistry, Arc<Channel>) {
    let world = TestRegistry::with(&["hostile.wasm", "testpay.wasm"]).await;
    let channel = world
        .registry
        .get("hostile")
        .expect("hostile fixture loaded");
    (world, channel)
}

/// Runs one attack, then proves the plugin still serves a well-behaved call.
async fn attack(subject: &str) -> PluginError {
    let (_world, channel) = hostile().await;
    let error = channel
        .create_payment(&payment_request("ORD-ATTACK", subject), None)
        .await
        .expect_err("the attack must fail");
    let next = channel
        .create_payment(&payment_request("ORD-NEXT", "behave"), None)
        .await
        .expect("a well-behaved call right after the attack works");
    let PaymentStart::Call(request) = next else {
        panic!("expected a request, got {next:?}");
    };
    assert_eq!(request.url, "http://127.0.0.1:9/hostile/ok");
    error
}

#[tokio::test]
async fn endless_loop_is_stopped_by_the_time_budget() {
    assert_eq!(
        attack("loop").await,
        PluginError::Timeout { budget_ms: 250 }
    );
}

#[tokio::test]
async fn sleeping_in_a_host_call_is_stopped_by_the_time_budget() {
    // The plugin sleeps 30 s; the bound here only keeps a regression from hanging the suite.
    let error = tokio::time::timeout(Duration::from_secs(10), attack("sleep"))
        .await
        .expect("the call ends at its budget, not when the plugin wakes up");
    assert_eq!(error, PluginError::Timeout { budget_ms: 250 });
}

#[tokio::test]
async fn memory_bomb_hits_the_memory_cap() {
    let limit_bytes = test_limits().memory_bytes;
    assert_eq!(
        attack("bomb").await,
        PluginError::MemoryExceeded { limit_bytes }
    );
}

#[tokio::test]
async fn panic_is_reported_as_a_trap() {
    let error = attack("panic").await;
    assert!(
        matches!(&error, PluginError::Trap { message } if message.contains("unreachable")),
        "{error:?}"
    );
}

#[tokio::test]
async fn runaway_recursion_hits_the_stack_cap() {
    assert_eq!(attack("recurse").await, PluginError::StackOverflow);
}

#[tokio::test]
async fn oversized_answer_is_refused() {
    let error = attack("oversize").await;
    assert!(
        matches!(error, PluginError::OutputTooLarge { size_bytes, limit_bytes }
            if size_bytes > limit_bytes && limit_bytes == test_limits().output_bytes),
        "{error:?}"
    );
}

#[tokio::test]
async fn request_to_a_host_off_the_allow_list_is_denied() {
    assert_eq!(
        attack("egress").await,
        PluginError::EgressDenied {
            url: "https://collector.invalid/steal".into()
        }
    );
}

#[tokio::test]
async fn another_channels_key_is_denied() {
    assert_eq!(
        attack("steal-key").await,
        PluginError::KeyDenied {
            channel: "hostile".into(),
            key: "api-secret".into()
        }
    );
}

#[tokio::test]
async fn answer_about_another_order_is_a_contract_violation() {
    let (_world, channel) = hostile().await;
    let context = PaymentContext {
        order_no: "ORD-1".into(),
        amount: usd(100),
        method: "card".into(),
        flow: CheckoutFlow::DirectCard,
        channel_txn_id: None,
    };
    let response = HttpResponse {
        status: 200,
        headers: vec![],
        body: vec![],
    };
    let error = channel
        .parse_payment_response(&context, &response)
        .await
        .unwrap_err();
    assert!(
        matches!(error, PluginError::ContractViolation(_)),
        "{error:?}"
    );
}

#[tokio::test]
async fn claiming_a_browser_return_is_verified_is_a_contract_violation() {
    let (_world, channel) = hostile().await;
    let request = InboundRequest {
        kind: InboundKind::BrowserReturn,
        method: HttpMethod::Get,
        path: "/v1/return/hostile".into(),
        query: "order_no=ORD-1&status=paid".into(),
        headers: vec![],
        body: b"ORD-1".to_vec(),
    };
    let error = channel.parse_callback(&request).await.unwrap_err();
    assert!(
        matches!(error, PluginError::ContractViolation(_)),
        "{error:?}"
    );
}

#[tokio::test]
async fn route_score_out_of_range_is_a_contract_violation() {
    let (_world, channel) = hostile().await;
    let context = RouteContext {
        amount: usd(100),
        method: "card".into(),
        flow: CheckoutFlow::DirectCard,
        country: "US".into(),
        card_bin: String::new(),
    };
    let error = channel.route_score(&context).await.unwrap_err();
    assert!(
        matches!(error, PluginError::ContractViolation(_)),
        "{error:?}"
    );
}

#[tokio::test]
async fn other_channels_keep_serving_while_a_plugin_loops() {
    // A long budget, so "still looping" holds however slow the machine is.
    let limits = Limits {
        call_timeout: Duration::from_secs(3),
        ..test_limits()
    };
    let world = TestRegistry::with_limits(&["hostile.wasm", "testpay.wasm"], limits).await;
    let hostile = world.registry.get("hostile").unwrap();
    let testpay = world.registry.get("testpay").unwrap();
    let looping = tokio::spawn(async move {
        hostile
            .create_payment(&payment_request("ORD-LOOP", "loop"), None)
            .await
    });
    // The looping call yields at every epoch tick, so this call is served meanwhile.
    testpay
        .create_payment(&payment_request("ORD-OK", "100 Gems"), None)
        .await
        .expect("testpay works while hostile loops");
    assert!(
        !looping.is_finished(),
        "the loop is still running when testpay answered"
    );
    assert!(matches!(
        looping.await.unwrap(),
        Err(PluginError::Timeout { .. })
    ));
}

#[tokio::test]
async fn plugin_built_for_another_contract_version_is_refused() {
    let world = TestRegistry::with(&["testpay.wasm"]).await;
    world.install("wrong-contract.wasm", "wrong-contract.wasm");
    let report = world.registry.reload().await;
    assert!(report.loaded.is_empty());
    let failure = &report.failed[0];
    assert!(failure.file.ends_with("wrong-contract.wasm"));
    assert!(
        failure.error.contains("built for contract 0.9.0")
            && failure.error.contains("versions 0.3.0, 0.2.0, 0.1.0"),
        "{}",
        failure.error
    );
    assert!(world.registry.get("testpay").is_some());
    assert_eq!(world.registry.failures().await.len(), 1);
}
