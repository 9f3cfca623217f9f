//! The order state machine: one table of legal transitions. Anything else is an error, never
//! silently applied.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Created, stock held, waiting for the player to pay.
    Pending,
    /// The channel confirmed the payment (verified callback or signed query).
    Paid,
    /// The game server acknowledged the goods.
    Delivered,
    /// The order cannot be paid (refused before any money moved).
    Failed,
    /// Expired or cancelled without payment; stock and purchase limit released.
    Closed,
    Refunded,
    PartiallyRefunded,
}

use OrderStatus::*;

/// Every legal transition, with why it exists.
const TRANSITIONS: &[(OrderStatus, OrderStatus)] = &[
    (Pending, Paid),
    (Pending, Failed),
    (Pending, Closed),
    // Money that arrives after the order closed or failed is still the player's money: the
    // order records it (and is then delivered or refunded), it is never dropped.
    (Closed, Paid),
    (Failed, Paid),
    (Paid, Delivered),
    (Paid, Refunded),
    (Paid, PartiallyRefunded),
    (Delivered, Refunded),
    (Delivered, PartiallyRefunded),
    (PartiallyRefunded, PartiallyRefunded),
    (PartiallyRefunded, Refunded),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an order cannot go from {from} to {to}")]
pub struct IllegalTransition {
    pub from: OrderStatus,
    pub to: OrderStatus,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 7] = [
        Pending,
        Paid,
        Delivered,
        Failed,
        Closed,
        Refunded,
        PartiallyRefunded,
    ];

    /// The state after moving to `to`, if the table allows it.
    pub fn transition(self, to: OrderStatus) -> Result<OrderStatus, IllegalTransition> {
        if TRANSITIONS.contains(&(self, to)) {
            Ok(to)
        } else {
            Err(IllegalTransition { from: self, to })
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Pending => "pending",
            Paid => "paid",
            Delivered => "delivered",
            Failed => "failed",
            Closed => "closed",
            Refunded => "refunded",
            PartiallyRefunded => "partially_refunded",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Whether money has been taken for the order (and not all given back).
    pub fn is_paid(self) -> bool {
        matches!(self, Paid | Delivered | PartiallyRefunded)
    }
}

impl std::fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where one payment attempt stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptStatus {
    /// Recorded; the channel has not been called yet (or the host stopped while calling it).
    Created,
    /// The channel waits for the player (redirect, QR code, 3-D Secure).
    RequiresAction,
    /// The channel accepted the payment and will notify its outcome.
    Processing,
    Paid,
    /// The channel refused, or nothing was sent: another attempt may follow.
    Failed,
    /// Sent, but no usable answer: the channel may or may not have taken the money. Settled
    /// only by a query; no other attempt may start meanwhile.
    Unknown,
}

impl AttemptStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::RequiresAction => "requires_action",
            Self::Processing => "processing",
            Self::Paid => "paid",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Created,
            Self::RequiresAction,
            Self::Processing,
            Self::Paid,
            Self::Failed,
            Self::Unknown,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    /// Whether a new attempt may start after this one: only after a failed one. An attempt
    /// waiting for the player (a QR code, a cashier page, 3-D Secure) can still be paid at the
    /// channel until the order expires, and one whose outcome is unknown may already have
    /// been; a second attempt could then charge the player twice.
    pub fn allows_another_attempt(self) -> bool {
        matches!(self, Self::Failed)
    }

    /// Whether nobody knows yet if this attempt took the money (only a query can tell).
    pub fn outcome_unknown(self) -> bool {
        matches!(self, Self::Created | Self::Unknown)
    }

    /// Paid or failed: the channel has said how it ended. Never undone (a failed attempt may
    /// still turn out paid, which is settled too).
    pub fn is_settled(self) -> bool {
        matches!(self, Self::Paid | Self::Failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_table_is_legal() {
        let mut legal = 0;
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                let allowed = TRANSITIONS.contains(&(from, to));
                assert_eq!(from.transition(to).is_ok(), allowed, "{from} -> {to}");
                legal += usize::from(allowed);
            }
        }
        assert_eq!(legal, TRANSITIONS.len());
    }

    #[test]
    fn illegal_transitions_are_refused() {
        for (from, to) in [
            (Pending, Delivered),
            (Pending, Refunded),
            (Paid, Pending),
            (Paid, Closed),
            (Paid, Failed),
            (Delivered, Paid),
            (Delivered, Pending),
            (Refunded, Paid),
            (Refunded, PartiallyRefunded),
            (Closed, Pending),
            (Closed, Delivered),
            (Failed, Pending),
            (Pending, Pending),
            (Paid, Paid),
        ] {
            assert_eq!(
                from.transition(to),
                Err(IllegalTransition { from, to }),
                "{from} -> {to}"
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for status in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        assert_eq!(OrderStatus::parse("PAID"), None);
        assert!(AttemptStatus::Failed.allows_another_attempt());
        assert!(!AttemptStatus::RequiresAction.allows_another_attempt());
        assert!(!AttemptStatus::Unknown.allows_another_attempt());
        assert!(!AttemptStatus::Created.allows_another_attempt());
    }
}
