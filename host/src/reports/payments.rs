//! How payments go: per channel, how many attempts were paid and how long paying took; per
//! game, how much was refunded; per channel and day, what reconciliation found.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use super::csv::CsvRow;
use super::{Period, day_of};
use crate::store::Store;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChannelPayments {
    pub channel: String,
    pub attempts: i64,
    pub paid: i64,
    pub failed: i64,
    /// Paid attempts over attempts that reached an outcome (paid or failed).
    pub success_rate: f64,
    /// From the attempt's creation to its payment, in milliseconds.
    pub median_time_to_pay_ms: Option<i64>,
    pub p90_time_to_pay_ms: Option<i64>,
}

impl CsvRow for ChannelPayments {
    const HEADER: &'static [&'static str] = &[
        "channel",
        "attempts",
        "paid",
        "failed",
        "success_rate",
        "median_time_to_pay_ms",
        "p90_time_to_pay_ms",
    ];

    fn fields(&self) -> Vec<String> {
        let optional = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        vec![
            self.channel.clone(),
            self.attempts.to_string(),
            self.paid.to_string(),
            self.failed.to_string(),
            format!("{:.4}", self.success_rate),
            optional(self.median_time_to_pay_ms),
            optional(self.p90_time_to_pay_ms),
        ]
    }
}

/// Attempts created in `period`, by channel.
pub async fn payments(store: &Store, period: &Period) -> Result<Vec<ChannelPayments>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT channel, status, created_at, updated_at FROM attempt_timings \
         WHERE created_at >= $1 AND created_at < $2 AND ($3 = '' OR game_id = $3)",
    )
    .bind(period.from_ms)
    .bind(period.to_ms)
    .bind(period.game.clone().unwrap_or_default())
    .fetch_all(store.pool())
    .await?;
    let mut by_channel: BTreeMap<String, (i64, i64, Vec<i64>)> = BTreeMap::new();
    for row in &rows {
        let channel: String = row.try_get("channel")?;
        let status: String = row.try_get("status")?;
        let (created, updated): (i64, i64) =
            (row.try_get("created_at")?, row.try_get("updated_at")?);
        let entry = by_channel.entry(channel).or_default();
        entry.0 += 1;
        match status.as_str() {
            "paid" => entry.2.push((updated - created).max(0)),
            "failed" => entry.1 += 1,
            _ => {}
        }
    }
    Ok(by_channel
        .into_iter()
        .map(|(channel, (attempts, failed, mut times))| {
            times.sort_unstable();
            let paid = times.len() as i64;
            let settled = paid + failed;
            let percentile =
                |p: usize| (!times.is_empty()).then(|| times[(times.len() - 1) * p / 100]);
            ChannelPayments {
                channel,
                attempts,
                paid,
                failed,
                success_rate: if settled == 0 {
                    0.0
                } else {
                    paid as f64 / settled as f64
                },
                median_time_to_pay_ms: percentile(50),
                p90_time_to_pay_ms: percentile(90),
            }
        })
        .collect())
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RefundRate {
    pub game: String,
    pub currency: String,
    pub paid_orders: i64,
    pub gross_minor: i64,
    pub refunds: i64,
    pub refunded_minor: i64,
    /// Refunded over gross.
    pub refund_rate: f64,
}

impl CsvRow for RefundRate {
    const HEADER: &'static [&'static str] = &[
        "game",
        "currency",
        "paid_orders",
        "gross_minor",
        "refunds",
        "refunded_minor",
        "refund_rate",
    ];

    fn fields(&self) -> Vec<String> {
        vec![
            self.game.clone(),
            self.currency.clone(),
            self.paid_orders.to_string(),
            self.gross_minor.to_string(),
            self.refunds.to_string(),
            self.refunded_minor.to_string(),
            format!("{:.4}", self.refund_rate),
        ]
    }
}

/// Payments and refunds posted in `period`, by game and currency.
pub async fn refunds(store: &Store, period: &Period) -> Result<Vec<RefundRate>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT game_id, currency, kind, CAST(COUNT(*) AS BIGINT) AS n, \
         CAST(SUM(amount_minor) AS BIGINT) AS total FROM ledger_postings \
         WHERE created_at >= $1 AND created_at < $2 AND ($3 = '' OR game_id = $3) \
         AND side = 'debit' AND kind IN ('payment', 'refund') \
         GROUP BY game_id, currency, kind",
    )
    .bind(period.from_ms)
    .bind(period.to_ms)
    .bind(period.game.clone().unwrap_or_default())
    .fetch_all(store.pool())
    .await?;
    let mut table: BTreeMap<(String, String), RefundRate> = BTreeMap::new();
    for row in &rows {
        let (game, currency): (String, String) =
            (row.try_get("game_id")?, row.try_get("currency")?);
        let (kind, n, total): (String, i64, i64) = (
            row.try_get("kind")?,
            row.try_get("n")?,
            row.try_get("total")?,
        );
        let entry = table
            .entry((game.clone(), currency.clone()))
            .or_insert(RefundRate {
                game,
                currency,
                paid_orders: 0,
                gross_minor: 0,
                refunds: 0,
                refunded_minor: 0,
                refund_rate: 0.0,
            });
        if kind == "payment" {
            (entry.paid_orders, entry.gross_minor) = (n, total);
        } else {
            (entry.refunds, entry.refunded_minor) = (n, total);
        }
    }
    Ok(table
        .into_values()
        .map(|mut row| {
            if row.gross_minor > 0 {
                row.refund_rate = row.refunded_minor as f64 / row.gross_minor as f64;
            }
            row
        })
        .collect())
}

pub use crate::reconcile::ReconciliationDay;

impl CsvRow for ReconciliationDay {
    const HEADER: &'static [&'static str] = &[
        "channel",
        "day",
        "status",
        "lines",
        "matched",
        "findings",
        "fees_minor",
        "error",
    ];

    fn fields(&self) -> Vec<String> {
        vec![
            self.channel.clone(),
            self.day.clone(),
            self.status.clone(),
            self.lines.to_string(),
            self.matched.to_string(),
            self.findings.to_string(),
            self.fees_minor.to_string(),
            self.error.clone().unwrap_or_default(),
        ]
    }
}

/// Reconciliation runs of the days in `period` (cut at its offset), by day and channel.
pub async fn reconciliations(
    store: &Store,
    period: &Period,
) -> Result<Vec<ReconciliationDay>, sqlx::Error> {
    let (first, last) = (
        day_of(period.from_ms, period.offset_s),
        day_of(period.to_ms - 1, period.offset_s),
    );
    crate::reconcile::days(store, &first, &last).await
}
