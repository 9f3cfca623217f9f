//! Which channel carries a payment: the one the game named, or the best `route-score` among
//! the loaded channels that serve the method, flow and currency. (Full routing rules, with
//! weights, health and risk, come later.)

use std::sync::Arc;

use coffer_money::Money;
use coffer_plugin_runtime::contract::{CheckoutFlow, RouteContext, RouteQuote};
use coffer_plugin_runtime::{Channel, Registry};

use super::contract::route_context;
use super::model::Flow;

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("no channel {0:?} is loaded")]
    UnknownChannel(String),
    #[error("channel {channel} does not serve {method}/{flow} in {currency}")]
    ChannelCannot {
        channel: String,
        method: String,
        flow: &'static str,
        currency: String,
    },
    #[error("every channel that could carry the payment failed to answer; try again later")]
    ChannelsFailing,
    #[error("no loaded channel serves {method}/{flow} in {currency}")]
    NoChannel {
        method: String,
        flow: &'static str,
        currency: String,
    },
}

/// Whether a channel says it serves this kind of payment and is fully configured.
fn serves(channel: &Channel, method: &str, flow: Flow, amount: Money) -> bool {
    let info = channel.info();
    let status = channel.status();
    flow != Flow::Store
        && info.methods.iter().any(|m| m == method)
        && info.flows.contains(&CheckoutFlow::from(flow))
        && info
            .currencies
            .iter()
            .any(|c| c == amount.currency().code())
        && status.missing_keys.is_empty()
        && status.missing_settings.is_empty()
        && status.missing_endpoints.is_empty()
}

/// The store channel an order paid in the store names: loaded, and a store (it offers no
/// checkout flow of its own).
pub fn store_channel(registry: &Registry, named: Option<&str>) -> Result<Arc<Channel>, RouteError> {
    let named = named.unwrap_or_default();
    registry
        .get(named)
        .filter(|channel| channel.info().flows.is_empty())
        .ok_or_else(|| RouteError::NoChannel {
            method: named.to_owned(),
            flow: Flow::Store.as_str(),
            currency: "any".into(),
        })
}

/// Picks the channel. Plugin failures while scoring count as "cannot serve".
pub async fn choose(
    registry: &Registry,
    explicit: Option<&str>,
    method: &str,
    flow: Flow,
    amount: Money,
    country: &str,
) -> Result<Arc<Channel>, RouteError> {
    let context = route_context(method, flow, amount, country);
    let cannot = |channel: &str| RouteError::ChannelCannot {
        channel: channel.to_owned(),
        method: method.to_owned(),
        flow: flow.as_str(),
        currency: amount.currency().code().to_owned(),
    };
    if let Some(id) = explicit {
        let channel = registry
            .get(id)
            .ok_or_else(|| RouteError::UnknownChannel(id.to_owned()))?;
        if !serves(&channel, method, flow, amount) {
            return Err(cannot(id));
        }
        return match channel.route_score(&context).await {
            Ok(Some(_)) => Ok(channel),
            Ok(None) => Err(cannot(id)),
            Err(error) => {
                tracing::warn!(channel = id, %error, "route-score failed");
                Err(RouteError::ChannelsFailing)
            }
        };
    }
    let candidates: Vec<Arc<Channel>> = registry
        .channels()
        .into_iter()
        .filter(|c| serves(c, method, flow, amount))
        .collect();
    let quotes = futures_quotes(&candidates, &context).await;
    let failed = quotes.iter().filter(|q| q.is_err()).count();
    let best = candidates
        .into_iter()
        .zip(quotes)
        .filter_map(|(channel, quote)| quote.ok().flatten().map(|q| (channel, q)))
        // Highest score, then lowest fee, then channel id for a stable choice.
        .max_by(|(a, qa), (b, qb)| {
            qa.score
                .cmp(&qb.score)
                .then(qb.fee.minor.cmp(&qa.fee.minor))
                .then(b.id().cmp(a.id()))
        });
    match best {
        Some((channel, _)) => Ok(channel),
        // A plugin that fails is Coffer's problem, not the game's: say so apart from "none
        // of the channels serves this payment".
        None if failed > 0 => Err(RouteError::ChannelsFailing),
        None => Err(RouteError::NoChannel {
            method: method.to_owned(),
            flow: flow.as_str(),
            currency: amount.currency().code().to_owned(),
        }),
    }
}

/// Every candidate's quote, asked concurrently; `Err` for a plugin that failed.
async fn futures_quotes(
    channels: &[Arc<Channel>],
    context: &RouteContext,
) -> Vec<Result<Option<RouteQuote>, ()>> {
    let mut tasks = tokio::task::JoinSet::new();
    for (i, channel) in channels.iter().enumerate() {
        let channel = channel.clone();
        let context = context.clone();
        tasks.spawn(async move {
            let quote = channel.route_score(&context).await.map_err(|error| {
                tracing::warn!(channel = channel.id(), %error, "route-score failed");
            });
            (i, quote)
        });
    }
    let mut quotes = vec![Err(()); channels.len()];
    while let Some(joined) = tasks.join_next().await {
        if let Ok((i, quote)) = joined {
            quotes[i] = quote;
        }
    }
    quotes
}
