//! How each area's errors look on the wire: stable problem types, no internals.

use axum::http::StatusCode;

use super::problem::Problem;
use crate::catalog::CatalogError;
use crate::games::GameError;
use crate::orders::OrderError;
use crate::players::PlayerError;
use crate::stores::StoreError;

impl From<OrderError> for Problem {
    fn from(error: OrderError) -> Self {
        let detail = error.to_string();
        match error {
            OrderError::Invalid(_) => Problem::unprocessable("invalid-order", detail),
            OrderError::UnknownPlayer(_) => Problem::unprocessable("unknown-player", detail),
            OrderError::UnknownSku(_) => Problem::unprocessable("unknown-sku", detail),
            OrderError::NotOnSale(_) => Problem::unprocessable("sku-not-on-sale", detail),
            OrderError::NoPrice(_) => Problem::unprocessable("no-price", detail),
            OrderError::Route(crate::channels::routing::RouteError::ChannelsFailing) => {
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "channels-unavailable",
                    "No channel could be asked right now",
                )
                .with_detail(detail)
            }
            OrderError::Route(_) => Problem::unprocessable("no-channel", detail),
            OrderError::SoldOut(_) => Problem::conflict("sold-out", detail),
            OrderError::PriceMismatch { .. } => Problem::unprocessable("price-mismatch", detail),
            OrderError::LimitReached(_) => Problem::conflict("purchase-limit-reached", detail),
            OrderError::DuplicateMerchantOrderNo { order_no, .. } => {
                Problem::conflict("duplicate-merchant-order-no", detail).with("order_no", order_no)
            }
            OrderError::NotFound(_) => Problem::not_found(&detail),
            OrderError::NotPayable { .. } => Problem::conflict("order-not-payable", detail),
            OrderError::AttemptBlocked(_) => Problem::conflict("attempt-in-progress", detail),
            OrderError::NotRefundable(_) => Problem::unprocessable("not-refundable", detail),
            OrderError::Database(e) => Problem::internal(&e),
            OrderError::CatalogUnavailable(why) | OrderError::Invariant(why) => {
                Problem::internal(&why)
            }
        }
    }
}

impl From<StoreError> for Problem {
    fn from(error: StoreError) -> Self {
        let detail = error.to_string();
        match error {
            StoreError::Invalid(_) => Problem::unprocessable("invalid-store-proof", detail),
            StoreError::UnknownPlayer(_) => Problem::unprocessable("unknown-player", detail),
            StoreError::UnknownChannel(_) => Problem::unprocessable("unknown-channel", detail),
            StoreError::Refused(_) => Problem::unprocessable("store-proof-refused", detail),
            StoreError::Pending => Problem::conflict("store-purchase-pending", detail),
            StoreError::Revoked => Problem::conflict("store-purchase-revoked", detail),
            StoreError::UnknownProduct { .. } => {
                Problem::unprocessable("unknown-store-product", detail)
            }
            StoreError::OtherGame => Problem::conflict("store-purchase-of-another-game", detail),
            StoreError::Unavailable(_) => Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "store-unavailable",
                "The store could not be asked right now",
            )
            .with_detail(detail)
            .retry_after(5),
            StoreError::Order(error) => error.into(),
        }
    }
}

impl From<PlayerError> for Problem {
    fn from(error: PlayerError) -> Self {
        let detail = error.to_string();
        match error {
            PlayerError::Invalid(_) => Problem::unprocessable("invalid-player", detail),
            PlayerError::UsernameTaken(_) => Problem::conflict("username-taken", detail),
            PlayerError::WrongCredentials => Problem::new(
                StatusCode::UNAUTHORIZED,
                "wrong-credentials",
                "Login failed",
            )
            .with_detail(detail),
            PlayerError::BadSession => Problem::new(
                StatusCode::UNAUTHORIZED,
                "invalid-session",
                "A valid session is required",
            )
            .with_detail(detail),
            PlayerError::NotFound => Problem::not_found(&detail),
            PlayerError::UnknownGame => Problem::unprocessable("unknown-game", detail),
            PlayerError::Busy { retry_after_s } => Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "busy",
                "Too many password checks at once",
            )
            .with_detail(detail)
            .retry_after(retry_after_s),
            PlayerError::Hashing(e) => Problem::internal(&e),
            PlayerError::Database(e) => Problem::internal(&e),
        }
    }
}

impl From<CatalogError> for Problem {
    fn from(error: CatalogError) -> Self {
        let detail = error.to_string();
        match error {
            CatalogError::Invalid(_) => Problem::unprocessable("invalid-sku", detail),
            CatalogError::NotFound(_) | CatalogError::UnknownGame(_) => Problem::not_found(&detail),
            CatalogError::Exists(_) => Problem::conflict("sku-exists", detail),
            CatalogError::StockBelowReserved { .. } => {
                Problem::conflict("stock-below-reserved", detail)
            }
            CatalogError::Database(e) => Problem::internal(&e),
            CatalogError::Unavailable(e) => Problem::internal(&e),
        }
    }
}

impl From<GameError> for Problem {
    fn from(error: GameError) -> Self {
        let detail = error.to_string();
        match error {
            GameError::Invalid(_) => Problem::unprocessable("invalid-game", detail),
            GameError::Exists(_) => Problem::conflict("game-exists", detail),
            GameError::NotFound(_) => Problem::not_found(&detail),
            GameError::Database(e) => Problem::internal(&e),
        }
    }
}

impl From<sqlx::Error> for Problem {
    fn from(error: sqlx::Error) -> Self {
        Problem::internal(&error)
    }
}
