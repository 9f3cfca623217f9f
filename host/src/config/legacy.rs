//! The `[legacy]` section: the old three-service system's routes (`/api/...`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use coffer_money::{Currency, Money};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LegacyConfig {
    /// Serve the legacy routes. Off by default: only studios moving from the old system need
    /// them.
    pub enabled: bool,
    /// The game whose players and orders the legacy routes are (the old system had one).
    pub game: String,
    /// Extra addresses serving only the legacy routes, e.g. the old ports "0.0.0.0:3001",
    /// "0.0.0.0:5000" and "0.0.0.0:5001", so deployed clients need not change URLs.
    pub listen: Vec<SocketAddr>,
    /// The card channel `/api/pay` goes through.
    pub channel: String,
    /// The currency of the amounts the old client sends (its `currency` field carries the
    /// card type, not a currency).
    pub currency: String,
    /// `productInfo` text as the old client sends it (percent-decoded) → SKU code. A mapped
    /// product is sold at its SKU's price, and the client's amount must match it.
    pub products: BTreeMap<String, String>,
    /// SKU for payments whose `productInfo` is not mapped: the order takes the amount the
    /// client sends. Empty: unmapped products are refused.
    pub adhoc_sku: String,
    /// Smallest and largest amount an `adhoc_sku` order may have, in `currency` (the client
    /// chooses it).
    pub adhoc_min_amount: String,
    pub adhoc_max_amount: String,
    /// Accept `/api/pay` without a player session (the old client sends none): such orders
    /// belong to the game's "#legacy-guest" player until claimed (see `claim_window_s` and
    /// docs/legacy.md, "Who pays").
    pub anonymous_pay: bool,
    /// How long after an anonymous payment its record upload may name the player it was for
    /// (from the address that paid), in seconds. Its delivery to the game server waits that
    /// long for the claim, then goes out as the guest's.
    pub claim_window_s: u64,
    /// Shortest password a new legacy player may choose (the old client asked for 6).
    pub min_password_chars: usize,
}

impl Default for LegacyConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            game: String::new(),
            listen: Vec::new(),
            channel: "carespay".into(),
            currency: "USD".into(),
            products: BTreeMap::new(),
            adhoc_sku: String::new(),
            adhoc_min_amount: "1.00".into(),
            adhoc_max_amount: "2000.00".into(),
            anonymous_pay: true,
            claim_window_s: 600,
            min_password_chars: 8,
        }
    }
}

impl LegacyConfig {
    /// `adhoc_min_amount` and `adhoc_max_amount` in `currency`.
    pub fn adhoc_bounds(&self) -> Result<(Money, Money), String> {
        let currency =
            Currency::parse(&self.currency).map_err(|e| format!("legacy.currency: {e}"))?;
        let parse = |text: &str, name: &str| {
            Money::from_decimal(text, currency).map_err(|e| format!("legacy.{name}: {e}"))
        };
        Ok((
            parse(&self.adhoc_min_amount, "adhoc_min_amount")?,
            parse(&self.adhoc_max_amount, "adhoc_max_amount")?,
        ))
    }

    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        crate::games::GameId::parse(&self.game)
            .map_err(|e| format!("legacy.game must name a game: {e}"))?;
        let (min, max) = self.adhoc_bounds()?;
        if min.minor() <= 0 || max.minor() < min.minor() {
            return Err("legacy.adhoc_min_amount must be > 0 and <= adhoc_max_amount".into());
        }
        if self.channel.is_empty() {
            return Err("legacy.channel must name a card channel".into());
        }
        if !(6..=128).contains(&self.min_password_chars) {
            return Err("legacy.min_password_chars must be 6 to 128".into());
        }
        Ok(())
    }
}
