//! The ledger: double-entry books of every money movement, per game and currency.
//!
//! **Guarantee**: a transfer is posted in the same database transaction as the state change
//! that moves the money (an order paid, a refund succeeded, money parked in suspense), exactly
//! as the outbox event is; so the books hold a movement if and only if the change committed.
//! A transfer is two entries, one debit and one credit of the same amount, currency and game,
//! named by its cause (`kind`, `upstream_id`): posting it again is a no-op, posting the same
//! name with other figures is an error, and nothing is ever updated (a correction is a new
//! transfer). `check.rs` proves the books: see `docs/ledger.md`.

mod check;

use coffer_money::Money;

use crate::games::GameId;
use crate::store::{Tx, now_ms, placeholders};

/// Transfers per INSERT when posting many (two rows of 9 values each).
const TRANSFERS_PER_INSERT: usize = 200;

pub use check::{AccountBalance, CheckReport, CurrencyTotals, Violation, balances, check};

/// An account of a game's books in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    /// What a channel holds for the merchant: debited by payments, credited by refunds and fees.
    Clearing(String),
    /// What players paid for goods.
    Revenue,
    /// What was given back to players.
    Refunds,
    /// Money that moved but belongs to no order as it stands (a second payment, another amount,
    /// an unknown payment, a refund Coffer cannot match), until an operator resolves it.
    Suspense,
    /// What a channel charged.
    Fees(String),
}

impl Account {
    /// The stored name, e.g. `clearing:alipay`.
    pub fn name(&self) -> String {
        match self {
            Self::Clearing(channel) => format!("clearing:{channel}"),
            Self::Revenue => "revenue".into(),
            Self::Refunds => "refunds".into(),
            Self::Suspense => "suspense".into(),
            Self::Fees(channel) => format!("fees:{channel}"),
        }
    }
}

/// What caused a transfer. With the cause's id, it names the transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// An order paid; the id is the paid attempt's `channel:payment_ref`.
    Payment,
    /// A refund succeeded; the id is its refund number.
    Refund,
    /// Money parked in suspense for a conflict of this kind; the id is the conflict's
    /// `channel:payment_ref`.
    Suspense(&'static str),
    /// A fee on a channel's statement line; the id is `channel:day:line`.
    Fee,
}

impl Cause {
    fn kind(self) -> String {
        match self {
            Self::Payment => "payment".into(),
            Self::Refund => "refund".into(),
            Self::Suspense(conflict) => format!("suspense:{conflict}"),
            Self::Fee => "fee".into(),
        }
    }
}

/// One transfer to post.
#[derive(Debug, Clone)]
pub struct Transfer<'a> {
    pub cause: Cause,
    pub upstream_id: &'a str,
    /// `None` for money no game can be told of.
    pub game: Option<&'a GameId>,
    pub debit: Account,
    pub credit: Account,
    pub amount: Money,
    pub order_no: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("a transfer moves a positive amount, not {0}")]
    NotPositive(Money),
    #[error("a transfer cannot debit and credit the same account ({0})")]
    SameAccount(String),
    #[error(
        "transfer {kind} {upstream_id} was posted before with other figures; a correction is a \
         new transfer"
    )]
    KeyReused { kind: String, upstream_id: String },
    #[error("transfer {kind} {upstream_id} has one leg only: the books are damaged")]
    HalfPosted { kind: String, upstream_id: String },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Whether a posting wrote the transfer or found it written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posted {
    New,
    AlreadyPosted,
}

/// What every transfer must be: a positive amount between two accounts.
fn validate(transfer: &Transfer<'_>) -> Result<(), LedgerError> {
    if transfer.amount.minor() <= 0 {
        return Err(LedgerError::NotPositive(transfer.amount));
    }
    if transfer.debit == transfer.credit {
        return Err(LedgerError::SameAccount(transfer.debit.name()));
    }
    Ok(())
}

/// Posts `transfer` in `tx`: both legs in one statement, or neither when the transfer exists
/// with the same figures.
pub async fn post(tx: &mut Tx, transfer: &Transfer<'_>) -> Result<Posted, LedgerError> {
    use sqlx::Row;
    validate(transfer)?;
    let (debit, credit) = (transfer.debit.name(), transfer.credit.name());
    let kind = transfer.cause.kind();
    let game = transfer.game.map_or("", GameId::as_str);
    let currency = transfer.amount.currency().code().to_owned();
    let written = sqlx::query(
        "INSERT INTO ledger_entries (kind, upstream_id, side, game_id, account, currency, \
         amount_minor, order_no, created_at) VALUES \
         ($1, $2, 'debit', $3, $4, $5, $6, $7, $8), ($1, $2, 'credit', $3, $9, $5, $6, $7, $8) \
         ON CONFLICT DO NOTHING",
    )
    .bind(kind.clone())
    .bind(transfer.upstream_id.to_owned())
    .bind(game.to_owned())
    .bind(debit.clone())
    .bind(currency.clone())
    .bind(transfer.amount.minor())
    .bind(transfer.order_no.map(str::to_owned))
    .bind(now_ms())
    .bind(credit.clone())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    match written {
        2 => Ok(Posted::New),
        0 => {
            let legs = sqlx::query(
                "SELECT side, game_id, account, currency, amount_minor FROM ledger_entries \
                 WHERE kind = $1 AND upstream_id = $2",
            )
            .bind(kind.clone())
            .bind(transfer.upstream_id.to_owned())
            .fetch_all(&mut *tx)
            .await?;
            let same = legs.len() == 2
                && legs.iter().all(|leg| {
                    let side: String = leg.try_get("side").unwrap_or_default();
                    let account = if side == "debit" { &debit } else { &credit };
                    leg.try_get::<String, _>("game_id").is_ok_and(|g| g == game)
                        && leg
                            .try_get::<String, _>("account")
                            .is_ok_and(|a| a == *account)
                        && leg
                            .try_get::<String, _>("currency")
                            .is_ok_and(|c| c == currency)
                        && leg
                            .try_get::<i64, _>("amount_minor")
                            .is_ok_and(|m| m == transfer.amount.minor())
                });
            if same {
                Ok(Posted::AlreadyPosted)
            } else {
                Err(LedgerError::KeyReused {
                    kind,
                    upstream_id: transfer.upstream_id.to_owned(),
                })
            }
        }
        _ => Err(LedgerError::HalfPosted {
            kind,
            upstream_id: transfer.upstream_id.to_owned(),
        }),
    }
}

/// Posts many transfers in `tx`, a few hundred per statement: a day's statement fees. A chunk
/// that was (partly) posted before is posted again one by one, so each transfer is still
/// checked against what was posted under its name.
pub async fn post_all(tx: &mut Tx, transfers: &[Transfer<'_>]) -> Result<(), LedgerError> {
    for chunk in transfers.chunks(TRANSFERS_PER_INSERT) {
        for transfer in chunk {
            validate(transfer)?;
        }
        let values: Vec<String> = (0..chunk.len() * 2)
            .map(|row| format!("({})", placeholders(row * 9 + 1, 9)))
            .collect();
        let sql = format!(
            "INSERT INTO ledger_entries (kind, upstream_id, side, game_id, account, currency, \
             amount_minor, order_no, created_at) VALUES {} ON CONFLICT DO NOTHING",
            values.join(", ")
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        let now = now_ms();
        for transfer in chunk {
            for (side, account) in [("debit", &transfer.debit), ("credit", &transfer.credit)] {
                query = query
                    .bind(transfer.cause.kind())
                    .bind(transfer.upstream_id.to_owned())
                    .bind(side)
                    .bind(transfer.game.map_or("", GameId::as_str).to_owned())
                    .bind(account.name())
                    .bind(transfer.amount.currency().code().to_owned())
                    .bind(transfer.amount.minor())
                    .bind(transfer.order_no.map(str::to_owned))
                    .bind(now);
            }
        }
        let written = query.execute(&mut *tx).await?.rows_affected();
        if written != 2 * chunk.len() as u64 {
            for transfer in chunk {
                post(tx, transfer).await?;
            }
        }
    }
    Ok(())
}
