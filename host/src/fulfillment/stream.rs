//! The optional Redis Stream of events. A publisher loop claims each outbox event (marks it
//! streamed) and adds it, in the order recorded, to `<prefix>:<game>`; a failed XADD gives the
//! claim back. Several instances never add the same event, but a crash between the claim and
//! the XADD leaves that event out of the stream: the stream is a convenience beside the POST
//! deliveries, which are the guarantee. Consumers deduplicate by `event_id`, as with POSTs.

use std::time::Duration;

use sqlx::Row;

use crate::config::StreamConfig;
use crate::store::{Backend, Store, now_ms};

/// How long an unreachable Redis is left alone before the next connection attempt.
const REDIS_RETRY_DELAY: Duration = Duration::from_secs(2);

/// How often the outbox is looked at again once every event is published.
const IDLE_POLL_INTERVAL: Duration = Duration::from_millis(200);

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
                        tokio::time::sleep(REDIS_RETRY_DELAY).await;
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
                tokio::time::sleep(IDLE_POLL_INTERVAL).await;
            }
        }
    }

    /// Adds up to 100 unstreamed events; returns how many it looked at.
    pub async fn publish_once(
        &self,
        connection: &mut redis::aio::MultiplexedConnection,
    ) -> Result<usize, PublishError> {
        // Claimed first, all at once, so that several instances do not all add them; the
        // ones not added are given back.
        let claim = (now_ms(), self.store.backend());
        let rows = self
            .store
            .write(claim, |tx, (now, backend)| {
                Box::pin(async move {
                    let lock = match backend {
                        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
                        Backend::Sqlite => "",
                    };
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "UPDATE outbox_events SET streamed_at = $1 WHERE event_id IN \
                         (SELECT event_id FROM outbox_events WHERE streamed_at IS NULL \
                          AND hold_until <= $1 ORDER BY created_at, event_id LIMIT 100 {lock}) \
                         RETURNING event_id, game_id, kind, payload, created_at"
                    )))
                    .bind(*now)
                    .fetch_all(&mut *tx)
                    .await
                })
            })
            .await?;
        let mut events = rows
            .iter()
            .map(|row| {
                Ok::<_, sqlx::Error>((
                    row.try_get::<i64, _>("created_at")?,
                    row.try_get::<String, _>("event_id")?,
                    row.try_get::<String, _>("game_id")?,
                    row.try_get::<String, _>("kind")?,
                    row.try_get::<String, _>("payload")?,
                ))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // In the order they were recorded (RETURNING does not promise one).
        events.sort();
        for (i, (_, event_id, game, kind, payload)) in events.iter().enumerate() {
            let key = format!("{}:{game}", self.config.key_prefix);
            let added: Result<String, redis::RedisError> = redis::cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.config.max_len)
                .arg("*")
                .arg("event_id")
                .arg(event_id)
                .arg("type")
                .arg(kind)
                .arg("payload")
                .arg(payload)
                .query_async(connection)
                .await;
            if let Err(error) = added {
                let not_added: Vec<String> = events[i..].iter().map(|e| e.1.clone()).collect();
                self.store
                    .write(not_added, |tx, not_added| {
                        Box::pin(async move {
                            for event_id in not_added {
                                sqlx::query(
                                    "UPDATE outbox_events SET streamed_at = NULL WHERE event_id = $1",
                                )
                                .bind(event_id.clone())
                                .execute(&mut *tx)
                                .await?;
                            }
                            Ok::<_, sqlx::Error>(())
                        })
                    })
                    .await?;
                return Err(error.into());
            }
        }
        Ok(events.len())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}
