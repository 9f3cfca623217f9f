use std::fmt;

/// An ISO 4217 currency this system knows the minor-unit exponent of.
///
/// Stored as its three ASCII letters, so it is `Copy` and compares cheaply. Only currencies in
/// [`EXPONENTS`] parse: an unknown code could not be formatted safely.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    #[error("currency code must be three upper-case letters, got {0:?}")]
    BadCode(String),
    #[error("unsupported currency {0}")]
    Unsupported(String),
}

/// ISO 4217 codes with their minor-unit exponents. Sorted by code for binary search.
const EXPONENTS: &[(&str, u8)] = &[
    ("AED", 2),
    ("AUD", 2),
    ("BHD", 3),
    ("BRL", 2),
    ("CAD", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("CZK", 2),
    ("DKK", 2),
    ("EUR", 2),
    ("GBP", 2),
    ("HKD", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("MOP", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("NOK", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PHP", 2),
    ("PLN", 2),
    ("RUB", 2),
    ("SAR", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("THB", 2),
    ("TRY", 2),
    ("TWD", 2),
    ("USD", 2),
    ("VND", 0),
    ("ZAR", 2),
];

impl Currency {
    pub fn parse(code: &str) -> Result<Self, CurrencyError> {
        let bytes: [u8; 3] = code
            .as_bytes()
            .try_into()
            .ok()
            .filter(|b: &[u8; 3]| b.iter().all(u8::is_ascii_uppercase))
            .ok_or_else(|| CurrencyError::BadCode(code.to_owned()))?;
        match EXPONENTS.binary_search_by(|(c, _)| c.as_bytes().cmp(&bytes[..])) {
            Ok(_) => Ok(Self(bytes)),
            Err(_) => Err(CurrencyError::Unsupported(code.to_owned())),
        }
    }

    pub fn code(&self) -> &str {
        // Only ASCII upper-case letters are ever stored.
        std::str::from_utf8(&self.0).expect("currency code is ASCII")
    }

    /// Number of decimal places of the minor unit: 2 for USD, 0 for JPY, 3 for KWD.
    pub fn exponent(&self) -> u8 {
        let index = EXPONENTS
            .binary_search_by(|(c, _)| c.as_bytes().cmp(&self.0[..]))
            .expect("a parsed currency is in the table");
        EXPONENTS[index].1
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl std::str::FromStr for Currency {
    type Err = CurrencyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_so_lookups_work() {
        assert!(EXPONENTS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn rejects_lower_case_and_unknown_codes() {
        assert_eq!(
            Currency::parse("usd"),
            Err(CurrencyError::BadCode("usd".into()))
        );
        assert_eq!(
            Currency::parse("XXX"),
            Err(CurrencyError::Unsupported("XXX".into()))
        );
        assert_eq!(Currency::parse("KWD").unwrap().exponent(), 3);
    }
}
