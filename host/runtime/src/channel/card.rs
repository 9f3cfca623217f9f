//! Card data on its way to a direct-card channel.
//!
//! The contract's generated `Card` record derives a `Debug` that prints every field, and
//! bindgen cannot be told otherwise. So the host never holds one in a request: card data
//! travels as a [`SecretCard`], whose `Debug` shows only the last four digits, and becomes the
//! generated record only inside [`Channel::create_payment`](super::Channel::create_payment),
//! for the length of the call, after which its number and code are wiped.

use zeroize::Zeroize;

use crate::bindings::types::Card;

/// A card number, expiry, verification code and holder name that can be handed to a plugin
/// but not printed: `Debug` masks it, and dropping it wipes the number and the code.
pub struct SecretCard(Card);

impl SecretCard {
    pub fn new(
        number: &str,
        expiry_month: u8,
        expiry_year: u16,
        cvc: &str,
        holder_name: &str,
    ) -> Self {
        Self(Card {
            number: number.to_owned(),
            expiry_month,
            expiry_year,
            cvc: cvc.to_owned(),
            holder_name: holder_name.to_owned(),
        })
    }

    /// The last four digits, the only part safe to show.
    pub fn last4(&self) -> &str {
        let number = &self.0.number;
        number.get(number.len().saturating_sub(4)..).unwrap_or("")
    }

    /// The generated record, for the plugin call only: wipe it with [`wipe`] afterwards.
    pub(crate) fn expose(&self) -> Card {
        self.0.clone()
    }
}

/// Wipes what a card record holds that must not linger in memory.
pub(crate) fn wipe(card: &mut Card) {
    card.number.zeroize();
    card.cvc.zeroize();
}

impl Drop for SecretCard {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

impl std::fmt::Debug for SecretCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretCard(**** {})", self.last4())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_card_never_prints_its_number_or_code() {
        let card = SecretCard::new("4242424242424242", 12, 2031, "737", "Ada Player");
        let printed = format!("{card:?} {card:#?}");
        assert!(printed.contains("4242"), "{printed}");
        assert!(!printed.contains("424242424242"), "{printed}");
        assert!(!printed.contains("737"), "{printed}");
        assert_eq!(card.last4(), "4242");
    }

    #[test]
    fn a_wiped_record_holds_neither_number_nor_code() {
        let card = SecretCard::new("4242424242424242", 12, 2031, "737", "Ada Player");
        let mut exposed = card.expose();
        wipe(&mut exposed);
        assert!(exposed.number.is_empty() && exposed.cvc.is_empty());
    }
}
