//! Plugin administration: list, reload, and ask one channel for a routing quote.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use coffer_money::Currency;
use coffer_plugin_runtime::{ChannelStatus, FileFailure, ReloadReport};
use serde::{Deserialize, Serialize};

use crate::api::problem::Problem;
use crate::app::AppState;
use crate::channels::{Flow, contract};

#[derive(Serialize)]
pub struct PluginList {
    pub contract_version: &'static str,
    pub dir: String,
    pub channels: Vec<ChannelStatus>,
    /// Files that failed to load; `still_serving` names a channel kept on its previous version.
    pub failures: Vec<FileFailure>,
}

pub async fn list(State(state): State<AppState>) -> Json<PluginList> {
    let registry = &state.channels.registry;
    Json(PluginList {
        contract_version: coffer_plugin_runtime::CONTRACT_VERSION,
        dir: registry.dir().display().to_string(),
        channels: registry.statuses(),
        failures: registry.failures().await,
    })
}

/// Rescans the plugins directory now. 200 even if some files failed: the report says which.
pub async fn reload(State(state): State<AppState>) -> Json<ReloadReport> {
    Json(state.channels.registry.reload().await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    pub amount_minor: i64,
    pub currency: String,
    pub method: String,
    #[serde(default = "default_flow")]
    pub flow: FlowName,
    #[serde(default)]
    pub country: String,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
pub enum FlowName {
    DirectCard,
    Redirect,
    QrCode,
}

fn default_flow() -> FlowName {
    FlowName::Redirect
}

#[derive(Serialize)]
pub struct QuoteAnswer {
    pub channel: String,
    pub version: String,
    /// Absent when the channel cannot carry this payment.
    pub quote: Option<Quote>,
}

#[derive(Serialize)]
pub struct Quote {
    pub score: u16,
    pub fee_minor: i64,
    pub currency: String,
}

/// What `route-score` says for a payment: lets an operator see why a channel is (not) chosen.
pub async fn quote(
    State(state): State<AppState>,
    Path(channel): Path<String>,
    crate::api::body::Json(request): crate::api::body::Json<QuoteRequest>,
) -> Result<Json<QuoteAnswer>, Problem> {
    let plugin = state
        .channels
        .registry
        .get(&channel)
        .ok_or_else(|| Problem::not_found(&format!("no channel {channel:?} is loaded")))?;
    let currency =
        Currency::parse(&request.currency).map_err(|e| Problem::bad_request(e.to_string()))?;
    if request.amount_minor <= 0 {
        return Err(Problem::bad_request("amount_minor must be positive"));
    }
    let flow = match request.flow {
        FlowName::DirectCard => Flow::DirectCard,
        FlowName::Redirect => Flow::Redirect,
        FlowName::QrCode => Flow::QrCode,
    };
    let amount = coffer_money::Money::new(request.amount_minor, currency);
    let context = contract::route_context(&request.method, flow, amount, &request.country);
    let quote = plugin.route_score(&context).await.map_err(|e| {
        tracing::error!(%channel, error = %e, "route-score failed");
        Problem::new(
            StatusCode::BAD_GATEWAY,
            "plugin-failed",
            "The channel plugin failed",
        )
        .with_detail(e.to_string())
    })?;
    Ok(Json(QuoteAnswer {
        channel: plugin.id().to_owned(),
        version: plugin.info().version.clone(),
        quote: quote.map(|q| Quote {
            score: q.score,
            fee_minor: q.fee.minor,
            currency: q.fee.currency,
        }),
    }))
}
