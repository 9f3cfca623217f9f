//! Rust bindings generated from the contract's WIT: the one place the host's view of the
//! contract comes from. The root is the newest version (`wit/channel.wit`), the one the host
//! speaks; each earlier version it still loads has a module generated from its frozen snapshot
//! (`wit/since_v*/`) that adapts its calls to the newest types ([`v0_2_0`], [`v0_1_0`]). [`plugin`] hides
//! which one a loaded plugin implements.

pub(crate) mod adapt;
pub(crate) mod plugin;
pub(crate) mod v0_1_0;
pub(crate) mod v0_2_0;

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "channel",
    imports: {
        // Naming a key that is not this channel's aborts the call, so key calls may trap.
        "coffer:channel/sealed-keys": trappable,
        // RSA signatures and chain verification run off the async workers
        // (see `keys::off_runtime`).
        "coffer:channel/sealed-keys.sign": async | trappable,
        "coffer:channel/sealed-keys.verify-with-chain": async | trappable,
    },
    exports: { default: async },
    additional_derives: [PartialEq, Eq],
});

/// The contract version this host speaks: the WIT package version of `wit/channel.wit`.
pub const CONTRACT_VERSION: &str = "0.3.0";

/// Every contract version a plugin may be built against, newest first.
pub const SUPPORTED_CONTRACT_VERSIONS: &[&str] =
    &[CONTRACT_VERSION, v0_2_0::VERSION, v0_1_0::VERSION];

pub use coffer::channel::types;
