//! A loaded plugin whatever contract version it was built against: the calls take and give the
//! newest types, and a plugin of an older version gets them adapted both ways.

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::adapt::{Downgrade, Upgrade};
use super::types::*;
use super::{CONTRACT_VERSION, ChannelPre, v0_1_0, v0_2_0};
use crate::sandbox::CallState;

/// A plugin linked and ready to instantiate, per contract version.
#[derive(Clone)]
pub(crate) enum PluginPre {
    Latest(ChannelPre<CallState>),
    V0_2_0(v0_2_0::ChannelPre<CallState>),
    V0_1_0(v0_1_0::ChannelPre<CallState>),
}

/// One instance of a plugin, in one call's store.
pub(crate) enum PluginInstance {
    Latest(super::Channel),
    V0_2_0(v0_2_0::Channel),
    V0_1_0(v0_1_0::Channel),
}

impl PluginPre {
    /// Finds the exports of `version` (one of [`super::SUPPORTED_CONTRACT_VERSIONS`]).
    pub fn new(version: &str, pre: InstancePre<CallState>) -> wasmtime::Result<Self> {
        match version {
            CONTRACT_VERSION => Ok(Self::Latest(ChannelPre::new(pre)?)),
            v0_2_0::VERSION => Ok(Self::V0_2_0(v0_2_0::ChannelPre::new(pre)?)),
            v0_1_0::VERSION => Ok(Self::V0_1_0(v0_1_0::ChannelPre::new(pre)?)),
            other => Err(wasmtime::Error::msg(format!(
                "no bindings for contract version {other}"
            ))),
        }
    }

    pub async fn instantiate_async(
        &self,
        store: &mut Store<CallState>,
    ) -> wasmtime::Result<PluginInstance> {
        Ok(match self {
            Self::Latest(pre) => PluginInstance::Latest(pre.instantiate_async(store).await?),
            Self::V0_2_0(pre) => PluginInstance::V0_2_0(pre.instantiate_async(store).await?),
            Self::V0_1_0(pre) => PluginInstance::V0_1_0(pre.instantiate_async(store).await?),
        })
    }
}

/// One method per export of `plugin`: the newest plugin is called as is, an older one with its
/// arguments downgraded and its answer upgraded.
macro_rules! exports {
    ($(fn $export:ident($($arg:ident: &$ty:ty),*) -> $answer:ty;)*) => {
        impl PluginInstance {$(
            pub async fn $export(
                &self,
                store: &mut Store<CallState>,
                $($arg: &$ty),*
            ) -> wasmtime::Result<$answer> {
                match self {
                    Self::Latest(plugin) => {
                        plugin.coffer_channel_plugin().$export(store $(, $arg)*).await
                    }
                    Self::V0_2_0(plugin) => {
                        $(let $arg = $arg.downgrade();)*
                        let answer = plugin.coffer_channel_plugin().$export(store $(, &$arg)*).await?;
                        Ok(answer.upgrade())
                    }
                    Self::V0_1_0(plugin) => {
                        $(let $arg = $arg.downgrade();)*
                        let answer = plugin.coffer_channel_plugin().$export(store $(, &$arg)*).await?;
                        Ok(answer.upgrade())
                    }
                }
            }
        )*}
    };
}

exports! {
    fn call_info() -> ChannelInfo;
    fn call_parse_payment_response(context: &PaymentContext, response: &HttpResponse)
        -> Result<PaymentOutcome, ChannelError>;
    fn call_parse_callback(request: &InboundRequest) -> CallbackOutcome;
    fn call_build_query(request: &QueryRequest) -> Result<HttpRequest, ChannelError>;
    fn call_parse_query_response(request: &QueryRequest, response: &HttpResponse)
        -> Result<PaymentUpdate, ChannelError>;
    fn call_build_refund(request: &RefundRequest) -> Result<HttpRequest, ChannelError>;
    fn call_parse_refund_response(request: &RefundRequest, response: &HttpResponse)
        -> Result<RefundUpdate, ChannelError>;
    fn call_route_score(context: &RouteContext) -> Option<RouteQuote>;
    fn call_build_statement_request(day: &str) -> Result<HttpRequest, ChannelError>;
    fn call_parse_statement_response(day: &str, response: &HttpResponse)
        -> Result<StatementStep, ChannelError>;
    fn call_parse_statement(document: &[u8]) -> Result<Vec<StatementLine>, ChannelError>;
}

/// One method per export of `store`, which only the newest contract has: a plugin built
/// before it is no store, and answers without being called what its `older` function says
/// (`unsupported`, or "nothing to fetch" where that is the honest answer).
macro_rules! store_exports {
    ($(fn $export:ident($($arg:ident: $ty:ty),*) -> $answer:ty, older: $older:expr;)*) => {
        impl PluginInstance {$(
            pub async fn $export(
                &self,
                store: &mut Store<CallState>,
                $($arg: $ty),*
            ) -> wasmtime::Result<$answer> {
                match self {
                    Self::Latest(plugin) => {
                        plugin.coffer_channel_store().$export(store $(, $arg)*).await
                    }
                    Self::V0_2_0(_) | Self::V0_1_0(_) => {
                        let older: fn(&Self) -> $answer = $older;
                        Ok(older(self))
                    }
                }
            }
        )*}
    };
}

store_exports! {
    fn call_build_lookup(proof: &StoreProof) -> Result<HttpRequest, ChannelError>,
        older: |p| Err(p.not_a_store());
    fn call_parse_lookup(proof: &StoreProof, response: &HttpResponse)
        -> Result<StorePurchase, ChannelError>,
        older: |p| Err(p.not_a_store());
    fn call_build_acknowledge(purchase: &StorePurchase)
        -> Result<Option<HttpRequest>, ChannelError>,
        older: |p| Err(p.not_a_store());
    fn call_parse_acknowledge_response(purchase: &StorePurchase, response: &HttpResponse)
        -> Result<(), ChannelError>,
        older: |p| Err(p.not_a_store());
    fn call_build_revoked_request(since: i64, page: Option<&str>)
        -> Result<Option<HttpRequest>, ChannelError>,
        older: |_| Ok(None);
    fn call_parse_revoked_response(response: &HttpResponse)
        -> Result<RevokedPage, ChannelError>,
        older: |p| Err(p.not_a_store());
    fn call_build_access_token_request() -> Result<Option<HttpRequest>, ChannelError>,
        older: |_| Ok(None);
    fn call_parse_access_token_response(response: &HttpResponse)
        -> Result<AccessToken, ChannelError>,
        older: |p| Err(p.not_a_store());
}

impl PluginInstance {
    fn not_a_store(&self) -> ChannelError {
        ChannelError::Unsupported(format!(
            "a plugin built for contract {} is not an app store",
            self.version()
        ))
    }

    fn version(&self) -> &'static str {
        match self {
            Self::Latest(_) => CONTRACT_VERSION,
            Self::V0_2_0(_) => v0_2_0::VERSION,
            Self::V0_1_0(_) => v0_1_0::VERSION,
        }
    }

    /// Like the other exports, but the copy of the card an older plugin is given is wiped
    /// afterwards, as the caller wipes its own.
    pub async fn call_create_payment(
        &self,
        store: &mut Store<CallState>,
        request: &PaymentRequest,
    ) -> wasmtime::Result<Result<PaymentStart, ChannelError>> {
        match self {
            Self::Latest(plugin) => {
                plugin
                    .coffer_channel_plugin()
                    .call_create_payment(store, request)
                    .await
            }
            Self::V0_2_0(plugin) => {
                let mut request = request.downgrade();
                let answer = plugin
                    .coffer_channel_plugin()
                    .call_create_payment(&mut *store, &request)
                    .await;
                if let Some(card) = request.card.as_mut() {
                    v0_2_0::wipe(card);
                }
                Ok(answer?.upgrade())
            }
            Self::V0_1_0(plugin) => {
                let mut request = request.downgrade();
                let answer = plugin
                    .coffer_channel_plugin()
                    .call_create_payment(&mut *store, &request)
                    .await;
                if let Some(card) = request.card.as_mut() {
                    v0_1_0::wipe(card);
                }
                Ok(answer?.upgrade())
            }
        }
    }
}
