//! How big a plugin's answer is: the bytes of every string and list in it, added up, plus a
//! fixed charge per string and per list element (what the host spends on each, even empty).
//! Checked against the output cap before the answer leaves the runtime.

use crate::bindings::types::*;

pub(crate) trait OutputSize {
    fn output_size(&self) -> usize;
}

/// What an empty string or list element costs the host: its pointer, length and capacity.
const ELEMENT_OVERHEAD: usize = std::mem::size_of::<String>();

impl OutputSize for String {
    fn output_size(&self) -> usize {
        ELEMENT_OVERHEAD + self.len()
    }
}

impl OutputSize for u8 {
    fn output_size(&self) -> usize {
        1
    }
}

impl<T: OutputSize> OutputSize for Vec<T> {
    fn output_size(&self) -> usize {
        ELEMENT_OVERHEAD + self.iter().map(OutputSize::output_size).sum::<usize>()
    }
}

impl<T: OutputSize> OutputSize for Option<T> {
    fn output_size(&self) -> usize {
        self.as_ref().map_or(0, OutputSize::output_size)
    }
}

impl<A: OutputSize, B: OutputSize> OutputSize for (A, B) {
    fn output_size(&self) -> usize {
        self.0.output_size() + self.1.output_size()
    }
}

impl<T: OutputSize, E: OutputSize> OutputSize for Result<T, E> {
    fn output_size(&self) -> usize {
        match self {
            Ok(t) => t.output_size(),
            Err(e) => e.output_size(),
        }
    }
}

/// Plain values count a few bytes each; only their strings and lists can be large.
macro_rules! fixed_size {
    ($($t:ty),*) => {$(
        impl OutputSize for $t {
            fn output_size(&self) -> usize { std::mem::size_of::<$t>() }
        }
    )*};
}

fixed_size!(
    (),
    bool,
    u16,
    u32,
    i64,
    HttpMethod,
    CheckoutFlow,
    PaymentStatus,
    RefundStatus,
    StatementEntryKind,
    StorePurchaseState,
    StoreProductKind
);

/// Records: the sum of their fields.
macro_rules! record_size {
    ($($t:ty { $($field:ident),* })*) => {$(
        impl OutputSize for $t {
            fn output_size(&self) -> usize { 0 $(+ self.$field.output_size())* }
        }
    )*};
}

record_size! {
    Money { minor, currency }
    HttpRequest { method, url, headers, body }
    HttpAnswer { status, headers, body }
    FormPost { url, fields }
    Failure { code, message }
    PaymentUpdate { order_no, channel_txn_id, status, amount, paid_at, failure, channel_status }
    PaymentOutcome { update, action }
    RefundUpdate { refund_no, order_no, channel_refund_id, status, amount, failure, channel_status }
    UnverifiedClaim { order_no, claimed_status }
    CallbackOutcome { verdict, ack_accepted, ack_rejected }
    RouteQuote { score, fee }
    StatementLine {
        kind, order_no, refund_no, channel_txn_id, amount, fee, occurred_at, channel_status
    }
    StoreProof { token, product_id }
    StorePurchase {
        transaction_id, original_transaction_id, token, product_id, kind, quantity, state, price,
        purchased_at, expires_at, revoked_at, storefront, needs_acknowledgement, channel_status
    }
    RevokedPage { purchases, next_page }
    AccessToken { token, expires_in }
    ChannelInfo {
        id, name, version, contract_version, methods, flows, currencies, countries, keys,
        settings, endpoints, supports_refund, supports_partial_refund, supports_statement
    }
}

impl OutputSize for PaymentStart {
    fn output_size(&self) -> usize {
        match self {
            PaymentStart::Call(r) => r.output_size(),
            PaymentStart::Action(a) => a.output_size(),
        }
    }
}

impl OutputSize for NextAction {
    fn output_size(&self) -> usize {
        match self {
            NextAction::None | NextAction::Wait => 0,
            NextAction::Redirect(url) | NextAction::QrCode(url) => url.output_size(),
            NextAction::PostForm(form) => form.output_size(),
        }
    }
}

impl OutputSize for CallbackEvent {
    fn output_size(&self) -> usize {
        match self {
            CallbackEvent::Payment(u) => u.output_size(),
            CallbackEvent::Refund(u) => u.output_size(),
            CallbackEvent::Store(e) => e.output_size(),
        }
    }
}

impl OutputSize for CallbackVerdict {
    fn output_size(&self) -> usize {
        match self {
            CallbackVerdict::Verified(e) => e.output_size(),
            CallbackVerdict::Unverified(c) => c.output_size(),
            CallbackVerdict::StoreClaim(p) => p.output_size(),
            CallbackVerdict::Rejected(e) => e.output_size(),
        }
    }
}

impl OutputSize for StoreEvent {
    fn output_size(&self) -> usize {
        match self {
            StoreEvent::Purchased(p)
            | StoreEvent::Renewed(p)
            | StoreEvent::Expired(p)
            | StoreEvent::Revoked(p) => p.output_size(),
            StoreEvent::Informational(what) => what.output_size(),
        }
    }
}

impl OutputSize for StatementStep {
    fn output_size(&self) -> usize {
        match self {
            StatementStep::Document(bytes) => ELEMENT_OVERHEAD + bytes.len(),
            StatementStep::Follow(request) => request.output_size(),
        }
    }
}

impl OutputSize for ChannelError {
    fn output_size(&self) -> usize {
        match self {
            ChannelError::BadSignature(s)
            | ChannelError::Malformed(s)
            | ChannelError::Upstream(s)
            | ChannelError::Config(s)
            | ChannelError::Unsupported(s)
            | ChannelError::Key(s)
            | ChannelError::Internal(s) => s.output_size(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_strings_are_not_free() {
        let headers: Vec<(String, String)> = vec![(String::new(), String::new()); 100_000];
        assert!(headers.output_size() >= 100_000 * 2 * ELEMENT_OVERHEAD);
    }
}
