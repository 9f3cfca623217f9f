//! Proving the books: the invariants every posting must keep, checked against the entries and
//! against what the orders area says happened (its published views `paid_orders`,
//! `paid_attempts`, `succeeded_refunds`) and what reconciliation matched
//! (`matched_statement_fees`). A violation names what broke; none are expected.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::store::Store;

/// One broken invariant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Which invariant: `unbalanced_transfer`, `unbalanced_currency`, `payment_not_posted`,
    /// `attempt_not_posted`, `refund_not_posted`, `fee_not_posted`, `negative_balance`.
    pub invariant: &'static str,
    pub detail: String,
}

/// Debits and credits of one currency, all games together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CurrencyTotals {
    pub currency: String,
    pub debits_minor: i64,
    pub credits_minor: i64,
}

/// What the check looked at and what it found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub violations: Vec<Violation>,
    pub transfers: i64,
    pub totals: Vec<CurrencyTotals>,
    pub paid_orders: i64,
    pub paid_attempts: i64,
    pub succeeded_refunds: i64,
    pub statement_fees: i64,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }
}

/// One account's balance: debits minus credits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountBalance {
    /// Empty for money no game can be told of.
    pub game: String,
    pub currency: String,
    pub account: String,
    pub debits_minor: i64,
    pub credits_minor: i64,
}

/// Every account's balance.
pub async fn balances(store: &Store) -> Result<Vec<AccountBalance>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT game_id, currency, account, \
         CAST(SUM(CASE WHEN side = 'debit' THEN amount_minor ELSE 0 END) AS BIGINT) AS debits, \
         CAST(SUM(CASE WHEN side = 'credit' THEN amount_minor ELSE 0 END) AS BIGINT) AS credits \
         FROM ledger_entries GROUP BY game_id, currency, account \
         ORDER BY game_id, currency, account",
    )
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AccountBalance {
                game: row.try_get("game_id")?,
                currency: row.try_get("currency")?,
                account: row.try_get("account")?,
                debits_minor: row.try_get("debits")?,
                credits_minor: row.try_get("credits")?,
            })
        })
        .collect()
}

async fn count(db: &mut AnyConnection, sql: &'static str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(sql).fetch_one(&mut *db).await
}

/// Checks every invariant of the books, in one read transaction (one snapshot of the books
/// and of what they are compared with, while the service keeps writing).
pub async fn check(store: &Store) -> Result<CheckReport, sqlx::Error> {
    let mut tx = store.pool().begin().await?;
    let report = check_in(&mut tx).await?;
    tx.rollback().await?;
    Ok(report)
}

/// One invariant, checked by one query: every row it returns breaks it, and `detail` says how.
struct Rule {
    invariant: &'static str,
    sql: &'static str,
    detail: fn(&AnyRow) -> Result<String, sqlx::Error>,
}

/// The invariants checked row by row; per-currency balance, which also gives the report its
/// totals, is checked after them.
const RULES: &[Rule] = &[
    // Each transfer is exactly one debit and one credit of one amount, currency and game.
    Rule {
        invariant: "unbalanced_transfer",
        sql: "SELECT kind, upstream_id, CAST(COUNT(*) AS BIGINT) AS legs FROM ledger_entries \
              GROUP BY kind, upstream_id \
              HAVING COUNT(*) <> 2 \
                 OR SUM(CASE WHEN side = 'debit' THEN 1 ELSE 0 END) <> 1 \
                 OR MIN(amount_minor) <> MAX(amount_minor) \
                 OR MIN(currency) <> MAX(currency) \
                 OR MIN(game_id) <> MAX(game_id)",
        detail: |row| {
            let (kind, id, legs): (String, String, i64) = (
                row.try_get("kind")?,
                row.try_get("upstream_id")?,
                row.try_get("legs")?,
            );
            Ok(format!(
                "transfer {kind} {id} has {legs} legs that are not one debit and one credit of \
                 one amount, currency and game"
            ))
        },
    },
    // Every paid order has its payment transfer, of its amount and currency.
    Rule {
        invariant: "payment_not_posted",
        sql: "SELECT o.order_no, o.amount_minor, o.currency FROM paid_orders o \
              WHERE NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.order_no = o.order_no \
                AND e.kind = 'payment' AND e.side = 'credit' AND e.account = 'revenue' \
                AND e.amount_minor = o.amount_minor AND e.currency = o.currency)",
        detail: |row| {
            let (order_no, minor, currency): (String, i64, String) = (
                row.try_get("order_no")?,
                row.try_get("amount_minor")?,
                row.try_get("currency")?,
            );
            Ok(format!(
                "order {order_no} was paid {minor} {currency} but has no payment of it posted"
            ))
        },
    },
    // Every paid attempt is posted: as the order's payment, or as money in suspense.
    Rule {
        invariant: "attempt_not_posted",
        sql: "SELECT a.order_no, a.channel, a.payment_ref FROM paid_attempts a \
              WHERE NOT EXISTS (SELECT 1 FROM ledger_entries e \
                WHERE e.upstream_id = a.channel || ':' || a.payment_ref \
                AND (e.kind = 'payment' OR e.kind LIKE 'suspense:%'))",
        detail: |row| {
            let (order_no, channel, payment_ref): (String, String, String) = (
                row.try_get("order_no")?,
                row.try_get("channel")?,
                row.try_get("payment_ref")?,
            );
            Ok(format!(
                "attempt {payment_ref} of order {order_no} was paid through {channel} but is \
                 posted neither as a payment nor in suspense"
            ))
        },
    },
    // Every succeeded refund has its transfer, of its amount and currency.
    Rule {
        invariant: "refund_not_posted",
        sql: "SELECT r.refund_no, r.order_no, r.amount_minor, r.currency FROM succeeded_refunds r \
              WHERE NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.kind = 'refund' \
                AND e.upstream_id = r.refund_no AND e.side = 'debit' \
                AND e.amount_minor = r.amount_minor AND e.currency = r.currency)",
        detail: |row| {
            let (refund_no, order_no, minor, currency): (String, String, i64, String) = (
                row.try_get("refund_no")?,
                row.try_get("order_no")?,
                row.try_get("amount_minor")?,
                row.try_get("currency")?,
            );
            Ok(format!(
                "refund {refund_no} of order {order_no} gave back {minor} {currency} but is not \
                 posted"
            ))
        },
    },
    // Every fee of a matched statement line is posted, of its amount and currency.
    Rule {
        invariant: "fee_not_posted",
        sql: "SELECT f.channel, f.day, f.line_no, f.fee_minor, f.currency \
              FROM matched_statement_fees f \
              WHERE NOT EXISTS (SELECT 1 FROM ledger_entries e WHERE e.kind = 'fee' \
                AND e.upstream_id = f.channel || ':' || f.day || ':' || CAST(f.line_no AS TEXT) \
                AND e.side = 'debit' AND e.amount_minor = ABS(f.fee_minor) \
                AND e.currency = f.currency)",
        detail: |row| {
            let (channel, day, line, fee, currency): (String, String, i64, i64, String) = (
                row.try_get("channel")?,
                row.try_get("day")?,
                row.try_get("line_no")?,
                row.try_get("fee_minor")?,
                row.try_get("currency")?,
            );
            Ok(format!(
                "line {line} of {channel}'s statement of {day} carries a fee of {fee} {currency} \
                 that is not posted"
            ))
        },
    },
    // What was sold or refunded never falls below nothing; nor does what a channel holds before
    // its fees (refunds never give back more than came in through it; after fees it may, since
    // a channel can keep the fee of a payment it refunded whole).
    Rule {
        invariant: "negative_balance",
        sql: "SELECT game_id, currency, account, \
              CAST(SUM(CASE WHEN side = 'debit' THEN amount_minor ELSE -amount_minor END) AS BIGINT) \
              AS net FROM ledger_entries \
              WHERE account IN ('revenue', 'refunds') \
                 OR (account LIKE 'clearing:%' AND kind <> 'fee') \
              GROUP BY game_id, currency, account \
              HAVING (account = 'revenue' \
                      AND SUM(CASE WHEN side = 'debit' THEN amount_minor ELSE -amount_minor END) > 0) \
                  OR (account <> 'revenue' \
                      AND SUM(CASE WHEN side = 'debit' THEN amount_minor ELSE -amount_minor END) < 0)",
        detail: |row| {
            let (game, currency, account, net): (String, String, String, i64) = (
                row.try_get("game_id")?,
                row.try_get("currency")?,
                row.try_get("account")?,
                row.try_get("net")?,
            );
            Ok(format!(
                "{account} of game {game:?} in {currency} is on the wrong side of zero \
                 (debits minus credits {net}, fees left out of clearing accounts)"
            ))
        },
    },
];

async fn check_in(db: &mut AnyConnection) -> Result<CheckReport, sqlx::Error> {
    let mut violations = Vec::new();

    for rule in RULES {
        for row in sqlx::query(rule.sql).fetch_all(&mut *db).await? {
            violations.push(Violation {
                invariant: rule.invariant,
                detail: (rule.detail)(&row)?,
            });
        }
    }

    // Per currency, debits equal credits.
    let rows = sqlx::query(
        "SELECT currency, \
         CAST(SUM(CASE WHEN side = 'debit' THEN amount_minor ELSE 0 END) AS BIGINT) AS debits, \
         CAST(SUM(CASE WHEN side = 'credit' THEN amount_minor ELSE 0 END) AS BIGINT) AS credits \
         FROM ledger_entries GROUP BY currency ORDER BY currency",
    )
    .fetch_all(&mut *db)
    .await?;
    let mut totals = Vec::new();
    for row in &rows {
        let total = CurrencyTotals {
            currency: row.try_get("currency")?,
            debits_minor: row.try_get("debits")?,
            credits_minor: row.try_get("credits")?,
        };
        if total.debits_minor != total.credits_minor {
            violations.push(Violation {
                invariant: "unbalanced_currency",
                detail: format!(
                    "{}: debits {} and credits {} differ",
                    total.currency, total.debits_minor, total.credits_minor
                ),
            });
        }
        totals.push(total);
    }

    Ok(CheckReport {
        violations,
        transfers: count(
            &mut *db,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM ledger_entries WHERE side = 'debit'",
        )
        .await?,
        totals,
        paid_orders: count(&mut *db, "SELECT CAST(COUNT(*) AS BIGINT) FROM paid_orders").await?,
        paid_attempts: count(
            &mut *db,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM paid_attempts",
        )
        .await?,
        succeeded_refunds: count(
            &mut *db,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM succeeded_refunds",
        )
        .await?,
        statement_fees: count(
            &mut *db,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM matched_statement_fees",
        )
        .await?,
    })
}
