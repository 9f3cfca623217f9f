//! Rust bindings generated from `wit/channel.wit`: the one place the host's view of the contract
//! comes from. When a new contract version ships, its snapshot gets a module here and the host
//! adapts the old types to the newest ones.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "channel",
    imports: {
        // Naming a key that is not this channel's aborts the call, so key calls may trap.
        "coffer:channel/sealed-keys": trappable,
        // RSA signatures run off the async workers (see `keys::off_runtime`).
        "coffer:channel/sealed-keys.sign": async | trappable,
    },
    exports: { default: async },
    additional_derives: [PartialEq, Eq],
});

/// The contract version this host implements: the WIT package version.
pub const CONTRACT_VERSION: &str = "0.1.0";

pub use coffer::channel::types;
