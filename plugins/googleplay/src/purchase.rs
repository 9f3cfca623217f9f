//! A `ProductPurchase` (and a voided purchase) as a store purchase.

use coffer_plugin_sdk::serde_json::Value;
use coffer_plugin_sdk::{self as sdk, *};

/// Google writes its times as strings of Unix milliseconds.
fn millis(value: &Value) -> Option<i64> {
    value
        .as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| value.as_i64())
}

pub fn read(body: &Value, proof: &StoreProof) -> Result<StorePurchase, ChannelError> {
    // A license tester's purchase (`purchaseType` 0) costs nothing: a real channel refuses it
    // unless told otherwise, as the App Store channel refuses the sandbox.
    let test = body["purchaseType"].as_i64() == Some(0);
    if test && !sdk::setting_or("accept-test-purchases", false) {
        return Err(bad_signature(
            "a license tester's purchase; this channel takes real purchases only",
        ));
    }
    let state = match body["purchaseState"].as_i64() {
        Some(0) => StorePurchaseState::Purchased,
        Some(1) => StorePurchaseState::Revoked,
        Some(2) => StorePurchaseState::Pending,
        other => return Err(malformed(format!("purchaseState {other:?}"))),
    };
    // Test purchases have no order id; their token names them.
    let transaction_id = match body["orderId"].as_str() {
        Some(id) if !id.is_empty() => id.to_owned(),
        _ if test => proof.token.clone(),
        _ => return Err(malformed("the purchase has no orderId")),
    };
    if let Some(product) = body["productId"].as_str()
        && product != proof.product_id
    {
        return Err(malformed(format!(
            "asked about product {}, Google answered about {product}",
            proof.product_id
        )));
    }
    let quantity = body["quantity"].as_u64().unwrap_or(1);
    let quantity = u32::try_from(quantity)
        .ok()
        .filter(|q| *q > 0)
        .ok_or_else(|| malformed(format!("quantity {quantity}")))?;
    let acknowledged = body["acknowledgementState"].as_i64() == Some(1);
    Ok(StorePurchase {
        original_transaction_id: transaction_id.clone(),
        transaction_id,
        token: proof.token.clone(),
        product_id: proof.product_id.clone(),
        kind: StoreProductKind::Consumable,
        quantity,
        state,
        price: None,
        purchased_at: millis(&body["purchaseTimeMillis"])
            .ok_or_else(|| malformed("the purchase has no purchaseTimeMillis"))?
            .div_euclid(1000),
        expires_at: None,
        revoked_at: None,
        storefront: body["regionCode"].as_str().unwrap_or_default().to_owned(),
        needs_acknowledgement: state == StorePurchaseState::Purchased && !acknowledged,
        channel_status: format!(
            "purchaseState={} acknowledgementState={}",
            body["purchaseState"], body["acknowledgementState"]
        ),
    })
}

/// A voided purchase: refunded, charged back or cancelled.
pub fn voided(entry: &Value) -> Result<StorePurchase, ChannelError> {
    let text = |name: &str| {
        entry[name]
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| malformed(format!("a voided purchase without {name}")))
    };
    let voided_at = millis(&entry["voidedTimeMillis"])
        .ok_or_else(|| malformed("a voided purchase without voidedTimeMillis"))?
        .div_euclid(1000);
    let order_id = text("orderId")?;
    Ok(StorePurchase {
        original_transaction_id: order_id.clone(),
        transaction_id: order_id,
        token: text("purchaseToken")?,
        product_id: String::new(),
        kind: StoreProductKind::Consumable,
        quantity: 1,
        state: StorePurchaseState::Revoked,
        price: None,
        purchased_at: millis(&entry["purchaseTimeMillis"])
            .map_or(voided_at, |ms| ms.div_euclid(1000)),
        expires_at: None,
        revoked_at: Some(voided_at),
        storefront: String::new(),
        needs_acknowledgement: false,
        channel_status: format!(
            "VOIDED source={} reason={}",
            entry["voidedSource"], entry["voidedReason"]
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_plugin_sdk::serde_json::json;

    fn proof() -> StoreProof {
        StoreProof {
            token: "tok.en-1".into(),
            product_id: "gems_100".into(),
        }
    }

    fn body() -> Value {
        json!({
            "purchaseTimeMillis": "1795505400123", "purchaseState": 0, "consumptionState": 0,
            "orderId": "GPA.1234-5678-9012-34567", "acknowledgementState": 0,
            "productId": "gems_100", "quantity": 2, "regionCode": "US"
        })
    }

    #[test]
    fn a_product_purchase_reads_as_a_store_purchase_awaiting_acknowledgement() {
        let purchase = read(&body(), &proof()).unwrap();
        assert_eq!(purchase.transaction_id, "GPA.1234-5678-9012-34567");
        assert_eq!(purchase.token, "tok.en-1");
        assert_eq!(purchase.quantity, 2);
        assert_eq!(purchase.purchased_at, 1_795_505_400);
        assert_eq!(purchase.state, StorePurchaseState::Purchased);
        assert!(purchase.needs_acknowledgement);
        assert_eq!(purchase.price, None, "Google's purchase API tells no price");
        assert_eq!(purchase.storefront, "US");
    }

    #[test]
    fn pending_cancelled_and_acknowledged_purchases_say_so() {
        for (state, expected) in [
            (2, StorePurchaseState::Pending),
            (1, StorePurchaseState::Revoked),
        ] {
            let mut b = body();
            b["purchaseState"] = json!(state);
            let purchase = read(&b, &proof()).unwrap();
            assert_eq!(purchase.state, expected);
            assert!(
                !purchase.needs_acknowledgement,
                "only paid purchases are acknowledged"
            );
        }
        let mut acknowledged = body();
        acknowledged["acknowledgementState"] = json!(1);
        assert!(!read(&acknowledged, &proof()).unwrap().needs_acknowledgement);
    }

    #[test]
    fn an_answer_about_another_product_or_without_an_order_id_is_malformed() {
        let mut other = body();
        other["productId"] = json!("gems_10000");
        assert!(read(&other, &proof()).is_err());
        let mut no_order = body();
        no_order["orderId"] = Value::Null;
        assert!(read(&no_order, &proof()).is_err());
        let mut unknown_state = body();
        unknown_state["purchaseState"] = json!(7);
        assert!(read(&unknown_state, &proof()).is_err());
    }

    #[test]
    fn a_voided_purchase_is_revoked_at_its_voided_time() {
        let entry = json!({
            "purchaseToken": "tok.en-1", "orderId": "GPA.1", "purchaseTimeMillis": "1795505400000",
            "voidedTimeMillis": "1795600000999", "voidedSource": 0, "voidedReason": 1
        });
        let purchase = voided(&entry).unwrap();
        assert_eq!(purchase.state, StorePurchaseState::Revoked);
        assert_eq!(purchase.revoked_at, Some(1_795_600_000));
        assert_eq!(purchase.transaction_id, "GPA.1");
        let mut no_token = entry.clone();
        no_token["purchaseToken"] = json!("");
        assert!(voided(&no_token).is_err());
    }
}
