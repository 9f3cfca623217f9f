//! The legacy API's domain: the old three-service system's players (a numeric id, level, gold
//! and icon next to a Coffer player), its card payments (orders in Coffer's order center),
//! its payment records, and the import of its MariaDB database.
//!
//! What the old system trusted from the client, this area checks: passwords are Argon2id
//! hashes, a bill is paid only when the channel says so in a signed answer or query, and a
//! payment record is accepted only for an order Coffer saw paid.

mod accounts;
pub mod import;
mod payments;
mod time;

use std::sync::Arc;

use coffer_money::{Currency, Money};

use crate::config::LegacyConfig;
use crate::games::{GameId, Games};
use crate::orders::{OrderError, Orders};
use crate::players::{PlayerError, Players};
use crate::store::Store;

pub use accounts::{NewProfile, Profile, ProfileChange, ProfileList};
pub use payments::{BillKey, BillState, BillStatus, PayForm, PaymentRow, RecordUpload, Recorder};
pub use time::iso_utc;

/// The username of the player that anonymous `/api/pay` orders belong to. Legacy player ids
/// cannot start with '#', so no one can register it.
pub const GUEST_USERNAME: &str = "#legacy-guest";

/// Why a legacy request was refused. Messages are the old system's where it had one.
#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    #[error("请填写完整信息")]
    Incomplete,
    #[error("{0}")]
    Invalid(String),
    #[error("玩家ID已存在")]
    PidTaken,
    #[error("玩家ID或密码错误")]
    WrongCredentials,
    #[error("用户不存在")]
    UnknownPlayer,
    #[error("{0}")]
    Refused(String),
    /// The bill number was used before: by a Coffer order or in the old system's records.
    #[error("订单号重复: {0}")]
    DuplicateBill(String),
    #[error("服务器繁忙，请{retry_after_s}秒后重试")]
    Busy { retry_after_s: u64 },
    /// `legacy.game` does not exist or is disabled: a deployment mistake, not the player's.
    #[error("服务暂不可用：游戏不存在或已停用")]
    GameUnavailable,
    #[error(transparent)]
    Order(OrderError),
    #[error("{0}")]
    Internal(String),
}

impl From<sqlx::Error> for LegacyError {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(error.to_string())
    }
}

impl From<PlayerError> for LegacyError {
    fn from(error: PlayerError) -> Self {
        match error {
            PlayerError::WrongCredentials => Self::WrongCredentials,
            PlayerError::UsernameTaken(_) => Self::PidTaken,
            PlayerError::NotFound => Self::UnknownPlayer,
            PlayerError::Busy { retry_after_s } => Self::Busy { retry_after_s },
            PlayerError::UnknownGame => Self::GameUnavailable,
            PlayerError::Invalid(why) => Self::Invalid(why),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<OrderError> for LegacyError {
    fn from(error: OrderError) -> Self {
        match error {
            OrderError::Database(e) => Self::Internal(e.to_string()),
            OrderError::CatalogUnavailable(why) | OrderError::Invariant(why) => Self::Internal(why),
            OrderError::PriceMismatch { price, .. } => Self::Invalid(format!(
                "金额与商品价格不符: 商品价格为 {}",
                price.to_decimal()
            )),
            other => Self::Order(other),
        }
    }
}

/// The legacy area: one game's players and orders, seen the old system's way.
#[derive(Clone)]
pub struct Legacy {
    store: Store,
    players: Players,
    orders: Orders,
    games: Games,
    config: Arc<LegacyConfig>,
    game: GameId,
    /// `config.currency`, and the ad-hoc amount bounds in it (checked when the config loaded).
    currency: Currency,
    adhoc_bounds: (Money, Money),
}

impl Legacy {
    /// `None` when the legacy routes are off.
    pub fn new(
        store: Store,
        players: Players,
        orders: Orders,
        games: Games,
        config: &LegacyConfig,
    ) -> Option<Self> {
        if !config.enabled {
            return None;
        }
        let game = GameId::parse(&config.game).ok()?;
        let adhoc_bounds = config.adhoc_bounds().ok()?;
        Some(Self {
            currency: adhoc_bounds.0.currency(),
            adhoc_bounds,
            store,
            players,
            orders,
            games,
            config: Arc::new(config.clone()),
            game,
        })
    }

    pub fn game(&self) -> &GameId {
        &self.game
    }

    pub fn config(&self) -> &LegacyConfig {
        &self.config
    }
}
