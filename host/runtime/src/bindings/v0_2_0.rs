//! Contract 0.2.0, frozen in `wit/since_v0.2.0/`: its generated types and how they map to the
//! newest. Its imports did not change, so a 0.2.0 plugin is linked to the newest `host` and
//! `sealed-keys` under their 0.2.0 names; the types the exports trade are adapted both ways.
//!
//! What changed since (0.3.0): `payment-request.started-at` and `query-request.started-at`,
//! which a 0.2.0 plugin is not given; the store records, `callback-event.store` and
//! `callback-verdict.store-claim`, which a 0.2.0 plugin never sends; the `store` export and the
//! `access` import, which it has not: asked to act as a store, it is `unsupported` without being
//! called.

use wasmtime::component::{HasSelf, Linker};

use super::adapt::same_shape;
use crate::sandbox::CallState;

pub const VERSION: &str = "0.2.0";

wasmtime::component::bindgen!({
    path: "../../wit/since_v0.2.0",
    world: "channel",
    with: {
        "coffer:channel/host": super::coffer::channel::host,
        "coffer:channel/sealed-keys": super::coffer::channel::sealed_keys,
    },
    exports: { default: async },
});

/// Defines the 0.2.0 imports on `linker`: the newest `host` and `sealed-keys` under their
/// 0.2.0 names.
pub(crate) fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    fn getter(state: &mut CallState) -> &mut CallState {
        state
    }
    coffer::channel::types::add_to_linker::<_, HasSelf<_>>(linker, getter)?;
    let mut host = linker.instance("coffer:channel/host@0.2.0")?;
    super::coffer::channel::host::add_to_linker_instance::<_, HasSelf<_>>(&mut host, getter)?;
    let mut keys = linker.instance("coffer:channel/sealed-keys@0.2.0")?;
    super::coffer::channel::sealed_keys::add_to_linker_instance::<_, HasSelf<_>>(
        &mut keys, getter,
    )?;
    Ok(())
}

impl coffer::channel::types::Host for CallState {}

use super::types as new;
use coffer::channel::types as old;

same_shape! { old => new;
    record Money { minor, currency }
    record HttpRequest { method, url, headers, body }
    record HttpResponse { status, headers, body }
    record HttpAnswer { status, headers, body }
    record InboundRequest { kind, method, path, query, headers, body }
    record Card { number, expiry_month, expiry_year, cvc, holder_name }
    record Address { country, state, city, line1, line2, postal_code }
    record Customer { id, email, first_name, last_name, phone, ip, billing, shipping }
    downgrade record PaymentRequest {
        order_no, amount, method, flow, subject, description, customer, card, language,
        return_url, notify_url, expires_at,
    }
    record FormPost { url, fields }
    record Failure { code, message }
    record PaymentUpdate {
        order_no, channel_txn_id, status, amount, paid_at, failure, channel_status,
    }
    record PaymentContext { order_no, amount, method, flow, channel_txn_id }
    record PaymentOutcome { update, action }
    record RefundRequest {
        refund_no, order_no, channel_txn_id, order_amount, refund_amount, reason, notify_url,
    }
    record RefundUpdate {
        refund_no, order_no, channel_refund_id, status, amount, failure, channel_status,
    }
    downgrade record QueryRequest { order_no, channel_txn_id, amount }
    record UnverifiedClaim { order_no, claimed_status }
    upgrade record CallbackOutcome { verdict, ack_accepted, ack_rejected }
    record RouteContext { amount, method, flow, country, card_bin }
    record RouteQuote { score, fee }
    record StatementLine {
        kind, order_no, refund_no, channel_txn_id, amount, fee, occurred_at, channel_status,
    }
    record ChannelInfo {
        id, name, version, contract_version, methods, flows, currencies, countries, keys,
        settings, endpoints, supports_refund, supports_partial_refund, supports_statement,
    }
    variant HttpMethod { Get, Post, Put, Patch, Delete }
    variant InboundKind { Notify, BrowserReturn }
    variant CheckoutFlow { DirectCard, Redirect, QrCode }
    variant PaymentStatus {
        Pending, RequiresAction, Paid, Failed, Closed, Refunded, PartiallyRefunded, Chargeback,
    }
    variant RefundStatus { Pending, Succeeded, Failed }
    variant StatementEntryKind { Payment, Refund, Chargeback, Fee, Adjustment }
    variant PaymentStart { Call(request), Action(action) }
    variant NextAction { None, Redirect(url), PostForm(form), QrCode(content), Wait }
    upgrade variant CallbackEvent { Payment(update), Refund(update) }
    upgrade variant CallbackVerdict { Verified(event), Unverified(claim), Rejected(error) }
    variant StatementStep { Document(bytes), Follow(request) }
    variant ChannelError {
        BadSignature(why), Malformed(why), Upstream(why), Config(why), Unsupported(why),
        Key(why), Internal(why),
    }
}

/// Clears the copy of a card that a 0.2.0 plugin was given (see `channel::card`).
pub(crate) fn wipe(card: &mut old::Card) {
    use zeroize::Zeroize;
    card.number.zeroize();
    card.cvc.zeroize();
}
