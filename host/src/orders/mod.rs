//! Orders: the order center. An order records who buys which SKU for how much; payment
//! attempts record each try at paying it through a channel.
//!
//! Creating an order commits the order, its stock and purchase-limit holds and its first
//! attempt in one transaction before any channel is called; the channel's answer is recorded
//! in a second one. A crash or a channel failure in between leaves a pending order with an
//! attempt that says how far it got, never a half-written order. Every write is a job of the
//! store's write path (batched into shared commits on SQLite).

mod books;
mod channel_refunds;
mod conflicts;
mod create;
mod decision;
pub mod idempotency;
mod model;
mod notifications;
mod order_no;
pub mod paid_in_store;
mod payment;
mod recovery;
mod refund_decision;
mod refunds;
mod request;
mod settle;
mod state;
mod store;

use std::sync::Arc;
use std::time::Duration;

/// The largest answer read from a channel's endpoint (a payment page or a statement can be
/// large; anything beyond this is not a channel's answer).
const MAX_CHANNEL_ANSWER_BYTES: usize = 4 << 20;

/// When an attempt of unknown outcome is asked about again, after it was recorded.
const UNKNOWN_OUTCOME_QUERY_DELAYS: [Duration; 3] = [
    Duration::from_secs(2),
    Duration::from_secs(10),
    Duration::from_secs(30),
];

use coffer_plugin_runtime::Registry;

use crate::catalog::{Catalog, CatalogError};
use crate::channels::http::ChannelHttp;
use crate::config::OrdersConfig;
use crate::games::GameId;
use crate::players::Players;
use crate::store::Store;
pub use conflicts::ConflictKind;
pub use model::{Attempt, FailedBy, Failure, Flow, NextAction, Order, OrderView};
pub use notifications::Notified;
pub use order_no::OrderNo;
pub use payment::{
    AMOUNT_MISMATCH, NO_ANSWER, NOT_RECORDED, NOT_SENT, UNREADABLE_ANSWER, clean_id, scrub,
};
pub use recovery::Expiry;
pub use refund_decision::RefundStatus;
pub use refunds::{Refund, RefundAsk};
pub use request::{CardInput, CreateOrder, CustomerInput, PaymentChoice};
pub use settle::{ConfirmError, Settled};
pub use state::{AttemptStatus, IllegalTransition, OrderStatus};
pub use store::{OrderFilter, TransitionError, mark_delivered_in, transition};

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
    #[error("the price of SKU {sku:?} is {price}, not {expected}")]
    PriceMismatch {
        sku: String,
        price: coffer_money::Money,
        expected: coffer_money::Money,
    },
    #[error("the player has reached the purchase limit of SKU {0:?}")]
    LimitReached(String),
    #[error("merchant_order_no {merchant_order_no:?} is already order {order_no}")]
    DuplicateMerchantOrderNo {
        merchant_order_no: String,
        order_no: String,
    },
    #[error(transparent)]
    Route(#[from] crate::channels::routing::RouteError),
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
    /// The catalog could not be read (its store failed while loading it).
    #[error("cannot load the catalog: {0}")]
    CatalogUnavailable(String),
    /// A rule about money that must always hold did not: a bug. Nothing was applied.
    #[error("internal invariant broken: {0}")]
    Invariant(String),
}

impl From<TransitionError> for OrderError {
    fn from(error: TransitionError) -> Self {
        match error {
            TransitionError::Database(e) => Self::Database(e),
            // An illegal transition here is a bug in the caller, not bad input.
            TransitionError::Illegal(e) => Self::Invariant(e.to_string()),
        }
    }
}

impl From<crate::ledger::LedgerError> for OrderError {
    fn from(error: crate::ledger::LedgerError) -> Self {
        match error {
            crate::ledger::LedgerError::Database(e) => Self::Database(e),
            // Every posting names its cause and figures from a committed state: a refused one
            // is a bug, and the change it belongs to is not applied.
            other => Self::Invariant(other.to_string()),
        }
    }
}

/// The orders area and what it works with.
#[derive(Clone)]
pub struct Orders(Arc<Parts>);

/// How many settled payments an instance remembers (see `Parts::settled_payments`).
const SETTLED_PAYMENTS_REMEMBERED: u64 = 200_000;
/// And for how long: a channel repeats its notifications for about a day, but most come
/// within the first minutes; a forgotten one costs only two reads.
const SETTLED_PAYMENT_MEMORY: Duration = Duration::from_secs(3600);

impl std::ops::Deref for Orders {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// The parts of [`Orders`], shared by its clones.
pub struct Parts {
    store: Store,
    catalog: Catalog,
    players: Players,
    registry: Arc<Registry>,
    http: ChannelHttp,
    config: OrdersConfig,
    public_url: String,
    status_cache: moka::future::Cache<OrderNo, Arc<OrderView>>,
    /// Payments recently queried because of an unverified claim (see `confirm_claim`).
    claim_throttle: moka::future::Cache<String, ()>,
    /// Payments (by channel and reference) this instance saw settled, paid or failed, and
    /// their order: settled stays settled, so a claim about one needs nothing read.
    settled_payments: moka::sync::Cache<String, OrderNo>,
    /// Payments whose exchange with the channel this instance has under way (by payment
    /// reference): their answer will settle them, so a claim about one needs no query.
    exchanges_in_flight: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Signed queries under way, by channel and payment (see `query_once`).
    queries_in_flight:
        Arc<std::sync::Mutex<std::collections::HashMap<String, settle::QueryInFlight>>>,
}

impl Orders {
    pub fn new(
        store: Store,
        catalog: Catalog,
        players: Players,
        registry: Arc<Registry>,
        config: OrdersConfig,
        public_url: &str,
    ) -> Self {
        let http = ChannelHttp::new(
            Duration::from_millis(config.channel_timeout_ms),
            MAX_CHANNEL_ANSWER_BYTES,
        );
        let status_cache = moka::future::Cache::builder()
            .max_capacity(100_000)
            .time_to_live(Duration::from_millis(config.status_cache_ms.max(1)))
            .build();
        Self(Arc::new(Parts {
            store,
            catalog,
            players,
            registry,
            http,
            config,
            public_url: public_url.trim_end_matches('/').to_owned(),
            status_cache,
            settled_payments: moka::sync::Cache::builder()
                .max_capacity(SETTLED_PAYMENTS_REMEMBERED)
                .time_to_live(SETTLED_PAYMENT_MEMORY)
                .build(),
            claim_throttle: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(settle::CLAIM_QUERY_INTERVAL)
                .build(),
            queries_in_flight: Arc::default(),
            exchanges_in_flight: Arc::default(),
        }))
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
        CatalogError::Unavailable(e) => OrderError::CatalogUnavailable(e),
        other => OrderError::Invalid(other.to_string()),
    }
}
