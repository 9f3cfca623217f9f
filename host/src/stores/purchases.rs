//! The `store_purchases` table: one row per store transaction turned into an order, written in
//! the order's own transaction. Its primary key (channel, transaction id) is what makes a
//! proof redeemable once, however many requests race with it.

use sqlx::Row;

use crate::channels::StorePurchase;
use crate::channels::store::StoreProductKind;
use crate::games::GameId;
use crate::orders::OrderNo;
use crate::store::{Store, Tx, now_ms};

/// A store purchase Coffer made an order of.
#[derive(Debug, Clone)]
pub struct Redeemed {
    pub channel: String,
    pub order_no: OrderNo,
    pub game: GameId,
    pub transaction_id: String,
    pub token: String,
    pub product_id: String,
    pub needs_acknowledgement: bool,
    pub acknowledged_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub created_at: i64,
}

fn kind_name(kind: StoreProductKind) -> &'static str {
    match kind {
        StoreProductKind::Consumable => "consumable",
        StoreProductKind::NonConsumable => "non_consumable",
        StoreProductKind::Subscription => "subscription",
    }
}

/// Claims `purchase` for `order_no`; `false` when another order already has it.
pub(super) async fn claim(
    tx: &mut Tx,
    channel: &str,
    purchase: &StorePurchase,
    order_no: &OrderNo,
    game: &GameId,
) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "INSERT INTO store_purchases (channel, transaction_id, order_no, game_id, \
         original_transaction_id, token, product_id, kind, purchased_at, expires_at, \
         needs_acknowledgement, acknowledged_at, revoked_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, NULL, $12) \
         ON CONFLICT DO NOTHING",
    )
    .bind(channel.to_owned())
    .bind(purchase.transaction_id.clone())
    .bind(order_no.to_string())
    .bind(game.as_str().to_owned())
    .bind(purchase.original_transaction_id.clone())
    .bind(purchase.token.clone())
    .bind(purchase.product_id.clone())
    .bind(kind_name(purchase.kind))
    .bind(purchase.purchased_at_s.saturating_mul(1000))
    .bind(purchase.expires_at_s.map(|s| s.saturating_mul(1000)))
    .bind(purchase.needs_acknowledgement)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

fn redeemed(row: &sqlx::any::AnyRow) -> Result<Redeemed, sqlx::Error> {
    let decode = |e: String| sqlx::Error::Decode(e.into());
    Ok(Redeemed {
        channel: row.try_get("channel")?,
        order_no: OrderNo::parse(&row.try_get::<String, _>("order_no")?)
            .map_err(|e| decode(e.to_string()))?,
        game: GameId::parse(&row.try_get::<String, _>("game_id")?).map_err(decode)?,
        transaction_id: row.try_get("transaction_id")?,
        token: row.try_get("token")?,
        product_id: row.try_get("product_id")?,
        needs_acknowledgement: crate::store::flag(row, "needs_acknowledgement")?,
        acknowledged_at: row.try_get("acknowledged_at")?,
        revoked_at: row.try_get("revoked_at")?,
        created_at: row.try_get("created_at")?,
    })
}

/// The order a channel's transaction became, if any.
pub(super) async fn by_transaction<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    channel: &str,
    transaction_id: &str,
) -> Result<Option<Redeemed>, sqlx::Error> {
    sqlx::query("SELECT * FROM store_purchases WHERE channel = $1 AND transaction_id = $2")
        .bind(channel.to_owned())
        .bind(transaction_id.to_owned())
        .fetch_optional(executor)
        .await?
        .as_ref()
        .map(redeemed)
        .transpose()
}

/// The order a proof's token already became, if any (the App Store's token is the
/// transaction id; Google's purchase token names one purchase too).
pub(super) async fn by_token(
    store: &Store,
    channel: &str,
    token: &str,
) -> Result<Option<Redeemed>, sqlx::Error> {
    sqlx::query("SELECT * FROM store_purchases WHERE channel = $1 AND token = $2")
        .bind(channel.to_owned())
        .bind(token.to_owned())
        .fetch_optional(store.pool())
        .await?
        .as_ref()
        .map(redeemed)
        .transpose()
}

/// Where a walk through the purchases awaiting acknowledgement stands: after this one.
pub(super) type AckCursor = (i64, String, String);

/// Up to `limit` purchases whose store waits for an acknowledgement, oldest first, after
/// `after` (a walk goes past those whose order is not delivered yet).
pub(super) async fn awaiting_acknowledgement(
    store: &Store,
    after: Option<&AckCursor>,
    limit: u32,
) -> Result<Vec<Redeemed>, sqlx::Error> {
    let (created_at, channel, transaction) =
        after
            .cloned()
            .unwrap_or((i64::MIN, String::new(), String::new()));
    sqlx::query(
        "SELECT * FROM store_purchases WHERE needs_acknowledgement = $1 \
         AND acknowledged_at IS NULL AND revoked_at IS NULL \
         AND (created_at, channel, transaction_id) > ($2, $3, $4) \
         ORDER BY created_at, channel, transaction_id LIMIT $5",
    )
    .bind(true)
    .bind(created_at)
    .bind(channel)
    .bind(transaction)
    .bind(i64::from(limit))
    .fetch_all(store.pool())
    .await?
    .iter()
    .map(redeemed)
    .collect()
}

/// Notes that the store took the acknowledgement.
pub(super) async fn mark_acknowledged(
    tx: &mut Tx,
    channel: &str,
    transaction_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE store_purchases SET acknowledged_at = $1 \
         WHERE channel = $2 AND transaction_id = $3 AND acknowledged_at IS NULL",
    )
    .bind(now_ms())
    .bind(channel.to_owned())
    .bind(transaction_id.to_owned())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Notes when the store revoked the purchase (the refund itself is the order's).
pub(super) async fn mark_revoked(
    tx: &mut Tx,
    channel: &str,
    transaction_id: &str,
    revoked_at_ms: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE store_purchases SET revoked_at = COALESCE(revoked_at, $1) \
         WHERE channel = $2 AND transaction_id = $3",
    )
    .bind(revoked_at_ms)
    .bind(channel.to_owned())
    .bind(transaction_id.to_owned())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Notes that the subscription `transaction_id` paid for ended; `false` when it was noted before.
pub(super) async fn mark_expired(
    tx: &mut Tx,
    channel: &str,
    transaction_id: &str,
) -> Result<bool, sqlx::Error> {
    let marked = sqlx::query(
        "UPDATE store_purchases SET expired_at = $1 \
         WHERE channel = $2 AND transaction_id = $3 AND expired_at IS NULL",
    )
    .bind(now_ms())
    .bind(channel.to_owned())
    .bind(transaction_id.to_owned())
    .execute(&mut *tx)
    .await?;
    Ok(marked.rows_affected() == 1)
}
