//! The catalog: what each game sells, for how much in each region, how many are left and how
//! many one player may buy. Read through a moka cache; every write through this instance
//! invalidates it.

mod price;
mod store;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::games::GameId;
use crate::store::Store;
pub use price::{MoneyView, PriceSpec};
pub use store::{count_purchase, release_purchase, release_stock, reserve_stock};

/// What kind of thing a SKU is. Coffer treats them alike; the game gives the grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkuKind {
    /// Soft currency ("100 gems").
    CurrencyPack,
    /// Several items together.
    Bundle,
    /// A monthly card: `period_days` of benefits the game hands out.
    Subscription,
    /// Sold once per player, whatever `per_player_limit` says.
    OneTime,
}

/// Something the game must give the player: an item code and a quantity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    pub item: String,
    pub quantity: i64,
}

/// A SKU as an operator writes it (create or replace).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkuSpec {
    /// The SKU's code within its game ("gems-100"): letters, digits, '_', '.', '-'.
    pub code: String,
    pub kind: SkuKind,
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub grants: Vec<Grant>,
    pub prices: Vec<PriceSpec>,
    /// Length of a subscription, in days; only for `subscription`.
    #[serde(default)]
    pub period_days: Option<u32>,
    /// Units that may ever be sold; absent = unlimited.
    #[serde(default)]
    pub stock_total: Option<i64>,
    /// Orders one player may hold for this SKU (pending or paid); absent = unlimited.
    #[serde(default)]
    pub per_player_limit: Option<i64>,
    /// Unix milliseconds; the sale window is [starts, ends).
    #[serde(default)]
    pub sale_starts_at: Option<i64>,
    #[serde(default)]
    pub sale_ends_at: Option<i64>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// The app store products this SKU is sold as, at most one per store channel.
    #[serde(default)]
    pub store_products: Vec<StoreProduct>,
}

/// A SKU as an app store sells it: the store channel and the product id set up in the store
/// (App Store Connect, the Play Console). A game's product ids are unique per channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreProduct {
    pub channel: String,
    pub product_id: String,
}

fn enabled_by_default() -> bool {
    true
}

/// A SKU as stored: the spec plus what the store keeps.
#[derive(Debug, Clone, Serialize)]
pub struct Sku {
    pub game: GameId,
    #[serde(flatten)]
    pub spec: SkuSpec,
    /// Units held by orders (pending or paid); `stock_total - stock_reserved` are left.
    pub stock_reserved: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("{0}")]
    Invalid(String),
    #[error("no SKU {0:?} in this game")]
    NotFound(String),
    #[error("SKU {0:?} already exists")]
    Exists(String),
    #[error("stock_total {total} is below the {reserved} units already held by orders")]
    StockBelowReserved { total: i64, reserved: i64 },
    #[error("no game {0}")]
    UnknownGame(String),
    #[error("cannot load the catalog: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl SkuSpec {
    pub fn validate(&self) -> Result<(), CatalogError> {
        let invalid = |why: &str| Err(CatalogError::Invalid(why.to_owned()));
        let code_ok = (1..=64).contains(&self.code.len())
            && self
                .code
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !code_ok {
            return invalid("code must be 1-64 characters of letters, digits, '_', '.', '-'");
        }
        if self.title.trim().is_empty() || self.title.chars().count() > 100 {
            return invalid("title must be 1-100 characters");
        }
        if self.description.chars().count() > 1000 {
            return invalid("description is at most 1000 characters");
        }
        if self.grants.is_empty() || self.grants.len() > 50 {
            return invalid("a SKU grants 1 to 50 items");
        }
        for grant in &self.grants {
            if grant.item.is_empty() || grant.item.len() > 64 || grant.quantity <= 0 {
                return invalid("each grant needs an item code (1-64 chars) and a quantity > 0");
            }
        }
        if self.prices.is_empty() || self.prices.len() > 200 {
            return invalid("a SKU has 1 to 200 prices");
        }
        for (i, price) in self.prices.iter().enumerate() {
            price.validate().map_err(CatalogError::Invalid)?;
            if self.prices[..i]
                .iter()
                .any(|p| p.region == price.region && p.currency == price.currency)
            {
                return invalid("two prices for the same region and currency");
            }
        }
        for (i, product) in self.store_products.iter().enumerate() {
            let channel_ok = (1..=32).contains(&product.channel.len())
                && product
                    .channel
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !channel_ok {
                return invalid("a store product's channel is a channel id (a-z, 0-9, '-')");
            }
            let id_ok = (1..=150).contains(&product.product_id.len())
                && product.product_id.bytes().all(|b| b.is_ascii_graphic());
            if !id_ok {
                return invalid("a store product id is 1-150 visible ASCII characters");
            }
            if self.store_products[..i]
                .iter()
                .any(|p| p.channel == product.channel)
            {
                return invalid("a SKU has one product per store channel");
            }
        }
        match (self.kind, self.period_days) {
            (SkuKind::Subscription, Some(1..=3660))
            | (SkuKind::CurrencyPack | SkuKind::Bundle | SkuKind::OneTime, None) => {}
            (SkuKind::Subscription, _) => {
                return invalid("a subscription needs period_days (1-3660)");
            }
            _ => return invalid("period_days is only for subscriptions"),
        }
        if self.stock_total.is_some_and(|n| n < 0) {
            return invalid("stock_total cannot be negative");
        }
        if self.per_player_limit.is_some_and(|n| n < 1) {
            return invalid("per_player_limit must be at least 1");
        }
        if let (Some(start), Some(end)) = (self.sale_starts_at, self.sale_ends_at)
            && start >= end
        {
            return invalid("sale_starts_at must be before sale_ends_at");
        }
        Ok(())
    }

    /// The purchase limit that applies: one-time SKUs are once per player.
    pub fn effective_limit(&self) -> Option<i64> {
        match self.kind {
            SkuKind::OneTime => Some(1),
            _ => self.per_player_limit,
        }
    }

    pub fn on_sale_at(&self, now_ms: i64) -> bool {
        self.enabled
            && self.sale_starts_at.is_none_or(|start| now_ms >= start)
            && self.sale_ends_at.is_none_or(|end| now_ms < end)
    }
}

impl Sku {
    /// Units left, or None when stock is unlimited.
    pub fn stock_left(&self) -> Option<i64> {
        self.spec
            .stock_total
            .map(|total| (total - self.stock_reserved).max(0))
    }
}

/// How long a price, sale window or purchase limit changed through another instance may take
/// to apply to new orders here (through this instance: at once). Stock and purchase counts are
/// never read from it: the order's own conditional writes decide them.
pub const PRICING_CACHE_TTL: Duration = Duration::from_secs(1);

/// The catalog area: its store and its caches.
#[derive(Clone)]
pub struct Catalog {
    store: Store,
    cache: moka::future::Cache<GameId, Arc<Vec<Sku>>>,
    /// One SKU as orders price it, by game and code (see [`PRICING_CACHE_TTL`]).
    pricing: moka::sync::Cache<(GameId, String), Arc<Sku>>,
}

impl Catalog {
    /// Forgets what is cached of `game`, after a change through this instance.
    async fn forget(&self, game: &GameId) {
        self.cache.invalidate(game).await;
        self.pricing.invalidate_all();
    }

    pub fn new(store: Store, cache_ttl: Duration) -> Self {
        Self {
            store,
            cache: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(cache_ttl)
                .build(),
            pricing: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(PRICING_CACHE_TTL)
                .build(),
        }
    }

    /// Every SKU of a game, from the cache when it is fresh.
    pub async fn skus(&self, game: &GameId) -> Result<Arc<Vec<Sku>>, CatalogError> {
        let store = self.store.clone();
        let loaded = self
            .cache
            .try_get_with(game.clone(), async move {
                store::list(&store, game).await.map(Arc::new)
            })
            .await;
        loaded.map_err(|e| CatalogError::Unavailable(e.to_string()))
    }

    /// Units left of each limited SKU, fresh from the store.
    pub async fn stock_left(
        &self,
        game: &GameId,
    ) -> Result<std::collections::HashMap<String, i64>, CatalogError> {
        store::stock_left(&self.store, game).await
    }

    /// One SKU, fresh from the store (stock counts included).
    pub async fn sku(&self, game: &GameId, code: &str) -> Result<Sku, CatalogError> {
        store::get(&self.store, game, code).await
    }

    /// One SKU as an order prices it: its price, sale window and purchase limit as in force
    /// within [`PRICING_CACHE_TTL`] (its stock figures are not for deciding anything).
    pub async fn sku_for_pricing(
        &self,
        game: &GameId,
        code: &str,
    ) -> Result<Arc<Sku>, CatalogError> {
        let key = (game.clone(), code.to_owned());
        if let Some(sku) = self.pricing.get(&key) {
            return Ok(sku);
        }
        let sku = Arc::new(store::get(&self.store, game, code).await?);
        self.pricing.insert(key, sku.clone());
        Ok(sku)
    }

    /// The SKU a store channel sells as `product_id`, priced like [`Self::sku_for_pricing`].
    pub async fn sku_for_store_product(
        &self,
        game: &GameId,
        channel: &str,
        product_id: &str,
    ) -> Result<Arc<Sku>, CatalogError> {
        let code = store::sku_of_store_product(self.store.pool(), game, channel, product_id)
            .await?
            .ok_or_else(|| {
                CatalogError::NotFound(format!("(the {channel} product {product_id})"))
            })?;
        self.sku_for_pricing(game, &code).await
    }

    pub async fn create(&self, game: &GameId, spec: SkuSpec) -> Result<Sku, CatalogError> {
        spec.validate()?;
        let sku = store::insert(&self.store, game, spec).await?;
        self.forget(game).await;
        Ok(sku)
    }

    /// Replaces a SKU's spec; the stock held by orders stays.
    pub async fn replace(
        &self,
        game: &GameId,
        code: &str,
        spec: SkuSpec,
    ) -> Result<Sku, CatalogError> {
        spec.validate()?;
        if spec.code != code {
            return Err(CatalogError::Invalid(
                "the code in the body must match the URL".into(),
            ));
        }
        let sku = store::replace(&self.store, game, spec).await?;
        self.forget(game).await;
        Ok(sku)
    }

    /// Forgets what is cached for a game (after its stock changed through an order).
    pub async fn invalidate(&self, game: &GameId) {
        self.forget(game).await;
    }
}

#[cfg(test)]
mod tests;
