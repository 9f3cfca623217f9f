//! Coffer's integration tests, in one binary (one link instead of one per file, and one
//! compiled-plugin cache for all): the test kit first, then the tests by area. Every world
//! runs the real service, the real plugins and the channel simulator; tests named `sqlite::`
//! and `postgres::` run on both databases.

// The test kit: the worlds the tests run in.
#[macro_use]
mod shop;
mod channels;
mod legacy;
mod support;

mod admin_api;
mod architecture;
mod channel_alipay;
mod channel_carespay;
mod channel_unionpay;
mod channel_wechatpay;
mod commerce_accounts;
mod commerce_callbacks;
mod commerce_delivery;
mod commerce_orders;
mod commerce_recovery;
mod commerce_refunds;
mod commerce_stream;
mod example_config;
mod hardening;
mod ledger;
mod legacy_api;
mod legacy_import;
mod real_binary;
mod reconcile;
mod reports;
mod stores_appstore;
mod stores_googleplay;
