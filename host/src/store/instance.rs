//! This process among the instances sharing the database: registered at start with a
//! heartbeat, so that what a dead instance held can be taken over at once rather than after a
//! timeout. An instance is dead when its row is gone (a process started where it ran, which
//! replaces it) or its heartbeat is older than [`DEAD_AFTER_MS`] (it stopped without coming
//! back).

use std::time::Duration;

use super::{Store, new_id, now_ms};

/// How often an instance says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);

/// A heartbeat older than this means the instance is gone: three missed beats and then some.
pub const DEAD_AFTER_MS: i64 = 20_000;

/// Rows of instances silent for this long are deleted.
const FORGET_AFTER_MS: i64 = 24 * 3600 * 1000;

/// This process's registration.
#[derive(Debug, Clone)]
pub struct Instance {
    id: String,
}

impl Instance {
    /// Registers this process as running at `host_key` (host and listen address), replacing
    /// the registration of the process that ran there before: it is gone, since this one now
    /// holds its address.
    pub async fn register(store: &Store, host_key: &str) -> Result<Self, sqlx::Error> {
        let id = new_id("in_");
        let registration = (id.clone(), host_key.to_owned(), now_ms());
        store
            .write(registration, |tx, (id, host_key, now)| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM instances WHERE host_key = $1")
                        .bind(host_key.clone())
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(
                        "INSERT INTO instances (id, host_key, started_at, heartbeat_at) \
                         VALUES ($1, $2, $3, $3)",
                    )
                    .bind(id.clone())
                    .bind(host_key.clone())
                    .bind(*now)
                    .execute(&mut *tx)
                    .await
                })
            })
            .await?;
        tracing::info!(instance = %id, %host_key, "instance registered");
        Ok(Self { id })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Says this instance is alive, and forgets instances silent for a day.
    pub async fn heartbeat(&self, store: &Store) -> Result<(), sqlx::Error> {
        store
            .write((self.id.clone(), now_ms()), |tx, (id, now)| {
                Box::pin(async move {
                    sqlx::query("UPDATE instances SET heartbeat_at = $1 WHERE id = $2")
                        .bind(*now)
                        .bind(id.clone())
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM instances WHERE heartbeat_at < $1")
                        .bind(*now - FORGET_AFTER_MS)
                        .execute(&mut *tx)
                        .await?;
                    Ok(())
                })
            })
            .await
    }

    /// Beats until the task is dropped.
    pub async fn keep_alive(self, store: Store) {
        let mut every = tokio::time::interval(HEARTBEAT);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if let Err(error) = self.heartbeat(&store).await {
                tracing::warn!(%error, "instance heartbeat failed");
            }
        }
    }
}

/// Whether instance `id` is alive: registered, with a recent heartbeat.
pub async fn is_alive(
    executor: impl sqlx::Executor<'_, Database = sqlx::Any>,
    id: &str,
) -> Result<bool, sqlx::Error> {
    let beat: Option<i64> = sqlx::query_scalar("SELECT heartbeat_at FROM instances WHERE id = $1")
        .bind(id.to_owned())
        .fetch_optional(executor)
        .await?;
    Ok(beat.is_some_and(|at| at >= now_ms() - DEAD_AFTER_MS))
}

/// Where this process runs, for [`Instance::register`]: the host's name and the address the
/// service listens on.
pub fn host_key(listen: std::net::SocketAddr) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}/{listen}")
}
