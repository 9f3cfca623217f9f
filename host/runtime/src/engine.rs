//! The one wasmtime [`Engine`] every plugin runs on, with the limits each call gets.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use tokio::sync::Semaphore;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::bindings;
use crate::sandbox::CallState;

/// How often the engine's epoch advances. A call's time budget is checked (and the call yields
/// to the async runtime) at this granularity.
const EPOCH_TICK: Duration = Duration::from_millis(2);

/// Dirty memory per instance slot that is reset by copying rather than unmapping, when the
/// kernel can tell which pages are dirty (PAGEMAP_SCAN, Linux 6.7+).
const KEEP_RESIDENT_DIRTY_BYTES: usize = 1 << 20;
/// Without dirty-page tracking the whole kept region is zeroed on every reset: keep it small.
const KEEP_RESIDENT_BLIND_BYTES: usize = 64 << 10;

/// Statement calls running at once: each may hold `statement_memory_bytes`.
const STATEMENT_CALLS_AT_ONCE: usize = 2;

/// What one plugin call may use. Every bound is per call.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time budget of one call: the plugin's own time, computing or waiting in a host call it
    /// made (a WASI sleep), not the time the host kept it waiting for a core or for key work.
    pub call_timeout: Duration,
    /// Linear memory a plugin instance may grow to.
    pub memory_bytes: usize,
    /// WebAssembly stack.
    pub stack_bytes: usize,
    /// Size of what one call may return (strings and bytes added up).
    pub output_bytes: usize,
    /// Size a parsed statement may have; statements are much larger than other answers.
    pub statement_output_bytes: usize,
    /// Time budget of a call that reads a statement: a busy merchant's day is 100,000 lines.
    pub statement_call_timeout: Duration,
    /// Linear memory a call that reads a statement may grow to.
    pub statement_memory_bytes: usize,
    /// Calls running at once; more wait for a slot. Also sizes the instance pool.
    pub concurrent_calls: u32,
    /// Log lines one call may write.
    pub log_lines_per_call: u32,
    /// Bytes of one log line; longer ones are cut.
    pub log_line_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_millis(200),
            memory_bytes: 64 << 20,
            stack_bytes: 512 << 10,
            output_bytes: 1 << 20,
            statement_output_bytes: 32 << 20,
            statement_call_timeout: Duration::from_secs(60),
            statement_memory_bytes: 512 << 20,
            concurrent_calls: 128,
            log_lines_per_call: 16,
            log_line_bytes: 1024,
        }
    }
}

/// Wall-clock time as the plugins see it. Injected so tests can fix it.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

/// The real time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Shared by every call: the engine, the linker, the limits and the host-controlled clock.
#[derive(Clone)]
pub struct PluginEngine {
    pub(crate) inner: Arc<EngineInner>,
}

pub(crate) struct EngineInner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<CallState>,
    pub(crate) limits: Limits,
    pub(crate) clock: Arc<dyn Clock>,
    /// Bounds concurrent calls to the pool's size, so a burst waits instead of failing.
    pub(crate) call_slots: Arc<Semaphore>,
    /// Bounds statement calls, each of which may use far more memory than others.
    pub(crate) statement_slots: Arc<Semaphore>,
    /// Certificate chains verified before (see `keys::TrustedChains`).
    pub(crate) trusted_chains: crate::keys::TrustedChains,
    ticker_stop: Arc<AtomicBool>,
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}

/// How many verified certificate chains are remembered: channels use a handful each.
const TRUSTED_CHAINS: u64 = 1_000;

impl PluginEngine {
    pub fn new(limits: Limits) -> anyhow::Result<Self> {
        Self::with_clock(limits, Arc::new(SystemClock))
    }

    pub fn with_clock(limits: Limits, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        anyhow::ensure!(limits.concurrent_calls > 0, "concurrent_calls must be > 0");
        anyhow::ensure!(
            limits.statement_memory_bytes >= limits.memory_bytes,
            "statement calls may not have less memory than other calls"
        );
        let engine = Engine::new(&engine_config(&limits))?;
        let mut linker = Linker::new(&engine);
        // The Rust standard library for wasm32-wasip2 imports WASI. The context each call gets
        // grants nothing: no files, no env, no args, no sockets, output discarded.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        bindings::Channel::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)?;
        // Plugins built against an earlier contract link to the same host functions.
        bindings::v0_2_0::add_to_linker(&mut linker)?;
        bindings::v0_1_0::add_to_linker(&mut linker)?;

        let ticker_stop = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), ticker_stop.clone())?;

        Ok(Self {
            inner: Arc::new(EngineInner {
                engine,
                linker,
                call_slots: Arc::new(Semaphore::new(limits.concurrent_calls as usize)),
                statement_slots: Arc::new(Semaphore::new(STATEMENT_CALLS_AT_ONCE)),
                trusted_chains: crate::keys::TrustedChains::new(TRUSTED_CHAINS),
                limits,
                clock,
                ticker_stop,
            }),
        })
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    pub fn wasmtime(&self) -> &Engine {
        &self.inner.engine
    }
}

fn engine_config(limits: &Limits) -> Config {
    let calls = limits.concurrent_calls;
    let keep_resident = if PoolingAllocationConfig::is_pagemap_scan_available() {
        KEEP_RESIDENT_DIRTY_BYTES
    } else {
        KEEP_RESIDENT_BLIND_BYTES
    };
    let mut pool = PoolingAllocationConfig::default();
    // A Rust component holds a handful of core instances (the program, the WASI adapter, shims).
    pool.total_component_instances(calls)
        .total_core_instances(calls * 8)
        .total_memories(calls * 2)
        .total_tables(calls * 4)
        .total_stacks(calls)
        .max_memory_size(limits.memory_bytes.max(limits.statement_memory_bytes))
        // Reset a slot by copying back the pages the call dirtied instead of unmapping them:
        // page faults and page-table updates on every call cost more than the call itself.
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(keep_resident)
        .table_keep_resident(keep_resident);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .max_wasm_stack(limits.stack_bytes)
        .async_stack_size(limits.stack_bytes + (1 << 20))
        .memory_init_cow(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // For profiling plugins with `perf`: their compiled code is named in /tmp/perf-<pid>.map.
    if std::env::var_os(PERF_MAP_ENV).is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config
}

/// Set (to anything) to have `perf` name the plugins' compiled functions.
pub const PERF_MAP_ENV: &str = "COFFER_PLUGIN_PERF_MAP";

fn spawn_epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    thread::Builder::new()
        .name("coffer-plugin-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })?;
    Ok(())
}
