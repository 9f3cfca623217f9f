use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::clock::CallClock;
use crate::config::ChannelConfig;
use crate::engine::EngineInner;

/// Everything one call's store holds. Built fresh for every call and dropped with it, so nothing
/// leaks from one call (or one tenant) to the next.
pub(crate) struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) memory: MemoryCap,
    pub(crate) channel_id: Arc<str>,
    pub(crate) config: Arc<ChannelConfig>,
    pub(crate) engine: Arc<EngineInner>,
    pub(crate) clock: Arc<CallClock>,
    /// This call's time budget (statement calls get a longer one).
    pub(crate) budget: std::time::Duration,
    pub(crate) log_lines_left: u32,
    /// What `access.token` answers: the channel's token while it is fresh.
    pub(crate) access_token: Option<String>,
}

impl CallState {
    pub(crate) fn new(
        engine: Arc<EngineInner>,
        channel_id: Arc<str>,
        config: Arc<ChannelConfig>,
        (budget, memory_bytes): (std::time::Duration, usize),
    ) -> Self {
        let mut wasi = WasiCtx::builder();
        // Only what the guest's standard library needs to start: no files, env, args or
        // network. Stdout and stderr are discarded; plugins log through `host.log`.
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        Self {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            memory: MemoryCap::new(memory_bytes),
            budget,
            log_lines_left: engine.limits.log_lines_per_call,
            channel_id,
            config,
            engine,
            clock: Arc::new(CallClock::new()),
            access_token: None,
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A sandbox rule the plugin broke inside a host function; aborts the call.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Violation {
    #[error("time budget exhausted")]
    Timeout,
    #[error("key {key:?} is not configured for this channel")]
    KeyDenied { key: String },
}

/// Caps linear memory and remembers whether the cap was hit, so a failed allocation (which the
/// guest turns into an abort) is reported as what it is.
pub(crate) struct MemoryCap {
    pub(crate) limit_bytes: usize,
    pub(crate) exceeded: bool,
}

impl MemoryCap {
    fn new(limit_bytes: usize) -> Self {
        Self {
            limit_bytes,
            exceeded: false,
        }
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit_bytes {
            self.exceeded = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; no honest plugin needs more than this.
        Ok(desired <= 100_000)
    }
}
