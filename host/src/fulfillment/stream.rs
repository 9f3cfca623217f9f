//! The optional Redis Stream of events. A publisher loop adds each outbox event, in the order
//! recorded, to `<prefix>:<game>` and marks it streamed. At least once: a crash between the
//! XADD and the mark adds it again, so consumers deduplicate by `event_id`, as with POSTs.

use std::time::Duration;

use sqlx::Row;

use crate::config::StreamConfig;
use crate::store::{Store, now_ms};

pub struct StreamPublisher {
    store: Store,
    config: StreamConfig,
    client: redis::Client,
}

impl StreamPublisher {
    pub fn new(store: Store, config: StreamConfig, url: &str) -> Result<Self, redis::RedisError> {
        Ok(Self {
            store,
            config,
            client: redis::Client::open(url)?,
        })
    }

    /// Publishes until the task is dropped; a Redis outage only delays the stream.
    pub async fn run(self) {
        let mut connection = None;
        loop {
            if connection.is_none() {
                match self.client.get_multiplexed_async_connection().await {
                    Ok(c) => connection = Some(c),
                    Err(error) => {
                        tracing::warn!(%error, "cannot reach Redis for the event stream");
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        continue;
                    }
                }
            }
            let published = match self.publish_once(connection.as_mut().unwrap()).await {
                Ok(n) => n,
                Err(error) => {
                    tracing::warn!(%error, "event stream publishing failed");
                    connection = None;
                    0
                }
            };
            if published == 0 {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// Adds up to 100 unstreamed events; returns how many.
    pub async fn publish_once(
        &self,
        connection: &mut redis::aio::MultiplexedConnection,
    ) -> Result<usize, PublishError> {
        let rows = sqlx::query(
            "SELECT event_id, game_id, kind, payload FROM outbox_events \
             WHERE streamed_at IS NULL ORDER BY created_at, event_id LIMIT 100",
        )
        .fetch_all(self.store.pool())
        .await?;
        for row in &rows {
            let event_id: String = row.try_get("event_id")?;
            let game: String = row.try_get("game_id")?;
            let key = format!("{}:{game}", self.config.key_prefix);
            let _: String = redis::cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.config.max_len)
                .arg("*")
                .arg("event_id")
                .arg(&event_id)
                .arg("type")
                .arg(row.try_get::<String, _>("kind")?)
                .arg("payload")
                .arg(row.try_get::<String, _>("payload")?)
                .query_async(connection)
                .await?;
            sqlx::query("UPDATE outbox_events SET streamed_at = $1 WHERE event_id = $2")
                .bind(now_ms())
                .bind(event_id)
                .execute(self.store.writer())
                .await?;
        }
        Ok(rows.len())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}
