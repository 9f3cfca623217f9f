//! Revenue: what players paid (gross), what went back (refunds), what channels charged (fees)
//! and what is left (net), per game and currency and one more dimension, read from the ledger
//! and grouped by the orders area's facts about each order.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::csv::CsvRow;
use super::{Period, day_of};
use crate::store::Store;

/// The dimension a revenue report is broken down by (besides game and currency).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    #[default]
    Channel,
    Sku,
    Region,
    Day,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevenueRow {
    pub game: String,
    pub currency: String,
    /// The channel, SKU, region or day of this row.
    pub key: String,
    pub orders: i64,
    pub gross_minor: i64,
    pub refunds_minor: i64,
    pub fees_minor: i64,
    pub net_minor: i64,
}

impl CsvRow for RevenueRow {
    const HEADER: &'static [&'static str] = &[
        "game",
        "currency",
        "key",
        "orders",
        "gross_minor",
        "refunds_minor",
        "fees_minor",
        "net_minor",
    ];

    fn fields(&self) -> Vec<String> {
        vec![
            self.game.clone(),
            self.currency.clone(),
            self.key.clone(),
            self.orders.to_string(),
            self.gross_minor.to_string(),
            self.refunds_minor.to_string(),
            self.fees_minor.to_string(),
            self.net_minor.to_string(),
        ]
    }
}

/// An order's SKU and region.
struct Facts {
    sku: String,
    region: String,
}

/// Revenue in `period`, by game, currency and `group_by`. A posting counts on the day it was
/// posted (a refund in the period counts even if its payment did not).
pub async fn revenue(
    store: &Store,
    period: &Period,
    group_by: GroupBy,
) -> Result<Vec<RevenueRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT kind, side, account, game_id, currency, amount_minor, order_no, created_at \
         FROM ledger_postings WHERE created_at >= $1 AND created_at < $2 \
         AND ($3 = '' OR game_id = $3) \
         AND ((kind = 'payment' AND side = 'debit') OR (kind = 'refund' AND side = 'credit') \
              OR (kind = 'fee' AND account LIKE 'clearing:%'))",
    )
    .bind(period.from_ms)
    .bind(period.to_ms)
    .bind(period.game.clone().unwrap_or_default())
    .fetch_all(store.pool())
    .await?;
    let facts = if matches!(group_by, GroupBy::Sku | GroupBy::Region) {
        order_facts(store, period).await?
    } else {
        HashMap::new()
    };
    let mut table: BTreeMap<(String, String, String), RevenueRow> = BTreeMap::new();
    for row in &rows {
        let kind: String = row.try_get("kind")?;
        let side: String = row.try_get("side")?;
        let account: String = row.try_get("account")?;
        let (game, currency): (String, String) =
            (row.try_get("game_id")?, row.try_get("currency")?);
        let amount: i64 = row.try_get("amount_minor")?;
        let order_no: Option<String> = row.try_get("order_no")?;
        let channel = account
            .strip_prefix("clearing:")
            .unwrap_or_default()
            .to_owned();
        let fact = order_no.as_deref().and_then(|o| facts.get(o));
        let key = match group_by {
            GroupBy::Channel => channel,
            GroupBy::Sku => fact.map_or_else(String::new, |f| f.sku.clone()),
            GroupBy::Region => fact.map_or_else(String::new, |f| f.region.clone()),
            GroupBy::Day => day_of(row.try_get("created_at")?, period.offset_s),
        };
        let entry = table
            .entry((game.clone(), currency.clone(), key.clone()))
            .or_insert_with(|| RevenueRow {
                game,
                currency,
                key,
                orders: 0,
                gross_minor: 0,
                refunds_minor: 0,
                fees_minor: 0,
                net_minor: 0,
            });
        match (kind.as_str(), side.as_str()) {
            ("payment", _) => {
                entry.orders += 1;
                entry.gross_minor += amount;
            }
            ("refund", _) => entry.refunds_minor += amount,
            // The clearing leg of a fee: credited when charged, debited when given back.
            (_, "credit") => entry.fees_minor += amount,
            _ => entry.fees_minor -= amount,
        }
    }
    Ok(table
        .into_values()
        .map(|mut row| {
            row.net_minor = row.gross_minor - row.refunds_minor - row.fees_minor;
            row
        })
        .collect())
}

async fn order_facts(
    store: &Store,
    period: &Period,
) -> Result<HashMap<String, Facts>, sqlx::Error> {
    // Orders paid up to a long while before the period may be refunded within it.
    let rows = sqlx::query(
        "SELECT order_no, sku_code, region FROM order_facts \
         WHERE paid_at IS NOT NULL AND paid_at < $1 AND ($2 = '' OR game_id = $2)",
    )
    .bind(period.to_ms)
    .bind(period.game.clone().unwrap_or_default())
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("order_no")?,
                Facts {
                    sku: row.try_get("sku_code")?,
                    region: row.try_get("region")?,
                },
            ))
        })
        .collect()
}
