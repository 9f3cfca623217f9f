//! TestPay: a deliberately simple channel used to prove the plugin runtime end to end and to
//! drive the demo before real channels are configured. It is not a real payment provider.
//!
//! Protocol (JSON over HTTP, HMAC-SHA256 with the shared `api-secret`):
//! - Requests carry `X-TestPay-Timestamp` (Unix seconds) and `X-TestPay-Signature`, the hex
//!   HMAC of `timestamp\nMETHOD\npath?query\nbody`.
//! - Answers and notifications carry the same headers over `timestamp\nbody`; the plugin
//!   refuses them if the signature is wrong or the timestamp is more than 5 minutes off.
//! - `POST /payments`, `GET /payments/{order_no}`, `POST /refunds`, `GET /statements/{day}`
//!   under the `api` endpoint. Browser returns carry `?order_no=..&status=..`, unsigned.

mod signing;
mod wire;

use coffer_plugin_sdk::{self as sdk, *};

use wire::{PaymentBody, RefundBody};

const VERSION: &str = if cfg!(feature = "next-version") {
    "2.0.0"
} else {
    "1.0.0"
};
const CURRENCIES: &[&str] = &["USD", "EUR", "CNY", "JPY"];

struct TestPay;

impl Plugin for TestPay {
    fn info() -> ChannelInfo {
        let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        ChannelInfo {
            id: "testpay".into(),
            name: "TestPay".into(),
            version: VERSION.into(),
            contract_version: sdk::CONTRACT_VERSION.into(),
            methods: strings(&["card", "testpay"]),
            flows: vec![CheckoutFlow::DirectCard, CheckoutFlow::Redirect],
            currencies: strings(CURRENCIES),
            countries: vec![],
            keys: strings(&[signing::SECRET]),
            settings: strings(&["merchant-id"]),
            endpoints: strings(&["api"]),
            supports_refund: true,
            supports_partial_refund: true,
            supports_statement: true,
        }
    }

    fn create_payment(request: PaymentRequest) -> Result<PaymentStart, ChannelError> {
        if request.flow == CheckoutFlow::QrCode {
            return Err(unsupported("TestPay has no QR flow"));
        }
        let merchant_id = sdk::setting("merchant-id")?;
        let body = PaymentBody::new(&request, &merchant_id)?;
        let url = format!("{}/payments", sdk::endpoint("api")?);
        let request = signing::signed(http::post_json(url, serde_json::to_string(&body)?))?;
        Ok(PaymentStart::Call(request))
    }

    fn parse_payment_response(
        context: PaymentContext,
        response: HttpResponse,
    ) -> Result<PaymentOutcome, ChannelError> {
        let payment = wire::read_payment(response.status, &response.headers, &response.body)?;
        let action = match (&payment.redirect_url, payment.status.as_str()) {
            (Some(url), "requires_action") => NextAction::Redirect(url.clone()),
            (_, "pending") => NextAction::Wait,
            _ => NextAction::None,
        };
        let update = payment.into_update(&context.amount.currency)?;
        Ok(PaymentOutcome { update, action })
    }

    fn parse_callback(request: InboundRequest) -> CallbackOutcome {
        let verdict = match request.kind {
            InboundKind::BrowserReturn => {
                let pairs = form::decode(request.query.as_bytes());
                match form::get(&pairs, "order_no") {
                    Some(order_no) => CallbackVerdict::Unverified(UnverifiedClaim {
                        order_no: order_no.to_owned(),
                        claimed_status: form::get(&pairs, "status").and_then(wire::status),
                    }),
                    None => CallbackVerdict::Rejected(malformed("return without order_no")),
                }
            }
            InboundKind::Notify => match wire::read_notification(&request) {
                Ok(event) => CallbackVerdict::Verified(event),
                Err(e) => CallbackVerdict::Rejected(e),
            },
        };
        CallbackOutcome {
            verdict,
            ack_accepted: http::text_answer(200, "OK"),
            ack_rejected: http::text_answer(400, "REJECTED"),
        }
    }

    fn build_query(request: QueryRequest) -> Result<HttpRequest, ChannelError> {
        let url = format!("{}/payments/{}", sdk::endpoint("api")?, request.order_no);
        signing::signed(http::get(url))
    }

    fn parse_query_response(
        request: QueryRequest,
        response: HttpResponse,
    ) -> Result<PaymentUpdate, ChannelError> {
        wire::read_payment(response.status, &response.headers, &response.body)?
            .into_update(&request.amount.currency)
    }

    fn build_refund(request: RefundRequest) -> Result<HttpRequest, ChannelError> {
        let merchant_id = sdk::setting("merchant-id")?;
        let body = RefundBody::new(&request, &merchant_id)?;
        let url = format!("{}/refunds", sdk::endpoint("api")?);
        signing::signed(http::post_json(url, serde_json::to_string(&body)?))
    }

    fn parse_refund_response(
        request: RefundRequest,
        response: HttpResponse,
    ) -> Result<RefundUpdate, ChannelError> {
        wire::read_refund(&request, &response)
    }

    fn route_score(context: RouteContext) -> Option<RouteQuote> {
        let serves_method = ["card", "testpay"].contains(&context.method.as_str());
        if !serves_method || !CURRENCIES.contains(&context.amount.currency.as_str()) {
            return None;
        }
        Some(sdk::quote(&context.amount, 500, 290))
    }

    fn build_statement_request(day: String) -> Result<HttpRequest, ChannelError> {
        time::require_day(&day)?;
        signing::signed(http::get(format!(
            "{}/statements/{day}",
            sdk::endpoint("api")?
        )))
    }

    fn parse_statement_response(
        _day: String,
        response: HttpResponse,
    ) -> Result<StatementStep, ChannelError> {
        signing::verify_answer(&response.headers, &response.body)?;
        if !http::is_success(response.status) {
            return Err(ChannelError::Upstream(format!("HTTP {}", response.status)));
        }
        Ok(StatementStep::Document(response.body))
    }

    fn parse_statement(document: Vec<u8>) -> Result<Vec<StatementLine>, ChannelError> {
        wire::read_statement(&document)
    }
}

coffer_plugin_sdk::not_a_store!(TestPay);
coffer_plugin_sdk::export_channel!(TestPay);
