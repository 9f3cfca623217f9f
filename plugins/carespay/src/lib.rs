//! CaresPay: a card gateway with 2D (direct) and 3-D Secure payments.
//!
//! There is no public specification; the protocol is known from merchant integrations.
//! **Certain** (seen in integrations): the pay request's fields and its
//! `md5Info = MD5(merNo + billNo + currency + amount + returnURL + md5Key)`, the numeric
//! currency codes, the answer's `code` (P0001 paid, P0002 failed, P0004 3-D Secure with
//! `auth3DUrl`) and `tradeStatus` words, the unsigned browser return after 3-D Secure
//! (`amount, billNo, code, message`), the signed query `MD5("merNo=..&billNo=..&key=..")` and
//! the refund signature `MD5("amount=..&merNo=..&orderNo=..&key=..")`.
//! **Inferred** (verify against a live sandbox): the answer and notification signature
//! `MD5(merNo + billNo + orderNo + currency + amount + code + tradeStatus + md5Key)`, the
//! notification's form fields and its `success` acknowledgement, the meaning of S0004-S0006
//! (refund pending, refunded, partially refunded), the refund answer codes (R0001 accepted,
//! R0002 refused), the `refundNo` field, the batch-list signature
//! `MD5("merNo=..&date=..&key=..")` and its JSON rows.
//!
//! Notifications are reported as *unverified* claims even when their checksum matches: the
//! checksum concatenates fields without separators, so it does not pin the order it is about.
//! The host confirms each one with the signed query.
//!
//! Card data passes through to the gateway only: this plugin never logs it.

mod signing;
mod wire;

use coffer_plugin_sdk::{self as sdk, *};

const METHODS: &[&str] = &["card"];

struct CaresPay;

impl Plugin for CaresPay {
    fn info() -> ChannelInfo {
        let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        ChannelInfo {
            id: "carespay".into(),
            name: "CaresPay".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            contract_version: sdk::CONTRACT_VERSION.into(),
            methods: strings(METHODS),
            flows: vec![CheckoutFlow::DirectCard],
            currencies: wire::CURRENCIES
                .iter()
                .map(|(iso, _)| iso.to_string())
                .collect(),
            countries: vec![],
            keys: strings(&[signing::MD5_KEY]),
            settings: strings(&["merchant-no", "trade-url"]),
            endpoints: strings(&["gateway"]),
            supports_refund: true,
            supports_partial_refund: true,
            supports_statement: true,
        }
    }

    fn create_payment(request: PaymentRequest) -> Result<PaymentStart, ChannelError> {
        Ok(PaymentStart::Call(wire::pay_request(&request)?))
    }

    fn parse_payment_response(
        context: PaymentContext,
        response: HttpResponse,
    ) -> Result<PaymentOutcome, ChannelError> {
        if let Some(failure) = wire::refused_before_starting(&response) {
            return Ok(PaymentOutcome {
                update: PaymentUpdate {
                    order_no: context.order_no,
                    channel_txn_id: None,
                    status: PaymentStatus::Failed,
                    amount: None,
                    paid_at: None,
                    failure: Some(failure),
                    channel_status: String::new(),
                },
                action: NextAction::None,
            });
        }
        let mut answer = wire::Answer::read(&response)?;
        answer.expect_order(&context.order_no, &context.amount)?;
        if answer.bill_no.is_empty() {
            answer.bill_no = context.order_no.clone();
        }
        let action = match (answer.code.as_str(), &answer.auth_3d_url) {
            ("P0004", Some(url)) => NextAction::Redirect(url.clone()),
            ("P0004", None) => return Err(malformed("P0004 without auth3DUrl")),
            _ => NextAction::None,
        };
        Ok(PaymentOutcome {
            update: answer.into_update(&context.amount)?,
            action,
        })
    }

    fn parse_callback(request: InboundRequest) -> CallbackOutcome {
        let verdict = match request.kind {
            InboundKind::BrowserReturn => wire::browser_return(&request),
            // The notification's checksum concatenates fields without separators, so
            // characters can shift between billNo and orderNo and it still matches: a valid
            // checksum proves the gateway sent *something*, not which order it is about. The
            // host confirms with the signed query, which is pinned to our bill and amount.
            InboundKind::Notify => match wire::Answer::from_notification(&request) {
                Ok(answer) => CallbackVerdict::Unverified(answer.claim()),
                Err(e) => CallbackVerdict::Rejected(e),
            },
        };
        CallbackOutcome {
            verdict,
            ack_accepted: http::text_answer(200, "success"),
            ack_rejected: http::text_answer(400, "fail"),
        }
    }

    fn build_query(request: QueryRequest) -> Result<HttpRequest, ChannelError> {
        wire::query_request(&request.order_no)
    }

    fn parse_query_response(
        request: QueryRequest,
        response: HttpResponse,
    ) -> Result<PaymentUpdate, ChannelError> {
        wire::read_query_answer(&request, &response)
    }

    fn build_refund(request: RefundRequest) -> Result<HttpRequest, ChannelError> {
        wire::refund_request(&request)
    }

    fn parse_refund_response(
        request: RefundRequest,
        response: HttpResponse,
    ) -> Result<RefundUpdate, ChannelError> {
        wire::read_refund_answer(&request, &response)
    }

    fn route_score(context: RouteContext) -> Option<RouteQuote> {
        let serves = METHODS.contains(&context.method.as_str())
            && context.flow == CheckoutFlow::DirectCard
            && wire::numeric_currency(&context.amount.currency).is_some();
        let min = sdk::setting_or("min-amount-minor", 1);
        let max = sdk::setting_or("max-amount-minor", i64::MAX);
        let in_range = (min..=max).contains(&context.amount.minor);
        (serves && in_range).then(|| sdk::quote(&context.amount, 600, 300))
    }

    fn build_statement_request(day: String) -> Result<HttpRequest, ChannelError> {
        wire::batch_list_request(&day)
    }

    fn parse_statement_response(
        _day: String,
        response: HttpResponse,
    ) -> Result<StatementStep, ChannelError> {
        wire::check_batch_list(&response)?;
        Ok(StatementStep::Document(response.body))
    }

    fn parse_statement(document: Vec<u8>) -> Result<Vec<StatementLine>, ChannelError> {
        wire::read_batch_list(&document)
    }
}

coffer_plugin_sdk::not_a_store!(CaresPay);
coffer_plugin_sdk::export_channel!(CaresPay);
