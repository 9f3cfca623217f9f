//! Coffer: the payment and commerce center for game studios.
//!
//! Areas, one folder each: `api` (HTTP), `channels` (payment channel plugins), `config`.
//! See the README for the whole picture and `docs/` for plugins, operations and security.

pub mod api;
pub mod app;
pub mod channels;
pub mod cli;
pub mod config;
pub mod telemetry;
