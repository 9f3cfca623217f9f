use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

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
    pub(crate) log_lines_left: u32,
}

/// A call's time, as its budget counts it: from the sandbox's creation, less the time the host
/// spent on the plugin's behalf in key operations (an RSA signature waits for a core under
/// load; that queue is the host's, not the plugin's doing). Shared with the call's outer
/// deadline, which cannot borrow the store while the call runs.
#[derive(Debug)]
pub(crate) struct CallClock {
    started: Instant,
    host_micros: AtomicU64,
}

/// The most host work a call's deadline is moved by: a key operation that waits longer than
/// this is a host in trouble, and the call ends.
const MOST_HOST_TIME: Duration = Duration::from_secs(10);

impl CallClock {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            host_micros: AtomicU64::new(0),
        }
    }

    /// Adds `spent` to the host's share of this call.
    pub(crate) fn add_host_time(&self, spent: Duration) {
        let micros = u64::try_from(spent.as_micros()).unwrap_or(u64::MAX);
        self.host_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn host_time(&self) -> Duration {
        Duration::from_micros(self.host_micros.load(Ordering::Relaxed)).min(MOST_HOST_TIME)
    }

    /// The time the plugin has used of its budget.
    pub(crate) fn plugin_time(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.host_time())
    }

    /// When a call with `budget` runs out, as far as is known now.
    pub(crate) fn deadline(&self, budget: Duration) -> tokio::time::Instant {
        tokio::time::Instant::from_std(self.started + budget + self.host_time())
    }
}

impl CallState {
    pub(crate) fn new(
        engine: Arc<EngineInner>,
        channel_id: Arc<str>,
        config: Arc<ChannelConfig>,
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
            memory: MemoryCap::new(engine.limits.memory_bytes),
            log_lines_left: engine.limits.log_lines_per_call,
            channel_id,
            config,
            engine,
            clock: Arc::new(CallClock::new()),
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
    limit_bytes: usize,
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
