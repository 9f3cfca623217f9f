//! The stores' chores, run by every instance that has them enabled: acknowledging delivered
//! purchases the store waits on (Google refunds a purchase left unacknowledged for three days),
//! retried every run until the store takes it, and listing the purchases a store revoked
//! (Google's voided purchases), each refunding its order once.
//!
//! A purchase is acknowledged once its order is delivered: the game has the items. Two
//! instances may acknowledge the same purchase at once; the store takes that as one.

use std::time::Duration;

use coffer_plugin_runtime::Channel;

use super::{Stores, purchases};
use crate::channels::StorePurchase;
use crate::channels::store::{self as lookup, LookupError, StoreProductKind, StorePurchaseState};
use crate::config::StoresConfig;
use crate::orders::OrderStatus;

impl Stores {
    /// Acknowledges up to `batch` delivered purchases their store still waits on; returns how
    /// many it acknowledged. It walks every waiting purchase, page by page: purchases whose
    /// order is not delivered yet (a game server down) never hold back the others, which
    /// Google would refund after three days.
    pub async fn acknowledge_delivered(&self, batch: u32) -> usize {
        let (mut after, mut acknowledged) = (None, 0);
        while acknowledged < batch as usize {
            let page = match purchases::awaiting_acknowledgement(&self.store, after.as_ref(), batch)
                .await
            {
                Ok(page) => page,
                Err(error) => {
                    tracing::warn!(%error, "cannot list purchases to acknowledge");
                    break;
                }
            };
            let Some(last) = page.last() else {
                break;
            };
            after = Some((
                last.created_at,
                last.channel.clone(),
                last.transaction_id.clone(),
            ));
            for redeemed in &page {
                match self.acknowledge(redeemed).await {
                    Ok(true) => acknowledged += 1,
                    Ok(false) => {}
                    Err(error) => {
                        tracing::warn!(channel = %redeemed.channel, order_no = %redeemed.order_no, %error, "store purchase not acknowledged yet; tried again next run");
                    }
                }
            }
        }
        acknowledged
    }

    /// `true` once the store took the acknowledgement (or wanted none).
    async fn acknowledge(&self, redeemed: &purchases::Redeemed) -> Result<bool, String> {
        let order = self
            .orders
            .get(&redeemed.order_no)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("order {} is missing", redeemed.order_no))?;
        if order.status != OrderStatus::Delivered {
            return Ok(false);
        }
        let channel = self
            .registry
            .get(&redeemed.channel)
            .ok_or_else(|| format!("channel {} is not loaded", redeemed.channel))?;
        lookup::ensure_access_token(&channel, &self.http)
            .await
            .map_err(|e| e.to_string())?;
        let purchase = crate::channels::contract::store_purchase_of(&as_purchase(redeemed));
        let request = channel
            .build_store_acknowledge(&purchase)
            .await
            .map_err(|e| e.to_string())?;
        if let Some(request) = request {
            let response = self.http.send(&request).await.map_err(|e| e.to_string())?;
            if response.status == 401 {
                channel.forget_access_token();
            }
            channel
                .parse_store_acknowledge_response(&purchase, &response)
                .await
                .map_err(|e| e.to_string())?;
        }
        let key = (redeemed.channel.clone(), redeemed.transaction_id.clone());
        self.store
            .write(key, |tx, (channel, transaction)| {
                Box::pin(purchases::mark_acknowledged(tx, channel, transaction))
            })
            .await
            .map_err(|e: sqlx::Error| e.to_string())?;
        tracing::info!(channel = %redeemed.channel, order_no = %redeemed.order_no, "store purchase acknowledged");
        Ok(true)
    }

    /// Lists every store's purchases revoked in the last `window_days` and refunds the orders
    /// made of them; returns how many purchases the stores listed.
    pub async fn poll_revoked(&self, window_days: u32) -> usize {
        let since = crate::store::now_ms() / 1000 - i64::from(window_days) * 86_400;
        let mut listed = 0;
        for channel in self.registry.channels() {
            match self.poll_channel(&channel, since).await {
                Ok(count) => listed += count,
                Err(error) => {
                    tracing::warn!(channel = %channel.id(), %error, "cannot list revoked store purchases")
                }
            }
        }
        listed
    }

    async fn poll_channel(&self, channel: &Channel, since: i64) -> Result<usize, LookupError> {
        // The token first: the request carries it (a channel without one says so once).
        lookup::ensure_access_token(channel, &self.http).await?;
        // Only stores that list revocations build a request.
        let mut request = channel.build_revoked_request(since, None).await?;
        let mut listed = 0;
        while let Some(call) = request {
            let response = self.http.send(&call).await?;
            let revoked = channel.parse_revoked_response(&response).await?;
            for purchase in revoked.purchases {
                let purchase = crate::channels::contract::store_purchase(purchase);
                listed += 1;
                if let Err(error) = self.revoke(channel.id(), &purchase).await {
                    tracing::warn!(channel = %channel.id(), %error, "cannot refund a revoked store purchase; next poll tries again");
                }
            }
            request = match revoked.next_page {
                Some(page) => channel.build_revoked_request(since, Some(&page)).await?,
                None => None,
            };
        }
        Ok(listed)
    }
}

/// A redeemed purchase as the plugin last confirmed it, for its acknowledgement.
fn as_purchase(redeemed: &purchases::Redeemed) -> StorePurchase {
    StorePurchase {
        transaction_id: redeemed.transaction_id.clone(),
        original_transaction_id: redeemed.transaction_id.clone(),
        token: redeemed.token.clone(),
        product_id: redeemed.product_id.clone(),
        kind: StoreProductKind::Consumable,
        quantity: 1,
        state: StorePurchaseState::Purchased,
        price: None,
        purchased_at_s: 0,
        expires_at_s: None,
        revoked_at_s: None,
        storefront: String::new(),
        needs_acknowledgement: true,
        channel_status: String::new(),
    }
}

/// Runs the chores forever (until the task is dropped).
pub async fn run(stores: Stores, config: StoresConfig) {
    let mut acknowledge =
        tokio::time::interval(Duration::from_millis(config.acknowledge_every_ms.max(10)));
    acknowledge.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut poll = tokio::time::interval(Duration::from_secs(config.revoked_poll_every_s.max(1)));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = acknowledge.tick() => {
                stores.acknowledge_delivered(config.batch).await;
            }
            _ = poll.tick() => {
                let listed = stores.poll_revoked(config.revoked_window_days).await;
                if listed > 0 {
                    tracing::info!(listed, "revoked store purchases listed");
                }
            }
        }
    }
}
