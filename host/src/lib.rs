//! Coffer: the payment and commerce center for game studios.
//!
//! Areas, one folder each: `api` (HTTP), `catalog`, `channels` (payment channel plugins),
//! `config`, `fulfillment` (outbox and delivery), `games`, `jobs` (recovery), `legacy`,
//! `orders`, `players`, `server` (listeners and connection limits), `store` (the database).
//! See the README for the whole picture and `docs/` for plugins, operations and security.

pub mod api;
pub mod app;
pub mod catalog;
pub mod channels;
pub mod cli;
pub mod config;
pub mod fulfillment;
pub mod games;
pub mod jobs;
pub mod ledger;
pub mod legacy;
pub mod orders;
pub mod players;
pub mod reconcile;
pub mod reports;
pub mod server;
pub mod store;
pub mod stores;
pub mod telemetry;
