//! Alipay open platform: page pay (cashier redirect) and QR precreate, query, refund, and the
//! trade bill. RSA2 (SHA256withRSA) with the merchant's application key, which the host holds;
//! answers and notifications checked with Alipay's public key.
//!
//! Settings: `app-id`. Endpoints: `gateway` (…/gateway.do). Keys: `app-private-key`,
//! `alipay-public-key`. Bill downloads follow the URL Alipay answers with, so its host must be
//! configured as an endpoint too (e.g. `bill`).

mod bill;
mod signing;
mod wire;

use coffer_plugin_sdk::{self as sdk, *};

struct Alipay;

impl Plugin for Alipay {
    fn info() -> ChannelInfo {
        let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        ChannelInfo {
            id: "alipay".into(),
            name: "Alipay".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            contract_version: sdk::CONTRACT_VERSION.into(),
            methods: strings(&["alipay"]),
            flows: vec![CheckoutFlow::Redirect, CheckoutFlow::QrCode],
            currencies: strings(&["CNY"]),
            countries: vec![],
            keys: strings(&[signing::APP_PRIVATE_KEY, signing::ALIPAY_PUBLIC_KEY]),
            settings: strings(&["app-id"]),
            endpoints: strings(&["gateway"]),
            supports_refund: true,
            supports_partial_refund: true,
            supports_statement: true,
        }
    }

    fn create_payment(request: PaymentRequest) -> Result<PaymentStart, ChannelError> {
        wire::pay(&request)
    }

    fn parse_payment_response(
        context: PaymentContext,
        response: HttpResponse,
    ) -> Result<PaymentOutcome, ChannelError> {
        wire::read_precreate(&context, &response)
    }

    fn parse_callback(request: InboundRequest) -> CallbackOutcome {
        let verdict = match request.kind {
            InboundKind::BrowserReturn => wire::browser_return(&request),
            InboundKind::Notify => match wire::notification(&request) {
                Ok(update) => CallbackVerdict::Verified(CallbackEvent::Payment(update)),
                Err(e) => CallbackVerdict::Rejected(e),
            },
        };
        // Alipay retries until it reads exactly "success".
        CallbackOutcome {
            verdict,
            ack_accepted: http::text_answer(200, "success"),
            ack_rejected: http::text_answer(200, "fail"),
        }
    }

    fn build_query(request: QueryRequest) -> Result<HttpRequest, ChannelError> {
        wire::query(&request.order_no)
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
        let serves = context.method == "alipay"
            && matches!(context.flow, CheckoutFlow::Redirect | CheckoutFlow::QrCode)
            && context.amount.currency == "CNY"
            && context.amount.minor >= 1;
        serves.then(|| sdk::quote(&context.amount, 700, 60))
    }

    fn build_statement_request(day: String) -> Result<HttpRequest, ChannelError> {
        wire::bill_url_request(&day)
    }

    fn parse_statement_response(
        _day: String,
        response: HttpResponse,
    ) -> Result<StatementStep, ChannelError> {
        wire::statement_step(&response)
    }

    fn parse_statement(document: Vec<u8>) -> Result<Vec<StatementLine>, ChannelError> {
        bill::parse(&document)
    }
}

coffer_plugin_sdk::not_a_store!(Alipay);
coffer_plugin_sdk::export_channel!(Alipay);
