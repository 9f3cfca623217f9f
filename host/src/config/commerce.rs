//! Settings of the commerce areas: database, players, catalog and orders.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://data/coffer.db` (created on first start) or `postgres://user@host/db`.
    /// `DATABASE_URL`, when set, wins over this option.
    pub url: String,
    /// Connections in the pool.
    pub max_connections: u32,
    /// Apply migrations at start. Off when migrations run as a separate step
    /// (`coffer migrate`).
    pub migrate_on_start: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: "sqlite://data/coffer.db".into(),
            max_connections: 8,
            migrate_on_start: true,
        }
    }
}

impl DatabaseConfig {
    /// The URL to connect to: `DATABASE_URL` if set, else the configured one.
    pub fn effective_url(&self) -> String {
        std::env::var("DATABASE_URL")
            .ok()
            .filter(|url| !url.trim().is_empty())
            .unwrap_or_else(|| self.url.clone())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlayersConfig {
    /// How long a login session lasts, in seconds.
    pub session_ttl_s: u64,
    pub password_hash: PasswordHashConfig,
}

impl Default for PlayersConfig {
    fn default() -> Self {
        Self {
            session_ttl_s: 7 * 24 * 3600,
            password_hash: PasswordHashConfig::default(),
        }
    }
}

/// Argon2id cost. The defaults are OWASP's recommendation (19 MiB, 2 passes, 1 lane).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PasswordHashConfig {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for PasswordHashConfig {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CatalogConfig {
    /// How long another instance's catalog change may take to show here, in seconds. Changes
    /// made through this instance show at once.
    pub cache_ttl_s: u64,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self { cache_ttl_s: 30 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrdersConfig {
    /// How long a player has to pay, in seconds; the channel is told the same deadline.
    pub expire_after_s: u64,
    /// How long `GET /v1/orders/{order_no}` may answer from memory, in milliseconds. Changes
    /// made through this instance show at once.
    pub status_cache_ms: u64,
    /// How long an Idempotency-Key and its stored answer are kept, in hours (at least 24).
    pub idempotency_ttl_h: u64,
    /// A request holding an Idempotency-Key that has not finished after this many seconds is
    /// presumed dead (its instance crashed) and a retry may take the key over.
    pub idempotency_lock_s: u64,
    /// How long to wait for a channel's answer when starting a payment, in milliseconds.
    pub channel_timeout_ms: u64,
}

impl Default for OrdersConfig {
    fn default() -> Self {
        Self {
            expire_after_s: 30 * 60,
            status_cache_ms: 1000,
            idempotency_ttl_h: 48,
            idempotency_lock_s: 120,
            channel_timeout_ms: 10_000,
        }
    }
}

/// Delivery of events to game servers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Run the dispatcher in this instance. Several instances may all run it: they claim
    /// events, so none is sent by two at once.
    pub enabled: bool,
    /// How often to look for due events when idle, in milliseconds.
    pub poll_ms: u64,
    /// Events claimed (and sent concurrently) at a time.
    pub batch: u32,
    /// How long a game server has to answer, in milliseconds.
    pub timeout_ms: u64,
    /// First retry delay; each retry doubles it (with jitter), up to `retry_max_ms`.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// After this long without success an event is dead-lettered for an operator, in seconds
    /// (3 days).
    pub give_up_after_s: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_ms: 500,
            batch: 32,
            timeout_ms: 5_000,
            retry_base_ms: 10_000,
            retry_max_ms: 3_600_000,
            give_up_after_s: 3 * 24 * 3600,
        }
    }
}

/// Recovery jobs: lost notifications and expired orders.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Run the jobs in this instance (safe on several at once).
    pub enabled: bool,
    /// How often the jobs run, in seconds.
    pub interval_s: u64,
    /// An attempt unsettled for this long is asked about at the channel (a lost
    /// notification), in seconds.
    pub query_after_s: u64,
    /// And asked again at most this often, in seconds.
    pub query_every_s: u64,
    /// Orders at most this many per run, per job.
    pub batch: u32,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_s: 30,
            query_after_s: 300,
            query_every_s: 300,
            batch: 100,
        }
    }
}

/// App store chores: acknowledging delivered purchases (Google refunds one left unacknowledged
/// for three days) and listing the purchases a store revoked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoresConfig {
    /// Run the chores in this instance (safe on several at once).
    pub enabled: bool,
    /// How often delivered purchases still unacknowledged are acknowledged (a failed one is
    /// tried again the next time), in milliseconds.
    pub acknowledge_every_ms: u64,
    /// How often each store's revoked purchases are listed, in seconds.
    pub revoked_poll_every_s: u64,
    /// How far back each listing looks, in days (Google keeps 30).
    pub revoked_window_days: u32,
    /// Purchases acknowledged per run at most.
    pub batch: u32,
}

impl Default for StoresConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            acknowledge_every_ms: 30_000,
            revoked_poll_every_s: 86_400,
            revoked_window_days: 30,
            batch: 100,
        }
    }
}

/// A Redis Stream of events, for game servers that prefer consuming a queue to receiving POSTs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// `redis://host:6379/0`; empty (the default) = no stream. `REDIS_URL` wins when set.
    pub redis_url: String,
    /// Events go to `<prefix>:<game id>`.
    pub key_prefix: String,
    /// Each stream is trimmed to about this many entries.
    pub max_len: u64,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            redis_url: String::new(),
            key_prefix: "coffer:events".into(),
            max_len: 100_000,
        }
    }
}

impl StreamConfig {
    /// The Redis URL to publish to, if any.
    pub fn effective_url(&self) -> Option<String> {
        std::env::var("REDIS_URL")
            .ok()
            .filter(|u| !u.trim().is_empty())
            .or_else(|| Some(self.redis_url.clone()).filter(|u| !u.trim().is_empty()))
    }
}
