//! Order numbers: what channels see as the merchant's order id.

use serde::{Deserialize, Serialize};

/// Coffer's order number: 26 characters of upper-case letters and digits (Crockford base32),
/// the first ten the creation time, so order numbers sort by time. Channels cap merchant order
/// ids at 32 characters of [A-Za-z0-9_-]; this fits all of them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrderNo(String);

impl OrderNo {
    pub fn generate() -> Self {
        Self(crate::store::new_id(""))
    }

    /// Accepts what a channel or a client hands back: 1 to 32 ASCII letters and digits.
    pub fn parse(text: &str) -> Result<Self, String> {
        if (1..=32).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!("{text:?} is not an order number"))
        }
    }

    /// Accepts only what [`OrderNo::generate`] makes: 26 characters of Crockford's base32.
    /// For operators' paging cursors, where anything else is a typo, not an old order.
    pub fn parse_generated(text: &str) -> Result<Self, String> {
        let crockford =
            |b: u8| b.is_ascii_digit() || (b.is_ascii_uppercase() && !b"ILOU".contains(&b));
        if text.len() == 26 && text.bytes().all(crockford) {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!("{text:?} is not an order number Coffer made"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for OrderNo {
    type Error = String;
    fn try_from(value: String) -> Result<Self, String> {
        Self::parse(&value)
    }
}

impl From<OrderNo> for String {
    fn from(value: OrderNo) -> String {
        value.0
    }
}

impl std::fmt::Display for OrderNo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_numbers_fit_every_channel_and_sort_by_time() {
        let first = OrderNo::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = OrderNo::generate();
        assert!(first < second);
        assert!(first.as_str().len() <= 32);
        assert_eq!(OrderNo::parse(first.as_str()).unwrap(), first);
        for bad in ["", "a-b", "x".repeat(33).as_str(), "订单"] {
            assert!(OrderNo::parse(bad).is_err(), "{bad:?}");
        }
    }
}
