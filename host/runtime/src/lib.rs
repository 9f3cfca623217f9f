//! The plugin runtime: loads channel plugins (WebAssembly components implementing
//! `wit/channel.wit`) and runs each call in a fresh, bounded sandbox.
//!
//! - [`PluginEngine`]: one wasmtime engine with the pooling allocator and an epoch ticker.
//! - [`Channel`]: one loaded plugin version; its methods are the contract's calls, each checked
//!   against the limits, the egress allow-list and the sealed-key rules.
//! - [`Registry`]: every plugin in a directory, hot-reloaded and swapped atomically.
//! - [`KeyRing`]: the key material a channel may use, never handed to the plugin.

mod bindings;
mod channel;
mod config;
mod engine;
mod error;
mod keys;
mod registry;
mod sandbox;

pub use bindings::{CONTRACT_VERSION, SUPPORTED_CONTRACT_VERSIONS, types as contract};
pub use channel::{ArtifactCache, Channel, ChannelStatus, SecretCard};
pub use config::{ChannelConfig, ChannelConfigs, Endpoint};
pub use engine::{Clock, Limits, PluginEngine, SystemClock};
pub use error::{LoadError, PluginError};
pub use keys::{KeyError, KeyFormat, KeyRing, KeySource, RsaSigner, SealedKey};
pub use registry::{FileFailure, Registry, ReloadReport, watch::DirectoryWatcher};
