//! Reconciliation: a channel's statement of one day, fetched and read by its plugin, matched
//! against the attempts and refunds Coffer recorded, every line and every local record
//! classified (`matching.rs`). A payment the channel took that Coffer does not know as paid
//! (long) is confirmed by a signed query and settled through the one settling path; fees on
//! matched lines are posted to the ledger. Running a day again is idempotent: it replaces the
//! day's lines and findings, and postings are named by their line.

mod day;
pub mod job;
mod matching;
mod records;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use coffer_money::{Currency, Money};
use coffer_plugin_runtime::{Channel, Registry};
use serde::Serialize;

pub use day::Day;
use matching::{Line, LineOutcome, Missing, classify};
use records::{Owner, StoredLine};
pub use records::{ReconciliationDay, days, findings};

use crate::channels::StatementEntry;
use crate::channels::http::ChannelHttp;
use crate::channels::statement;
use crate::games::GameId;
use crate::ledger::{self, Account, Cause, Transfer};
use crate::orders::Orders;
use crate::store::Store;

/// The largest statement file Coffer downloads.
const MAX_STATEMENT_BYTES: usize = 64 << 20;
/// How long a statement download may take.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(120);
/// Local records this far around the day are looked at, so that a payment recorded on one
/// side of midnight and listed on the other still matches.
const MARGIN_MS: i64 = 24 * 3600 * 1000;

/// What a finding says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The channel took money Coffer does not know as paid, and a signed query did not
    /// confirm it (or there is no attempt to ask about).
    Long,
    /// Long, then confirmed by a signed query: now paid (and delivered) through the one
    /// settling path.
    LongSettled,
    /// Coffer thinks it paid within the day; the statement has no record.
    Short,
    AmountMismatch,
    CurrencyMismatch,
    /// A refund at the channel that Coffer has not recorded.
    RefundNotRecorded,
    /// A refund Coffer recorded within the day that the statement does not show.
    RefundNotAtChannel,
    /// A chargeback, fee or adjustment line: nothing here to match it with.
    Unmatched,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Long => "long",
            Self::LongSettled => "long_settled",
            Self::Short => "short",
            Self::AmountMismatch => "amount_mismatch",
            Self::CurrencyMismatch => "currency_mismatch",
            Self::RefundNotRecorded => "refund_not_recorded",
            Self::RefundNotAtChannel => "refund_not_at_channel",
            Self::Unmatched => "unmatched",
        }
    }
}

/// One thing an operator should look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub payment_ref: Option<String>,
    pub refund_no: Option<String>,
    pub channel_txn_id: Option<String>,
    pub statement_minor: Option<i64>,
    pub local_minor: Option<i64>,
    pub currency: Option<String>,
    pub detail: String,
}

/// What a run found.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub channel: String,
    pub day: String,
    pub lines: usize,
    pub matched: usize,
    /// Fees posted (net of fees given back), per currency, in minor units.
    pub fees: Vec<(String, i64)>,
    pub findings: Vec<Finding>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("no channel {0:?} is loaded")]
    UnknownChannel(String),
    #[error("channel {0} offers no statements")]
    NoStatements(String),
    #[error("{0:?} is not a day (YYYY-MM-DD)")]
    BadDay(String),
    #[error("another instance is reconciling {channel} for {day}")]
    Busy { channel: String, day: String },
    #[error("cannot get the statement: {0}")]
    Statement(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
}

/// How far a run is, for a progress bar.
#[derive(Debug, Clone, Copy)]
pub enum Progress {
    Downloaded { lines: u64 },
    Matched { done: u64, total: u64 },
}

/// Runs reconciliations.
#[derive(Clone)]
pub struct Reconciler {
    store: Store,
    orders: Orders,
    registry: Arc<Registry>,
    http: ChannelHttp,
    /// Each channel's statement time zone, seconds east of UTC.
    offsets: HashMap<String, i32>,
}

impl Reconciler {
    pub fn new(
        store: Store,
        orders: Orders,
        registry: Arc<Registry>,
        offsets: HashMap<String, i32>,
    ) -> Self {
        Self {
            store,
            orders,
            registry,
            http: ChannelHttp::new(STATEMENT_TIMEOUT, MAX_STATEMENT_BYTES),
            offsets,
        }
    }

    /// The channel's statement time zone, seconds east of UTC.
    pub fn offset_s(&self, channel: &str) -> i32 {
        self.offsets.get(channel).copied().unwrap_or(0)
    }

    /// Reconciles `channel`'s statement of `day`.
    pub async fn run(
        &self,
        channel_id: &str,
        day: &str,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Summary, ReconcileError> {
        let parsed = Day::parse(day).ok_or_else(|| ReconcileError::BadDay(day.to_owned()))?;
        let channel = self
            .registry
            .get(channel_id)
            .ok_or_else(|| ReconcileError::UnknownChannel(channel_id.to_owned()))?;
        if !channel.info().supports_statement {
            return Err(ReconcileError::NoStatements(channel_id.to_owned()));
        }
        if !records::take_run(&self.store, channel_id, day).await? {
            return Err(ReconcileError::Busy {
                channel: channel_id.to_owned(),
                day: day.to_owned(),
            });
        }
        let outcome = self.reconcile(&channel, parsed, progress).await;
        let counts = outcome.as_ref().map_err(ToString::to_string).map(|s| {
            let fees = s.fees.iter().map(|(_, minor)| minor).sum();
            (
                s.lines as i64,
                s.matched as i64,
                s.findings.len() as i64,
                fees,
            )
        });
        records::finish_run(&self.store, channel_id, day, counts).await?;
        outcome
    }

    async fn reconcile(
        &self,
        channel: &Channel,
        day: Day,
        progress: &(dyn Fn(Progress) + Send + Sync),
    ) -> Result<Summary, ReconcileError> {
        let channel_id = channel.id();
        let entries = statement::fetch(channel, &self.http, &day.to_string())
            .await
            .map_err(ReconcileError::Statement)?;
        progress(Progress::Downloaded {
            lines: entries.len() as u64,
        });
        let offset = self.offset_s(channel_id);
        let (start, end) = (day.start_ms(offset), day.end_ms(offset));
        let (mut payments, mut refunds, owners) = records::local_records(
            &self.store,
            channel_id,
            (start - MARGIN_MS, end + MARGIN_MS),
            (start, end),
        )
        .await?;
        // What a neighbouring day's statement listed is not missing from this one.
        let elsewhere = records::matched_nearby(&self.store, channel_id, day).await?;
        for payment in &mut payments {
            payment.due_in_day &= !elsewhere.payments.contains(&payment.payment_ref);
        }
        for refund in &mut refunds {
            refund.due_in_day &= !elsewhere.refunds.contains(&refund.refund_no);
        }
        let lines: Vec<Line> = entries.iter().map(line_of).collect();
        let (mut outcomes, missing) = classify(&lines, &payments, &refunds);

        // Long payments of attempts Coffer knows: ask the channel, settle what it confirms.
        let mut settled_long = vec![false; outcomes.len()];
        for (i, outcome) in outcomes.iter_mut().enumerate() {
            if let LineOutcome::Long {
                payment_ref: Some(payment_ref),
            } = outcome
                && owners.contains_key(payment_ref.as_str())
            {
                let confirmed = self.orders.confirm_by_query(channel_id, payment_ref).await;
                let paid = matches!(
                    self.orders.attempt_by_ref(channel_id, payment_ref).await,
                    Ok(Some((_, attempt))) if attempt.status == crate::orders::AttemptStatus::Paid
                );
                if let Err(error) = confirmed {
                    tracing::warn!(channel = channel_id, %payment_ref, %error, "long payment not confirmed");
                }
                if paid {
                    settled_long[i] = true;
                    *outcome = LineOutcome::PaymentMatched {
                        payment_ref: payment_ref.clone(),
                    };
                }
            }
            if i % 1000 == 999 {
                progress(Progress::Matched {
                    done: i as u64 + 1,
                    total: lines.len() as u64,
                });
            }
        }

        let mut findings = Vec::new();
        let mut stored = Vec::with_capacity(entries.len());
        let mut fees: Vec<(usize, &Owner, Money)> = Vec::new();
        let mut matched = 0;
        for (i, (entry, outcome)) in entries.iter().zip(&outcomes).enumerate() {
            let (label, owner) = match outcome {
                LineOutcome::PaymentMatched { payment_ref }
                | LineOutcome::RefundMatched { payment_ref, .. } => {
                    matched += 1;
                    if settled_long[i] {
                        findings.push(finding(FindingKind::LongSettled, entry, Some(payment_ref), None,
                            "paid at the channel, not here: confirmed by a signed query and settled"));
                    }
                    ("matched", owners.get(payment_ref.as_str()))
                }
                LineOutcome::Long { payment_ref } => {
                    findings.push(finding(
                        FindingKind::Long,
                        entry,
                        payment_ref.as_deref(),
                        None,
                        "the channel took money Coffer does not know as paid",
                    ));
                    ("long", None)
                }
                LineOutcome::AmountMismatch {
                    payment_ref,
                    local_minor,
                } => {
                    findings.push(finding(
                        FindingKind::AmountMismatch,
                        entry,
                        Some(payment_ref),
                        Some(*local_minor),
                        "the channel took another amount than the order's",
                    ));
                    ("amount_mismatch", None)
                }
                LineOutcome::CurrencyMismatch {
                    payment_ref,
                    local_currency,
                } => {
                    findings.push(finding(
                        FindingKind::CurrencyMismatch,
                        entry,
                        Some(payment_ref),
                        None,
                        &format!(
                            "the channel took {}, the order is in {local_currency}",
                            entry.currency
                        ),
                    ));
                    ("currency_mismatch", None)
                }
                LineOutcome::RefundAmountMismatch {
                    refund_no,
                    payment_ref,
                    local_minor,
                } => {
                    findings.push(Finding {
                        refund_no: Some(refund_no.clone()),
                        ..finding(
                            FindingKind::AmountMismatch,
                            entry,
                            Some(payment_ref),
                            Some(-local_minor),
                            &format!(
                                "the channel gave back another amount than refund {refund_no}"
                            ),
                        )
                    });
                    ("amount_mismatch", None)
                }
                LineOutcome::RefundNotRecorded { payment_ref } => {
                    findings.push(finding(
                        FindingKind::RefundNotRecorded,
                        entry,
                        payment_ref.as_deref(),
                        None,
                        "a refund at the channel that Coffer has not recorded",
                    ));
                    ("refund_not_recorded", None)
                }
                LineOutcome::Unmatched => {
                    findings.push(finding(
                        FindingKind::Unmatched,
                        entry,
                        entry.order_no.as_deref(),
                        None,
                        &format!(
                            "a {} line: nothing here to match it with",
                            entry.kind_name()
                        ),
                    ));
                    ("unmatched", None)
                }
            };
            if let (Some(owner), Some(fee)) = (owner, entry.fee)
                && fee != 0
            {
                let currency = Currency::parse(&entry.currency)
                    .map_err(|e| ReconcileError::Statement(e.to_string()))?;
                fees.push((i, owner, Money::new(fee, currency)));
            }
            let (payment_ref, refund_no) = outcome.local_records();
            stored.push(StoredLine {
                kind: entry.kind_name(),
                order_no: entry.order_no.clone(),
                payment_ref: payment_ref.map(str::to_owned),
                refund_no: refund_no.or(entry.refund_no.as_deref()).map(str::to_owned),
                channel_txn_id: entry.channel_txn_id.clone(),
                minor: entry.minor,
                currency: entry.currency.clone(),
                fee_minor: entry.fee,
                occurred_at: entry.occurred_at_s * 1000,
                channel_status: entry.channel_status.clone(),
                outcome: label,
            });
        }
        for missing in &missing {
            let (kind, payment_ref, refund_no, detail, local) = match missing {
                Missing::Short { payment_ref } => (
                    FindingKind::Short,
                    payment_ref,
                    None,
                    "paid here within the day; the statement has no record".to_owned(),
                    payments
                        .iter()
                        .find(|p| &p.payment_ref == payment_ref)
                        .map(|p| (p.minor, p.currency.clone())),
                ),
                Missing::RefundNotAtChannel {
                    refund_no,
                    payment_ref,
                } => (
                    FindingKind::RefundNotAtChannel,
                    payment_ref,
                    Some(refund_no.clone()),
                    format!(
                        "refund {refund_no} succeeded here within the day; the statement does not show it"
                    ),
                    refunds
                        .iter()
                        .find(|r| &r.refund_no == refund_no)
                        .map(|r| (r.minor, String::new())),
                ),
            };
            findings.push(Finding {
                kind,
                payment_ref: Some(payment_ref.clone()),
                refund_no,
                channel_txn_id: None,
                statement_minor: None,
                local_minor: local.as_ref().map(|(minor, _)| *minor),
                currency: local
                    .map(|(_, currency)| currency)
                    .filter(|c| !c.is_empty()),
                detail,
            });
        }

        let fee_totals = self.post_fees(channel_id, &day.to_string(), &fees).await?;
        let (channel_key, day_key) = (channel_id.to_owned(), day.to_string());
        self.store
            .write(
                (channel_key, day_key, stored, findings.clone()),
                |tx, (channel, day, stored, findings)| {
                    Box::pin(records::replace_day(tx, channel, day, stored, findings))
                },
            )
            .await?;
        progress(Progress::Matched {
            done: lines.len() as u64,
            total: lines.len() as u64,
        });
        Ok(Summary {
            channel: channel_id.to_owned(),
            day: day.to_string(),
            lines: lines.len(),
            matched,
            fees: fee_totals,
            findings,
        })
    }

    /// Posts each matched line's fee (charged, or given back) in one transaction; a run again
    /// finds them posted.
    async fn post_fees(
        &self,
        channel: &str,
        day: &str,
        fees: &[(usize, &Owner, Money)],
    ) -> Result<Vec<(String, i64)>, ReconcileError> {
        let mut totals: HashMap<String, i64> = HashMap::new();
        let postings: Vec<(String, String, String, Money)> = fees
            .iter()
            .map(|(line, owner, fee)| {
                *totals.entry(fee.currency().code().to_owned()).or_default() += fee.minor();
                (
                    format!("{channel}:{day}:{line}"),
                    owner.game.clone(),
                    owner.order_no.clone(),
                    *fee,
                )
            })
            .collect();
        let channel = channel.to_owned();
        self.store
            .write((channel, postings), |tx, (channel, postings)| {
                Box::pin(async move {
                    let games: Vec<Option<GameId>> = postings
                        .iter()
                        .map(|(_, game, _, _)| GameId::parse(game).ok())
                        .collect();
                    let transfers: Vec<Transfer> = postings
                        .iter()
                        .zip(&games)
                        .map(|((id, _, order_no, fee), game)| {
                            let (clearing, fees) = (
                                Account::Clearing(channel.clone()),
                                Account::Fees(channel.clone()),
                            );
                            // A fee given back on a refund moves the other way.
                            let (debit, credit, amount) = if fee.minor() > 0 {
                                (fees, clearing, *fee)
                            } else {
                                (clearing, fees, Money::new(-fee.minor(), fee.currency()))
                            };
                            Transfer {
                                cause: Cause::Fee,
                                upstream_id: id,
                                game: game.as_ref(),
                                debit,
                                credit,
                                amount,
                                order_no: Some(order_no),
                            }
                        })
                        .collect();
                    ledger::post_all(tx, &transfers).await
                })
            })
            .await?;
        let mut totals: Vec<(String, i64)> = totals.into_iter().collect();
        totals.sort();
        Ok(totals)
    }
}

fn line_of(entry: &StatementEntry) -> Line {
    Line {
        kind: entry.kind,
        payment_ref: entry.order_no.clone(),
        refund_no: entry.refund_no.clone(),
        channel_txn_id: entry.channel_txn_id.clone(),
        minor: entry.minor,
        currency: entry.currency.clone(),
    }
}

fn finding(
    kind: FindingKind,
    entry: &StatementEntry,
    payment_ref: Option<&str>,
    local_minor: Option<i64>,
    detail: &str,
) -> Finding {
    Finding {
        kind,
        payment_ref: payment_ref.map(str::to_owned),
        refund_no: None,
        channel_txn_id: Some(entry.channel_txn_id.clone()).filter(|t| !t.is_empty()),
        statement_minor: Some(entry.minor),
        local_minor,
        currency: Some(entry.currency.clone()),
        detail: detail.to_owned(),
    }
}
