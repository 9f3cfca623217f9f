//! The guest SDK for Coffer channel plugins.
//!
//! A plugin implements [`Plugin`] for a unit struct and registers it with
//! [`export_channel!`](crate::export_channel). Everything a channel protocol needs that is not
//! specific to one channel lives here: form and query encoding, canonical strings to sign,
//! amounts in decimal form, HTTP helpers, sealed-key calls and error helpers.
//!
//! ```ignore
//! struct MyChannel;
//! impl coffer_plugin_sdk::Plugin for MyChannel { /* ... */ }
//! coffer_plugin_sdk::not_a_store!(MyChannel); // or `impl coffer_plugin_sdk::Store`
//! coffer_plugin_sdk::export_channel!(MyChannel);
//! ```

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "channel",
        pub_export_macro: true,
        export_macro_name: "export_channel",
        default_bindings_module: "coffer_plugin_sdk::bindings",
        generate_all,
        additional_derives: [PartialEq, Eq],
    });
}

pub mod amount;
pub mod canonical;
pub mod error;
pub mod form;
pub mod http;
pub mod json;
pub mod jws;
pub mod keys;
pub mod store;
pub mod time;

pub use bindings::coffer::channel::access;
pub use bindings::coffer::channel::host::{self, LogLevel};
pub use bindings::coffer::channel::sealed_keys::{
    AeadAlgorithm, ChainPolicy, DigestAlgorithm, SignatureAlgorithm,
};
pub use bindings::coffer::channel::types::*;
pub use bindings::export_channel;
pub use bindings::exports::coffer::channel::plugin::Guest as Plugin;
pub use bindings::exports::coffer::channel::store::Guest as Store;
pub use error::{ChannelResult, bad_signature, malformed, unsupported};

/// Re-exported so plugins need no direct dependency for these chores.
pub use {base64, hex, serde, serde_json};

/// The contract version this SDK builds against; put it in `ChannelInfo::contract_version`.
pub const CONTRACT_VERSION: &str = "0.3.0";

/// A required non-secret setting, or a configuration error naming it.
pub fn setting(name: &str) -> ChannelResult<String> {
    host::setting(name).ok_or_else(|| ChannelError::Config(format!("setting {name:?} is missing")))
}

/// A required endpoint's base URL (no trailing slash), or a configuration error naming it.
pub fn endpoint(name: &str) -> ChannelResult<String> {
    host::endpoint(name)
        .ok_or_else(|| ChannelError::Config(format!("endpoint {name:?} is missing")))
}

/// A numeric setting, or `default` when it is absent or not a number.
pub fn setting_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    host::setting(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The usual routing quote: the `score` setting (0 to 1000) and a fee of `fee-bps` basis
/// points of the amount, with the channel's defaults.
pub fn quote(amount: &Money, default_score: u16, default_fee_bps: u32) -> RouteQuote {
    RouteQuote {
        score: setting_or("score", default_score).min(1000),
        fee: amount::basis_points(amount, setting_or("fee-bps", default_fee_bps)),
    }
}

/// Logs through the host. Never pass card data or secrets.
pub fn log(level: LogLevel, message: &str) {
    host::log(level, message);
}
