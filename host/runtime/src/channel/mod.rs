//! One loaded version of a channel plugin, and the calls of the contract on it.

/// Runs one export in a fresh sandbox and checks the answer's size. The epoch check stops a
/// plugin that computes too long; the outer deadline also stops one that waits inside a host
/// call (a WASI sleep or poll), where no epoch check runs. Dropping the call drops its store.
macro_rules! call {
    ($channel:ident, $limit:expr, $export:ident($($arg:expr),*)) => {
        call!($channel, CallClass::Ordinary, $limit, $export($($arg),*))
    };
    ($channel:ident, $class:expr, $limit:expr, $export:ident($($arg:expr),*)) => {{
        let mut sandbox: Sandbox = $channel.sandbox($class).await?;
        let (clock, budget) = sandbox.clock();
        let call = sandbox.plugin.$export(&mut sandbox.store $(, $arg)*);
        match within_budget(&clock, budget, call).await {
            Some(result) => sandbox.finish(result, $limit),
            None => Err(Channel::timeout(budget)),
        }
    }};
}

mod access;
mod cache;
mod calls;
mod card;
mod load;
mod store_calls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use wasmtime::Store;
use wasmtime::UpdateDeadline;

pub use cache::ArtifactCache;
pub use card::SecretCard;
pub(crate) use load::{PluginFile, load_channel};

use crate::bindings::plugin::{PluginInstance, PluginPre};
use crate::bindings::types::ChannelInfo;
use crate::config::ChannelConfig;
use crate::engine::PluginEngine;
use crate::error::PluginError;
use crate::sandbox::{
    CallClock, CallState, OutputSize, Violation, classify_failure, within_budget,
};

/// A compiled, validated plugin version, ready to serve calls. Immutable: a reload builds a new
/// one and swaps it in, while calls already running keep this one alive until they finish.
pub struct Channel {
    info: ChannelInfo,
    id: Arc<str>,
    pre: PluginPre,
    engine: PluginEngine,
    config: Arc<ChannelConfig>,
    file: PathBuf,
    sha256: String,
    loaded_at: SystemTime,
    load_time: Duration,
    from_cache: bool,
    /// The channel's access token, for the plugins that use one (see [`access`]).
    access: access::TokenSlot,
}

/// What an operator sees about a loaded plugin.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ChannelStatus {
    pub channel: String,
    pub name: String,
    pub version: String,
    pub contract_version: String,
    pub file: String,
    pub sha256: String,
    /// Unix milliseconds.
    pub loaded_at_ms: u64,
    pub load_time_ms: f64,
    /// True when the compiled artifact came from the on-disk cache.
    pub from_cache: bool,
    pub methods: Vec<String>,
    pub currencies: Vec<String>,
    /// Keys, settings and endpoints the plugin declares but the configuration lacks.
    pub missing_keys: Vec<String>,
    pub missing_settings: Vec<String>,
    pub missing_endpoints: Vec<String>,
}

impl Channel {
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn info(&self) -> &ChannelInfo {
        &self.info
    }

    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    pub fn status(&self) -> ChannelStatus {
        let missing = |names: &[String], present: &dyn Fn(&str) -> bool| {
            names
                .iter()
                .filter(|n| !present(n))
                .cloned()
                .collect::<Vec<_>>()
        };
        let config = &self.config;
        ChannelStatus {
            channel: self.info.id.clone(),
            name: self.info.name.clone(),
            version: self.info.version.clone(),
            contract_version: self.info.contract_version.clone(),
            file: self.file.display().to_string(),
            sha256: self.sha256.clone(),
            loaded_at_ms: self
                .loaded_at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            load_time_ms: self.load_time.as_secs_f64() * 1000.0,
            from_cache: self.from_cache,
            methods: self.info.methods.clone(),
            currencies: self.info.currencies.clone(),
            missing_keys: missing(&self.info.keys, &|n| config.keys.contains(n)),
            missing_settings: missing(&self.info.settings, &|n| config.settings.contains_key(n)),
            missing_endpoints: missing(&self.info.endpoints, &|n| config.endpoints.contains_key(n)),
        }
    }

    /// A fresh sandbox for one call of `class`: a new store with its own limits, instantiated
    /// from the pre-linked component. Waits for a free slot when every slot is busy.
    async fn sandbox(&self, class: CallClass) -> Result<Sandbox, PluginError> {
        let engine = self.engine.inner.clone();
        // A statement call first waits for one of the few statement slots, so that only a
        // couple of them ever hold their large memory at once.
        let statement_permit = match class {
            CallClass::Statement => Some(
                engine
                    .statement_slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the statement semaphore is never closed"),
            ),
            CallClass::Ordinary => None,
        };
        let permit = engine
            .call_slots
            .clone()
            .acquire_owned()
            .await
            .expect("the call semaphore is never closed");
        let limits = &engine.limits;
        let (budget, memory) = match class {
            CallClass::Ordinary => (limits.call_timeout, limits.memory_bytes),
            CallClass::Statement => (limits.statement_call_timeout, limits.statement_memory_bytes),
        };
        let mut state = CallState::new(
            engine.clone(),
            self.id.clone(),
            self.config.clone(),
            (budget, memory),
        );
        state.access_token = self.access.current(engine.clock.now_ms());
        let mut store = Store::new(&engine.engine, state);
        store.limiter(|state| &mut state.memory);
        store.set_epoch_deadline(1);
        // Checked at every epoch tick: past the budget the call traps, otherwise it yields so a
        // busy plugin cannot hold an executor thread.
        store.epoch_deadline_callback(move |ctx| {
            if ctx.data().clock.plugin_time() >= budget {
                Err(wasmtime::Error::new(Violation::Timeout))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        let clock = store.data().clock.clone();
        match within_budget(&clock, budget, self.pre.instantiate_async(&mut store)).await {
            Some(Ok(plugin)) => Ok(Sandbox {
                store,
                plugin,
                _permit: permit,
                _statement_permit: statement_permit,
            }),
            Some(Err(error)) => Err(classify_failure(error, store.data())),
            None => Err(Self::timeout(budget)),
        }
    }

    fn timeout(budget: Duration) -> PluginError {
        PluginError::Timeout {
            budget_ms: u64::try_from(budget.as_millis()).unwrap_or(u64::MAX),
        }
    }
}

struct Sandbox {
    store: Store<CallState>,
    plugin: PluginInstance,
    _permit: tokio::sync::OwnedSemaphorePermit,
    _statement_permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// The limits a call runs under: reading a statement may take far more time and memory than
/// anything on the payment path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallClass {
    Ordinary,
    Statement,
}

impl Sandbox {
    /// This call's clock and budget, for its outer deadline (see [`CallClock`]).
    fn clock(&self) -> (Arc<CallClock>, Duration) {
        let data = self.store.data();
        (data.clock.clone(), data.budget)
    }

    /// Checks a finished call: a trap becomes its typed error, an answer over the cap is refused.
    fn finish<T: OutputSize>(
        self,
        result: wasmtime::Result<T>,
        limit_bytes: usize,
    ) -> Result<T, PluginError> {
        let value = result.map_err(|e| classify_failure(e, self.store.data()))?;
        let size_bytes = value.output_size();
        if size_bytes > limit_bytes {
            return Err(PluginError::OutputTooLarge {
                size_bytes,
                limit_bytes,
            });
        }
        Ok(value)
    }
}
