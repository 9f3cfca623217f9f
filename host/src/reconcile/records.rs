//! What reconciliation reads and writes: the orders area's published views of attempts and
//! refunds, and its own tables (the run's lease, the statement's lines, the findings).

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use super::Finding;
use super::day::Day;
use super::matching::{LocalPayment, LocalRefund};
use crate::store::{Store, Tx, now_ms, placeholders};

/// A run of the same day is taken over when its instance has been silent this long.
const STALE_RUN_MS: i64 = 15 * 60 * 1000;

/// Rows per INSERT when storing a statement (bounded by the databases' parameter limits).
const ROWS_PER_INSERT: usize = 500;

/// Who a paid attempt's money belongs to.
#[derive(Debug, Clone)]
pub struct Owner {
    pub game: String,
    pub order_no: String,
}

/// The attempts and succeeded refunds at `channel` that moved within `[from, to)`, with
/// `due_in_day` set for those within `[day_start, day_end)`.
pub async fn local_records(
    store: &Store,
    channel: &str,
    (from, to): (i64, i64),
    (day_start, day_end): (i64, i64),
) -> Result<(Vec<LocalPayment>, Vec<LocalRefund>, HashMap<String, Owner>), sqlx::Error> {
    let in_day = |at: i64| (day_start..day_end).contains(&at);
    let rows = sqlx::query(
        "SELECT payment_ref, channel_txn_id, status, updated_at, game_id, order_no, \
         amount_minor, currency FROM attempt_directory \
         WHERE channel = $1 AND updated_at >= $2 AND updated_at < $3",
    )
    .bind(channel.to_owned())
    .bind(from)
    .bind(to)
    .fetch_all(store.pool())
    .await?;
    let mut payments = Vec::with_capacity(rows.len());
    let mut owners = HashMap::with_capacity(rows.len());
    for row in &rows {
        let payment_ref: String = row.try_get("payment_ref")?;
        let paid = row.try_get::<String, _>("status")? == "paid";
        owners.insert(
            payment_ref.clone(),
            Owner {
                game: row.try_get("game_id")?,
                order_no: row.try_get("order_no")?,
            },
        );
        payments.push(LocalPayment {
            payment_ref,
            channel_txn_id: row.try_get("channel_txn_id")?,
            paid,
            minor: row.try_get("amount_minor")?,
            currency: row.try_get("currency")?,
            due_in_day: paid && in_day(row.try_get("updated_at")?),
        });
    }
    let rows = sqlx::query(
        "SELECT refund_no, payment_ref, amount_minor, updated_at FROM refund_directory \
         WHERE channel = $1 AND status = 'succeeded' AND updated_at >= $2 AND updated_at < $3",
    )
    .bind(channel.to_owned())
    .bind(from)
    .bind(to)
    .fetch_all(store.pool())
    .await?;
    let refunds = rows
        .iter()
        .map(|row| {
            Ok(LocalRefund {
                refund_no: row.try_get("refund_no")?,
                payment_ref: row.try_get("payment_ref")?,
                minor: row.try_get("amount_minor")?,
                due_in_day: in_day(row.try_get("updated_at")?),
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok((payments, refunds, owners))
}

/// Takes the run of `channel`'s `day`: a new one, one that finished or failed (run again), or
/// one whose instance went silent. False when another instance is running it.
pub async fn take_run(store: &Store, channel: &str, day: &str) -> Result<bool, sqlx::Error> {
    let (channel, day) = (channel.to_owned(), day.to_owned());
    store
        .write((channel, day), |tx, (channel, day)| {
            Box::pin(async move {
                let now = now_ms();
                let taken = sqlx::query(
                    "INSERT INTO reconciliations (channel, day, status, started_at) \
                     VALUES ($1, $2, 'running', $3) ON CONFLICT DO NOTHING",
                )
                .bind(channel.clone())
                .bind(day.clone())
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if taken == 1 {
                    return Ok(true);
                }
                let taken = sqlx::query(
                    "UPDATE reconciliations SET status = 'running', started_at = $3, error = NULL, \
                     finished_at = NULL WHERE channel = $1 AND day = $2 \
                     AND (status <> 'running' OR started_at < $4)",
                )
                .bind(channel.clone())
                .bind(day.clone())
                .bind(now)
                .bind(now - STALE_RUN_MS)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                Ok(taken == 1)
            })
        })
        .await
}

/// A statement line as stored, with what it turned out to be.
pub struct StoredLine {
    pub kind: &'static str,
    pub order_no: Option<String>,
    /// The local payment (and refund) the line matched.
    pub payment_ref: Option<String>,
    /// The refund matched, else the one the channel echoes.
    pub refund_no: Option<String>,
    pub channel_txn_id: String,
    pub minor: i64,
    pub currency: String,
    pub fee_minor: Option<i64>,
    pub occurred_at: i64,
    pub channel_status: String,
    pub outcome: &'static str,
}

/// Replaces the day's stored lines and findings (a run again replaces what the last one found).
pub async fn replace_day(
    tx: &mut Tx,
    channel: &str,
    day: &str,
    lines: &[StoredLine],
    findings: &[Finding],
) -> Result<(), sqlx::Error> {
    for table in ["statement_lines", "reconciliation_findings"] {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE channel = $1 AND day = $2"
        )))
        .bind(channel.to_owned())
        .bind(day.to_owned())
        .execute(&mut *tx)
        .await?;
    }
    const COLUMNS: usize = 14;
    for (chunk_no, chunk) in lines.chunks(ROWS_PER_INSERT).enumerate() {
        let values: Vec<String> = (0..chunk.len())
            .map(|i| format!("({})", placeholders(i * COLUMNS + 1, COLUMNS)))
            .collect();
        let sql = format!(
            "INSERT INTO statement_lines (channel, day, line_no, kind, order_no, channel_txn_id, \
             amount_minor, currency, fee_minor, occurred_at, channel_status, outcome, \
             payment_ref, refund_no) VALUES {}",
            values.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, line) in chunk.iter().enumerate() {
            query = query
                .bind(channel.to_owned())
                .bind(day.to_owned())
                .bind((chunk_no * ROWS_PER_INSERT + i) as i64)
                .bind(line.kind)
                .bind(line.order_no.clone())
                .bind(line.channel_txn_id.clone())
                .bind(line.minor)
                .bind(line.currency.clone())
                .bind(line.fee_minor)
                .bind(line.occurred_at)
                .bind(line.channel_status.clone())
                .bind(line.outcome)
                .bind(line.payment_ref.clone())
                .bind(line.refund_no.clone());
        }
        query.execute(&mut *tx).await?;
    }
    for (seq, finding) in findings.iter().enumerate() {
        sqlx::query(
            "INSERT INTO reconciliation_findings (channel, day, seq, kind, payment_ref, \
             channel_txn_id, statement_minor, local_minor, currency, detail, refund_no) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(channel.to_owned())
        .bind(day.to_owned())
        .bind(seq as i64)
        .bind(finding.kind.as_str())
        .bind(finding.payment_ref.clone())
        .bind(finding.channel_txn_id.clone())
        .bind(finding.statement_minor)
        .bind(finding.local_minor)
        .bind(finding.currency.clone())
        .bind(finding.detail.clone())
        .bind(finding.refund_no.clone())
        .execute(&mut *tx)
        .await?;
    }
    resolve_neighbours(tx, channel, day).await
}

/// How many days either side a channel may list a payment or refund on.
const NEIGHBOUR_DAYS: i64 = 2;

/// The neighbouring days of `day`, as `(first, last)` for a `BETWEEN`.
fn neighbourhood(day: Day) -> (String, String) {
    (
        day.plus(-NEIGHBOUR_DAYS).to_string(),
        day.plus(NEIGHBOUR_DAYS).to_string(),
    )
}

/// What the statements of the days around `day` (not `day` itself) matched.
#[derive(Debug, Default)]
pub struct MatchedNearby {
    pub payments: HashSet<String>,
    pub refunds: HashSet<String>,
}

pub async fn matched_nearby(
    store: &Store,
    channel: &str,
    day: Day,
) -> Result<MatchedNearby, sqlx::Error> {
    let (first, last) = neighbourhood(day);
    let rows = sqlx::query(
        "SELECT kind, payment_ref, refund_no FROM statement_lines \
         WHERE channel = $1 AND day >= $2 AND day <= $3 AND day <> $4 \
         AND outcome = 'matched' AND payment_ref IS NOT NULL",
    )
    .bind(channel.to_owned())
    .bind(first)
    .bind(last)
    .bind(day.to_string())
    .fetch_all(store.pool())
    .await?;
    let mut nearby = MatchedNearby::default();
    for row in &rows {
        let kind: String = row.try_get("kind")?;
        match (
            kind.as_str(),
            row.try_get::<Option<String>, _>("refund_no")?,
        ) {
            ("refund", Some(refund_no)) => nearby.refunds.insert(refund_no),
            _ => nearby.payments.insert(row.try_get("payment_ref")?),
        };
    }
    Ok(nearby)
}

/// Resolves the neighbouring days' `short` and `refund_not_at_channel` findings that `day`'s
/// statement lists after all, and recounts those days' open findings.
async fn resolve_neighbours(tx: &mut Tx, channel: &str, day: &str) -> Result<(), sqlx::Error> {
    let Some(parsed) = Day::parse(day) else {
        return Ok(());
    };
    let (first, last) = neighbourhood(parsed);
    sqlx::query(
        "UPDATE reconciliation_findings SET resolved_at = $5, \
         resolution = 'listed on the statement of ' || $2 \
         WHERE channel = $1 AND day >= $3 AND day <= $4 AND day <> $2 AND resolved_at IS NULL \
         AND ((kind = 'short' AND payment_ref IN (SELECT l.payment_ref FROM statement_lines l \
               WHERE l.channel = $1 AND l.day = $2 AND l.outcome = 'matched' AND l.kind = 'payment')) \
           OR (kind = 'refund_not_at_channel' AND refund_no IN (SELECT l.refund_no \
               FROM statement_lines l WHERE l.channel = $1 AND l.day = $2 \
               AND l.outcome = 'matched' AND l.kind = 'refund')))",
    )
    .bind(channel.to_owned())
    .bind(day.to_owned())
    .bind(first.clone())
    .bind(last.clone())
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE reconciliations SET findings = (SELECT COUNT(*) FROM reconciliation_findings f \
         WHERE f.channel = reconciliations.channel AND f.day = reconciliations.day \
         AND f.resolved_at IS NULL) \
         WHERE channel = $1 AND day >= $2 AND day <= $3 AND day <> $4 AND status = 'done'",
    )
    .bind(channel.to_owned())
    .bind(first)
    .bind(last)
    .bind(day.to_owned())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Ends the run: `done` with its counts, or `failed` with why.
pub async fn finish_run(
    store: &Store,
    channel: &str,
    day: &str,
    outcome: Result<(i64, i64, i64, i64), String>,
) -> Result<(), sqlx::Error> {
    let (channel, day) = (channel.to_owned(), day.to_owned());
    store
        .write((channel, day, outcome), |tx, (channel, day, outcome)| {
            Box::pin(async move {
                let (status, (lines, matched, findings, fees), error) = match outcome {
                    Ok(counts) => ("done", *counts, None),
                    Err(why) => ("failed", (0, 0, 0, 0), Some(why.clone())),
                };
                sqlx::query(
                    "UPDATE reconciliations SET status = $3, lines = $4, matched = $5, \
                     findings = $6, fees_minor = $7, error = $8, finished_at = $9 \
                     WHERE channel = $1 AND day = $2",
                )
                .bind(channel.clone())
                .bind(day.clone())
                .bind(status)
                .bind(lines)
                .bind(matched)
                .bind(findings)
                .bind(fees)
                .bind(error)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
                Ok(())
            })
        })
        .await
}

/// The stored findings of `channel`'s `day`, and the run's status.
pub async fn findings(
    store: &Store,
    channel: &str,
    day: &str,
) -> Result<Option<(String, Vec<serde_json::Value>)>, sqlx::Error> {
    let Some(status) = sqlx::query_scalar::<_, String>(
        "SELECT status FROM reconciliations WHERE channel = $1 AND day = $2",
    )
    .bind(channel.to_owned())
    .bind(day.to_owned())
    .fetch_optional(store.pool())
    .await?
    else {
        return Ok(None);
    };
    let rows = sqlx::query(
        "SELECT kind, payment_ref, refund_no, channel_txn_id, statement_minor, local_minor, \
         currency, detail, resolved_at, resolution \
         FROM reconciliation_findings WHERE channel = $1 AND day = $2 ORDER BY seq",
    )
    .bind(channel.to_owned())
    .bind(day.to_owned())
    .fetch_all(store.pool())
    .await?;
    let findings = rows
        .iter()
        .map(|row| {
            Ok(serde_json::json!({
                "kind": row.try_get::<String, _>("kind")?,
                "payment_ref": row.try_get::<Option<String>, _>("payment_ref")?,
                "refund_no": row.try_get::<Option<String>, _>("refund_no")?,
                "channel_txn_id": row.try_get::<Option<String>, _>("channel_txn_id")?,
                "statement_minor": row.try_get::<Option<i64>, _>("statement_minor")?,
                "local_minor": row.try_get::<Option<i64>, _>("local_minor")?,
                "currency": row.try_get::<Option<String>, _>("currency")?,
                "detail": row.try_get::<String, _>("detail")?,
                "resolved_at_ms": row.try_get::<Option<i64>, _>("resolved_at")?,
                "resolution": row.try_get::<Option<String>, _>("resolution")?,
            }))
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Some((status, findings)))
}

/// Whether `channel`'s `day` was reconciled already.
pub async fn is_done(store: &Store, channel: &str, day: &str) -> Result<bool, sqlx::Error> {
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM reconciliations WHERE channel = $1 AND day = $2")
            .bind(channel.to_owned())
            .bind(day.to_owned())
            .fetch_optional(store.pool())
            .await?;
    Ok(status.as_deref() == Some("done"))
}

/// A day's run, as a report shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReconciliationDay {
    pub channel: String,
    pub day: String,
    pub status: String,
    pub lines: i64,
    pub matched: i64,
    pub findings: i64,
    pub fees_minor: i64,
    pub error: Option<String>,
}

/// The runs of the days `first..=last` (`YYYY-MM-DD`), by day and channel.
pub async fn days(
    store: &Store,
    first: &str,
    last: &str,
) -> Result<Vec<ReconciliationDay>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT channel, day, status, lines, matched, findings, fees_minor, error \
         FROM reconciliations WHERE day >= $1 AND day <= $2 ORDER BY day, channel",
    )
    .bind(first.to_owned())
    .bind(last.to_owned())
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(ReconciliationDay {
                channel: row.try_get("channel")?,
                day: row.try_get("day")?,
                status: row.try_get("status")?,
                lines: row.try_get("lines")?,
                matched: row.try_get("matched")?,
                findings: row.try_get("findings")?,
                fees_minor: row.try_get("fees_minor")?,
                error: row.try_get("error")?,
            })
        })
        .collect()
}
