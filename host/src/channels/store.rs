//! App store purchases in Coffer's own types, and the exchanges with a store that look one up:
//! the plugin builds a signed request, the host sends it (with the channel's access token when
//! the store uses one, fetched once per lifetime), the plugin verifies the answer.

use coffer_plugin_runtime::{Channel, PluginError};

use super::contract;
use super::http::{ChannelHttp, SendError};
use super::model::Charged;

/// What a game server sends as proof that its player bought something in a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreProof {
    /// The App Store's transaction id; Google Play's purchase token.
    pub token: String,
    /// The store's product id (Google needs it; may be empty for the App Store).
    pub product_id: String,
}

/// Where a store purchase stands, as the store confirmed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorePurchaseState {
    Purchased,
    /// Not paid yet: granted once it is.
    Pending,
    /// Refunded, voided or revoked by the store.
    Revoked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreProductKind {
    Consumable,
    NonConsumable,
    Subscription,
}

/// One store purchase, verified by the channel's plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePurchase {
    /// The store's unique id for it: one order per transaction id and channel, ever.
    pub transaction_id: String,
    pub original_transaction_id: String,
    /// What looks it up again (the proof's token).
    pub token: String,
    pub product_id: String,
    pub kind: StoreProductKind,
    pub quantity: u32,
    pub state: StorePurchaseState,
    /// What the buyer paid, when the store tells.
    pub price: Option<Charged>,
    pub purchased_at_s: i64,
    pub expires_at_s: Option<i64>,
    pub revoked_at_s: Option<i64>,
    pub storefront: String,
    pub needs_acknowledgement: bool,
    pub channel_status: String,
}

/// What a store's verified notification says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    Purchased(StorePurchase),
    Renewed(StorePurchase),
    Expired(StorePurchase),
    Revoked(StorePurchase),
    /// Nothing to record (a test notification, an event Coffer does not act on).
    Informational(String),
}

/// Why a store purchase could not be looked up.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The plugin refused the proof or the store's answer (unknown transaction, bad chain,
    /// another app, another environment): a definitive no.
    #[error("{0}")]
    Refused(String),
    /// No usable answer now (the store is down, the plugin failed): try again later.
    #[error("{0}")]
    Unavailable(String),
}

impl From<PluginError> for LookupError {
    fn from(error: PluginError) -> Self {
        use coffer_plugin_runtime::contract::ChannelError as E;
        match &error {
            PluginError::Channel(E::BadSignature(why) | E::Malformed(why)) => {
                Self::Refused(why.clone())
            }
            PluginError::Channel(E::Unsupported(why)) => Self::Refused(why.clone()),
            _ => Self::Unavailable(error.to_string()),
        }
    }
}

impl From<SendError> for LookupError {
    fn from(error: SendError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

/// Asks `channel`'s store about `proof` and returns what the plugin verified.
pub async fn lookup(
    channel: &Channel,
    http: &ChannelHttp,
    proof: &StoreProof,
) -> Result<StorePurchase, LookupError> {
    ensure_access_token(channel, http).await?;
    let proof = contract::store_proof(proof);
    let request = channel.build_store_lookup(&proof).await?;
    let response = http.send(&request).await?;
    if response.status == 401 {
        // A token the store no longer takes (revoked, clock skew): the next lookup gets a new one.
        channel.forget_access_token();
    }
    let purchase = channel.parse_store_lookup(&proof, &response).await?;
    Ok(contract::store_purchase(purchase))
}

/// Makes sure `channel` holds a fresh access token if its store uses one: one fetch at a time,
/// kept by the runtime until a minute before it expires.
pub async fn ensure_access_token(channel: &Channel, http: &ChannelHttp) -> Result<(), LookupError> {
    if channel.needs_no_access_token() || channel.access_token().is_some() {
        return Ok(());
    }
    let _fetching = channel.access_token_refresh().await;
    if channel.access_token().is_some() {
        return Ok(());
    }
    let Some(request) = channel.build_access_token_request().await? else {
        return Ok(());
    };
    let response = http.send(&request).await?;
    channel
        .parse_access_token_response(&response)
        .await
        .map_err(|e| LookupError::Unavailable(format!("no access token: {e}")))
}
