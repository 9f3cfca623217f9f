//! WeChat Pay API v3: native (QR code) payments, query, refund, encrypted notifications and
//! the trade bill. Requests are signed with the merchant's API key; answers and notifications
//! verified with the platform key, notification resources decrypted with the APIv3 key. The
//! host holds all three.
//!
//! Settings: `mch-id`, `app-id`, `merchant-serial` (the merchant API certificate's serial),
//! `platform-serial` (the platform key's serial; answers signed under any other are refused).
//! Endpoints: `api` (https://api.mch.weixin.qq.com). Keys: `merchant-private-key`,
//! `platform-public-key`, `api-v3-key`.

mod bill;
mod signing;
mod wire;

use coffer_plugin_sdk::{self as sdk, *};

struct WechatPay;

impl Plugin for WechatPay {
    fn info() -> ChannelInfo {
        let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        ChannelInfo {
            id: "wechatpay".into(),
            name: "WeChat Pay".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            contract_version: sdk::CONTRACT_VERSION.into(),
            methods: strings(&["wechat-pay"]),
            flows: vec![CheckoutFlow::QrCode],
            currencies: strings(&["CNY"]),
            countries: vec![],
            keys: strings(&[
                signing::MERCHANT_PRIVATE_KEY,
                signing::PLATFORM_PUBLIC_KEY,
                signing::API_V3_KEY,
            ]),
            settings: strings(&["mch-id", "app-id", "merchant-serial", "platform-serial"]),
            endpoints: strings(&["api"]),
            supports_refund: true,
            supports_partial_refund: true,
            supports_statement: true,
        }
    }

    fn create_payment(request: PaymentRequest) -> Result<PaymentStart, ChannelError> {
        Ok(PaymentStart::Call(wire::native_pay(&request)?))
    }

    fn parse_payment_response(
        context: PaymentContext,
        response: HttpResponse,
    ) -> Result<PaymentOutcome, ChannelError> {
        wire::read_native_pay(&context, &response)
    }

    fn parse_callback(request: InboundRequest) -> CallbackOutcome {
        let verdict = match request.kind {
            InboundKind::BrowserReturn => wire::browser_return(&request),
            InboundKind::Notify => match wire::notification(&request) {
                Ok(event) => CallbackVerdict::Verified(event),
                Err(e) => CallbackVerdict::Rejected(e),
            },
        };
        CallbackOutcome {
            verdict,
            ack_accepted: HttpAnswer {
                status: 204,
                headers: vec![],
                body: vec![],
            },
            ack_rejected: HttpAnswer {
                status: 500,
                headers: vec![("content-type".into(), "application/json".into())],
                body: br#"{"code":"FAIL","message":"rejected"}"#.to_vec(),
            },
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
        let serves = context.method == "wechat-pay"
            && context.flow == CheckoutFlow::QrCode
            && context.amount.currency == "CNY"
            && context.amount.minor >= 1;
        serves.then(|| sdk::quote(&context.amount, 700, 60))
    }

    fn build_statement_request(day: String) -> Result<HttpRequest, ChannelError> {
        wire::bill_request(&day)
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

coffer_plugin_sdk::not_a_store!(WechatPay);
coffer_plugin_sdk::export_channel!(WechatPay);
