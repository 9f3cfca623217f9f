//! Swapping plugin versions while calls run: nothing fails, new calls see the new version, a
//! broken file never replaces a working plugin.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use coffer_plugin_runtime::contract::PaymentStart;
use coffer_plugin_runtime::{ArtifactCache, DirectoryWatcher, Registry};
use common::*;

/// The version that built a request, from the User-Agent TestPay sets.
async fn version_serving(registry: &Registry, order_no: &str) -> String {
    let channel = registry.get("testpay").expect("testpay is loaded");
    let start = channel
        .create_payment(&payment_request(order_no, "100 Gems"), None)
        .await
        .expect("call succeeds");
    let PaymentStart::Call(request) = start else {
        panic!("expected a request")
    };
    header(&request.headers, "user-agent")
        .unwrap()
        .trim_start_matches("coffer-testpay/")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_version_swaps_in_under_load_without_a_failed_call() {
    let world = TestRegistry::with(&["testpay.wasm"]).await;
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for worker in 0..8 {
        let (registry, stop, calls) = (world.registry.clone(), stop.clone(), calls.clone());
        workers.push(tokio::spawn(async move {
            let mut versions = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                // Any failure panics this task, which the test reports below.
                versions.push(version_serving(&registry, &format!("W{worker}-{n}")).await);
                calls.fetch_add(1, Ordering::SeqCst);
            }
            versions
        }));
    }

    tokio::time::sleep(Duration::from_millis(200)).await;
    let before_swap = calls.load(Ordering::SeqCst);
    world.install("testpay-v2.wasm", "testpay.wasm");
    let report = world.registry.reload().await;
    assert_eq!(report.loaded, [("testpay".to_owned(), "2.0.0".to_owned())]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);

    let mut last_versions = Vec::new();
    for worker in workers {
        let versions = worker.await.expect("no call failed during the swap");
        last_versions.push(versions.last().cloned().unwrap());
        // Each worker saw 1.0.0 then 2.0.0, never back.
        let first_new = versions.iter().position(|v| v == "2.0.0");
        if let Some(i) = first_new {
            assert!(versions[i..].iter().all(|v| v == "2.0.0"), "{versions:?}");
        }
    }
    assert!(before_swap > 0 && calls.load(Ordering::SeqCst) > before_swap);
    assert!(
        last_versions.iter().all(|v| v == "2.0.0"),
        "{last_versions:?}"
    );
    assert_eq!(version_serving(&world.registry, "AFTER").await, "2.0.0");
}

#[tokio::test]
async fn call_started_on_the_old_version_finishes_on_it() {
    let world = TestRegistry::with(&["testpay.wasm"]).await;
    let old = world.registry.get("testpay").unwrap();
    world.install("testpay-v2.wasm", "testpay.wasm");
    world.registry.reload().await;
    // The Arc held by an in-flight operation still runs 1.0.0.
    assert_eq!(old.info().version, "1.0.0");
    assert!(
        old.create_payment(&payment_request("ORD-1", "x"), None)
            .await
            .is_ok()
    );
    assert_eq!(
        world.registry.get("testpay").unwrap().info().version,
        "2.0.0"
    );
}

#[tokio::test]
async fn corrupt_file_leaves_the_old_version_serving_and_is_reported() {
    let world = TestRegistry::with(&["testpay.wasm"]).await;
    let good_sha = world.registry.get("testpay").unwrap().sha256().to_owned();
    world.write("testpay.wasm", b"\0asm this is not a component");
    let report = world.registry.reload().await;
    assert!(report.loaded.is_empty());
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].still_serving.as_deref(), Some("testpay"));
    assert!(
        report.failed[0]
            .error
            .contains("not a valid WebAssembly component")
    );
    assert_eq!(world.registry.get("testpay").unwrap().sha256(), good_sha);
    assert_eq!(version_serving(&world.registry, "ORD-1").await, "1.0.0");
    assert_eq!(world.registry.failures().await.len(), 1);

    // Fixing the file clears the failure.
    world.install("testpay-v2.wasm", "testpay.wasm");
    world.registry.reload().await;
    assert!(world.registry.failures().await.is_empty());
    assert_eq!(version_serving(&world.registry, "ORD-2").await, "2.0.0");
}

#[tokio::test]
async fn truncated_file_never_replaces_a_working_plugin() {
    let world = TestRegistry::with(&["testpay.wasm"]).await;
    let bytes = std::fs::read(fixture("testpay-v2.wasm")).unwrap();
    world.write("testpay.wasm", &bytes[..bytes.len() / 2]);
    let report = world.registry.reload().await;
    assert_eq!(report.failed.len(), 1);
    assert_eq!(version_serving(&world.registry, "ORD-1").await, "1.0.0");
}

#[tokio::test]
async fn plugin_claiming_a_channel_under_another_file_name_is_refused() {
    // An impostor file claiming "testpay" would otherwise get testpay's keys and endpoints.
    let world = TestRegistry::with(&["testpay.wasm"]).await;
    world.install("testpay-v2.wasm", "aaa-impostor.wasm");
    let report = world.registry.reload().await;
    assert_eq!(report.failed.len(), 1);
    assert!(
        report.failed[0]
            .error
            .contains("must be named testpay.wasm"),
        "{:?}",
        report.failed
    );
    assert_eq!(version_serving(&world.registry, "ORD-1").await, "1.0.0");
}

#[tokio::test]
async fn removing_the_file_unloads_the_channel() {
    let world = TestRegistry::with(&["testpay.wasm", "hostile.wasm"]).await;
    std::fs::remove_file(world.dir.path().join("testpay.wasm")).unwrap();
    let report = world.registry.reload().await;
    assert_eq!(report.removed, ["testpay"]);
    assert!(world.registry.get("testpay").is_none());
    assert!(world.registry.get("hostile").is_some());
}

#[tokio::test]
async fn unchanged_files_are_not_reloaded() {
    let world = TestRegistry::with(&["testpay.wasm", "hostile.wasm"]).await;
    let before = world.registry.get("testpay").unwrap();
    let report = world.registry.reload().await;
    assert_eq!(report.unchanged, 2);
    assert!(report.loaded.is_empty());
    assert!(Arc::ptr_eq(
        &before,
        &world.registry.get("testpay").unwrap()
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_loads_a_new_file_dropped_into_the_directory() {
    let world = TestRegistry::with(&["testpay.wasm"]).await;
    let _watcher = DirectoryWatcher::spawn(world.registry.clone()).unwrap();
    world.install("testpay-v2.wasm", "testpay.wasm");
    // Bounded wait for the debounced reload; no timing is asserted.
    let mut swapped = false;
    for _ in 0..100 {
        if world.registry.get("testpay").unwrap().info().version == "2.0.0" {
            swapped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        swapped,
        "the watcher did not pick up the new version within 10 s"
    );
    // Reloading reads the files; reads must not trigger further reloads.
    let reloads = world.registry.reloads();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        world.registry.reloads(),
        reloads,
        "the watcher keeps reloading on its own reads"
    );
}

#[tokio::test]
async fn restart_loads_compiled_artifact_from_the_cache() {
    let plugins = tempfile::tempdir().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture("testpay.wasm"), plugins.path().join("testpay.wasm")).unwrap();
    let start = || {
        let (engine, _clock) = engine_with_clock();
        Registry::new(
            engine,
            plugins.path(),
            ArtifactCache::new(Some(cache_dir.path().to_owned())),
            configs(),
        )
    };

    let first = start();
    first.reload().await;
    assert!(!first.get("testpay").unwrap().status().from_cache);
    let cached: Vec<_> = std::fs::read_dir(cache_dir.path()).unwrap().collect();
    assert_eq!(cached.len(), 1);

    let second = start();
    second.reload().await;
    let status = second.get("testpay").unwrap().status();
    assert!(status.from_cache);
    assert_eq!(version_serving(&second, "ORD-1").await, "1.0.0");

    // A damaged cache entry is discarded and the plugin recompiled, not trusted.
    let entry = cached[0].as_ref().unwrap().path();
    std::fs::write(&entry, b"garbage").unwrap();
    let third = start();
    third.reload().await;
    assert!(!third.get("testpay").unwrap().status().from_cache);
}
