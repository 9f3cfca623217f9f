//! Orders: the order center. An order records who buys which SKU for how much; payment
//! attempts record each try at paying it through a channel.
//!
//! Creating an order commits the order, its stock and purchase-limit holds and its first
//! attempt in one transaction before any channel is called; the channel's answer is recorded
//! in a second one. A crash or a channel failure in between leaves a pending order with an
//! attempt that says how far it got, never a half-written order.

mod channel_refunds;
mod conflicts;
pub mod idempotency;
mod model;
mod order_no;
mod payment;
mod recovery;
mod refunds;
mod request;
mod routing;
mod settle;
mod state;
mod store;

use std::sync::Arc;
use std::time::Duration;

/// When an attempt of unknown outcome is asked about again, after it was recorded.
const UNKNOWN_OUTCOME_QUERY_DELAYS: [Duration; 3] = [
    Duration::from_secs(2),
    Duration::from_secs(10),
    Duration::from_secs(30),
];

use coffer_money::Currency;
use coffer_plugin_runtime::Registry;

use crate::catalog::{Catalog, CatalogError};
use crate::channels::http::ChannelHttp;
use crate::config::OrdersConfig;
use crate::games::{GameId, Region};
use crate::store::{Store, is_unique_violation, now_ms};
pub use model::{Attempt, Failure, Flow, NextAction, Order, OrderView};
pub use order_no::OrderNo;
pub use payment::{
    AMOUNT_MISMATCH, NO_ANSWER, NOT_RECORDED, NOT_SENT, UNREADABLE_ANSWER, clean_id, scrub,
};
pub use recovery::Expiry;
pub use refunds::{Refund, RefundAsk};
pub use request::{AddressInput, CardInput, CreateOrder, CustomerInput, PaymentChoice};
pub use routing::RouteError;
pub use settle::{ConfirmError, Settled};
pub use state::{AttemptStatus, IllegalTransition, OrderStatus};
pub use store::{OrderFilter, TransitionError, transition};

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("{0}")]
    Invalid(String),
    #[error("no player {0:?} in this game")]
    UnknownPlayer(String),
    #[error("no SKU {0:?} in this game")]
    UnknownSku(String),
    #[error("SKU {0:?} is not on sale")]
    NotOnSale(String),
    #[error("{0}")]
    NoPrice(String),
    #[error("SKU {0:?} is sold out")]
    SoldOut(String),
    #[error("the player has reached the purchase limit of SKU {0:?}")]
    LimitReached(String),
    #[error("merchant_order_no {merchant_order_no:?} is already order {order_no}")]
    DuplicateMerchantOrderNo {
        merchant_order_no: String,
        order_no: String,
    },
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error("no order {0}")]
    NotFound(String),
    #[error("order {order_no} is {status}: it cannot be paid again")]
    NotPayable {
        order_no: String,
        status: OrderStatus,
    },
    #[error("{0}")]
    AttemptBlocked(String),
    #[error("cannot refund: {0}")]
    NotRefundable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// A rule about money that must always hold did not: a bug. Nothing was applied.
    #[error("internal invariant broken: {0}")]
    Invariant(String),
}

impl From<TransitionError> for OrderError {
    fn from(error: TransitionError) -> Self {
        match error {
            TransitionError::Database(e) => Self::Database(e),
            // An illegal transition here is a bug in the caller, not bad input.
            TransitionError::Illegal(e) => Self::Database(sqlx::Error::Protocol(e.to_string())),
        }
    }
}

/// The orders area and what it works with.
#[derive(Clone)]
pub struct Orders {
    store: Store,
    catalog: Catalog,
    registry: Arc<Registry>,
    http: ChannelHttp,
    config: OrdersConfig,
    public_url: String,
    status_cache: moka::future::Cache<OrderNo, Arc<OrderView>>,
    /// Payments recently queried because of an unverified claim (see `confirm_claim`).
    claim_throttle: moka::future::Cache<String, ()>,
    /// Signed queries under way, by channel and payment (see `query_once`).
    queries_in_flight:
        Arc<std::sync::Mutex<std::collections::HashMap<String, settle::QueryInFlight>>>,
}

impl Orders {
    pub fn new(
        store: Store,
        catalog: Catalog,
        registry: Arc<Registry>,
        config: OrdersConfig,
        public_url: &str,
    ) -> Self {
        let http = ChannelHttp::new(Duration::from_millis(config.channel_timeout_ms), 4 << 20);
        let status_cache = moka::future::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(Duration::from_millis(config.status_cache_ms.max(1)))
            .build();
        Self {
            store,
            catalog,
            registry,
            http,
            config,
            public_url: public_url.trim_end_matches('/').to_owned(),
            status_cache,
            claim_throttle: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(settle::CLAIM_QUERY_INTERVAL)
                .build(),
            queries_in_flight: Arc::default(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn config(&self) -> &OrdersConfig {
        &self.config
    }

    /// The URL channels and browsers reach this service at, without a trailing '/'.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The order `game` knows by its own number, with its latest attempt.
    pub async fn find_by_merchant_order_no(
        &self,
        game: &GameId,
        merchant_order_no: &str,
    ) -> Result<Option<OrderView>, OrderError> {
        match store::order_no_for_merchant(self.store.pool(), game, merchant_order_no).await? {
            Some(order_no) => {
                let order_no = OrderNo::parse(&order_no)
                    .map_err(|e| OrderError::Database(sqlx::Error::Decode(e.into())))?;
                Ok(Some(self.view(&order_no).await?))
            }
            None => Ok(None),
        }
    }

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
        // Read fresh, not from the catalog cache: price, sale window and limits must be the
        // ones in force now, whichever instance changed them.
        let sku = match self.catalog.sku(game, &request.sku).await {
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
        let choice = &request.payment;
        let channel = routing::choose(
            &self.registry,
            choice.channel.as_deref(),
            &choice.method,
            choice.flow,
            amount,
            region.as_str(),
        )
        .await?;

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
        let attempt = new_attempt(&order.order_no, 1, channel.id(), choice);
        self.insert_new_order(&order, sku.spec.effective_limit(), &attempt)
            .await?;
        Ok(self
            .run_detached(order, channel, request.payment, attempt)
            .await)
    }

    /// Runs a recorded attempt on a task of its own and waits for it. Once a payment may be on
    /// its way to the channel, recording what became of it (the attempt, the settlement, the
    /// event) must not depend on the caller: an HTTP client that hangs up, or a request that
    /// times out, drops the caller's future, never this task.
    async fn run_detached(
        &self,
        order: Order,
        channel: Arc<coffer_plugin_runtime::Channel>,
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
        channel: Arc<coffer_plugin_runtime::Channel>,
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

    /// The order row, its holds and its first attempt, in one transaction.
    async fn insert_new_order(
        &self,
        order: &Order,
        limit: Option<i64>,
        attempt: &Attempt,
    ) -> Result<(), OrderError> {
        let mut tx = self.store.begin_write().await?;
        let player_game: Option<String> =
            sqlx::query_scalar("SELECT game_id FROM players WHERE id = $1")
                .bind(order.player_id.clone())
                .fetch_optional(&mut *tx)
                .await?;
        if player_game.as_deref() != Some(order.game.as_str()) {
            return Err(OrderError::UnknownPlayer(order.player_id.clone()));
        }
        // Read inside the transaction: asking the pool for a second connection while holding
        // one could starve it under load.
        if let Some(order_no) =
            store::order_no_for_merchant(&mut *tx, &order.game, &order.merchant_order_no).await?
        {
            return Err(OrderError::DuplicateMerchantOrderNo {
                merchant_order_no: order.merchant_order_no.clone(),
                order_no,
            });
        }
        let counted = crate::catalog::count_purchase(
            &mut tx,
            &order.player_id,
            &order.game,
            &order.sku,
            limit.unwrap_or(i64::MAX),
        )
        .await?;
        let refusal = if !counted {
            Some(OrderError::LimitReached(order.sku.clone()))
        } else if order.holds_stock
            && !crate::catalog::reserve_stock(&mut tx, &order.game, &order.sku).await?
        {
            Some(OrderError::SoldOut(order.sku.clone()))
        } else {
            None
        };
        if let Some(refusal) = refusal {
            // On PostgreSQL a concurrent request with the same merchant_order_no may have
            // taken the last unit or count and committed while this one waited on the row:
            // then the honest answer is "duplicate", not "sold out".
            if let Some(order_no) =
                store::order_no_for_merchant(&mut *tx, &order.game, &order.merchant_order_no)
                    .await?
            {
                return Err(OrderError::DuplicateMerchantOrderNo {
                    merchant_order_no: order.merchant_order_no.clone(),
                    order_no,
                });
            }
            return Err(refusal);
        }
        match store::insert_order(&mut tx, order).await {
            Err(e) if is_unique_violation(&e) => {
                drop(tx);
                return Err(self
                    .existing_merchant_order(&order.game, &order.merchant_order_no)
                    .await?
                    .unwrap_or(OrderError::Database(e)));
            }
            other => other?,
        }
        store::insert_attempt(&mut tx, &order.order_no, attempt).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn existing_merchant_order(
        &self,
        game: &GameId,
        merchant_order_no: &str,
    ) -> Result<Option<OrderError>, OrderError> {
        let existing =
            store::order_no_for_merchant(self.store.pool(), game, merchant_order_no).await?;
        Ok(
            existing.map(|order_no| OrderError::DuplicateMerchantOrderNo {
                merchant_order_no: merchant_order_no.to_owned(),
                order_no,
            }),
        )
    }

    /// Calls the channel for a recorded attempt and records what became of it. Returns the
    /// order and the attempt as they now stand.
    async fn run_attempt(
        &self,
        order: &Order,
        channel: Arc<coffer_plugin_runtime::Channel>,
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
        let attempt = payment::run(channel, &self.http, order, choice, urls, attempt).await;
        // What the answer says is recorded only if nothing newer was: a notification may have
        // arrived (and been applied) while the answer was on its way.
        if attempt.status != AttemptStatus::Paid {
            store::update_created_attempt(self.store.writer(), &order.order_no, &attempt).await?;
            if attempt.status == AttemptStatus::Unknown {
                self.follow_up_unknown(&attempt);
            }
        } else {
            // Through the one place that pays orders: the transition, the event, and a conflict
            // if another attempt had paid the order already.
            let update = coffer_plugin_runtime::contract::PaymentUpdate {
                order_no: attempt.payment_ref.clone(),
                channel_txn_id: attempt.channel_txn_id.clone(),
                status: coffer_plugin_runtime::contract::PaymentStatus::Paid,
                amount: Some(routing::contract_money(order.amount)),
                paid_at: None,
                failure: None,
                channel_status: attempt.channel_status.clone(),
            };
            // The attempt is still `created` in the store: settling moves it (and the order).
            self.apply_payment_update(&attempt.channel, &update, "answer")
                .await?;
        }
        self.status_cache.invalidate(&order.order_no).await;
        self.view(&order.order_no).await
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
        let mut tx = self.store.begin_write().await?;
        let current = store::lock_order(&mut tx, self.store.backend(), order_no)
            .await?
            .ok_or_else(|| OrderError::NotFound(order_no.to_string()))?;
        if current.status != OrderStatus::Pending {
            return Err(OrderError::NotPayable {
                order_no: order_no.to_string(),
                status: current.status,
            });
        }
        let earlier = store::attempts(&mut *tx, order_no).await?;
        blocking_attempt(&earlier)?;
        let attempt = new_attempt(order_no, earlier.len() as i64 + 1, channel.id(), &choice);
        store::insert_attempt(&mut tx, order_no, &attempt).await?;
        tx.commit().await?;
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
        let mut tx = self.store.begin_write().await?;
        let Some(mut order) = store::lock_order(&mut tx, self.store.backend(), order_no).await?
        else {
            return Ok(false);
        };
        if order.player_id != from || order.paid_at.is_none() {
            return Ok(false);
        }
        let moved = sqlx::query(
            "UPDATE orders SET player_id = $1, updated_at = $2 WHERE order_no = $3 AND player_id = $4",
        )
        .bind(to.to_owned())
        .bind(now_ms())
        .bind(order_no.to_string())
        .bind(from.to_owned())
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(false);
        }
        crate::catalog::release_purchase(&mut tx, from, &order.game, &order.sku).await?;
        crate::catalog::count_purchase(&mut tx, to, &order.game, &order.sku, i64::MAX).await?;
        order.player_id = to.to_owned();
        crate::fulfillment::release_held(&mut tx, &order).await?;
        tx.commit().await?;
        self.status_cache.invalidate(order_no).await;
        Ok(true)
    }

    /// The order as stored, with what the view leaves out (the address it was paid from).
    pub async fn get(&self, order_no: &OrderNo) -> Result<Option<Order>, OrderError> {
        Ok(store::get_order(&self.store, order_no).await?)
    }

    /// The order with its latest attempt, fresh from the store.
    pub async fn view(&self, order_no: &OrderNo) -> Result<OrderView, OrderError> {
        let order = store::get_order(&self.store, order_no)
            .await?
            .ok_or_else(|| OrderError::NotFound(order_no.to_string()))?;
        let latest = store::attempts(self.store.pool(), order_no).await?.pop();
        Ok(OrderView::new(order, latest))
    }

    /// The order as `game` may see it, from the status cache when fresh.
    pub async fn view_cached(
        &self,
        game: &GameId,
        order_no: &OrderNo,
    ) -> Result<Arc<OrderView>, OrderError> {
        let view = match self.status_cache.get(order_no).await {
            Some(view) => view,
            None => {
                let view = Arc::new(self.view(order_no).await?);
                self.status_cache
                    .insert(order_no.clone(), view.clone())
                    .await;
                view
            }
        };
        if &view.game != game {
            return Err(OrderError::NotFound(order_no.to_string()));
        }
        Ok(view)
    }

    /// Every attempt of an order, oldest first (for operators).
    pub async fn attempts(&self, order_no: &OrderNo) -> Result<Vec<Attempt>, OrderError> {
        Ok(store::attempts(self.store.pool(), order_no).await?)
    }

    pub async fn list(&self, filter: &OrderFilter) -> Result<Vec<OrderView>, OrderError> {
        let orders = store::list_orders(&self.store, filter).await?;
        Ok(orders
            .into_iter()
            .map(|o| OrderView::new(o, None))
            .collect())
    }
}

fn new_attempt(
    order_no: &OrderNo,
    attempt_no: i64,
    channel: &str,
    choice: &PaymentChoice,
) -> Attempt {
    let now = now_ms();
    Attempt {
        attempt_no,
        payment_ref: payment_ref(order_no, attempt_no),
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

/// The merchant order id of an attempt: the order number, then `<order number>P<n>`. At most
/// 26 + 1 + 5 characters, within every channel's 32, for up to 99,999 attempts.
pub fn payment_ref(order_no: &OrderNo, attempt_no: i64) -> String {
    debug_assert!((1..100_000).contains(&attempt_no));
    if attempt_no == 1 {
        order_no.to_string()
    } else {
        format!("{order_no}P{attempt_no}")
    }
}

/// Refuses a new attempt while an earlier one may still take the money.
fn blocking_attempt(earlier: &[Attempt]) -> Result<(), OrderError> {
    match earlier.iter().find(|a| !a.status.allows_another_attempt()) {
        Some(blocking) => Err(OrderError::AttemptBlocked(format!(
            "attempt {} is {}: another attempt could charge the player twice",
            blocking.attempt_no,
            blocking.status.as_str()
        ))),
        None => Ok(()),
    }
}

fn catalog_error(error: CatalogError) -> OrderError {
    match error {
        CatalogError::Database(e) => OrderError::Database(e),
        CatalogError::Unavailable(e) => OrderError::Database(sqlx::Error::Protocol(e)),
        other => OrderError::Invalid(other.to_string()),
    }
}
