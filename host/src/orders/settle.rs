//! Applying what a channel says about a payment: the one place where an order becomes paid.
//!
//! Every update comes from a verified source (a signed notification or a signed query). It is
//! applied in one transaction: the attempt, the order's transition and the outbox event. The
//! transition is conditional on the order's current state, so duplicated or concurrent
//! notifications change the order once and write one event. A payment Coffer cannot accept
//! (another amount, a second payment of a paid order, an unknown order) is recorded as a
//! conflict for an operator, never applied and never dropped.

use coffer_money::Money;
use futures_util::FutureExt;

use super::channel_refunds::{self, ChannelRefund, Given, Recorded};
use super::conflicts::{self, Conflict, ConflictKind};
use super::decision::{Decision, decide};
use super::model::{Attempt, Failure, Order};
use super::payment::{AMOUNT_MISMATCH, clean_id, failure_from, scrub};
use super::{AttemptStatus, OrderError, OrderNo, OrderStatus, Orders, books, store};
use crate::channels::{Charged, PaymentReport, PaymentState, contract};
use crate::fulfillment::{EventKind, enqueue};
use crate::store::{Tx, now_ms};

/// How often a browser return waiting for a settlement looks at the order again.
const SETTLEMENT_POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// What an update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The order became paid now (and an `order.paid` event was written).
    Paid,
    /// The attempt changed; the order did not.
    AttemptUpdated(AttemptStatus),
    /// Nothing to do: already applied, or older than what is known.
    Unchanged,
    /// A refund made at the channel was recorded (and an `order.refunded` event written).
    Refunded,
    /// Refused and recorded for an operator.
    Conflict(ConflictKind),
}

/// How often an unverified claim may make this instance query the channel about one payment.
pub(super) const CLAIM_QUERY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// A signed query under way, which several callers may wait for.
pub(super) type QueryInFlight = futures_util::future::Shared<
    futures_util::future::BoxFuture<'static, Result<(Settled, OrderNo), String>>,
>;

/// Why a claim could not be confirmed.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error("no payment {0:?} at this channel")]
    UnknownPayment(String),
    #[error("the channel is not loaded")]
    ChannelGone,
    #[error("the query failed: {0}")]
    Query(String),
    #[error(transparent)]
    Order(#[from] OrderError),
}

impl Orders {
    /// Applies a verified report from `channel` about the payment `report.payment_ref`.
    pub async fn apply_payment_report(
        &self,
        channel: &str,
        report: &PaymentReport,
        source: &'static str,
    ) -> Result<Settled, OrderError> {
        let news = News {
            channel: channel.to_owned(),
            report: report.clone(),
            source,
            backend: self.store.backend(),
        };
        let applied = self
            .store
            .write(news, |tx, news| Box::pin(apply_in(tx, news)))
            .await?;
        if let Some(order_no) = &applied.order_no {
            self.status_cache.invalidate(order_no).await;
            if applied.settled == Settled::Paid {
                tracing::info!(%order_no, channel, source, "order paid");
            }
        }
        Ok(applied.settled)
    }

    /// Asks the channel, with a signed query, where a payment stands, and applies the answer.
    /// For unsigned claims (browser returns) and for jobs looking for lost notifications.
    pub async fn confirm_by_query(
        &self,
        channel_id: &str,
        payment_ref: &str,
    ) -> Result<(Settled, OrderNo), ConfirmError> {
        let (order, attempt) = self
            .attempt_by_ref(channel_id, payment_ref)
            .await?
            .ok_or_else(|| ConfirmError::UnknownPayment(payment_ref.to_owned()))?;
        let channel = self
            .registry
            .get(channel_id)
            .ok_or(ConfirmError::ChannelGone)?;
        let request = contract::query_request(
            &attempt.payment_ref,
            attempt.channel_txn_id.as_deref(),
            order.amount,
            attempt.created_at.div_euclid(1000),
        );
        let call = channel
            .build_query(&request)
            .await
            .map_err(|e| ConfirmError::Query(scrub(&e.to_string())))?;
        let response = self
            .http
            .send(&call)
            .await
            .map_err(|e| ConfirmError::Query(scrub(&e.to_string())))?;
        let report = channel
            .parse_query_response(&request, &response)
            .await
            .map_err(|e| ConfirmError::Query(scrub(&e.to_string())))?
            .into();
        let settled = self
            .apply_payment_report(channel_id, &report, "query")
            .await?;
        Ok((settled, order.order_no))
    }

    /// Confirms an unverified claim (an unsigned notification, a status poll) by query, but
    /// only for attempts that have not settled, and at most once per payment every
    /// [`CLAIM_QUERY_INTERVAL`] on this instance: anyone can send claims, and each would cost
    /// a signed call to the channel. A query already under way is joined.
    pub async fn confirm_claim(
        &self,
        channel_id: &str,
        payment_ref: &str,
    ) -> Result<(Settled, Option<OrderNo>), ConfirmError> {
        // The channel's answer to this instance's own request is on its way: it settles the
        // payment (and if it goes astray, the follow-up queries do). Nothing to read.
        if self
            .exchanges_in_flight
            .lock()
            .expect("exchanges lock")
            .contains(payment_ref)
        {
            return Ok((Settled::Unchanged, None));
        }
        let key = format!("{channel_id}/{payment_ref}");
        if let Some(order_no) = self.settled_payments.get(&key) {
            return Ok((Settled::Unchanged, Some(order_no)));
        }
        let (order, attempt) = self
            .attempt_by_ref(channel_id, payment_ref)
            .await?
            .ok_or_else(|| ConfirmError::UnknownPayment(payment_ref.to_owned()))?;
        let settled = attempt.status.is_settled();
        if settled {
            self.remember_settled(channel_id, payment_ref, &order.order_no);
        }
        if settled || self.claim_throttle.get(&key).await.is_some() {
            return Ok((Settled::Unchanged, Some(order.order_no)));
        }
        self.claim_throttle.insert(key, ()).await;
        let (settled, order_no) = self.query_once(channel_id, payment_ref).await?;
        Ok((settled, Some(order_no)))
    }

    /// Notes that a payment settled (paid or failed): claims about it need nothing read.
    pub(super) fn remember_settled(&self, channel_id: &str, payment_ref: &str, order_no: &OrderNo) {
        self.settled_payments
            .insert(format!("{channel_id}/{payment_ref}"), order_no.clone());
    }

    /// The player's browser back from the channel: the moment a player waits for an answer.
    /// Asks the channel now (joining a query already under way, whatever the throttle did for
    /// polls), then gives the payment up to `patience` to settle (the channel's notification
    /// often arrives with the browser). Returns the order as it then stands.
    pub async fn confirm_return(
        &self,
        channel_id: &str,
        payment_ref: &str,
        patience: std::time::Duration,
    ) -> Result<super::OrderView, ConfirmError> {
        let (order, attempt) = self
            .attempt_by_ref(channel_id, payment_ref)
            .await?
            .ok_or_else(|| ConfirmError::UnknownPayment(payment_ref.to_owned()))?;
        if !attempt.status.is_settled() {
            self.claim_throttle
                .insert(format!("{channel_id}/{payment_ref}"), ())
                .await;
            if let Err(error) = self.query_once(channel_id, payment_ref).await {
                tracing::info!(%channel_id, %payment_ref, %error, "browser return not confirmed by query");
            }
        }
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let view = self.view(&order.order_no).await?;
            if !view.awaiting_payment() || tokio::time::Instant::now() >= deadline {
                return Ok(view);
            }
            tokio::time::sleep(SETTLEMENT_POLL_INTERVAL).await;
        }
    }

    /// [`Orders::confirm_by_query`], once at a time per payment: a caller arriving while a
    /// query is under way waits for its answer instead of making a second one. The query runs
    /// on a task of its own, so it finishes (and is recorded) even if every caller goes away.
    async fn query_once(
        &self,
        channel_id: &str,
        payment_ref: &str,
    ) -> Result<(Settled, OrderNo), ConfirmError> {
        let key = format!("{channel_id}/{payment_ref}");
        let shared = {
            let mut in_flight = self.queries_in_flight.lock().expect("queries lock");
            match in_flight.get(&key) {
                Some(query) => query.clone(),
                None => {
                    let this = self.clone();
                    let (channel, payment, slot) =
                        (channel_id.to_owned(), payment_ref.to_owned(), key.clone());
                    let task = tokio::spawn(async move {
                        let answer = this
                            .confirm_by_query(&channel, &payment)
                            .await
                            .map_err(|e| e.to_string());
                        this.queries_in_flight
                            .lock()
                            .expect("queries lock")
                            .remove(&slot);
                        answer
                    });
                    let query: QueryInFlight = async move {
                        task.await
                            .unwrap_or_else(|e| Err(format!("the query task failed: {e}")))
                    }
                    .boxed()
                    .shared();
                    in_flight.insert(key, query.clone());
                    query
                }
            }
        };
        shared.await.map_err(ConfirmError::Query)
    }

    /// The order and attempt a channel's payment reference belongs to.
    pub async fn attempt_by_ref(
        &self,
        channel: &str,
        payment_ref: &str,
    ) -> Result<Option<(Order, Attempt)>, OrderError> {
        let Some((order_no, attempt)) =
            store::attempt_by_ref(self.store.pool(), channel, payment_ref).await?
        else {
            return Ok(None);
        };
        Ok(store::get_order(&self.store, &order_no)
            .await?
            .map(|order| (order, attempt)))
    }
}

/// A verified update to apply, as the write job sees it.
pub(super) struct News {
    pub channel: String,
    pub report: PaymentReport,
    /// Where it came from: "notification", "query", "answer".
    pub source: &'static str,
    pub backend: crate::store::Backend,
}

/// What applying an update did, and to which order.
pub(super) struct Applied {
    pub settled: Settled,
    pub order_no: Option<OrderNo>,
}

/// Applies `news` in `tx`: the attempt, the order's transition and the outbox event together.
pub(super) async fn apply_in(tx: &mut Tx, news: &News) -> Result<Applied, OrderError> {
    let (channel, report) = (news.channel.as_str(), &news.report);
    let payment_ref = report.payment_ref.as_str();
    let Some((order_no, attempt_no)) = store::find_attempt(&mut *tx, channel, payment_ref).await?
    else {
        let kind = ConflictKind::UnknownPayment;
        // Money came in only if the channel says it was paid.
        let parked = (report.state == PaymentState::Paid)
            .then(|| charged_money(report))
            .flatten();
        record_conflict(tx, kind, channel, payment_ref, None, report, parked).await?;
        tracing::error!(
            channel,
            payment_ref,
            "verified payment update for no known attempt; recorded as a conflict"
        );
        return Ok(Applied {
            settled: Settled::Conflict(kind),
            order_no: None,
        });
    };
    let order = store::lock_order(tx, news.backend, &order_no)
        .await?
        .ok_or_else(|| OrderError::NotFound(order_no.to_string()))?;
    let mut attempt = store::attempts(&mut *tx, &order_no)
        .await?
        .into_iter()
        .find(|a| a.attempt_no == attempt_no)
        .ok_or_else(|| OrderError::NotFound(payment_ref.to_owned()))?;
    let settled = settle(tx, &order, &mut attempt, report, news.source).await?;
    Ok(Applied {
        settled,
        order_no: Some(order_no),
    })
}

/// Applies `report` to `attempt` of `order` (both read under the order's lock), as
/// [`decide`] says.
async fn settle(
    tx: &mut Tx,
    order: &Order,
    attempt: &mut Attempt,
    report: &PaymentReport,
    source: &str,
) -> Result<Settled, OrderError> {
    let amount_matches = report.charged.as_ref().is_some_and(|c| c.is(order.amount));
    let decision = decide(order.status, attempt.status, report.state, amount_matches);
    let (channel, payment_ref) = (attempt.channel.clone(), attempt.payment_ref.clone());
    let refuse = async |tx: &mut Tx, kind: ConflictKind, parked: Option<Money>| {
        record_conflict(
            tx,
            kind,
            &channel,
            &payment_ref,
            Some(order),
            report,
            parked,
        )
        .await
    };
    match decision {
        Decision::Unchanged => Ok(Settled::Unchanged),
        Decision::RecordRefund(given) => {
            let channel_refund_no = if given == Given::TheRest {
                "whole-payment"
            } else {
                "partial"
            };
            let refund = ChannelRefund {
                channel_refund_no,
                channel_refund_id: None,
                given,
                channel_status: &report.channel_status,
            };
            Ok(
                match channel_refunds::record(tx, order, attempt, refund).await? {
                    Recorded::Refunded => Settled::Refunded,
                    Recorded::Known => Settled::Unchanged,
                    Recorded::Conflict(kind) => Settled::Conflict(kind),
                },
            )
        }
        Decision::Refuse(kind) => {
            // A chargeback's amount and date come with the channel's statement, where
            // reconciliation posts it; here it only waits for an operator.
            refuse(tx, kind, None).await?;
            tracing::error!(order_no = %order.order_no, %kind, state = ?report.state, "payment update refused; recorded as a conflict");
            Ok(Settled::Conflict(kind))
        }
        Decision::RefuseAmount => {
            refuse(tx, ConflictKind::AmountMismatch, charged_money(report)).await?;
            attempt.status = AttemptStatus::Unknown;
            attempt.failure = Some(Failure {
                code: AMOUNT_MISMATCH.into(),
                message: "the channel reported a payment of another amount or currency".into(),
            });
            attempt.updated_at = now_ms();
            store::update_attempt(&mut *tx, &order.order_no, attempt).await?;
            tracing::error!(order_no = %order.order_no, charged = ?report.charged, expected = %order.amount, "paid amount differs from the order; recorded as a conflict");
            Ok(Settled::Conflict(ConflictKind::AmountMismatch))
        }
        Decision::MoveAttempt(status) => {
            take_report(attempt, status, report);
            store::update_attempt(&mut *tx, &order.order_no, attempt).await?;
            Ok(Settled::AttemptUpdated(status))
        }
        Decision::PaidTwice => {
            take_report(attempt, AttemptStatus::Paid, report);
            store::update_attempt(&mut *tx, &order.order_no, attempt).await?;
            refuse(tx, ConflictKind::PaidTwice, Some(order.amount)).await?;
            tracing::error!(order_no = %order.order_no, payment_ref = %attempt.payment_ref, "second payment for a paid order; recorded as a conflict for a refund");
            Ok(Settled::Conflict(ConflictKind::PaidTwice))
        }
        Decision::Pay { reopened } => {
            take_report(attempt, AttemptStatus::Paid, report);
            store::update_attempt(&mut *tx, &order.order_no, attempt).await?;
            pay(tx, order, attempt, source, reopened, report).await
        }
    }
}

/// What `report` tells about `attempt`, now in `status`.
fn take_report(attempt: &mut Attempt, status: AttemptStatus, report: &PaymentReport) {
    attempt.status = status;
    if let Some(txn) = &report.channel_txn_id {
        attempt.channel_txn_id = Some(clean_id(txn));
    }
    attempt.channel_status = scrub(&report.channel_status);
    match status {
        AttemptStatus::Failed => {
            attempt.failure = report.reason.as_ref().and_then(failure_from);
        }
        AttemptStatus::Paid => attempt.failure = None,
        _ => {}
    }
    attempt.updated_at = now_ms();
}

/// Moves `order` to paid by `attempt`, with its `order.paid` event.
async fn pay(
    tx: &mut Tx,
    order: &Order,
    attempt: &Attempt,
    source: &str,
    reopened: bool,
    report: &PaymentReport,
) -> Result<Settled, OrderError> {
    let reason = format!(
        "paid via {} ({source}), attempt {}",
        attempt.channel, attempt.attempt_no
    );
    let moved = store::transition(
        tx,
        &order.order_no,
        order.status,
        OrderStatus::Paid,
        &reason,
    )
    .await?;
    if !moved {
        return Ok(Settled::Unchanged);
    }
    if reopened {
        // Closing gave the stock and the purchase back; the money came anyway, so take them
        // again. With none left, the order is still paid (the player paid) and an operator
        // decides (deliver beyond the stock, or refund).
        if order.holds_stock && !crate::catalog::reserve_stock(tx, &order.game, &order.sku).await? {
            let kind = ConflictKind::SoldOutAfterClose;
            let (channel, payment_ref) = (&attempt.channel, &attempt.payment_ref);
            record_conflict(tx, kind, channel, payment_ref, Some(order), report, None).await?;
        }
        crate::catalog::count_purchase(tx, &order.player_id, &order.game, &order.sku, i64::MAX)
            .await?;
    }
    books::post_payment(tx, order, attempt).await?;
    let mut paid = order.clone();
    paid.status = OrderStatus::Paid;
    paid.paid_at = Some(now_ms());
    enqueue(tx, EventKind::OrderPaid, &paid).await?;
    Ok(Settled::Paid)
}

/// The money a report says was charged, when its currency is one Coffer knows.
fn charged_money(report: &PaymentReport) -> Option<Money> {
    match report.charged {
        Some(Charged::Money(money)) => Some(money),
        _ => None,
    }
}

/// Records a payment report Coffer refused to apply, once per kind and payment; money that
/// came in with it (`parked`) waits in suspense.
async fn record_conflict(
    tx: &mut Tx,
    kind: ConflictKind,
    channel: &str,
    payment_ref: &str,
    order: Option<&Order>,
    report: &PaymentReport,
    parked: Option<Money>,
) -> Result<(), OrderError> {
    let detail = format!(
        "status {:?}, amount {}, channel status {}",
        report.state,
        report
            .charged
            .as_ref()
            .map_or_else(|| "none".to_owned(), ToString::to_string),
        scrub(&report.channel_status)
    );
    let order_no = order.map(|o| &o.order_no);
    let new = conflicts::record(
        tx,
        Conflict {
            kind,
            channel,
            payment_ref,
            order_no,
            channel_txn_id: report.channel_txn_id.as_deref(),
            detail,
        },
    )
    .await?;
    if let (true, Some(amount)) = (new, parked) {
        let game = order.map(|o| &o.game);
        let order_no = order_no.map(OrderNo::as_str);
        books::park_in_suspense(tx, kind, game, channel, payment_ref, order_no, amount).await?;
    }
    Ok(())
}
