//! Opening an order and running its payment attempts: the order, its holds and its first
//! attempt are committed before any channel is called; the channel's answer is recorded
//! afterwards, on a task of its own so that it never depends on the caller waiting.

use std::sync::Arc;

use coffer_money::Currency;
use coffer_plugin_runtime::Channel;

use super::model::{Attempt, Failure, Order, OrderView};
use super::request::{CreateOrder, PaymentChoice};
use super::settle::{self, News};
use super::{
    AttemptStatus, OrderError, OrderNo, OrderStatus, Orders, UNKNOWN_OUTCOME_QUERY_DELAYS,
    blocking_attempt, catalog_error, payment, store,
};
use crate::catalog::CatalogError;
use crate::channels::routing;
use crate::channels::{Charged, Flow, PaymentReport, PaymentState};
use crate::games::{GameId, Region};
use crate::store::{Backend, Tx, now_ms};

/// What opening an order writes.
struct NewOrder {
    order: Order,
    /// The SKU's purchase limit per player, if it has one.
    limit: Option<i64>,
    /// None for a store order, paid later by its proof.
    attempt: Option<Attempt>,
}

/// An answer that paid an attempt at once, to record.
struct PaidAnswer {
    order: Order,
    attempt: Attempt,
    backend: Backend,
}

impl Orders {
    /// Creates an order and starts its first payment attempt. `Ok` once the order exists,
    /// whatever became of the attempt (see [`Attempt::status`]).
    pub async fn create(
        &self,
        game: &GameId,
        default_region: &Region,
        request: CreateOrder,
    ) -> Result<OrderView, OrderError> {
        request.validate()?;
        let currency = request
            .currency
            .as_deref()
            .map(Currency::parse)
            .transpose()
            .map_err(|e| OrderError::Invalid(format!("currency: {e}")))?;
        let region = request
            .region
            .clone()
            .unwrap_or_else(|| default_region.clone());
        // A player never changes game, so this check needs no transaction.
        let player_game = self
            .players
            .game_of(&request.player_id)
            .await
            .map_err(|e| OrderError::Invariant(e.to_string()))?;
        if player_game.as_ref() != Some(game) {
            return Err(OrderError::UnknownPlayer(request.player_id.clone()));
        }
        // Price, sale window and limit as in force within a second, whichever instance changed
        // them; stock and purchase counts are decided by the order's own writes.
        let sku = match self.catalog.sku_for_pricing(game, &request.sku).await {
            Ok(sku) => sku,
            Err(CatalogError::NotFound(_)) => {
                return Err(OrderError::UnknownSku(request.sku.clone()));
            }
            Err(e) => return Err(catalog_error(e)),
        };
        let now = now_ms();
        if !sku.spec.on_sale_at(now) {
            return Err(OrderError::NotOnSale(request.sku.clone()));
        }
        let amount = match request.fixed_amount {
            Some(amount) => amount,
            None => sku
                .spec
                .price_for(&region, currency)
                .map_err(|e| OrderError::NoPrice(e.to_string()))?,
        };
        if let Some(expected) = request.expected_price
            && expected != amount
        {
            return Err(OrderError::PriceMismatch {
                sku: request.sku.clone(),
                price: amount,
                expected,
            });
        }
        let choice = &request.payment;
        let channel = match choice.flow {
            // Paid in the store: nothing to route, the channel named must be a store.
            Flow::Store => routing::store_channel(&self.registry, choice.channel.as_deref())?,
            _ => {
                routing::choose(
                    &self.registry,
                    choice.channel.as_deref(),
                    &choice.method,
                    choice.flow,
                    amount,
                    region.as_str(),
                )
                .await?
            }
        };
        let order = Order {
            order_no: OrderNo::generate(),
            game: game.clone(),
            player_id: request.player_id.clone(),
            merchant_order_no: request.merchant_order_no.clone(),
            sku: sku.spec.code.clone(),
            region,
            amount,
            subject: sku.spec.title.clone(),
            grants: sku.spec.grants.clone(),
            status: OrderStatus::Pending,
            holds_stock: sku.spec.stock_total.is_some(),
            client_ip: request.client_ip.clone(),
            device: request.device.clone(),
            expires_at: now + (self.config.expire_after_s as i64) * 1000,
            paid_at: None,
            refunded_minor: 0,
            delivery_hold_ms: request.delivery_hold_ms,
            created_at: now,
            updated_at: now,
        };
        // A store order has no attempt until its proof arrives (`stores`).
        let attempt = (choice.flow != Flow::Store)
            .then(|| new_attempt(&order.order_no, 1, channel.id(), choice));
        let new = NewOrder {
            order: order.clone(),
            limit: sku.spec.effective_limit(),
            attempt: attempt.clone(),
        };
        self.store
            .write(new, |tx, new| Box::pin(open_in(tx, new)))
            .await?;
        match attempt {
            Some(attempt) => Ok(self
                .run_detached(order, channel, request.payment, attempt)
                .await),
            None => Ok(OrderView::new(order, None)),
        }
    }

    /// Runs a recorded attempt on a task of its own and waits for it. Once a payment may be on
    /// its way to the channel, recording what became of it (the attempt, the settlement, the
    /// event) must not depend on the caller: an HTTP client that hangs up, or a request that
    /// times out, drops the caller's future, never this task.
    async fn run_detached(
        &self,
        order: Order,
        channel: Arc<Channel>,
        choice: PaymentChoice,
        attempt: Attempt,
    ) -> OrderView {
        let this = self.clone();
        let fallback = OrderView::new(order.clone(), Some(unrecorded(attempt.clone())));
        let task =
            tokio::spawn(async move { this.run_recorded(&order, channel, &choice, attempt).await });
        match task.await {
            Ok(view) => view,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            // The runtime is shutting down: the attempt is settled by query after the restart.
            Err(_) => fallback,
        }
    }

    /// Runs an attempt whose order exists. From here on the answer must carry the order, even
    /// when recording the outcome fails: the channel may have taken the money.
    async fn run_recorded(
        &self,
        order: &Order,
        channel: Arc<Channel>,
        choice: &PaymentChoice,
        attempt: Attempt,
    ) -> OrderView {
        let fallback = attempt.clone();
        match self.run_attempt(order, channel, choice, attempt).await {
            Ok(view) => view,
            Err(error) => {
                tracing::error!(order_no = %order.order_no, %error, "cannot record a payment attempt's outcome; it will be settled by query");
                OrderView::new(order.clone(), Some(unrecorded(fallback)))
            }
        }
    }

    /// Calls the channel for a recorded attempt and records what became of it. Returns the
    /// order and the attempt as they now stand (from what was written, not read back).
    async fn run_attempt(
        &self,
        order: &Order,
        channel: Arc<Channel>,
        choice: &PaymentChoice,
        attempt: Attempt,
    ) -> Result<OrderView, OrderError> {
        let urls = payment::Urls {
            notify: format!("{}/v1/callbacks/{}", self.public_url, channel.id()),
            return_to: choice.return_url.clone().unwrap_or_else(|| {
                format!(
                    "{}/v1/return/{}?order_no={}",
                    self.public_url,
                    channel.id(),
                    order.order_no
                )
            }),
        };
        let exchange = ExchangeInFlight::start(self, &attempt.payment_ref);
        let attempt = payment::run(channel, &self.http, order, choice, urls, attempt).await;
        self.status_cache.invalidate(&order.order_no).await;
        if attempt.status != AttemptStatus::Paid {
            // Recorded only if nothing newer was: a notification may have arrived (and been
            // applied) while the answer was on its way.
            let recorded = self
                .store
                .write(
                    (order.order_no.clone(), attempt.clone()),
                    |tx, (order_no, attempt)| {
                        Box::pin(store::update_created_attempt(tx, order_no, attempt))
                    },
                )
                .await?;
            if attempt.status == AttemptStatus::Unknown {
                self.follow_up_unknown(&attempt);
            }
            if recorded && attempt.status.is_settled() {
                self.remember_settled(&attempt.channel, &attempt.payment_ref, &order.order_no);
            }
            if recorded {
                return Ok(OrderView::new(order.clone(), Some(attempt)));
            }
            return self.view(&order.order_no).await;
        }
        // Paid at once: through the one settling path, the common case in four statements.
        let settled_key = (attempt.channel.clone(), attempt.payment_ref.clone());
        let answer = PaidAnswer {
            order: order.clone(),
            attempt,
            backend: self.store.backend(),
        };
        let paid = self
            .store
            .write(answer, |tx, answer| {
                Box::pin(record_paid_answer(tx, answer))
            })
            .await?;
        drop(exchange);
        match paid {
            Some(view) => {
                self.remember_settled(&settled_key.0, &settled_key.1, &order.order_no);
                Ok(view)
            }
            // Something else happened to the order meanwhile: show it as it stands.
            None => self.view(&order.order_no).await,
        }
    }

    /// Asks the channel about an attempt whose outcome is unknown (no answer, an unusable
    /// one) a few times in the next seconds, in the background: the order takes no other
    /// attempt meanwhile, so waiting for the recovery job (minutes) would block the player.
    fn follow_up_unknown(&self, attempt: &Attempt) {
        let this = self.clone();
        let (channel, payment_ref) = (attempt.channel.clone(), attempt.payment_ref.clone());
        tokio::spawn(async move {
            for delay in UNKNOWN_OUTCOME_QUERY_DELAYS {
                tokio::time::sleep(delay).await;
                if let Err(error) = this.confirm_by_query(&channel, &payment_ref).await {
                    tracing::info!(%channel, %payment_ref, %error, "unknown payment outcome not confirmed yet");
                }
                match this.attempt_by_ref(&channel, &payment_ref).await {
                    Ok(Some((_, attempt))) if !attempt.status.outcome_unknown() => return,
                    Ok(None) => return,
                    _ => {}
                }
            }
        });
    }

    /// Settles, by a signed query now, the attempts whose outcome is unknown: another attempt
    /// may start only once they are known not to have taken the money.
    async fn confirm_unknown(&self, attempts: &[Attempt]) {
        for attempt in attempts.iter().filter(|a| a.status.outcome_unknown()) {
            if let Err(error) = self
                .confirm_by_query(&attempt.channel, &attempt.payment_ref)
                .await
            {
                tracing::info!(payment_ref = %attempt.payment_ref, %error, "blocking attempt not confirmed");
            }
        }
    }

    /// Starts another payment attempt on a pending order, e.g. another card or channel after
    /// a decline. Refused while an earlier attempt may still take the money.
    pub async fn retry_payment(
        &self,
        game: &GameId,
        order_no: &OrderNo,
        choice: PaymentChoice,
    ) -> Result<OrderView, OrderError> {
        choice.validate()?;
        if choice.flow == Flow::Store {
            return Err(OrderError::Invalid(
                "a store order is paid by its proof (POST /v1/store-purchases)".into(),
            ));
        }
        let order = store::get_order(&self.store, order_no)
            .await?
            .filter(|o| &o.game == game)
            .ok_or_else(|| OrderError::NotFound(order_no.to_string()))?;
        if order.status != OrderStatus::Pending || order.expires_at <= now_ms() {
            return Err(OrderError::NotPayable {
                order_no: order_no.to_string(),
                status: order.status,
            });
        }
        // Checked again inside the transaction; checked here too so that a blocked order
        // says so whatever channel was asked for. An attempt of unknown outcome is asked about
        // first (a channel that answered 503 most likely never started it).
        let earlier = store::attempts(self.store.pool(), order_no).await?;
        if blocking_attempt(&earlier).is_err() {
            self.confirm_unknown(&earlier).await;
            blocking_attempt(&store::attempts(self.store.pool(), order_no).await?)?;
        }
        let channel = routing::choose(
            &self.registry,
            choice.channel.as_deref(),
            &choice.method,
            choice.flow,
            order.amount,
            order.region.as_str(),
        )
        .await?;
        let next = NextAttempt {
            order_no: order_no.clone(),
            channel: channel.id().to_owned(),
            choice: choice.clone(),
            backend: self.store.backend(),
        };
        let (current, attempt) = self
            .store
            .write(next, |tx, next| Box::pin(add_attempt_in(tx, next)))
            .await?;
        Ok(self.run_detached(current, channel, choice, attempt).await)
    }

    /// Gives a paid order of player `from` to player `to` of the same game (a legacy anonymous
    /// bill claimed by its player): the purchase counts for `to` from now on, and an
    /// `order.paid` not yet sent goes out at once, naming `to`. `false` when the order is not
    /// `from`'s (any more).
    pub async fn assign(
        &self,
        order_no: &OrderNo,
        from: &str,
        to: &str,
    ) -> Result<bool, OrderError> {
        let change = (
            order_no.clone(),
            from.to_owned(),
            to.to_owned(),
            self.store.backend(),
        );
        let moved = self
            .store
            .write(change, |tx, (order_no, from, to, backend)| {
                Box::pin(assign_in(tx, order_no, from, to, *backend))
            })
            .await?;
        self.status_cache.invalidate(order_no).await;
        Ok(moved)
    }
}

/// Marks a payment's exchange with its channel as under way on this instance until dropped
/// (when its answer is recorded, or the task ends).
struct ExchangeInFlight {
    set: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    payment_ref: String,
}

impl ExchangeInFlight {
    fn start(orders: &Orders, payment_ref: &str) -> Self {
        let set = orders.exchanges_in_flight.clone();
        set.lock()
            .expect("exchanges lock")
            .insert(payment_ref.to_owned());
        Self {
            set,
            payment_ref: payment_ref.to_owned(),
        }
    }
}

impl Drop for ExchangeInFlight {
    fn drop(&mut self) {
        self.set
            .lock()
            .expect("exchanges lock")
            .remove(&self.payment_ref);
    }
}

/// Opens the order: its purchase count and stock unit (refusals before anything is written,
/// or undone in the same job), the order row and its first attempt.
async fn open_in(tx: &mut Tx, new: &NewOrder) -> Result<(), OrderError> {
    let order = &new.order;
    if let Some(limit) = new.limit
        && !crate::catalog::count_purchase(tx, &order.player_id, &order.game, &order.sku, limit)
            .await?
    {
        return Err(
            refusal_or_duplicate(tx, order, OrderError::LimitReached(order.sku.clone())).await?,
        );
    }
    if order.holds_stock && !crate::catalog::reserve_stock(tx, &order.game, &order.sku).await? {
        // The count above is undone with the whole job (it returns an error).
        return Err(refusal_or_duplicate(tx, order, OrderError::SoldOut(order.sku.clone())).await?);
    }
    insert_new(tx, order).await?;
    if let Some(attempt) = &new.attempt {
        store::insert_attempt(tx, &order.order_no, attempt).await?;
    }
    Ok(())
}

/// Inserts `order`, or names the order its game already has under its merchant number.
pub(super) async fn insert_new(tx: &mut Tx, order: &Order) -> Result<(), OrderError> {
    if store::insert_order(tx, order).await? {
        return Ok(());
    }
    let existing = store::order_no_for_merchant(&mut *tx, &order.game, &order.merchant_order_no)
        .await?
        .unwrap_or_default();
    Err(OrderError::DuplicateMerchantOrderNo {
        merchant_order_no: order.merchant_order_no.clone(),
        order_no: existing,
    })
}

/// `refusal`, unless an order with the same merchant number exists: then that is the honest
/// answer (a retried request whose first try took the last unit or count).
async fn refusal_or_duplicate(
    tx: &mut Tx,
    order: &Order,
    refusal: OrderError,
) -> Result<OrderError, OrderError> {
    Ok(
        match store::order_no_for_merchant(&mut *tx, &order.game, &order.merchant_order_no).await? {
            Some(order_no) => OrderError::DuplicateMerchantOrderNo {
                merchant_order_no: order.merchant_order_no.clone(),
                order_no,
            },
            None => refusal,
        },
    )
}

/// Records an answer that paid the attempt at once: the order pending → paid, the attempt
/// created → paid, the transition and the `order.paid` event. When the order moved meanwhile
/// (a notification, another attempt), it goes the general way instead (`settle::apply_in`),
/// and `None` tells the caller to read the order as it stands.
async fn record_paid_answer(
    tx: &mut Tx,
    answer: &PaidAnswer,
) -> Result<Option<OrderView>, OrderError> {
    let (order, attempt) = (&answer.order, &answer.attempt);
    let now = now_ms();
    let reason = format!(
        "paid via {} (answer), attempt {}",
        attempt.channel, attempt.attempt_no
    );
    if !store::pay_pending_order(tx, &order.order_no, now, &reason).await? {
        let news = News {
            channel: attempt.channel.clone(),
            report: PaymentReport {
                payment_ref: attempt.payment_ref.clone(),
                channel_txn_id: attempt.channel_txn_id.clone(),
                state: PaymentState::Paid,
                charged: Some(Charged::Money(order.amount)),
                reason: None,
                channel_status: attempt.channel_status.clone(),
            },
            source: "answer",
            backend: answer.backend,
        };
        settle::apply_in(tx, &news).await?;
        return Ok(None);
    }
    if !store::update_created_attempt(tx, &order.order_no, attempt).await? {
        // The order was pending, yet its attempt moved: settle it the general way, whose
        // checks this bypassed. Undo by failing the job (nothing of it is kept).
        return Err(OrderError::Invariant(format!(
            "attempt {} of pending order {} moved while its answer was recorded",
            attempt.attempt_no, order.order_no
        )));
    }
    super::books::post_payment(tx, order, attempt).await?;
    let mut paid = order.clone();
    paid.status = OrderStatus::Paid;
    paid.paid_at = Some(now);
    paid.updated_at = now;
    crate::fulfillment::enqueue(tx, crate::fulfillment::EventKind::OrderPaid, &paid).await?;
    Ok(Some(OrderView::new(paid, Some(attempt.clone()))))
}

/// Another attempt on a pending order, as the write job sees it.
struct NextAttempt {
    order_no: OrderNo,
    channel: String,
    choice: PaymentChoice,
    backend: Backend,
}

async fn add_attempt_in(tx: &mut Tx, next: &NextAttempt) -> Result<(Order, Attempt), OrderError> {
    let current = store::lock_order(tx, next.backend, &next.order_no)
        .await?
        .ok_or_else(|| OrderError::NotFound(next.order_no.to_string()))?;
    if current.status != OrderStatus::Pending {
        return Err(OrderError::NotPayable {
            order_no: next.order_no.to_string(),
            status: current.status,
        });
    }
    let earlier = store::attempts(&mut *tx, &next.order_no).await?;
    blocking_attempt(&earlier)?;
    let attempt = new_attempt(
        &next.order_no,
        earlier.len() as i64 + 1,
        &next.channel,
        &next.choice,
    );
    store::insert_attempt(tx, &next.order_no, &attempt).await?;
    Ok((current, attempt))
}

async fn assign_in(
    tx: &mut Tx,
    order_no: &OrderNo,
    from: &str,
    to: &str,
    backend: Backend,
) -> Result<bool, OrderError> {
    let Some(mut order) = store::lock_order(tx, backend, order_no).await? else {
        return Ok(false);
    };
    if order.player_id != from || order.paid_at.is_none() {
        return Ok(false);
    }
    if !store::reassign_order(tx, order_no, from, to).await? {
        return Ok(false);
    }
    crate::catalog::release_purchase(tx, from, &order.game, &order.sku).await?;
    crate::catalog::count_purchase(tx, to, &order.game, &order.sku, i64::MAX).await?;
    order.player_id = to.to_owned();
    crate::fulfillment::release_held(tx, &order).await?;
    Ok(true)
}

pub(super) fn new_attempt(
    order_no: &OrderNo,
    attempt_no: i64,
    channel: &str,
    choice: &PaymentChoice,
) -> Attempt {
    let now = now_ms();
    Attempt {
        attempt_no,
        payment_ref: super::payment_ref(order_no, attempt_no),
        channel: channel.to_owned(),
        method: choice.method.clone(),
        flow: choice.flow,
        status: AttemptStatus::Created,
        channel_txn_id: None,
        channel_status: String::new(),
        next_action: None,
        failure: None,
        created_at: now,
        updated_at: now,
    }
}

/// An attempt whose outcome could not be recorded: unknown until a query settles it.
fn unrecorded(mut attempt: Attempt) -> Attempt {
    attempt.status = AttemptStatus::Unknown;
    attempt.failure = Some(Failure {
        code: payment::NOT_RECORDED.into(),
        message: "the outcome could not be recorded".into(),
    });
    attempt
}
