//! Google Play as a Coffer channel. Purchases happen in the store; Coffer learns of them from the
//! game server's proof (a purchase token with its product id), looked up with the Play
//! Developer API's `purchases.products.get`, and acknowledges them once delivered (Google
//! refunds a purchase left unacknowledged for three days). Voided purchases are listed by the
//! API; Real-time Developer Notifications arrive by Pub/Sub push at `/v1/callbacks/googleplay`,
//! each only a claim the host confirms with a lookup.
//!
//! Keys: `service-account-key` (the service account's RSA private key, from its JSON key file),
//! `push-key-<kid>` (Google's public keys for push tokens, one per id listed in `push-key-ids`).
//! Settings: `package-name`, `service-account-email`, `push-audience`, `push-service-account`,
//! `push-key-ids`, `accept-test-purchases` (default `false`). Endpoints: `api`
//! (`https://androidpublisher.googleapis.com`), `oauth` (`https://oauth2.googleapis.com`).

mod api;
mod purchase;
mod push;
mod token;

use coffer_plugin_sdk::{self as sdk, *};

struct GooglePlay;

fn channel_info() -> ChannelInfo {
    ChannelInfo {
        id: "googleplay".into(),
        name: "Google Play".into(),
        version: "1.0.0".into(),
        contract_version: sdk::CONTRACT_VERSION.into(),
        methods: vec!["googleplay".into()],
        flows: vec![],
        currencies: vec![],
        countries: vec![],
        keys: vec!["service-account-key".into()],
        settings: vec![
            "package-name".into(),
            "service-account-email".into(),
            "push-audience".into(),
            "push-service-account".into(),
            "push-key-ids".into(),
        ],
        endpoints: vec!["api".into(), "oauth".into()],
        supports_refund: false,
        supports_partial_refund: false,
        supports_statement: false,
    }
}

coffer_plugin_sdk::paid_in_the_store!(GooglePlay, info: channel_info(), callback: push::parse);

impl Store for GooglePlay {
    fn build_lookup(proof: StoreProof) -> Result<HttpRequest, ChannelError> {
        api::purchase_request(&proof)
    }

    fn parse_lookup(
        proof: StoreProof,
        response: HttpResponse,
    ) -> Result<StorePurchase, ChannelError> {
        api::purchase_answer(&proof, &response)
    }

    fn build_acknowledge(purchase: StorePurchase) -> Result<Option<HttpRequest>, ChannelError> {
        api::acknowledge_request(&purchase)
    }

    fn parse_acknowledge_response(
        _: StorePurchase,
        response: HttpResponse,
    ) -> Result<(), ChannelError> {
        api::acknowledge_answer(&response)
    }

    fn build_revoked_request(
        since: i64,
        page: Option<String>,
    ) -> Result<Option<HttpRequest>, ChannelError> {
        api::voided_request(since, page.as_deref()).map(Some)
    }

    fn parse_revoked_response(response: HttpResponse) -> Result<RevokedPage, ChannelError> {
        api::voided_answer(&response)
    }

    fn build_access_token_request() -> Result<Option<HttpRequest>, ChannelError> {
        token::request().map(Some)
    }

    fn parse_access_token_response(response: HttpResponse) -> Result<AccessToken, ChannelError> {
        token::answer(&response)
    }
}

coffer_plugin_sdk::export_channel!(GooglePlay);
