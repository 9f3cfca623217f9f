//! Configuration: built-in safe defaults, then a TOML file, then `COFFER_*` environment
//! variables (`COFFER_SERVER__LISTEN=0.0.0.0:8080`: sections joined by a double underscore).
//! Every option is documented in `examples/coffer.toml`.

mod admin;
mod channels;
mod commerce;
mod legacy;
mod reconcile;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

pub use admin::{AdminConfig, AdminToken, Role, new_token};
pub use channels::{ChannelSection, load_channel_configs};
pub use commerce::{
    CatalogConfig, DatabaseConfig, DeliveryConfig, JobsConfig, OrdersConfig, PasswordHashConfig,
    PlayersConfig, StoresConfig, StreamConfig,
};
pub use legacy::LegacyConfig;
pub use reconcile::ReconcileConfig;

/// The configuration's sections: what `COFFER_<SECTION>__<OPTION>` variables may name.
const SECTIONS: &[&str] = &[
    "server",
    "log",
    "plugins",
    "admin",
    "database",
    "players",
    "catalog",
    "orders",
    "delivery",
    "jobs",
    "reconcile",
    "stream",
    "legacy",
    "channels",
];

/// The file read when no `--config` is given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "coffer.toml";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub log: LogConfig,
    pub plugins: PluginsConfig,
    pub admin: AdminConfig,
    pub database: DatabaseConfig,
    pub players: PlayersConfig,
    pub catalog: CatalogConfig,
    pub orders: OrdersConfig,
    pub delivery: DeliveryConfig,
    pub jobs: JobsConfig,
    pub stores: StoresConfig,
    pub reconcile: ReconcileConfig,
    pub stream: StreamConfig,
    pub legacy: LegacyConfig,
    /// Per-channel settings, endpoints and keys, by channel id.
    pub channels: std::collections::BTreeMap<String, ChannelSection>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on. Loopback by default: expose it deliberately.
    pub listen: SocketAddr,
    /// Largest request body accepted, in KiB.
    pub body_limit_kib: usize,
    /// How long shutdown waits for requests in flight, in seconds.
    pub shutdown_grace_s: u64,
    /// The URL channels and browsers reach this service at (behind its TLS proxy): callback
    /// and return URLs given to channels start with it.
    pub public_url: String,
    /// Connections one listener holds at most. At the limit, a new connection closes the one
    /// idle the longest (one that never sent a whole request first); it is refused only when
    /// every connection has a request in flight. Lowered at start if the process's
    /// file-descriptor limit cannot hold it.
    pub max_connections: usize,
    /// How long a client has to send a request's head, from the connection's start or the end
    /// of its previous answer, in seconds: silent, trickling and idle kept-alive connections are
    /// closed after it.
    pub header_timeout_s: u64,
    /// How long a request may take from its head to its answer, in seconds (answered 503
    /// after). Payments already sent to a channel are finished in the background regardless.
    pub request_timeout_s: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_kib: 1024,
            shutdown_grace_s: 20,
            public_url: "http://127.0.0.1:8080".into(),
            max_connections: 10_000,
            header_timeout_s: 10,
            request_timeout_s: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A `tracing` filter, e.g. "info" or "coffer=debug,info". `RUST_LOG` wins if set.
    pub filter: String,
    /// "pretty" for people, "json" for log pipelines.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            filter: "info".into(),
            format: LogFormat::Pretty,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginsConfig {
    /// Directory of channel plugins (`*.wasm`).
    pub dir: PathBuf,
    /// Where compiled plugins are cached by content hash; empty disables the cache. Must be
    /// writable only by the service user: its files are loaded as native code.
    pub cache_dir: PathBuf,
    /// Reload automatically when files in `dir` change.
    pub watch: bool,
    pub limits: PluginLimits,
}

impl Default for PluginsConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("data/plugins"),
            cache_dir: PathBuf::from("data/plugin-cache"),
            watch: true,
            limits: PluginLimits::default(),
        }
    }
}

/// What one plugin call may use; see `coffer_plugin_runtime::Limits`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginLimits {
    pub call_timeout_ms: u64,
    pub memory_mib: usize,
    pub stack_kib: usize,
    pub output_kib: usize,
    pub statement_output_mib: usize,
    pub statement_call_timeout_ms: u64,
    pub statement_memory_mib: usize,
    pub concurrent_calls: u32,
}

impl Default for PluginLimits {
    fn default() -> Self {
        let d = coffer_plugin_runtime::Limits::default();
        Self {
            call_timeout_ms: d.call_timeout.as_millis() as u64,
            memory_mib: d.memory_bytes >> 20,
            stack_kib: d.stack_bytes >> 10,
            output_kib: d.output_bytes >> 10,
            statement_output_mib: d.statement_output_bytes >> 20,
            statement_call_timeout_ms: d.statement_call_timeout.as_millis() as u64,
            statement_memory_mib: d.statement_memory_bytes >> 20,
            concurrent_calls: d.concurrent_calls,
        }
    }
}

impl PluginLimits {
    pub fn to_runtime(&self) -> coffer_plugin_runtime::Limits {
        coffer_plugin_runtime::Limits {
            call_timeout: Duration::from_millis(self.call_timeout_ms),
            memory_bytes: self.memory_mib << 20,
            stack_bytes: self.stack_kib << 10,
            output_bytes: self.output_kib << 10,
            statement_output_bytes: self.statement_output_mib << 20,
            statement_call_timeout: Duration::from_millis(self.statement_call_timeout_ms),
            statement_memory_bytes: self.statement_memory_mib << 20,
            concurrent_calls: self.concurrent_calls,
            ..coffer_plugin_runtime::Limits::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {0} does not exist")]
    Missing(PathBuf),
    #[error(transparent)]
    Parse(#[from] Box<figment::Error>),
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Defaults, then `file` (or `coffer.toml` if present), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) if !path.is_file() => return Err(ConfigError::Missing(path.to_owned())),
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE));
            }
            None => {}
        }
        let config: Config = figment
            .merge(
                Env::prefixed("COFFER_")
                    // Only `COFFER_<SECTION>__<OPTION>`: other COFFER_ variables (COFFER_CONFIG,
                    // the examples' COFFER_KEY_ID...) are not options.
                    .filter(|key| {
                        let section = key.as_str().split("__").next().unwrap_or_default();
                        key.as_str().contains("__")
                            && SECTIONS.iter().any(|s| s.eq_ignore_ascii_case(section))
                    })
                    .split("__"),
            )
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a TOML document on top of the defaults (no environment): for tests and checks.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(text))
            .extract()
            .map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let l = &self.plugins.limits;
        let invalid = |why: &str| Err(ConfigError::Invalid(why.to_owned()));
        if l.call_timeout_ms == 0 || l.memory_mib == 0 || l.concurrent_calls == 0 {
            return invalid("plugins.limits values must be greater than zero");
        }
        if l.memory_mib > 4096 {
            return invalid(
                "plugins.limits.memory_mib cannot exceed 4096 (a 32-bit address space)",
            );
        }
        if l.statement_call_timeout_ms == 0
            || l.statement_memory_mib < l.memory_mib
            || l.statement_memory_mib > 4096
        {
            return invalid(
                "plugins.limits.statement_call_timeout_ms must be > 0, and statement_memory_mib \
                 between memory_mib and 4096",
            );
        }
        if self.server.body_limit_kib == 0 {
            return invalid("server.body_limit_kib must be greater than zero");
        }
        let server = &self.server;
        if server.max_connections == 0 || server.header_timeout_s == 0 {
            return invalid("server.max_connections and server.header_timeout_s must be > 0");
        }
        // A payment's channel call must fit in a request, with room for the database.
        if server.request_timeout_s * 1000 < self.orders.channel_timeout_ms + 5_000 {
            return invalid(
                "server.request_timeout_s must be at least orders.channel_timeout_ms + 5 s",
            );
        }
        let public = self.server.public_url.trim_end_matches('/');
        if !(public.starts_with("https://") || public.starts_with("http://")) || public.len() < 9 {
            return invalid("server.public_url must be an http(s) URL");
        }
        if self.database.max_connections == 0 {
            return invalid("database.max_connections must be greater than zero");
        }
        let hash = &self.players.password_hash;
        if hash.memory_kib < 8 * hash.parallelism.max(1) || hash.iterations == 0 {
            return invalid(
                "players.password_hash: memory_kib >= 8 x parallelism, iterations >= 1",
            );
        }
        if self.players.session_ttl_s == 0 || self.orders.expire_after_s < 60 {
            return invalid("players.session_ttl_s > 0 and orders.expire_after_s >= 60");
        }
        if self.orders.idempotency_ttl_h < 24 {
            return invalid("orders.idempotency_ttl_h must be at least 24");
        }
        if self.orders.channel_timeout_ms == 0 {
            return invalid("orders.channel_timeout_ms must be greater than zero");
        }
        // A request still running must never look dead: its channel call and two database
        // transactions (each waiting up to 10 s for a connection) fit well inside the lock.
        if self.orders.idempotency_lock_s * 1000 < 2 * self.orders.channel_timeout_ms + 30_000 {
            return invalid(
                "orders.idempotency_lock_s must be at least 30 s plus twice channel_timeout_ms",
            );
        }
        let d = &self.delivery;
        if d.poll_ms == 0 || d.batch == 0 || d.timeout_ms == 0 || d.retry_base_ms == 0 {
            return invalid("delivery.poll_ms, batch, timeout_ms and retry_base_ms must be > 0");
        }
        if d.retry_max_ms < d.retry_base_ms || d.batch > 1000 {
            return invalid("delivery.retry_max_ms >= retry_base_ms, and batch <= 1000");
        }
        if self.jobs.interval_s == 0 || self.jobs.batch == 0 {
            return invalid("jobs.interval_s and jobs.batch must be greater than zero");
        }
        self.admin.validate().map_err(ConfigError::Invalid)?;
        self.legacy.validate().map_err(ConfigError::Invalid)?;
        for (id, channel) in &self.channels {
            channel
                .validate()
                .map_err(|why| ConfigError::Invalid(format!("channels.{id}: {why}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_safe() {
        let config = Config::default();
        assert!(config.server.listen.ip().is_loopback());
        assert!(
            config.admin.tokens.is_empty(),
            "no admin access unless configured"
        );
        config.validate().unwrap();
    }

    #[test]
    fn unknown_options_are_rejected_not_ignored() {
        let error = Config::from_toml("[server]\nlisten_addr = \"0.0.0.0:1\"\n").unwrap_err();
        assert!(error.to_string().contains("listen_addr"), "{error}");
    }

    #[test]
    // figment's Jail fixes the closure's error type (its own, large) for us.
    #[allow(clippy::result_large_err)]
    fn only_section_variables_are_options() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("COFFER_CONFIG", "/etc/coffer.toml");
            jail.set_env("COFFER_KEY_ID", "ck_x");
            jail.set_env("COFFER_FIXTURES_DIR", "/tmp");
            jail.set_env("COFFER_SERVER__SHUTDOWN_GRACE_S", "7");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.server.shutdown_grace_s, 7);
            Ok(())
        });
    }

    #[test]
    fn zero_limits_are_rejected() {
        let error = Config::from_toml("[plugins.limits]\ncall_timeout_ms = 0\n").unwrap_err();
        assert!(matches!(error, ConfigError::Invalid(_)), "{error}");
    }
}
