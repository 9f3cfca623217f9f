//! UnionPay's online gateway (全渠道, version 5.1.0): the cashier page (front consume), the
//! query, the refund and the notifications, signed RSA-SHA256 (`signMethod` 01) with the
//! merchant's key; what UnionPay sends is verified with the certificate it carries
//! (`signPubKeyCert`), once the host chained it to the configured CA and the plugin saw it is
//! UnionPay's own.
//!
//! Settings: `mer-id`, `cert-id` (the serial of the merchant's signing certificate),
//! `channel-type` (07 PC, 08 mobile; default 07). Endpoint: `gateway`
//! (`https://gateway.95516.com`). Keys: `merchant-private-key`, `unionpay-ca`.

mod signing;
mod wire;

use coffer_plugin_sdk::{self as sdk, *};

struct UnionPay;

impl Plugin for UnionPay {
    fn info() -> ChannelInfo {
        let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        ChannelInfo {
            id: "unionpay".into(),
            name: "UnionPay".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            contract_version: sdk::CONTRACT_VERSION.into(),
            methods: strings(&["unionpay"]),
            flows: vec![CheckoutFlow::Redirect],
            currencies: strings(&["CNY"]),
            countries: vec![],
            keys: strings(&[signing::MERCHANT_KEY, signing::UNIONPAY_CA]),
            settings: strings(&["mer-id", "cert-id"]),
            endpoints: strings(&["gateway"]),
            supports_refund: true,
            supports_partial_refund: true,
            supports_statement: false,
        }
    }

    fn create_payment(request: PaymentRequest) -> Result<PaymentStart, ChannelError> {
        wire::pay(&request)
    }

    fn parse_payment_response(
        _: PaymentContext,
        _: HttpResponse,
    ) -> Result<PaymentOutcome, ChannelError> {
        Err(unsupported("the front consume is a form the browser posts"))
    }

    fn parse_callback(request: InboundRequest) -> CallbackOutcome {
        let verdict = match request.kind {
            InboundKind::BrowserReturn => wire::browser_return(&request),
            InboundKind::Notify => match wire::notification(&request.body) {
                Ok(event) => CallbackVerdict::Verified(event),
                Err(error) => CallbackVerdict::Rejected(error),
            },
        };
        // UnionPay sends a notification again until it gets an HTTP 200.
        CallbackOutcome {
            verdict,
            ack_accepted: http::text_answer(200, "ok"),
            ack_rejected: http::text_answer(400, "fail"),
        }
    }

    fn build_query(request: QueryRequest) -> Result<HttpRequest, ChannelError> {
        wire::query(&request)
    }

    fn parse_query_response(
        request: QueryRequest,
        response: HttpResponse,
    ) -> Result<PaymentUpdate, ChannelError> {
        wire::read_query(&request, &response)
    }

    fn build_refund(request: RefundRequest) -> Result<HttpRequest, ChannelError> {
        wire::refund(&request)
    }

    fn parse_refund_response(
        request: RefundRequest,
        response: HttpResponse,
    ) -> Result<RefundUpdate, ChannelError> {
        wire::read_refund(&request, &response)
    }

    fn route_score(context: RouteContext) -> Option<RouteQuote> {
        let serves = context.method == "unionpay"
            && context.flow == CheckoutFlow::Redirect
            && context.amount.currency == "CNY"
            && context.amount.minor >= 1;
        serves.then(|| sdk::quote(&context.amount, 650, 60))
    }

    fn build_statement_request(_: String) -> Result<HttpRequest, ChannelError> {
        Err(unsupported(
            "UnionPay reconciliation files are not fetched yet",
        ))
    }

    fn parse_statement_response(_: String, _: HttpResponse) -> Result<StatementStep, ChannelError> {
        Err(unsupported(
            "UnionPay reconciliation files are not fetched yet",
        ))
    }

    fn parse_statement(_: Vec<u8>) -> Result<Vec<StatementLine>, ChannelError> {
        Err(unsupported(
            "UnionPay reconciliation files are not fetched yet",
        ))
    }
}

coffer_plugin_sdk::not_a_store!(UnionPay);
coffer_plugin_sdk::export_channel!(UnionPay);
