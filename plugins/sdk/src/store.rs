//! For channels that are no app store: [`not_a_store!`](crate::not_a_store) answers the whole
//! `store` export with `unsupported`.

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
