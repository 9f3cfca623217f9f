//! `GET /v1/catalog?region=CN`: what a game sells in a region right now.

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::game_auth::SignedBy;
use crate::api::problem::Problem;
use crate::app::AppState;
use crate::catalog::{Grant, MoneyView, SkuKind};
use crate::games::Region;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogQuery {
    region: Option<String>,
}

#[derive(Serialize)]
struct CatalogItem<'a> {
    sku: &'a str,
    kind: SkuKind,
    title: &'a str,
    description: &'a str,
    grants: &'a [Grant],
    /// The prices that apply in the region (several when it has several currencies).
    prices: Vec<MoneyView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    period_days: Option<u32>,
    /// Units left right now; absent when unlimited.
    #[serde(skip_serializing_if = "Option::is_none")]
    stock_left: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    per_player_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sale_ends_at: Option<i64>,
}

pub async fn list(
    State(state): State<AppState>,
    Extension(signed): Extension<SignedBy>,
    query: Result<Query<CatalogQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let Query(query) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
    let region = match query.region.as_deref() {
        Some(code) => Region::parse(code).map_err(Problem::bad_request)?,
        None => signed.default_region.clone(),
    };
    let skus = state.catalog.skus(&signed.game).await?;
    let stock_left = state.catalog.stock_left(&signed.game).await?;
    let now = crate::store::now_ms();
    let items: Vec<CatalogItem> = skus
        .iter()
        .filter(|sku| sku.spec.on_sale_at(now))
        .filter_map(|sku| {
            let prices: Vec<MoneyView> = sku
                .spec
                .prices_in(&region)
                .into_iter()
                .map(MoneyView::from)
                .collect();
            (!prices.is_empty()).then(|| CatalogItem {
                sku: &sku.spec.code,
                kind: sku.spec.kind,
                title: &sku.spec.title,
                description: &sku.spec.description,
                grants: &sku.spec.grants,
                prices,
                period_days: sku.spec.period_days,
                stock_left: stock_left.get(&sku.spec.code).copied(),
                per_player_limit: sku.spec.effective_limit(),
                sale_ends_at: sku.spec.sale_ends_at,
            })
        })
        .collect();
    Ok(axum::Json(serde_json::json!({ "region": region, "items": items })).into_response())
}
