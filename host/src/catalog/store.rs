//! The catalog's tables: `skus`, `store_products` and `purchase_counts`. Stock and purchase limits are changed
//! only by conditional `UPDATE`s, which both databases apply atomically per row: two buyers of
//! the last unit cannot both get it.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{CatalogError, Sku, SkuSpec};
use crate::games::GameId;
use crate::store::{Store, Tx, now_ms};

fn sku_from_row(row: &AnyRow) -> Result<Sku, sqlx::Error> {
    let decode = |e: String| sqlx::Error::Decode(e.into());
    let json = |column: &str| -> Result<String, sqlx::Error> { row.try_get(column) };
    let kind: String = row.try_get("kind")?;
    let spec = SkuSpec {
        code: row.try_get("code")?,
        kind: serde_json::from_value(serde_json::Value::String(kind))
            .map_err(|e| decode(e.to_string()))?,
        title: row.try_get("title")?,
        description: row.try_get("description")?,
        grants: serde_json::from_str(&json("grants")?).map_err(|e| decode(e.to_string()))?,
        prices: serde_json::from_str(&json("prices")?).map_err(|e| decode(e.to_string()))?,
        period_days: row
            .try_get::<Option<i64>, _>("period_days")?
            .map(|d| d as u32),
        stock_total: row.try_get("stock_total")?,
        per_player_limit: row.try_get("per_player_limit")?,
        sale_starts_at: row.try_get("sale_starts_at")?,
        sale_ends_at: row.try_get("sale_ends_at")?,
        enabled: crate::store::flag(row, "enabled")?,
        store_products: serde_json::from_str(&json("store_products")?)
            .map_err(|e| decode(e.to_string()))?,
    };
    Ok(Sku {
        game: GameId::parse(&row.try_get::<String, _>("game_id")?).map_err(decode)?,
        spec,
        stock_reserved: row.try_get("stock_reserved")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn kind_name(spec: &SkuSpec) -> String {
    match serde_json::to_value(spec.kind) {
        Ok(serde_json::Value::String(name)) => name,
        _ => unreachable!("a unit enum serializes as a string"),
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

/// Binds a spec's fields, in the order both `insert` and `replace` list them: kind, title,
/// description, grants, prices, period_days, stock_total, per_player_limit, sale_starts_at,
/// sale_ends_at, enabled, store_products.
fn bind_spec<'q>(query: AnyQuery<'q>, spec: &SkuSpec) -> AnyQuery<'q> {
    query
        .bind(kind_name(spec))
        .bind(spec.title.clone())
        .bind(spec.description.clone())
        .bind(serde_json::to_string(&spec.grants).expect("grants serialize"))
        .bind(serde_json::to_string(&spec.prices).expect("prices serialize"))
        .bind(spec.period_days.map(i64::from))
        .bind(spec.stock_total)
        .bind(spec.per_player_limit)
        .bind(spec.sale_starts_at)
        .bind(spec.sale_ends_at)
        .bind(spec.enabled)
        .bind(serde_json::to_string(&spec.store_products).expect("store products serialize"))
}

pub(super) async fn list(store: &Store, game: &GameId) -> Result<Vec<Sku>, CatalogError> {
    let rows = sqlx::query("SELECT * FROM skus WHERE game_id = $1 ORDER BY code")
        .bind(game.as_str().to_owned())
        .fetch_all(store.pool())
        .await?;
    Ok(rows.iter().map(sku_from_row).collect::<Result<_, _>>()?)
}

pub(super) async fn get(store: &Store, game: &GameId, code: &str) -> Result<Sku, CatalogError> {
    let row = sqlx::query("SELECT * FROM skus WHERE game_id = $1 AND code = $2")
        .bind(game.as_str().to_owned())
        .bind(code.to_owned())
        .fetch_optional(store.pool())
        .await?
        .ok_or_else(|| CatalogError::NotFound(code.to_owned()))?;
    Ok(sku_from_row(&row)?)
}

pub(super) async fn insert(
    store: &Store,
    game: &GameId,
    spec: SkuSpec,
) -> Result<Sku, CatalogError> {
    if crate::games::find(store, game.as_str()).await?.is_none() {
        return Err(CatalogError::UnknownGame(game.to_string()));
    }
    let now = now_ms();
    let inserted = store
        .write(
            (game.clone(), spec.clone(), now),
            |tx, (game, spec, now)| Box::pin(insert_in(tx, game, spec, *now)),
        )
        .await?;
    if !inserted {
        return Err(CatalogError::Exists(spec.code));
    }
    Ok(Sku {
        game: game.clone(),
        spec,
        stock_reserved: 0,
        created_at: now,
        updated_at: now,
    })
}

pub(super) async fn replace(
    store: &Store,
    game: &GameId,
    spec: SkuSpec,
) -> Result<Sku, CatalogError> {
    store
        .write((game.clone(), spec.clone()), |tx, (game, spec)| {
            Box::pin(replace_in(tx, game, spec))
        })
        .await?;
    get(store, game, &spec.code).await
}

/// Inserts a SKU and claims its store products; `false` when the code exists.
async fn insert_in(
    tx: &mut Tx,
    game: &GameId,
    spec: &SkuSpec,
    now: i64,
) -> Result<bool, CatalogError> {
    let insert = sqlx::query(
        "INSERT INTO skus (game_id, code, kind, title, description, grants, prices, \
         period_days, stock_total, per_player_limit, sale_starts_at, sale_ends_at, \
         enabled, store_products, stock_reserved, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 0, $15, $15) \
         ON CONFLICT DO NOTHING",
    )
    .bind(game.as_str().to_owned())
    .bind(spec.code.clone());
    let inserted = bind_spec(insert, spec).bind(now).execute(&mut *tx).await?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    claim_store_products(tx, game, spec).await?;
    Ok(true)
}

/// Makes `spec`'s store products its own, and only those: a product id another SKU of the
/// game is sold as is refused (the whole write with it).
async fn claim_store_products(
    tx: &mut Tx,
    game: &GameId,
    spec: &SkuSpec,
) -> Result<(), CatalogError> {
    sqlx::query("DELETE FROM store_products WHERE game_id = $1 AND sku_code = $2")
        .bind(game.as_str().to_owned())
        .bind(spec.code.clone())
        .execute(&mut *tx)
        .await?;
    for product in &spec.store_products {
        let claimed = sqlx::query(
            "INSERT INTO store_products (game_id, channel, product_id, sku_code) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(game.as_str().to_owned())
        .bind(product.channel.clone())
        .bind(product.product_id.clone())
        .bind(spec.code.clone())
        .execute(&mut *tx)
        .await?;
        if claimed.rows_affected() == 0 {
            let owner = sku_of_store_product(&mut *tx, game, &product.channel, &product.product_id)
                .await?
                .unwrap_or_default();
            return Err(CatalogError::Invalid(format!(
                "the {} product {} is already sold as SKU {owner:?}",
                product.channel, product.product_id
            )));
        }
    }
    Ok(())
}

/// The code of the SKU a store channel sells as `product_id`.
pub(super) async fn sku_of_store_product<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    game: &GameId,
    channel: &str,
    product_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT sku_code FROM store_products WHERE game_id = $1 AND channel = $2 \
         AND product_id = $3",
    )
    .bind(game.as_str().to_owned())
    .bind(channel.to_owned())
    .bind(product_id.to_owned())
    .fetch_optional(executor)
    .await
}

async fn replace_in(tx: &mut Tx, game: &GameId, spec: &SkuSpec) -> Result<(), CatalogError> {
    let reserved: Option<i64> =
        sqlx::query_scalar("SELECT stock_reserved FROM skus WHERE game_id = $1 AND code = $2")
            .bind(game.as_str().to_owned())
            .bind(spec.code.clone())
            .fetch_optional(&mut *tx)
            .await?;
    let Some(reserved) = reserved else {
        return Err(CatalogError::NotFound(spec.code.clone()));
    };
    // Guarded in the UPDATE too: an order may reserve a unit between the read and the write.
    let updated = sqlx::query(
        "UPDATE skus SET kind = $1, title = $2, description = $3, grants = $4, prices = $5, \
         period_days = $6, stock_total = $7, per_player_limit = $8, sale_starts_at = $9, \
         sale_ends_at = $10, enabled = $11, store_products = $12, updated_at = $13 \
         WHERE game_id = $14 AND code = $15 AND ($7 IS NULL OR stock_reserved <= $7)",
    );
    let updated = bind_spec(updated, spec)
        .bind(now_ms())
        .bind(game.as_str().to_owned())
        .bind(spec.code.clone())
        .execute(&mut *tx)
        .await?;
    if updated.rows_affected() == 0 {
        return Err(CatalogError::StockBelowReserved {
            total: spec.stock_total.unwrap_or_default(),
            reserved,
        });
    }
    claim_store_products(tx, game, spec).await
}

/// Units left of each limited SKU of a game, read fresh (stock moves with every order, so it
/// is not cached with the rest of the catalog).
pub(super) async fn stock_left(
    store: &Store,
    game: &GameId,
) -> Result<std::collections::HashMap<String, i64>, CatalogError> {
    let rows = sqlx::query(
        "SELECT code, stock_total - stock_reserved AS left_units FROM skus \
         WHERE game_id = $1 AND stock_total IS NOT NULL",
    )
    .bind(game.as_str().to_owned())
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("code")?,
                row.try_get::<i64, _>("left_units")?.max(0),
            ))
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(CatalogError::from)
}

/// Takes one unit of a limited SKU for an order. False when none is left. SKUs without a
/// stock limit are not touched.
pub async fn reserve_stock(tx: &mut Tx, game: &GameId, code: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE skus SET stock_reserved = stock_reserved + 1 \
         WHERE game_id = $1 AND code = $2 AND stock_total IS NOT NULL \
         AND stock_reserved < stock_total",
    )
    .bind(game.as_str().to_owned())
    .bind(code.to_owned())
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Gives back a unit an order held (the order closed or failed).
pub async fn release_stock(tx: &mut Tx, game: &GameId, code: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE skus SET stock_reserved = stock_reserved - 1 \
         WHERE game_id = $1 AND code = $2 AND stock_reserved > 0",
    )
    .bind(game.as_str().to_owned())
    .bind(code.to_owned())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Counts one more order of `code` for the player, unless that would pass `limit`. False
/// when the player has reached the limit.
pub async fn count_purchase(
    tx: &mut Tx,
    player: &str,
    game: &GameId,
    code: &str,
    limit: i64,
) -> Result<bool, sqlx::Error> {
    // One statement: the first purchase inserts 1; later ones add 1 unless the limit is
    // reached, in which case nothing changes and no row is affected.
    let done = sqlx::query(
        "INSERT INTO purchase_counts (player_id, game_id, sku_code, purchases) \
         VALUES ($1, $2, $3, 1) \
         ON CONFLICT (player_id, game_id, sku_code) DO UPDATE \
         SET purchases = purchase_counts.purchases + 1 \
         WHERE purchase_counts.purchases < $4",
    )
    .bind(player.to_owned())
    .bind(game.as_str().to_owned())
    .bind(code.to_owned())
    .bind(limit)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Forgets one order of `code` for the player (the order closed without payment).
pub async fn release_purchase(
    tx: &mut Tx,
    player: &str,
    game: &GameId,
    code: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE purchase_counts SET purchases = purchases - 1 \
         WHERE player_id = $1 AND game_id = $2 AND sku_code = $3 AND purchases > 0",
    )
    .bind(player.to_owned())
    .bind(game.as_str().to_owned())
    .bind(code.to_owned())
    .execute(&mut *tx)
    .await?;
    Ok(())
}
