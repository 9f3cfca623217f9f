//! The optional Redis Stream of events (Redis on 127.0.0.1:6379, or `COFFER_TEST_REDIS`).

use crate::shop::{Backend, Shop};

both_backends!(paid_orders_are_published_to_the_game_stream_once);

fn redis_url() -> String {
    std::env::var("COFFER_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn paid_orders_are_published_to_the_game_stream_once(backend: Backend) {
    let prefix = format!("coffer-test:{}", coffer::store::new_id(""));
    let shop = Shop::start_with(backend, |c| {
        c.stream.redis_url = redis_url();
        c.stream.key_prefix = prefix.clone();
    })
    .await;
    shop.add_gems().await;
    let player = shop.add_player("ada").await;
    let order_no = shop.paid_card_order(&player, "stream-1").await;
    let client = redis::Client::open(redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("{prefix}:star-knights");
    let mut entries: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for _ in 0..200 {
        entries = redis::cmd("XRANGE")
            .arg(&key)
            .arg("-")
            .arg("+")
            .query_async(&mut redis)
            .await
            .unwrap();
        if !entries.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let again: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(&key)
        .arg("-")
        .arg("+")
        .query_async(&mut redis)
        .await
        .unwrap();
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "published once: {again:?}");
    let fields: std::collections::HashMap<_, _> = entries[0].1.iter().cloned().collect();
    assert_eq!(fields["type"], "order.paid");
    assert!(fields["event_id"].starts_with("ev_"));
    let payload: serde_json::Value = serde_json::from_str(&fields["payload"]).unwrap();
    assert_eq!(payload["order"]["order_no"], order_no.as_str());
    shop.stop().await;
}
