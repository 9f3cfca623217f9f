//! The contract boundary: every conversion between the plugin contract's generated records
//! (`coffer_plugin_runtime::contract`, from `wit/channel.wit`) and Coffer's own types
//! (`model.rs`). Nothing outside the channels area builds or reads a contract record, so a
//! new contract version changes this file, not the order center.
//!
//! Card data never passes here: it travels sealed, beside the request
//! (`coffer_plugin_runtime::SecretCard`).

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use coffer_money::Money;
use coffer_plugin_runtime::contract::{
    self, CallbackEvent, CallbackVerdict, CheckoutFlow, HttpAnswer, HttpMethod, InboundKind,
    InboundRequest, PaymentContext, PaymentRequest, PaymentStart, PaymentStatus, PaymentUpdate,
    QueryRequest, RefundRequest, RefundStatus, RefundUpdate, RouteContext, StatementEntryKind,
    StatementLine,
};

use super::model::{
    Ack, Address, Charged, Flow, NextAction, Notice, Payer, PaymentAsk, PaymentReport,
    PaymentState, Reason, RefundAsk, RefundReport, RefundState, Start, StatementEntry,
    StatementKind,
};
use super::store::{StoreEvent, StoreProductKind, StoreProof, StorePurchase, StorePurchaseState};

pub fn money(money: Money) -> contract::Money {
    contract::Money {
        minor: money.minor(),
        currency: money.currency().code().to_owned(),
    }
}

fn charged(money: contract::Money) -> Charged {
    Charged::new(money.minor, &money.currency)
}

impl From<Flow> for CheckoutFlow {
    fn from(flow: Flow) -> Self {
        match flow {
            Flow::DirectCard => Self::DirectCard,
            Flow::Redirect => Self::Redirect,
            Flow::QrCode => Self::QrCode,
            // Never sent: a store payment has no checkout (`routing` offers it no channel).
            Flow::Store => Self::Redirect,
        }
    }
}

fn address(address: &Address) -> contract::Address {
    contract::Address {
        country: address.country.to_ascii_uppercase(),
        state: address.state.clone(),
        city: address.city.clone(),
        line1: address.line1.clone(),
        line2: address.line2.clone(),
        postal_code: address.postal_code.clone(),
    }
}

fn customer(payer: &Payer) -> contract::Customer {
    contract::Customer {
        id: payer.id.clone(),
        email: payer.email.clone(),
        first_name: payer.first_name.clone(),
        last_name: payer.last_name.clone(),
        phone: payer.phone.clone(),
        ip: payer.ip.clone(),
        billing: payer.billing.as_ref().map(address),
        shipping: payer.shipping.as_ref().map(address),
    }
}

/// The `create-payment` request. Its `card` is always `None`: the runtime adds the sealed
/// card for the length of the call.
pub fn payment_request(ask: &PaymentAsk) -> PaymentRequest {
    PaymentRequest {
        order_no: ask.payment_ref.clone(),
        amount: money(ask.amount),
        method: ask.method.clone(),
        flow: ask.flow.into(),
        subject: ask.subject.clone(),
        description: String::new(),
        customer: customer(&ask.payer),
        card: None,
        language: ask.language.clone(),
        return_url: ask.return_url.clone(),
        notify_url: ask.notify_url.clone(),
        expires_at: ask.expires_at_s,
        started_at: ask.started_at_s,
    }
}

/// What the stateless plugin needs to read the channel's answer to `create-payment`.
pub fn payment_context(ask: &PaymentAsk) -> PaymentContext {
    PaymentContext {
        order_no: ask.payment_ref.clone(),
        amount: money(ask.amount),
        method: ask.method.clone(),
        flow: ask.flow.into(),
        channel_txn_id: None,
    }
}

/// The query about a payment attempt started at `started_at_s` (Unix seconds).
pub fn query_request(
    payment_ref: &str,
    channel_txn_id: Option<&str>,
    amount: Money,
    started_at_s: i64,
) -> QueryRequest {
    QueryRequest {
        order_no: payment_ref.to_owned(),
        channel_txn_id: channel_txn_id.map(str::to_owned),
        amount: money(amount),
        started_at: started_at_s,
    }
}

pub fn refund_request(ask: &RefundAsk) -> RefundRequest {
    RefundRequest {
        refund_no: ask.refund_no.clone(),
        order_no: ask.payment_ref.clone(),
        channel_txn_id: ask.channel_txn_id.clone(),
        order_amount: money(ask.paid),
        refund_amount: money(ask.amount),
        reason: ask.reason.clone(),
        notify_url: ask.notify_url.clone(),
    }
}

pub fn route_context(method: &str, flow: Flow, amount: Money, country: &str) -> RouteContext {
    RouteContext {
        amount: money(amount),
        method: method.to_owned(),
        flow: flow.into(),
        country: country.to_owned(),
        card_bin: String::new(),
    }
}

/// A request that reached `/v1/callbacks/{channel}` (`BrowserReturn`: `/v1/return/{channel}`)
/// as the plugin reads it; `None` for a method channels do not use.
pub fn inbound_request(
    browser_return: bool,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Option<InboundRequest> {
    let method = match *method {
        Method::GET => HttpMethod::Get,
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::PATCH => HttpMethod::Patch,
        Method::DELETE => HttpMethod::Delete,
        _ => return None,
    };
    Some(InboundRequest {
        kind: if browser_return {
            InboundKind::BrowserReturn
        } else {
            InboundKind::Notify
        },
        method,
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers: headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect(),
        body: body.to_vec(),
    })
}

fn reason(failure: contract::Failure) -> Reason {
    Reason {
        code: failure.code,
        message: failure.message,
    }
}

impl From<PaymentStatus> for PaymentState {
    fn from(status: PaymentStatus) -> Self {
        match status {
            PaymentStatus::Pending => Self::Pending,
            PaymentStatus::RequiresAction => Self::RequiresAction,
            PaymentStatus::Paid => Self::Paid,
            PaymentStatus::Failed => Self::Failed,
            PaymentStatus::Closed => Self::Closed,
            PaymentStatus::Refunded => Self::Refunded,
            PaymentStatus::PartiallyRefunded => Self::PartiallyRefunded,
            PaymentStatus::Chargeback => Self::Chargeback,
        }
    }
}

impl From<PaymentUpdate> for PaymentReport {
    fn from(update: PaymentUpdate) -> Self {
        Self {
            payment_ref: update.order_no,
            channel_txn_id: update.channel_txn_id,
            state: update.status.into(),
            charged: update.amount.map(charged),
            reason: update.failure.map(reason),
            channel_status: update.channel_status,
        }
    }
}

impl From<RefundUpdate> for RefundReport {
    fn from(update: RefundUpdate) -> Self {
        Self {
            refund_no: update.refund_no,
            payment_ref: update.order_no,
            channel_refund_id: update.channel_refund_id,
            state: match update.status {
                RefundStatus::Pending => RefundState::Pending,
                RefundStatus::Succeeded => RefundState::Succeeded,
                RefundStatus::Failed => RefundState::Failed,
            },
            amount: charged(update.amount),
            reason: update.failure.map(reason),
            channel_status: update.channel_status,
        }
    }
}

impl From<CallbackVerdict> for Notice {
    fn from(verdict: CallbackVerdict) -> Self {
        match verdict {
            CallbackVerdict::Verified(CallbackEvent::Payment(update)) => {
                Self::Payment(update.into())
            }
            CallbackVerdict::Verified(CallbackEvent::Refund(update)) => Self::Refund(update.into()),
            CallbackVerdict::Verified(CallbackEvent::Store(event)) => Self::Store(event.into()),
            CallbackVerdict::StoreClaim(proof) => Self::StoreClaim(StoreProof {
                token: proof.token,
                product_id: proof.product_id,
            }),
            CallbackVerdict::Unverified(claim) => Self::Claim {
                payment_ref: claim.order_no,
            },
            CallbackVerdict::Rejected(error) => Self::Rejected {
                why: format!("{error:?}"),
            },
        }
    }
}

pub fn store_proof(proof: &StoreProof) -> contract::StoreProof {
    contract::StoreProof {
        token: proof.token.clone(),
        product_id: proof.product_id.clone(),
    }
}

pub fn store_purchase(purchase: contract::StorePurchase) -> StorePurchase {
    use contract::{StoreProductKind as Kind, StorePurchaseState as State};
    StorePurchase {
        transaction_id: purchase.transaction_id,
        original_transaction_id: purchase.original_transaction_id,
        token: purchase.token,
        product_id: purchase.product_id,
        kind: match purchase.kind {
            Kind::Consumable => StoreProductKind::Consumable,
            Kind::NonConsumable => StoreProductKind::NonConsumable,
            Kind::Subscription => StoreProductKind::Subscription,
        },
        quantity: purchase.quantity,
        state: match purchase.state {
            State::Purchased => StorePurchaseState::Purchased,
            State::Pending => StorePurchaseState::Pending,
            State::Revoked => StorePurchaseState::Revoked,
        },
        price: purchase.price.map(charged),
        purchased_at_s: purchase.purchased_at,
        expires_at_s: purchase.expires_at,
        revoked_at_s: purchase.revoked_at,
        storefront: purchase.storefront,
        needs_acknowledgement: purchase.needs_acknowledgement,
        channel_status: purchase.channel_status,
    }
}

/// A store purchase as the plugin gave it, for a call about it (an acknowledgement).
pub fn store_purchase_of(purchase: &StorePurchase) -> contract::StorePurchase {
    use contract::{StoreProductKind as Kind, StorePurchaseState as State};
    contract::StorePurchase {
        transaction_id: purchase.transaction_id.clone(),
        original_transaction_id: purchase.original_transaction_id.clone(),
        token: purchase.token.clone(),
        product_id: purchase.product_id.clone(),
        kind: match purchase.kind {
            StoreProductKind::Consumable => Kind::Consumable,
            StoreProductKind::NonConsumable => Kind::NonConsumable,
            StoreProductKind::Subscription => Kind::Subscription,
        },
        quantity: purchase.quantity,
        state: match purchase.state {
            StorePurchaseState::Purchased => State::Purchased,
            StorePurchaseState::Pending => State::Pending,
            StorePurchaseState::Revoked => State::Revoked,
        },
        price: purchase.price.as_ref().and_then(|p| match p {
            Charged::Money(money) => Some(self::money(*money)),
            Charged::UnknownCurrency { .. } => None,
        }),
        purchased_at: purchase.purchased_at_s,
        expires_at: purchase.expires_at_s,
        revoked_at: purchase.revoked_at_s,
        storefront: purchase.storefront.clone(),
        needs_acknowledgement: purchase.needs_acknowledgement,
        channel_status: purchase.channel_status.clone(),
    }
}

impl From<contract::StoreEvent> for StoreEvent {
    fn from(event: contract::StoreEvent) -> Self {
        use contract::StoreEvent as E;
        match event {
            E::Purchased(p) => Self::Purchased(store_purchase(p)),
            E::Renewed(p) => Self::Renewed(store_purchase(p)),
            E::Expired(p) => Self::Expired(store_purchase(p)),
            E::Revoked(p) => Self::Revoked(store_purchase(p)),
            E::Informational(what) => Self::Informational(what),
        }
    }
}

impl From<contract::NextAction> for NextAction {
    fn from(action: contract::NextAction) -> Self {
        match action {
            contract::NextAction::None => Self::None,
            contract::NextAction::Redirect(url) => Self::Redirect { url },
            contract::NextAction::PostForm(form) => Self::PostForm {
                url: form.url,
                fields: form.fields,
            },
            contract::NextAction::QrCode(content) => Self::QrCode { content },
            contract::NextAction::Wait => Self::Wait,
        }
    }
}

impl From<PaymentStart> for Start {
    fn from(start: PaymentStart) -> Self {
        match start {
            PaymentStart::Call(request) => Self::Send(request),
            PaymentStart::Action(action) => Self::Act(action.into()),
        }
    }
}

impl From<HttpAnswer> for Ack {
    fn from(answer: HttpAnswer) -> Self {
        Self {
            status: answer.status,
            headers: answer.headers,
            body: answer.body,
        }
    }
}

impl From<StatementLine> for StatementEntry {
    fn from(line: StatementLine) -> Self {
        // A fee in another currency than its line's cannot be told apart from the line's own
        // money: it is dropped (the statement's totals still show it to the operator).
        let fee = line
            .fee
            .filter(|fee| fee.currency == line.amount.currency)
            .map(|fee| fee.minor);
        Self {
            kind: match line.kind {
                StatementEntryKind::Payment => StatementKind::Payment,
                StatementEntryKind::Refund => StatementKind::Refund,
                StatementEntryKind::Chargeback => StatementKind::Chargeback,
                StatementEntryKind::Fee => StatementKind::Fee,
                StatementEntryKind::Adjustment => StatementKind::Adjustment,
            },
            order_no: line.order_no.filter(|o| !o.is_empty()),
            refund_no: line.refund_no.filter(|r| !r.is_empty()),
            channel_txn_id: line.channel_txn_id,
            minor: line.amount.minor,
            currency: line.amount.currency,
            fee,
            occurred_at_s: line.occurred_at,
            channel_status: line.channel_status,
        }
    }
}

#[cfg(test)]
mod tests {
    use coffer_money::Currency;

    use super::*;

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::parse("USD").unwrap())
    }

    #[test]
    fn a_report_in_a_currency_coffer_does_not_know_matches_no_order() {
        let update = PaymentUpdate {
            order_no: "P-1".into(),
            channel_txn_id: Some("T-1".into()),
            status: PaymentStatus::Paid,
            amount: Some(contract::Money {
                minor: 1999,
                currency: "XXQ".into(),
            }),
            paid_at: None,
            failure: None,
            channel_status: "TRADE_SUCCESS".into(),
        };
        let report = PaymentReport::from(update);
        assert_eq!(report.state, PaymentState::Paid);
        let charged = report.charged.expect("an amount");
        assert!(!charged.is(usd(1999)));
        assert_eq!(charged.to_string(), "1999 minor units of \"XXQ\"");
    }

    #[test]
    fn a_report_of_the_orders_money_matches_it() {
        let charged = charged(money(usd(1999)));
        assert!(charged.is(usd(1999)));
        assert!(!charged.is(usd(1998)));
    }

    #[test]
    fn requests_never_carry_a_card() {
        let ask = PaymentAsk {
            payment_ref: "P-1".into(),
            amount: usd(1999),
            method: "card".into(),
            flow: Flow::DirectCard,
            subject: "100 Gems".into(),
            payer: Payer::default(),
            language: "en".into(),
            return_url: "http://r".into(),
            notify_url: "http://n".into(),
            expires_at_s: 900,
            started_at_s: 0,
        };
        let request = payment_request(&ask);
        assert!(request.card.is_none());
        assert_eq!(request.flow, CheckoutFlow::DirectCard);
        assert_eq!(payment_context(&ask).amount, request.amount);
    }
}
