//! A loaded plugin whatever contract version it was built against: the calls take and give the
//! newest types, and a plugin of an older version gets them adapted both ways.

use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::adapt::{Downgrade, Upgrade};
use super::types::*;
use super::{CONTRACT_VERSION, ChannelPre, v0_1_0};
use crate::sandbox::CallState;

/// A plugin linked and ready to instantiate, per contract version.
#[derive(Clone)]
pub(crate) enum PluginPre {
    Latest(ChannelPre<CallState>),
    V0_1_0(v0_1_0::ChannelPre<CallState>),
}

/// One instance of a plugin, in one call's store.
pub(crate) enum PluginInstance {
    Latest(super::Channel),
    V0_1_0(v0_1_0::Channel),
}

impl PluginPre {
    /// Finds the exports of `version` (one of [`super::SUPPORTED_CONTRACT_VERSIONS`]).
    pub fn new(version: &str, pre: InstancePre<CallState>) -> wasmtime::Result<Self> {
        match version {
            CONTRACT_VERSION => Ok(Self::Latest(ChannelPre::new(pre)?)),
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
            Self::V0_1_0(pre) => PluginInstance::V0_1_0(pre.instantiate_async(store).await?),
        })
    }
}

/// One method per export: the newest plugin is called as is, an older one with its arguments
/// downgraded and its answer upgraded.
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

impl PluginInstance {
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
