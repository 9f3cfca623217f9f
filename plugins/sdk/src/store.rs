//! The two halves a channel does not have: [`not_a_store!`](crate::not_a_store) answers the
//! whole `store` export `unsupported` for card and wallet channels, and
//! [`paid_in_the_store!`](crate::paid_in_the_store) the payment calls for app store channels.

/// Implements [`Store`](crate::Store) for `$plugin` with every call `unsupported`: card and
/// wallet channels take payments through `create-payment`, never from store proofs.
#[macro_export]
macro_rules! not_a_store {
    ($plugin:ty) => {
        impl $crate::Store for $plugin {
            fn build_lookup(
                _: $crate::StoreProof,
            ) -> ::core::result::Result<$crate::HttpRequest, $crate::ChannelError> {
                Err($crate::store::not_a_store())
            }
            fn parse_lookup(
                _: $crate::StoreProof,
                _: $crate::HttpResponse,
            ) -> ::core::result::Result<$crate::StorePurchase, $crate::ChannelError> {
                Err($crate::store::not_a_store())
            }
            fn build_acknowledge(
                _: $crate::StorePurchase,
            ) -> ::core::result::Result<Option<$crate::HttpRequest>, $crate::ChannelError> {
                Err($crate::store::not_a_store())
            }
            fn parse_acknowledge_response(
                _: $crate::StorePurchase,
                _: $crate::HttpResponse,
            ) -> ::core::result::Result<(), $crate::ChannelError> {
                Err($crate::store::not_a_store())
            }
            fn build_revoked_request(
                _: i64,
                _: Option<String>,
            ) -> ::core::result::Result<Option<$crate::HttpRequest>, $crate::ChannelError> {
                Ok(None)
            }
            fn parse_revoked_response(
                _: $crate::HttpResponse,
            ) -> ::core::result::Result<$crate::RevokedPage, $crate::ChannelError> {
                Err($crate::store::not_a_store())
            }
            fn build_access_token_request()
            -> ::core::result::Result<Option<$crate::HttpRequest>, $crate::ChannelError> {
                Ok(None)
            }
            fn parse_access_token_response(
                _: $crate::HttpResponse,
            ) -> ::core::result::Result<$crate::AccessToken, $crate::ChannelError> {
                Err($crate::store::not_a_store())
            }
        }
    };
}

/// The answer of a channel that is no app store.
pub fn not_a_store() -> crate::ChannelError {
    crate::unsupported("this channel is not an app store")
}

/// Implements [`Plugin`](crate::Plugin) for an app store channel, whose purchases are paid in
/// the store and reach Coffer as proofs: `info` and `parse_callback` are the channel's, every
/// payment call is `unsupported` (the store takes the money), and so are refunds (made in the
/// store's console) and statements, which the store channels do not fetch yet.
///
/// ```ignore
/// coffer_plugin_sdk::paid_in_the_store!(AppStore, info: channel_info(), callback: notification::parse);
/// ```
#[macro_export]
macro_rules! paid_in_the_store {
    ($plugin:ty, info: $info:expr, callback: $callback:path) => {
        impl $crate::Plugin for $plugin {
            fn info() -> $crate::ChannelInfo {
                $info
            }

            fn create_payment(
                _: $crate::PaymentRequest,
            ) -> ::core::result::Result<$crate::PaymentStart, $crate::ChannelError> {
                Err($crate::store::paid_in_the_store())
            }

            fn parse_payment_response(
                _: $crate::PaymentContext,
                _: $crate::HttpResponse,
            ) -> ::core::result::Result<$crate::PaymentOutcome, $crate::ChannelError> {
                Err($crate::store::paid_in_the_store())
            }

            fn parse_callback(request: $crate::InboundRequest) -> $crate::CallbackOutcome {
                $callback(&request)
            }

            fn build_query(
                _: $crate::QueryRequest,
            ) -> ::core::result::Result<$crate::HttpRequest, $crate::ChannelError> {
                Err($crate::store::paid_in_the_store())
            }

            fn parse_query_response(
                _: $crate::QueryRequest,
                _: $crate::HttpResponse,
            ) -> ::core::result::Result<$crate::PaymentUpdate, $crate::ChannelError> {
                Err($crate::store::paid_in_the_store())
            }

            fn build_refund(
                _: $crate::RefundRequest,
            ) -> ::core::result::Result<$crate::HttpRequest, $crate::ChannelError> {
                Err($crate::store::refunded_in_the_store())
            }

            fn parse_refund_response(
                _: $crate::RefundRequest,
                _: $crate::HttpResponse,
            ) -> ::core::result::Result<$crate::RefundUpdate, $crate::ChannelError> {
                Err($crate::store::refunded_in_the_store())
            }

            fn route_score(_: $crate::RouteContext) -> Option<$crate::RouteQuote> {
                // Never a route for Coffer's own checkout.
                None
            }

            fn build_statement_request(
                _: String,
            ) -> ::core::result::Result<$crate::HttpRequest, $crate::ChannelError> {
                Err($crate::store::no_statements())
            }

            fn parse_statement_response(
                _: String,
                _: $crate::HttpResponse,
            ) -> ::core::result::Result<$crate::StatementStep, $crate::ChannelError> {
                Err($crate::store::no_statements())
            }

            fn parse_statement(
                _: Vec<u8>,
            ) -> ::core::result::Result<Vec<$crate::StatementLine>, $crate::ChannelError> {
                Err($crate::store::no_statements())
            }
        }
    };
}

/// The answer of a store channel asked to take a payment itself.
pub fn paid_in_the_store() -> crate::ChannelError {
    crate::unsupported("store purchases are paid in the store and sent to Coffer as proofs")
}

/// The answer of a store channel asked to refund: stores refund from their own consoles.
pub fn refunded_in_the_store() -> crate::ChannelError {
    crate::unsupported("the store refunds from its own console; Coffer hears of it")
}

/// The answer of a store channel asked for a statement.
pub fn no_statements() -> crate::ChannelError {
    crate::unsupported("this store's financial reports are not fetched yet")
}
