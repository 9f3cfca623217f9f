//! Regional prices and how one is chosen for an order.

use coffer_money::{Currency, Money};
use serde::{Deserialize, Serialize};

use super::{CatalogError, SkuSpec};
use crate::games::Region;

/// Largest price accepted: ten billion major units of a two-decimal currency. Far above any
/// real in-game purchase, far below where i64 arithmetic could overflow.
const MAX_AMOUNT_MINOR: i64 = 1_000_000_000_000;

/// One price of a SKU: for a region (or, without one, for every region that has no price of
/// its own) in one currency, in minor units.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSpec {
    #[serde(default)]
    pub region: Option<Region>,
    pub currency: String,
    pub amount_minor: i64,
}

impl PriceSpec {
    pub fn validate(&self) -> Result<(), String> {
        Currency::parse(&self.currency).map_err(|e| format!("price currency: {e}"))?;
        if !(1..=MAX_AMOUNT_MINOR).contains(&self.amount_minor) {
            return Err(format!(
                "price amount_minor must be 1 to {MAX_AMOUNT_MINOR}"
            ));
        }
        Ok(())
    }

    pub fn money(&self) -> Money {
        let currency = Currency::parse(&self.currency).expect("validated on write");
        Money::new(self.amount_minor, currency)
    }
}

/// Money in API answers: minor units, currency, and the decimal form for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyView {
    pub amount_minor: i64,
    pub currency: String,
    /// "6.48": informative; `amount_minor` is authoritative.
    pub amount: String,
}

impl From<Money> for MoneyView {
    fn from(money: Money) -> Self {
        Self {
            amount_minor: money.minor(),
            currency: money.currency().code().to_owned(),
            amount: money.to_decimal(),
        }
    }
}

impl SkuSpec {
    /// Every price that applies in `region`: its own, else the region-less ones.
    pub fn prices_in(&self, region: &Region) -> Vec<Money> {
        let own: Vec<Money> = self
            .prices
            .iter()
            .filter(|p| p.region.as_ref() == Some(region))
            .map(PriceSpec::money)
            .collect();
        if !own.is_empty() {
            return own;
        }
        self.prices
            .iter()
            .filter(|p| p.region.is_none())
            .map(PriceSpec::money)
            .collect()
    }

    /// The price for a player in `region`, in `currency` if the game asked for one. A region's
    /// own prices win over region-less ones; a region with prices in several currencies needs
    /// the currency named.
    pub fn price_for(
        &self,
        region: &Region,
        currency: Option<Currency>,
    ) -> Result<Money, CatalogError> {
        let matching: Vec<Money> = self
            .prices_in(region)
            .into_iter()
            .filter(|p| currency.is_none_or(|c| p.currency() == c))
            .collect();
        match matching.as_slice() {
            [one] => Ok(*one),
            [] => Err(CatalogError::Invalid(match currency {
                Some(c) => format!("SKU {} has no price in {c} for region {region}", self.code),
                None => format!("SKU {} is not sold in region {region}", self.code),
            })),
            _ => Err(CatalogError::Invalid(format!(
                "SKU {} has prices in several currencies for region {region}: name the currency",
                self.code
            ))),
        }
    }
}
