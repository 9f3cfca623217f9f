//! The App Store as a Coffer channel. Purchases happen in the store; Coffer learns of them from
//! the game server's proof (a transaction id), looked up with the App Store Server API's
//! "Get Transaction Info", and from App Store Server Notifications V2 at
//! `/v1/callbacks/appstore`. Apple signs both as JWS (ES256, `x5c` chain); nothing is believed
//! before the chain leads to the configured Apple root and the app and environment are this
//! channel's.
//!
//! Keys: `api-key` (the in-app purchase key, `.p8`), `apple-root` (Apple Root CA - G3, or the
//! test root). Settings: `issuer-id`, `key-id`, `bundle-id`, `environment` (`Production` or
//! `Sandbox`). Endpoint: `api` (`https://api.storekit.itunes.apple.com`).

mod api;
mod notification;
mod signed;
mod transaction;

use coffer_plugin_sdk::{self as sdk, *};

struct AppStore;

fn channel_info() -> ChannelInfo {
    ChannelInfo {
        id: "appstore".into(),
        name: "App Store".into(),
        version: "1.0.0".into(),
        contract_version: sdk::CONTRACT_VERSION.into(),
        methods: vec!["appstore".into()],
        flows: vec![],
        currencies: vec![],
        countries: vec![],
        keys: vec!["api-key".into(), "apple-root".into()],
        settings: vec![
            "issuer-id".into(),
            "key-id".into(),
            "bundle-id".into(),
            "environment".into(),
        ],
        endpoints: vec!["api".into()],
        supports_refund: false,
        supports_partial_refund: false,
        supports_statement: false,
    }
}

coffer_plugin_sdk::paid_in_the_store!(AppStore, info: channel_info(), callback: notification::parse);

impl Store for AppStore {
    fn build_lookup(proof: StoreProof) -> Result<HttpRequest, ChannelError> {
        api::transaction_request(&proof.token)
    }

    fn parse_lookup(
        proof: StoreProof,
        response: HttpResponse,
    ) -> Result<StorePurchase, ChannelError> {
        api::transaction_answer(&proof.token, &response)
    }

    fn build_acknowledge(_: StorePurchase) -> Result<Option<HttpRequest>, ChannelError> {
        // Apple finishes transactions on the device; the server has nothing to acknowledge.
        Ok(None)
    }

    fn parse_acknowledge_response(_: StorePurchase, _: HttpResponse) -> Result<(), ChannelError> {
        Ok(())
    }

    fn build_revoked_request(
        _: i64,
        _: Option<String>,
    ) -> Result<Option<HttpRequest>, ChannelError> {
        // Refunds and revocations come as notifications (REFUND, REVOKE).
        Ok(None)
    }

    fn parse_revoked_response(_: HttpResponse) -> Result<RevokedPage, ChannelError> {
        Err(unsupported("revocations come as notifications"))
    }

    fn build_access_token_request() -> Result<Option<HttpRequest>, ChannelError> {
        // Each API call carries its own short-lived JWT, signed with the sealed key.
        Ok(None)
    }

    fn parse_access_token_response(_: HttpResponse) -> Result<AccessToken, ChannelError> {
        Err(unsupported("the App Store Server API takes a JWT per call"))
    }
}

coffer_plugin_sdk::export_channel!(AppStore);
