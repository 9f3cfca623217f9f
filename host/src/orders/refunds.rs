//! Refunds: giving back all or part of a paid order through the channel that took the money.
//!
//! The refund is recorded (and its amount held) before the channel is called, in a transaction
//! that checks the amount against what is left, so concurrent refunds never give back more than
//! was paid. The channel's answer, or its later notification, settles it; a success moves the
//! order to `refunded` or `partially_refunded` and writes an `order.refunded` event, once.

use coffer_money::Money;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::channel_refunds::{self, ChannelRefund, Given, Recorded};
use super::conflicts::{self, Conflict, ConflictKind};
use super::payment::{clean_id, scrub};
use super::refund_decision::{RefundDecision, RefundStatus, decide_refund};
use super::{AttemptStatus, Failure, OrderError, OrderNo, Orders, store};
use crate::catalog::MoneyView;
use crate::channels::{self, RefundReport, RefundState, contract};
use crate::games::GameId;
use crate::store::{Tx, new_id, now_ms};

/// `POST /v1/orders/{order_no}/refunds`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundAsk {
    /// Minor units to give back; everything that is left when absent.
    #[serde(default)]
    pub amount_minor: Option<i64>,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Refund {
    pub refund_no: String,
    pub order_no: String,
    pub amount: MoneyView,
    pub status: RefundStatus,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn refund_from_row(row: &AnyRow) -> Result<(Refund, String, String), sqlx::Error> {
    let currency = coffer_money::Currency::parse(&row.try_get::<String, _>("currency")?)
        .map_err(|e| sqlx::Error::Decode(e.to_string().into()))?;
    let status: String = row.try_get("status")?;
    let status = RefundStatus::parse(&status)
        .ok_or_else(|| sqlx::Error::Decode(format!("no refund status {status:?}").into()))?;
    let code: Option<String> = row.try_get("failure_code")?;
    let message: Option<String> = row.try_get("failure_message")?;
    Ok((
        Refund {
            refund_no: row.try_get("refund_no")?,
            order_no: row.try_get("order_no")?,
            amount: Money::new(row.try_get("amount_minor")?, currency).into(),
            status,
            reason: row.try_get("reason")?,
            failure: code.map(|code| Failure {
                code,
                message: message.unwrap_or_default(),
            }),
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        },
        row.try_get("channel")?,
        row.try_get("payment_ref")?,
    ))
}

impl Orders {
    /// Refunds `ask.amount_minor` (or all that is left) of a paid order of `game`.
    pub async fn refund(
        &self,
        game: &GameId,
        order_no: &OrderNo,
        ask: RefundAsk,
    ) -> Result<Refund, OrderError> {
        if ask.reason.chars().count() > 200 {
            return Err(OrderError::Invalid(
                "reason is at most 200 characters".into(),
            ));
        }
        let order = store::get_order(&self.store, order_no)
            .await?
            .filter(|o| &o.game == game)
            .ok_or_else(|| OrderError::NotFound(order_no.to_string()))?;
        let attempt = store::attempts(self.store.pool(), order_no)
            .await?
            .into_iter()
            .find(|a| a.status == AttemptStatus::Paid)
            .ok_or_else(|| OrderError::NotRefundable("the order was never paid".into()))?;
        let channel = self.registry.get(&attempt.channel).ok_or_else(|| {
            OrderError::NotRefundable(format!("channel {} is not loaded", attempt.channel))
        })?;
        let info = channel.info();
        if !info.supports_refund {
            return Err(OrderError::NotRefundable(format!(
                "{} does not refund",
                attempt.channel
            )));
        }

        // Record and hold the amount, checked against what is left, in one transaction.
        let hold = Hold {
            order_no: order_no.clone(),
            refund_no: new_id("RF"),
            channel: attempt.channel.clone(),
            payment_ref: attempt.payment_ref.clone(),
            paid: order.amount,
            asked_minor: ask.amount_minor,
            reason: ask.reason.clone(),
            partial_refunds: info.supports_partial_refund,
            backend: self.store.backend(),
        };
        let (refund_no, amount) = self
            .store
            .write(hold, |tx, hold| Box::pin(hold_in(tx, hold)))
            .await?;

        let ask = channels::RefundAsk {
            refund_no: refund_no.clone(),
            payment_ref: attempt.payment_ref.clone(),
            channel_txn_id: attempt.channel_txn_id.clone(),
            paid: order.amount,
            amount: Money::new(amount, order.amount.currency()),
            reason: ask.reason.clone(),
            notify_url: format!("{}/v1/callbacks/{}", self.public_url, attempt.channel),
        };
        // On a task of its own: once the refund may be on its way to the channel, recording
        // the answer must not depend on the caller waiting for it.
        let this = self.clone();
        let sent = tokio::spawn(async move {
            this.send_refund(channel, &attempt.channel, &ask).await;
        });
        if let Err(error) = sent.await
            && error.is_panic()
        {
            std::panic::resume_unwind(error.into_panic());
        }
        self.get_refund(&refund_no)
            .await?
            .ok_or_else(|| OrderError::NotFound(refund_no))
    }

    /// Sends a recorded refund to the channel and records its answer. From here the refund
    /// exists (and may have been sent): errors are logged, and the caller answers with the
    /// refund as stored, so a retried request finds it instead of refunding again.
    async fn send_refund(
        &self,
        channel: std::sync::Arc<coffer_plugin_runtime::Channel>,
        channel_id: &str,
        ask: &channels::RefundAsk,
    ) {
        let (payment_ref, refund_no) = (&ask.payment_ref, &ask.refund_no);
        let request = contract::refund_request(ask);
        let outcome = match channel.build_refund(&request).await {
            Err(error) => Err((RefundStatus::Failed, scrub(&error.to_string()))),
            Ok(call) => match self.http.send(&call).await {
                Err(error) => Err((RefundStatus::Unknown, scrub(&error.to_string()))),
                Ok(response) => channel
                    .parse_refund_response(&request, &response)
                    .await
                    .map_err(|e| (RefundStatus::Unknown, scrub(&e.to_string()))),
            },
        };
        match outcome {
            Ok(update) => {
                let report = RefundReport::from(update);
                if let Err(error) = self.apply_refund_report(channel_id, &report).await {
                    tracing::error!(%payment_ref, %refund_no, %error, "cannot record the channel's refund answer; a notification or an operator settles it");
                }
            }
            Err((status, message)) => {
                tracing::warn!(%payment_ref, %refund_no, status = status.as_str(), %message, "refund not settled");
                let failure = (refund_no.clone(), status, message);
                let recorded = self
                    .store
                    .write(failure, |tx, (refund_no, status, message)| {
                        Box::pin(async move {
                            sqlx::query(
                                "UPDATE refunds SET status = $1, failure_code = $2, \
                                 failure_message = $3, updated_at = $4 \
                                 WHERE refund_no = $5 AND status = 'pending'",
                            )
                            .bind(status.as_str())
                            .bind(if *status == RefundStatus::Failed {
                                super::payment::NOT_SENT
                            } else {
                                super::payment::NO_ANSWER
                            })
                            .bind(message.clone())
                            .bind(now_ms())
                            .bind(refund_no.clone())
                            .execute(&mut *tx)
                            .await
                        })
                    })
                    .await;
                if let Err(error) = recorded {
                    tracing::error!(%refund_no, %error, "cannot record a refund's failure");
                }
            }
        }
    }

    /// Applies a channel's word on a refund (its answer, a signed notification, a query).
    /// A success moves the order and writes `order.refunded`, once.
    pub async fn apply_refund_report(
        &self,
        channel: &str,
        report: &RefundReport,
    ) -> Result<(), OrderError> {
        let news = RefundNews {
            channel: channel.to_owned(),
            report: report.clone(),
            backend: self.store.backend(),
        };
        let moved = self
            .store
            .write(news, |tx, news| Box::pin(apply_refund_in(tx, news)))
            .await?;
        if let Some(order_no) = moved {
            self.status_cache.invalidate(&order_no).await;
        }
        Ok(())
    }

    pub async fn get_refund(&self, refund_no: &str) -> Result<Option<Refund>, OrderError> {
        let row = sqlx::query("SELECT * FROM refunds WHERE refund_no = $1")
            .bind(refund_no.to_owned())
            .fetch_optional(self.store.pool())
            .await?;
        Ok(row
            .as_ref()
            .map(refund_from_row)
            .transpose()?
            .map(|(r, _, _)| r))
    }
}

/// A refund to record and hold, as the write job sees it.
struct Hold {
    order_no: OrderNo,
    refund_no: String,
    channel: String,
    payment_ref: String,
    paid: Money,
    asked_minor: Option<i64>,
    reason: String,
    partial_refunds: bool,
    backend: crate::store::Backend,
}

/// Checks the amount against what is left (under the order's lock) and records the refund
/// `pending`, holding it. Returns its number and amount.
async fn hold_in(tx: &mut Tx, hold: &Hold) -> Result<(String, i64), OrderError> {
    let current = store::lock_order(tx, hold.backend, &hold.order_no)
        .await?
        .ok_or_else(|| OrderError::NotFound(hold.order_no.to_string()))?;
    if !(current.status.is_paid()) {
        return Err(OrderError::NotRefundable(format!(
            "the order is {}",
            current.status
        )));
    }
    let held: i64 = sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) FROM refunds \
         WHERE order_no = $1 AND status IN ('pending', 'unknown', 'succeeded')",
    )
    .bind(hold.order_no.to_string())
    .fetch_one(&mut *tx)
    .await?;
    let left = hold.paid.minor() - held;
    let amount = hold.asked_minor.unwrap_or(left);
    if amount <= 0 || amount > left {
        return Err(OrderError::NotRefundable(format!(
            "{} minor units can be refunded, not {amount}",
            left.max(0)
        )));
    }
    if amount < hold.paid.minor() && !hold.partial_refunds {
        return Err(OrderError::NotRefundable(format!(
            "{} refunds only whole payments",
            hold.channel
        )));
    }
    let now = now_ms();
    sqlx::query(
        "INSERT INTO refunds (refund_no, order_no, channel, payment_ref, amount_minor, currency, \
         status, reason, channel_refund_id, channel_status, failure_code, failure_message, \
         created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, NULL, '', NULL, NULL, $8, $8)",
    )
    .bind(hold.refund_no.clone())
    .bind(hold.order_no.to_string())
    .bind(hold.channel.clone())
    .bind(hold.payment_ref.clone())
    .bind(amount)
    .bind(hold.paid.currency().code().to_owned())
    .bind(hold.reason.clone())
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok((hold.refund_no.clone(), amount))
}

/// A channel's word on a refund, as the write job sees it.
struct RefundNews {
    channel: String,
    report: RefundReport,
    backend: crate::store::Backend,
}

/// Applies a channel's word on a refund, as [`decide_refund`] says; returns the order it
/// moved, if any.
async fn apply_refund_in(tx: &mut Tx, news: &RefundNews) -> Result<Option<OrderNo>, OrderError> {
    let (channel, report) = (news.channel.as_str(), &news.report);
    let Some(row) = sqlx::query("SELECT * FROM refunds WHERE refund_no = $1 AND channel = $2")
        .bind(report.refund_no.clone())
        .bind(channel.to_owned())
        .fetch_optional(&mut *tx)
        .await?
    else {
        // Not a refund Coffer asked for: made at the channel.
        return apply_channel_refund_in(tx, news).await;
    };
    let (refund, _, _) = refund_from_row(&row)?;
    let order_no = OrderNo::parse(&refund.order_no).map_err(OrderError::Invalid)?;
    let asked = refund.amount.amount_minor;
    let amount_matches = coffer_money::Currency::parse(&refund.amount.currency)
        .is_ok_and(|currency| report.amount.is(Money::new(asked, currency)));
    let status = match decide_refund(refund.status, report.state, amount_matches) {
        RefundDecision::Unchanged => return Ok(None),
        RefundDecision::Refuse(kind) => {
            conflicts::record(
                tx,
                Conflict {
                    kind,
                    channel,
                    payment_ref: &refund.refund_no,
                    order_no: Some(&order_no),
                    channel_txn_id: report.channel_refund_id.as_deref(),
                    detail: format!(
                        "refund of {asked} {} ({}) reported succeeded for {}",
                        refund.amount.currency,
                        refund.status.as_str(),
                        report.amount
                    ),
                },
            )
            .await?;
            tracing::error!(refund_no = %refund.refund_no, %kind, "refund update not applied; recorded as a conflict");
            return Ok(None);
        }
        RefundDecision::Fail => RefundStatus::Failed,
        RefundDecision::Succeed => RefundStatus::Succeeded,
    };
    // Conditional on the refund still being open, so a concurrent report settles it once.
    let moved = sqlx::query(
        "UPDATE refunds SET status = $1, channel_refund_id = COALESCE($2, channel_refund_id), \
         channel_status = $3, failure_code = $4, failure_message = $5, updated_at = $6 \
         WHERE refund_no = $7 AND status IN ('pending', 'unknown')",
    )
    .bind(status.as_str())
    .bind(report.channel_refund_id.as_deref().map(clean_id))
    .bind(scrub(&report.channel_status))
    .bind(report.reason.as_ref().map(|r| scrub(&r.code)))
    .bind(report.reason.as_ref().map(|r| scrub(&r.message)))
    .bind(now_ms())
    .bind(refund.refund_no.clone())
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() == 0 || status != RefundStatus::Succeeded {
        return Ok(None);
    }
    let order = store::lock_order(tx, news.backend, &order_no)
        .await?
        .ok_or_else(|| OrderError::NotFound(refund.order_no.clone()))?;
    channel_refunds::credit(tx, &order, channel, &refund.refund_no, asked).await?;
    Ok(Some(order_no))
}

/// A refund event for a refund Coffer did not ask for: recorded against the payment it names
/// (see `channel_refunds`). Returns the order it moved, if any.
async fn apply_channel_refund_in(
    tx: &mut Tx,
    news: &RefundNews,
) -> Result<Option<OrderNo>, OrderError> {
    let (channel, report) = (news.channel.as_str(), &news.report);
    if report.state != RefundState::Succeeded {
        // Nothing has moved yet; the channel tells again when it has.
        tracing::info!(channel, refund_no = %report.refund_no, state = ?report.state, "refund at the channel not final yet");
        return Ok(None);
    }
    let Some((order_no, attempt_no)) =
        store::find_attempt(&mut *tx, channel, &report.payment_ref).await?
    else {
        conflicts::record(
            tx,
            Conflict {
                kind: ConflictKind::RefundOfUnknownPayment,
                channel,
                payment_ref: &report.payment_ref,
                order_no: None,
                channel_txn_id: report.channel_refund_id.as_deref(),
                detail: format!(
                    "refund {} of {} for a payment Coffer does not know",
                    report.refund_no, report.amount
                ),
            },
        )
        .await?;
        tracing::error!(channel, payment_ref = %report.payment_ref, "refund for an unknown payment; recorded as a conflict");
        return Ok(None);
    };
    let order = store::lock_order(tx, news.backend, &order_no)
        .await?
        .ok_or_else(|| OrderError::NotFound(order_no.to_string()))?;
    let attempt = store::attempts(&mut *tx, &order_no)
        .await?
        .into_iter()
        .find(|a| a.attempt_no == attempt_no)
        .ok_or_else(|| OrderError::NotFound(report.payment_ref.clone()))?;
    let given = match report.amount {
        channels::Charged::Money(money) => Given::Exactly(money),
        channels::Charged::UnknownCurrency { .. } => Given::Some,
    };
    let recorded = channel_refunds::record(
        tx,
        &order,
        &attempt,
        ChannelRefund {
            channel_refund_no: &report.refund_no,
            channel_refund_id: report.channel_refund_id.as_deref(),
            given,
            channel_status: &report.channel_status,
        },
    )
    .await?;
    Ok((recorded == Recorded::Refunded).then_some(order_no))
}
