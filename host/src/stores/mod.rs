//! App store purchases (the App Store, Google Play): the player pays in the store, the game
//! server sends Coffer the store's proof, and Coffer makes a paid order of it once the store
//! confirmed it, then delivers it like any other. Later news from the store (a refund, a
//! revocation) becomes a refund on that order, and the game takes the items back.
//!
//! Guarantee: one store transaction is one order, ever. Its (channel, transaction id) is claimed
//! in the transaction that writes the order, so the same proof sent again, concurrently, by
//! another player or another game, finds the first order and grants nothing more.

pub mod chores;
mod claim;
mod events;
mod purchases;

use std::sync::Arc;
use std::time::Duration;

use coffer_plugin_runtime::Registry;
use serde::Deserialize;

use crate::catalog::{Catalog, CatalogError};
use crate::channels::http::ChannelHttp;
use crate::channels::store::{self as lookup, LookupError};
use crate::channels::{Charged, StoreProof, StorePurchase, StorePurchaseState};
use crate::games::{GameId, Region};
use crate::orders::paid_in_store::StoreOrder;
use crate::orders::{Order, OrderError, OrderNo, OrderView, Orders};
use crate::players::Players;
use crate::store::Store;
use claim::{Claim, Claimed, Target, claim_in};

pub use purchases::Redeemed;

/// What a game server sends: its player bought something in a store, here is the proof.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedeemRequest {
    pub player_id: String,
    /// The store channel: "appstore", "googleplay".
    pub channel: String,
    /// The App Store's transaction id, or Google Play's purchase token.
    pub token: String,
    /// The store's product id (required for Google Play).
    #[serde(default)]
    pub product_id: String,
    /// The player's region, for a store that does not tell the price (the catalog's applies);
    /// the game's default region when absent.
    #[serde(default)]
    pub region: Option<String>,
    /// The order the game server created beforehand for this purchase (flow `store`): the
    /// proof settles it, when it is still waiting and is for what the store sold at the price
    /// the player paid; otherwise a new order is made (the player paid either way).
    #[serde(default)]
    pub order_no: Option<String>,
}

/// How long a proof's token may be: Google's purchase tokens run to a few hundred characters.
const MAX_TOKEN_LEN: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Invalid(String),
    #[error("no player {0:?} in this game")]
    UnknownPlayer(String),
    #[error("no store channel {0:?} is loaded")]
    UnknownChannel(String),
    #[error("the store does not confirm this purchase: {0}")]
    Refused(String),
    #[error("the purchase is not paid yet; send the proof again once it is")]
    Pending,
    #[error("the store refunded or revoked this purchase")]
    Revoked,
    #[error("the {channel} product {product_id:?} is no SKU of this game")]
    UnknownProduct { channel: String, product_id: String },
    #[error("this purchase belongs to another game")]
    OtherGame,
    #[error("the store cannot be asked now: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Order(#[from] OrderError),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        Self::Order(OrderError::Database(error))
    }
}

impl From<LookupError> for StoreError {
    fn from(error: LookupError) -> Self {
        match error {
            LookupError::Refused(why) => Self::Refused(why),
            LookupError::Unavailable(why) => Self::Unavailable(why),
        }
    }
}

/// A proof redeemed: the order, and whether this request created it (a new order rather than
/// one made before, or one the game server created beforehand).
#[derive(Debug)]
pub struct Redemption {
    pub order: OrderView,
    pub created: bool,
}

/// The stores area.
#[derive(Clone)]
pub struct Stores(Arc<Parts>);

pub struct Parts {
    store: Store,
    orders: Orders,
    catalog: Catalog,
    players: Players,
    registry: Arc<Registry>,
    http: ChannelHttp,
}

impl std::ops::Deref for Stores {
    type Target = Parts;
    fn deref(&self) -> &Parts {
        &self.0
    }
}

/// A store's answer is a few kilobytes of signed JSON.
const MAX_STORE_ANSWER_BYTES: usize = 256 * 1024;

impl Stores {
    pub fn new(
        store: Store,
        orders: Orders,
        catalog: Catalog,
        players: Players,
        registry: Arc<Registry>,
        timeout: Duration,
    ) -> Self {
        Self(Arc::new(Parts {
            store,
            orders,
            catalog,
            players,
            registry,
            http: ChannelHttp::new(timeout, MAX_STORE_ANSWER_BYTES),
        }))
    }

    /// Makes a paid order of the store purchase `request` proves, or finds the one made before.
    pub async fn redeem(
        &self,
        game: &GameId,
        default_region: &Region,
        request: RedeemRequest,
    ) -> Result<Redemption, StoreError> {
        validate(&request)?;
        if let Some(known) =
            purchases::by_token(&self.store, &request.channel, &request.token).await?
        {
            return self.existing(game, &known.order_no).await;
        }
        let player_game = self
            .players
            .game_of(&request.player_id)
            .await
            .map_err(|e| OrderError::Invariant(e.to_string()))?;
        if player_game.as_ref() != Some(game) {
            return Err(StoreError::UnknownPlayer(request.player_id));
        }
        let channel = self
            .registry
            .get(&request.channel)
            .ok_or_else(|| StoreError::UnknownChannel(request.channel.clone()))?;
        // Everything Coffer can check itself is checked before the store is asked.
        let waiting = match &request.order_no {
            Some(order_no) => Some(
                self.waiting_order(game, &request.player_id, order_no)
                    .await?,
            ),
            None => None,
        };
        let region = match (&request.region, &waiting) {
            (Some(region), _) => Region::parse(region).map_err(StoreError::Invalid)?,
            (None, Some(waiting)) => waiting.region.clone(),
            (None, None) => default_region.clone(),
        };
        let proof = StoreProof {
            token: request.token.clone(),
            product_id: request.product_id.clone(),
        };
        let purchase = lookup::lookup(&channel, &self.http, &proof).await?;
        match purchase.state {
            StorePurchaseState::Purchased => {}
            StorePurchaseState::Pending => return Err(StoreError::Pending),
            StorePurchaseState::Revoked => return Err(StoreError::Revoked),
        }
        if !proof.product_id.is_empty() && proof.product_id != purchase.product_id {
            return Err(StoreError::Refused(format!(
                "the proof names product {:?}, the store sold {:?}",
                proof.product_id, purchase.product_id
            )));
        }
        let buyer = Buyer {
            game: game.clone(),
            player_id: request.player_id,
            region,
        };
        self.make_order(&buyer, &request.channel, purchase, waiting)
            .await
    }

    /// The order a game server created beforehand, which must be its player's.
    async fn waiting_order(
        &self,
        game: &GameId,
        player_id: &str,
        order_no: &str,
    ) -> Result<Order, StoreError> {
        let not_found = || StoreError::Order(OrderError::NotFound(order_no.to_owned()));
        let order_no = OrderNo::parse(order_no).map_err(|_| not_found())?;
        let order = self
            .orders
            .get(&order_no)
            .await?
            .filter(|o| &o.game == game)
            .ok_or_else(not_found)?;
        if order.player_id != player_id {
            return Err(StoreError::Invalid(format!(
                "order {order_no} is another player's"
            )));
        }
        Ok(order)
    }

    /// Makes the paid order of a purchase the store confirmed (or settles `waiting`, the order
    /// created for it beforehand, when it fits), unless one was made before.
    async fn make_order(
        &self,
        buyer: &Buyer,
        channel: &str,
        purchase: StorePurchase,
        waiting: Option<Order>,
    ) -> Result<Redemption, StoreError> {
        let game = &buyer.game;
        let order = self.store_order(buyer, channel, &purchase).await?;
        let target = match waiting {
            Some(waiting) if order.fits(&waiting) => Target::Waiting(waiting.order_no),
            other => {
                if let Some(waiting) = other {
                    tracing::info!(order_no = %waiting.order_no, channel, "the store sold another SKU or price than the order created beforehand; a new order is made");
                }
                let (order, attempt) = order.order();
                Target::New(Box::new((order, attempt)))
            }
        };
        // A new order is created (201); a waiting one is only paid (200).
        let creates = matches!(target, Target::New(_));
        let job = Claim {
            channel: channel.to_owned(),
            purchase: purchase.clone(),
            target,
            backend: self.store.backend(),
        };
        let claimed = self
            .store
            .write(job, |tx, job| Box::pin(claim_in(tx, job)))
            .await?;
        match claimed {
            Claimed::WaitingGone => {
                // Closed or paid meanwhile: the purchase still makes its own order.
                Box::pin(self.make_order(buyer, channel, purchase, None)).await
            }
            Claimed::Made(made) => {
                let (order, attempt) = *made;
                tracing::info!(order_no = %order.order_no, channel, "store purchase redeemed");
                Ok(Redemption {
                    order: OrderView::new(order, Some(attempt)),
                    created: creates,
                })
            }
            Claimed::Before(order_no) => self.existing(game, &order_no).await,
        }
    }

    async fn existing(&self, game: &GameId, order_no: &OrderNo) -> Result<Redemption, StoreError> {
        let view = self.orders.view(order_no).await?;
        if &view.game != game {
            return Err(StoreError::OtherGame);
        }
        Ok(Redemption {
            order: view,
            created: false,
        })
    }

    /// The order `purchase` makes: its SKU by the store's product id, its amount what the
    /// store says the player paid (or the SKU's price in `region`), its grants per unit bought.
    async fn store_order(
        &self,
        buyer: &Buyer,
        channel: &str,
        purchase: &StorePurchase,
    ) -> Result<StoreOrder, StoreError> {
        let sku = match self
            .catalog
            .sku_for_store_product(&buyer.game, channel, &purchase.product_id)
            .await
        {
            Ok(sku) => sku,
            Err(CatalogError::NotFound(_)) => {
                return Err(StoreError::UnknownProduct {
                    channel: channel.to_owned(),
                    product_id: purchase.product_id.clone(),
                });
            }
            Err(e) => return Err(OrderError::CatalogUnavailable(e.to_string()).into()),
        };
        let amount = match &purchase.price {
            Some(Charged::Money(price)) => *price,
            other => {
                if let Some(Charged::UnknownCurrency { currency, .. }) = other {
                    tracing::warn!(%currency, transaction = %purchase.transaction_id, "the store's price is in a currency Coffer does not know; the catalog's price is recorded");
                }
                sku.spec
                    .price_for(&buyer.region, None)
                    .map_err(|e| OrderError::NoPrice(e.to_string()))?
            }
        };
        let quantity = i64::from(purchase.quantity);
        let mut grants = sku.spec.grants.clone();
        for grant in &mut grants {
            grant.quantity = grant.quantity.saturating_mul(quantity);
        }
        Ok(StoreOrder {
            game: buyer.game.clone(),
            player_id: buyer.player_id.clone(),
            channel: channel.to_owned(),
            transaction_id: purchase.transaction_id.clone(),
            channel_status: purchase.channel_status.clone(),
            sku: sku.spec.code.clone(),
            subject: sku.spec.title.clone(),
            grants,
            region: buyer.region.clone(),
            amount,
        })
    }
}

/// Who a store purchase is for.
struct Buyer {
    game: GameId,
    player_id: String,
    region: Region,
}

fn validate(request: &RedeemRequest) -> Result<(), StoreError> {
    let invalid = |why: &str| Err(StoreError::Invalid(why.to_owned()));
    if request.player_id.is_empty() {
        return invalid("player_id is required");
    }
    if request.token.is_empty() || request.token.len() > MAX_TOKEN_LEN {
        return invalid("token is 1-2048 characters");
    }
    if !request.token.bytes().all(|b| b.is_ascii_graphic()) {
        return invalid("token is visible ASCII");
    }
    if request.product_id.len() > 150 || !request.product_id.bytes().all(|b| b.is_ascii_graphic()) {
        return invalid("product_id is at most 150 visible ASCII characters");
    }
    Ok(())
}
