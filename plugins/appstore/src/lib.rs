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

impl Plugin for AppStore {
    fn info() -> ChannelInfo {
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

    fn create_payment(_: PaymentRequest) -> Result<PaymentStart, ChannelError> {
        Err(in_the_store())
    }

    fn parse_payment_response(
        _: PaymentContext,
        _: HttpResponse,
    ) -> Result<PaymentOutcome, ChannelError> {
        Err(in_the_store())
    }

    fn parse_callback(request: InboundRequest) -> CallbackOutcome {
        notification::parse(&request)
    }

    fn build_query(_: QueryRequest) -> Result<HttpRequest, ChannelError> {
        Err(in_the_store())
    }

    fn parse_query_response(
        _: QueryRequest,
        _: HttpResponse,
    ) -> Result<PaymentUpdate, ChannelError> {
        Err(in_the_store())
    }

    fn build_refund(_: RefundRequest) -> Result<HttpRequest, ChannelError> {
        Err(unsupported(
            "the App Store refunds only through Apple's own support",
        ))
    }

    fn parse_refund_response(
        _: RefundRequest,
        _: HttpResponse,
    ) -> Result<RefundUpdate, ChannelError> {
        Err(unsupported(
            "the App Store refunds only through Apple's own support",
        ))
    }

    fn route_score(_: RouteContext) -> Option<RouteQuote> {
        // Never a route for Coffer's own checkout: the player pays in the store.
        None
    }

    fn build_statement_request(_: String) -> Result<HttpRequest, ChannelError> {
        Err(unsupported("App Store statements are not fetched yet"))
    }

    fn parse_statement_response(_: String, _: HttpResponse) -> Result<StatementStep, ChannelError> {
        Err(unsupported("App Store statements are not fetched yet"))
    }

    fn parse_statement(_: Vec<u8>) -> Result<Vec<StatementLine>, ChannelError> {
        Err(unsupported("App Store statements are not fetched yet"))
    }
}

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

fn in_the_store() -> ChannelError {
    unsupported("App Store purchases are paid in the store and sent to Coffer as proofs")
}

coffer_plugin_sdk::export_channel!(AppStore);
