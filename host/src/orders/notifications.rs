//! A channel's notification, as its plugin read it: verified news goes through the one
//! settling path, an unverified claim is only a reason to ask the channel with a signed query,
//! and a rejection changes nothing. What came of it decides the channel's acknowledgement.

use super::{Orders, scrub};
use crate::channels::Notice;

/// What became of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notified {
    /// Applied, or confirmed by a signed query: the channel may stop sending it.
    Recorded,
    /// Forged, tampered, stale or malformed: sending it again will not help (a 4xx).
    Rejected,
    /// Coffer could not record it now: the channel should send it again (a 5xx).
    NotRecorded,
}

impl Orders {
    /// Applies what `channel_id`'s plugin made of a notification.
    pub async fn apply_notification(&self, channel_id: &str, notice: Notice) -> Notified {
        let recorded = match notice {
            Notice::Payment(report) => {
                match self
                    .apply_payment_report(channel_id, &report, "notification")
                    .await
                {
                    Ok(settled) => {
                        tracing::info!(channel = %channel_id, payment_ref = %report.payment_ref, ?settled, "notification applied");
                        true
                    }
                    Err(error) => {
                        tracing::error!(channel = %channel_id, %error, "cannot record a notification; the channel will retry");
                        false
                    }
                }
            }
            Notice::Refund(report) => match self.apply_refund_report(channel_id, &report).await {
                Ok(()) => true,
                Err(error) => {
                    tracing::error!(channel = %channel_id, %error, "cannot record a refund notification; the channel will retry");
                    false
                }
            },
            Notice::Claim { payment_ref } => {
                match self.confirm_claim(channel_id, &payment_ref).await {
                    Ok((settled, order_no)) => {
                        tracing::info!(channel = %channel_id, ?order_no, ?settled, "unverified notification confirmed by query");
                        true
                    }
                    Err(error) => {
                        tracing::warn!(channel = %channel_id, %error, "unverified notification not confirmed");
                        false
                    }
                }
            }
            Notice::Store(_) | Notice::StoreClaim(_) => {
                // The stores area applies these (`stores::Stores::apply_event`).
                tracing::error!(channel = %channel_id, "store news given to the order center");
                false
            }
            Notice::Rejected { why } => {
                // Logged without the body (it may carry secrets).
                tracing::warn!(channel = %channel_id, why = %scrub(&why), "notification rejected");
                return Notified::Rejected;
            }
        };
        if recorded {
            Notified::Recorded
        } else {
            Notified::NotRecorded
        }
    }
}
