//! App Store Server Notifications V2: `{"signedPayload": "<JWS>"}`, the payload verified like a
//! transaction, and the transaction inside it (`data.signedTransactionInfo`) and a
//! subscription's renewal info (`data.signedRenewalInfo`) verified again, each on its own.
//! Apple retries a notification until it gets a 200.

use coffer_plugin_sdk::serde_json::Value;
use coffer_plugin_sdk::*;

use crate::{signed, transaction};

pub fn parse(request: &InboundRequest) -> CallbackOutcome {
    let answer = |status| HttpAnswer {
        status,
        headers: vec![],
        body: vec![],
    };
    let verdict = match request.kind {
        // Apple sends no player back to Coffer.
        InboundKind::BrowserReturn => {
            CallbackVerdict::Rejected(unsupported("the App Store has no browser return"))
        }
        InboundKind::Notify => match event(&request.body) {
            Ok(event) => CallbackVerdict::Verified(CallbackEvent::Store(event)),
            Err(error) => CallbackVerdict::Rejected(error),
        },
    };
    CallbackOutcome {
        verdict,
        ack_accepted: answer(200),
        ack_rejected: answer(400),
    }
}

fn event(body: &[u8]) -> Result<StoreEvent, ChannelError> {
    let body: Value = serde_json::from_slice(body)?;
    let payload = body["signedPayload"]
        .as_str()
        .ok_or_else(|| malformed("no signedPayload"))?;
    let claims = signed::verified_claims(payload)?;
    let kind = claims["notificationType"]
        .as_str()
        .ok_or_else(|| malformed("no notificationType"))?;
    let subtype = claims["subtype"].as_str().unwrap_or_default();
    let data = &claims["data"];
    // The app and environment are checked on the notification's data and again on the
    // transaction it carries: each is signed on its own.
    signed::require_app_and_environment(data)?;
    let purchase = || -> Result<StorePurchase, ChannelError> {
        let signed = data["signedTransactionInfo"]
            .as_str()
            .ok_or_else(|| malformed(format!("a {kind} notification without a transaction")))?;
        let purchase = transaction::verified(signed)?;
        if let Some(renewal) = data["signedRenewalInfo"].as_str() {
            verify_renewal_info(renewal, &purchase)?;
        }
        Ok(purchase)
    };
    Ok(match kind {
        "ONE_TIME_CHARGE" | "SUBSCRIBED" => StoreEvent::Purchased(purchase()?),
        "DID_RENEW" => StoreEvent::Renewed(purchase()?),
        "EXPIRED" | "GRACE_PERIOD_EXPIRED" => StoreEvent::Expired(purchase()?),
        "REFUND" | "REVOKE" => {
            let mut purchase = purchase()?;
            // Apple sets revocationDate on the transaction it refunds; a notification whose
            // transaction lacks it is still a revocation, dated by the notification.
            purchase.state = StorePurchaseState::Revoked;
            if purchase.revoked_at.is_none() {
                purchase.revoked_at = claims["signedDate"].as_i64().map(|ms| ms.div_euclid(1000));
            }
            purchase.channel_status = kind.to_owned();
            StoreEvent::Revoked(purchase)
        }
        other if subtype.is_empty() => StoreEvent::Informational(other.to_owned()),
        other => StoreEvent::Informational(format!("{other}/{subtype}")),
    })
}

/// A subscription's renewal info is signed on its own: its chain, its environment, and the
/// subscription it describes must hold too, or the whole notification is refused.
fn verify_renewal_info(compact: &str, purchase: &StorePurchase) -> Result<(), ChannelError> {
    let claims = signed::verified_claims(compact)?;
    let environment = coffer_plugin_sdk::setting("environment")?;
    if claims["environment"].as_str() != Some(environment.as_str()) {
        return Err(bad_signature(format!(
            "renewal info signed in environment {}, this channel is {environment:?}",
            claims["environment"]
        )));
    }
    if claims["originalTransactionId"].as_str() != Some(purchase.original_transaction_id.as_str()) {
        return Err(bad_signature(
            "the renewal info is about another subscription than its transaction",
        ));
    }
    Ok(())
}
