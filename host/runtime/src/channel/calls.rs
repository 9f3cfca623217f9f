//! The contract's calls. Each runs in a fresh sandbox, and each answer is checked before the
//! host may act on it: requests must go to configured endpoints, updates must be about the
//! payment that was asked about.

use super::{CallClass, Channel, Sandbox, SecretCard};
use crate::bindings::types::*;
use crate::error::PluginError;
use crate::sandbox::within_budget;

impl Channel {
    pub(super) fn output_limit(&self) -> usize {
        self.engine.limits().output_bytes
    }

    /// Asks the plugin who it is. Done once at load time; later callers use [`Channel::info`].
    pub(crate) async fn call_info(&self) -> Result<ChannelInfo, PluginError> {
        call!(self, self.output_limit(), call_info())
    }

    /// Starts a payment. A direct-card payment's card comes as `card`, never in
    /// `request.card` (which must be `None`): see [`SecretCard`].
    pub async fn create_payment(
        &self,
        request: &PaymentRequest,
        card: Option<&SecretCard>,
    ) -> Result<PaymentStart, PluginError> {
        if request.card.is_some() {
            return Err(PluginError::CardInRequest);
        }
        let mut request = request.clone();
        request.card = card.map(SecretCard::expose);
        let called = call!(self, self.output_limit(), call_create_payment(&request));
        if let Some(card) = request.card.as_mut() {
            super::card::wipe(card);
        }
        let start = called?.map_err(PluginError::Channel)?;
        if let PaymentStart::Call(http) = &start {
            self.config.check_egress(&http.url)?;
        }
        Ok(start)
    }

    pub async fn parse_payment_response(
        &self,
        context: &PaymentContext,
        response: &HttpResponse,
    ) -> Result<PaymentOutcome, PluginError> {
        let outcome = call!(
            self,
            self.output_limit(),
            call_parse_payment_response(context, response)
        )?
        .map_err(PluginError::Channel)?;
        same_order(&context.order_no, &outcome.update.order_no)?;
        Ok(outcome)
    }

    pub async fn parse_callback(
        &self,
        request: &InboundRequest,
    ) -> Result<CallbackOutcome, PluginError> {
        let outcome = call!(self, self.output_limit(), call_parse_callback(request))?;
        // A browser return is unsigned by nature: a plugin claiming to have verified one is
        // wrong, and the host would be trusting a forgeable request.
        if request.kind == InboundKind::BrowserReturn
            && matches!(outcome.verdict, CallbackVerdict::Verified(_))
        {
            return Err(PluginError::ContractViolation(
                "a browser return cannot be verified; report it as unverified".into(),
            ));
        }
        Ok(outcome)
    }

    pub async fn build_query(&self, request: &QueryRequest) -> Result<HttpRequest, PluginError> {
        let http = call!(self, self.output_limit(), call_build_query(request))?
            .map_err(PluginError::Channel)?;
        self.config.check_egress(&http.url)?;
        Ok(http)
    }

    pub async fn parse_query_response(
        &self,
        request: &QueryRequest,
        response: &HttpResponse,
    ) -> Result<PaymentUpdate, PluginError> {
        let update = call!(
            self,
            self.output_limit(),
            call_parse_query_response(request, response)
        )?
        .map_err(PluginError::Channel)?;
        same_order(&request.order_no, &update.order_no)?;
        Ok(update)
    }

    pub async fn build_refund(&self, request: &RefundRequest) -> Result<HttpRequest, PluginError> {
        let http = call!(self, self.output_limit(), call_build_refund(request))?
            .map_err(PluginError::Channel)?;
        self.config.check_egress(&http.url)?;
        Ok(http)
    }

    pub async fn parse_refund_response(
        &self,
        request: &RefundRequest,
        response: &HttpResponse,
    ) -> Result<RefundUpdate, PluginError> {
        let update = call!(
            self,
            self.output_limit(),
            call_parse_refund_response(request, response)
        )?
        .map_err(PluginError::Channel)?;
        if update.refund_no != request.refund_no {
            return Err(PluginError::ContractViolation(format!(
                "asked about refund {}, answered about {}",
                request.refund_no, update.refund_no
            )));
        }
        Ok(update)
    }

    pub async fn route_score(
        &self,
        context: &RouteContext,
    ) -> Result<Option<RouteQuote>, PluginError> {
        let quote = call!(self, self.output_limit(), call_route_score(context))?;
        if let Some(q) = &quote
            && q.score > 1000
        {
            return Err(PluginError::ContractViolation(format!(
                "route score {} is outside 0..=1000",
                q.score
            )));
        }
        Ok(quote)
    }

    pub async fn build_statement_request(&self, day: &str) -> Result<HttpRequest, PluginError> {
        let http = call!(self, self.output_limit(), call_build_statement_request(day))?
            .map_err(PluginError::Channel)?;
        self.config.check_egress(&http.url)?;
        Ok(http)
    }

    pub async fn parse_statement_response(
        &self,
        day: &str,
        response: &HttpResponse,
    ) -> Result<StatementStep, PluginError> {
        let limit = self.engine.limits().statement_output_bytes;
        let step = call!(
            self,
            CallClass::Statement,
            limit,
            call_parse_statement_response(day, response)
        )?
        .map_err(PluginError::Channel)?;
        if let StatementStep::Follow(http) = &step {
            self.config.check_egress(&http.url)?;
        }
        Ok(step)
    }

    pub async fn parse_statement(
        &self,
        document: &[u8],
    ) -> Result<Vec<StatementLine>, PluginError> {
        let limit = self.engine.limits().statement_output_bytes;
        call!(
            self,
            CallClass::Statement,
            limit,
            call_parse_statement(document)
        )?
        .map_err(PluginError::Channel)
    }
}

fn same_order(asked: &str, answered: &str) -> Result<(), PluginError> {
    if asked == answered {
        Ok(())
    } else {
        Err(PluginError::ContractViolation(format!(
            "asked about order {asked}, answered about {answered}"
        )))
    }
}
