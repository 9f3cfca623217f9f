//! The host's channels area: the plugin registry built from configuration, kept fresh by the
//! directory watcher; the router that picks a channel for a payment; the HTTP client that
//! sends what plugins build; and the contract boundary, where Coffer's types (`model`) become
//! the plugin contract's records and back (`contract`).

pub mod contract;
pub mod http;
pub mod model;
pub mod routing;
pub mod statement;
pub mod store;

pub use model::{
    Ack, Address, Charged, Flow, NextAction, Notice, Payer, PaymentAsk, PaymentReport,
    PaymentState, Reason, RefundAsk, RefundReport, RefundState, Start, StatementEntry,
    StatementKind,
};
pub use store::{StoreEvent, StoreProof, StorePurchase, StorePurchaseState};

use std::sync::Arc;

use anyhow::Context;
use coffer_plugin_runtime::{ArtifactCache, DirectoryWatcher, PluginEngine, Registry};

use crate::config::{Config, load_channel_configs};

/// The loaded plugins and what keeps them current.
pub struct Channels {
    pub registry: Arc<Registry>,
    _watcher: Option<DirectoryWatcher>,
}

impl Channels {
    /// Builds the engine and registry, loads every plugin once, and starts watching if asked.
    /// Plugins that fail to load are logged and reported, they do not stop the start.
    pub async fn start(config: &Config) -> anyhow::Result<Self> {
        let registry = Arc::new(build_registry(config)?);
        let report = registry.reload().await;
        tracing::info!(
            dir = %config.plugins.dir.display(),
            loaded = report.loaded.len(),
            failed = report.failed.len(),
            "plugins loaded"
        );
        let watcher = if config.plugins.watch {
            let watcher = DirectoryWatcher::spawn(registry.clone())
                .context("cannot watch the plugins directory")?;
            Some(watcher)
        } else {
            None
        };
        Ok(Self {
            registry,
            _watcher: watcher,
        })
    }
}

/// A registry as configured, with nothing loaded yet.
pub fn build_registry(config: &Config) -> anyhow::Result<Registry> {
    let engine = PluginEngine::new(config.plugins.limits.to_runtime())
        .context("cannot create the plugin engine")?;
    let channel_configs = load_channel_configs(&config.channels)?;
    std::fs::create_dir_all(&config.plugins.dir).with_context(|| {
        format!(
            "cannot create the plugins directory {}",
            config.plugins.dir.display()
        )
    })?;
    let cache_dir = &config.plugins.cache_dir;
    let cache = ArtifactCache::new((!cache_dir.as_os_str().is_empty()).then(|| cache_dir.clone()));
    Ok(Registry::new(
        engine,
        &config.plugins.dir,
        cache,
        channel_configs,
    ))
}
