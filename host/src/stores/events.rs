//! What a store's notifications change. A refund or revocation of a redeemed purchase refunds
//! its order (through the one settling path: a refund row, the ledger's transfer,
//! `order.refunded` for the game); a renewal is a new paid order for the player who bought the
//! subscription, and its end a `subscription.expired` event for the game; a purchase nobody
//! redeemed yet waits for the game server's proof (the store does not say which player bought
//! it).

use super::{Buyer, Stores, purchases};
use crate::channels::store as lookup;
use crate::channels::{PaymentReport, PaymentState, StoreEvent, StoreProof, StorePurchase};
use crate::fulfillment::EventKind;
use crate::orders::{Notified, payment_ref};

impl Stores {
    /// Applies a store's verified event.
    pub async fn apply_event(&self, channel: &str, event: StoreEvent) -> Notified {
        let applied = match event {
            StoreEvent::Informational(what) => {
                tracing::info!(channel, %what, "store notification with nothing to record");
                Ok(())
            }
            StoreEvent::Purchased(purchase) => {
                tracing::info!(channel, transaction = %purchase.transaction_id, "store purchase notified; the game server's proof makes its order");
                Ok(())
            }
            StoreEvent::Renewed(purchase) => self.renew(channel, purchase).await,
            StoreEvent::Expired(purchase) => self.expire(channel, &purchase).await,
            StoreEvent::Revoked(purchase) => self.revoke(channel, &purchase).await,
        };
        match applied {
            Ok(()) => Notified::Recorded,
            Err(error) => {
                tracing::error!(channel, %error, "cannot record a store notification; the store will retry");
                Notified::NotRecorded
            }
        }
    }

    /// An unsigned hint about a store purchase: looked up at the store, then applied as what
    /// the store says.
    pub async fn confirm_claim(&self, channel_id: &str, mut proof: StoreProof) -> Notified {
        let Some(channel) = self.registry.get(channel_id) else {
            return Notified::Rejected;
        };
        if proof.product_id.is_empty() {
            // A voided purchase's notification names no product: the redeemed purchase does.
            match purchases::by_token(&self.store, channel_id, &proof.token).await {
                Ok(Some(redeemed)) => proof.product_id = redeemed.product_id,
                Ok(None) => {
                    tracing::info!(
                        channel = channel_id,
                        "store claim about a purchase no order was made of"
                    );
                    return Notified::Recorded;
                }
                Err(error) => {
                    tracing::warn!(channel = channel_id, %error, "cannot read store purchases");
                    return Notified::NotRecorded;
                }
            }
        }
        match lookup::lookup(&channel, &self.http, &proof).await {
            Ok(purchase) => match purchase.state {
                crate::channels::StorePurchaseState::Revoked => {
                    self.apply_event(channel_id, StoreEvent::Revoked(purchase))
                        .await
                }
                _ => Notified::Recorded,
            },
            Err(lookup::LookupError::Refused(why)) => {
                tracing::warn!(channel = channel_id, %why, "store claim not confirmed by the store");
                Notified::Rejected
            }
            Err(lookup::LookupError::Unavailable(why)) => {
                tracing::warn!(channel = channel_id, %why, "store claim not looked up yet");
                Notified::NotRecorded
            }
        }
    }

    /// Refunds the order made of `purchase`, once: a purchase already marked revoked (its refund
    /// recorded) is left alone, however often the store tells of it.
    pub(super) async fn revoke(
        &self,
        channel: &str,
        purchase: &StorePurchase,
    ) -> Result<(), String> {
        let redeemed =
            purchases::by_transaction(self.store.pool(), channel, &purchase.transaction_id)
                .await
                .map_err(|e| e.to_string())?;
        let Some(redeemed) = redeemed else {
            tracing::warn!(channel, transaction = %purchase.transaction_id, "the store revoked a purchase no order was made of");
            return Ok(());
        };
        if redeemed.revoked_at.is_some() {
            return Ok(());
        }
        let report = PaymentReport {
            payment_ref: payment_ref(&redeemed.order_no, 1),
            channel_txn_id: Some(purchase.transaction_id.clone()),
            state: PaymentState::Refunded,
            charged: None,
            reason: None,
            channel_status: purchase.channel_status.clone(),
        };
        let settled = self
            .orders
            .apply_payment_report(channel, &report, "store notification")
            .await
            .map_err(|e| e.to_string())?;
        tracing::warn!(channel, order_no = %redeemed.order_no, ?settled, "store purchase revoked");
        let revoked_at_ms = purchase
            .revoked_at_s
            .unwrap_or_else(|| crate::store::now_ms() / 1000)
            .saturating_mul(1000);
        let key = (
            channel.to_owned(),
            purchase.transaction_id.clone(),
            revoked_at_ms,
        );
        self.store
            .write(key, |tx, (channel, transaction, at)| {
                Box::pin(purchases::mark_revoked(tx, channel, transaction, *at))
            })
            .await
            .map_err(|e: sqlx::Error| e.to_string())
    }

    /// A subscription ended: the game is told once (`subscription.expired`, with the order of its
    /// last paid period), however often the store repeats it.
    async fn expire(&self, channel: &str, purchase: &StorePurchase) -> Result<(), String> {
        let read = |transaction: &str| {
            let (store, transaction) = (self.store.clone(), transaction.to_owned());
            async move { purchases::by_transaction(store.pool(), channel, &transaction).await }
        };
        let last = match read(&purchase.transaction_id)
            .await
            .map_err(|e| e.to_string())?
        {
            Some(last) => Some(last),
            None => read(&purchase.original_transaction_id)
                .await
                .map_err(|e| e.to_string())?,
        };
        let Some(last) = last else {
            tracing::warn!(channel, original = %purchase.original_transaction_id, "expiry of a subscription no order was made of");
            return Ok(());
        };
        let order = self
            .orders
            .get(&last.order_no)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("order {} of a store purchase is missing", last.order_no))?;
        let job = (channel.to_owned(), last.transaction_id.clone(), order);
        let told = self
            .store
            .write(job, |tx, (channel, transaction, order)| {
                Box::pin(async move {
                    if !purchases::mark_expired(tx, channel, transaction).await? {
                        return Ok(false);
                    }
                    crate::fulfillment::enqueue(tx, EventKind::SubscriptionExpired, order).await?;
                    Ok(true)
                })
            })
            .await
            .map_err(|e: sqlx::Error| e.to_string())?;
        if told {
            tracing::info!(channel, order_no = %last.order_no, "store subscription expired; the game is told");
        }
        Ok(())
    }

    /// A renewal is paid by a new transaction: a new order for whoever redeemed the first one.
    async fn renew(&self, channel: &str, purchase: StorePurchase) -> Result<(), String> {
        let first = purchases::by_transaction(
            self.store.pool(),
            channel,
            &purchase.original_transaction_id,
        )
        .await
        .map_err(|e| e.to_string())?;
        let Some(first) = first else {
            tracing::warn!(channel, original = %purchase.original_transaction_id, "renewal of a subscription no order was made of");
            return Ok(());
        };
        let order = self
            .orders
            .get(&first.order_no)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("order {} of a store purchase is missing", first.order_no))?;
        let buyer = Buyer {
            game: order.game,
            player_id: order.player_id,
            region: order.region,
        };
        let made = self
            .make_order(&buyer, channel, purchase, None)
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(channel, order_no = %made.order.order_no, created = made.created, "store subscription renewed");
        Ok(())
    }
}
