//! Money without floats.
//!
//! An amount is an integer count of a currency's minor units (cents, fen; yen have none) plus the
//! ISO 4217 currency. Channels speak decimal strings ("12.34"), so this crate converts both ways
//! exactly, and refuses anything it cannot represent instead of rounding.
//!
//! Shared by the host and by the plugin SDK, so a guest and the host agree on every exponent.

mod currency;
mod decimal;

pub use currency::{Currency, CurrencyError};
pub use decimal::{AmountError, format_minor, parse_decimal};

use std::fmt;

/// An amount of money in one currency: `minor` units of `currency`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    pub const fn new(minor: i64, currency: Currency) -> Self {
        Self { minor, currency }
    }

    /// Parses a decimal string in the currency's own precision ("12.34" USD is 1234 minor units).
    pub fn from_decimal(text: &str, currency: Currency) -> Result<Self, AmountError> {
        parse_decimal(text, currency.exponent()).map(|minor| Self { minor, currency })
    }

    pub const fn minor(&self) -> i64 {
        self.minor
    }

    pub const fn currency(&self) -> Currency {
        self.currency
    }

    /// The decimal form channels expect, with exactly the currency's number of decimals.
    pub fn to_decimal(&self) -> String {
        format_minor(self.minor, self.currency.exponent())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_decimal_form() {
        let usd = Currency::parse("USD").unwrap();
        let m = Money::from_decimal("19.99", usd).unwrap();
        assert_eq!(m.minor(), 1999);
        assert_eq!(m.to_decimal(), "19.99");
        assert_eq!(m.to_string(), "19.99 USD");
    }

    #[test]
    fn zero_decimal_currency_has_no_fraction() {
        let jpy = Currency::parse("JPY").unwrap();
        assert_eq!(Money::new(500, jpy).to_decimal(), "500");
        assert!(Money::from_decimal("500.5", jpy).is_err());
    }
}
