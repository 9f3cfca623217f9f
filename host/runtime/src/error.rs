use crate::bindings::types::ChannelError;

/// Why one plugin call failed. Each failure is confined to its own call: the sandbox is thrown
/// away and the next call starts fresh.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The plugin ran longer than the call budget (an endless loop, say).
    #[error("plugin exceeded its time budget of {budget_ms} ms")]
    Timeout { budget_ms: u64 },
    /// The plugin tried to grow its memory past the cap.
    #[error("plugin exceeded its memory cap of {limit_bytes} bytes")]
    MemoryExceeded { limit_bytes: usize },
    /// The plugin recursed past its stack cap.
    #[error("plugin overflowed its stack")]
    StackOverflow,
    /// The plugin trapped: a panic, an `unreachable`, an out-of-bounds access.
    #[error("plugin trapped: {message}")]
    Trap { message: String },
    /// The plugin returned more than the output cap allows.
    #[error("plugin returned {size_bytes} bytes, over the cap of {limit_bytes}")]
    OutputTooLarge {
        size_bytes: usize,
        limit_bytes: usize,
    },
    /// The plugin built a request to a URL outside its channel's configured endpoints.
    #[error("plugin asked to send a request to {url}, which is not a configured endpoint")]
    EgressDenied { url: String },
    /// The plugin named a key that is not configured for its channel.
    #[error("plugin asked for key {key:?}, which is not configured for channel {channel}")]
    KeyDenied { channel: String, key: String },
    /// The plugin answered something the contract forbids.
    #[error("plugin broke the contract: {0}")]
    ContractViolation(String),
    /// The host put card data in a payment request instead of passing a `SecretCard`, where
    /// a `Debug` print would show it. Nothing was sent to the plugin.
    #[error("card data must be passed as a SecretCard, not inside the payment request")]
    CardInRequest,
    /// The plugin ran fine and reported a failure of its own (bad signature, malformed input...).
    #[error("channel error: {0}")]
    Channel(ChannelError),
}

/// Why a plugin file could not be loaded. The version already serving (if any) stays.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("plugin file is {size_bytes} bytes, over the cap of {limit_bytes}")]
    TooLarge { size_bytes: u64, limit_bytes: u64 },
    #[error("not a valid WebAssembly component: {0}")]
    Compile(String),
    #[error(
        "plugin is built for contract {found}, this host implements coffer:channel versions {expected}"
    )]
    ContractMismatch { found: String, expected: String },
    #[error("plugin cannot be linked: {0}")]
    Link(String),
    #[error("plugin failed its load check: {0}")]
    Validate(#[from] PluginError),
    #[error("plugin describes itself wrongly: {0}")]
    InvalidInfo(String),
    #[error("plugin says it is channel {channel}, so its file must be named {expected}")]
    WrongFileName { channel: String, expected: String },
}
