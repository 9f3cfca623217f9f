//! Reports for operators and finance, read from the ledger (money) and the orders area's
//! published views (what the money was for): revenue per game, channel, SKU, region or day;
//! payment success and time to pay per channel; refund rates; reconciliation per day and
//! channel. Each answers JSON or CSV.

mod csv;
mod payments;
mod revenue;

pub use csv::{CsvRow, to_csv};
pub use payments::{
    ChannelPayments, ReconciliationDay, RefundRate, payments, reconciliations, refunds,
};
pub use revenue::{GroupBy, RevenueRow, revenue};

/// The period and game a report covers.
#[derive(Debug, Clone)]
pub struct Period {
    /// Unix milliseconds, inclusive.
    pub from_ms: i64,
    /// Unix milliseconds, exclusive.
    pub to_ms: i64,
    pub game: Option<String>,
    /// Seconds east of UTC that days are cut at.
    pub offset_s: i32,
}

/// A UTC-offset day of `unix_ms`, as `YYYY-MM-DD`.
fn day_of(unix_ms: i64, offset_s: i32) -> String {
    crate::reconcile::Day::of(unix_ms, offset_s).to_string()
}
