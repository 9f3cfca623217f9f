//! A signed transaction (`JWSTransactionDecodedPayload`) as a store purchase.

use coffer_plugin_sdk::serde_json::Value;
use coffer_plugin_sdk::{self as sdk, *};

use crate::signed;

/// Verifies `compact` (a `signedTransactionInfo`) and reads it: its own chain and signature,
/// its bundle id and environment, whatever payload carried it.
pub fn verified(compact: &str) -> Result<StorePurchase, ChannelError> {
    let claims = signed::verified_claims(compact)?;
    signed::require_app_and_environment(&claims)?;
    read(&claims)
}

fn read(claims: &Value) -> Result<StorePurchase, ChannelError> {
    let text = |name: &str| -> Result<String, ChannelError> {
        claims[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| malformed(format!("the transaction has no {name}")))
    };
    let seconds = |name: &str| claims[name].as_i64().map(|ms| ms.div_euclid(1000));
    let transaction_id = text("transactionId")?;
    let kind = match text("type")?.as_str() {
        "Consumable" => StoreProductKind::Consumable,
        "Non-Consumable" => StoreProductKind::NonConsumable,
        "Auto-Renewable Subscription" | "Non-Renewing Subscription" => {
            StoreProductKind::Subscription
        }
        other => return Err(malformed(format!("unknown product type {other:?}"))),
    };
    let quantity = claims["quantity"].as_u64().unwrap_or(1);
    let quantity = u32::try_from(quantity)
        .ok()
        .filter(|q| *q > 0)
        .ok_or_else(|| malformed(format!("quantity {quantity}")))?;
    let revoked_at = seconds("revocationDate");
    let (state, channel_status) = match revoked_at {
        Some(_) => (
            StorePurchaseState::Revoked,
            format!(
                "REVOKED:{}",
                claims["revocationReason"].as_i64().unwrap_or(-1)
            ),
        ),
        None => (StorePurchaseState::Purchased, "PURCHASED".to_owned()),
    };
    Ok(StorePurchase {
        original_transaction_id: claims["originalTransactionId"]
            .as_str()
            .unwrap_or(&transaction_id)
            .to_owned(),
        token: transaction_id.clone(),
        transaction_id,
        product_id: text("productId")?,
        kind,
        quantity,
        state,
        price: price(claims)?,
        purchased_at: seconds("purchaseDate")
            .ok_or_else(|| malformed("the transaction has no purchaseDate"))?,
        expires_at: seconds("expiresDate"),
        revoked_at,
        storefront: claims["storefront"].as_str().unwrap_or_default().to_owned(),
        needs_acknowledgement: false,
        channel_status,
    })
}

/// Apple gives the price in thousandths of the currency's unit ("price": 990 is 0.99).
fn price(claims: &Value) -> Result<Option<Money>, ChannelError> {
    let (Some(milli), Some(currency)) = (claims["price"].as_i64(), claims["currency"].as_str())
    else {
        return Ok(None);
    };
    if milli < 0 {
        return Err(malformed(format!("negative price {milli}")));
    }
    let exponent = sdk::amount::exponent(currency)?;
    Ok(Some(Money {
        minor: sdk::amount::rescale_rounded(milli, 3, exponent),
        currency: currency.to_owned(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffer_plugin_sdk::serde_json::json;

    fn claims() -> Value {
        json!({
            "transactionId": "2000000123", "originalTransactionId": "2000000100",
            "productId": "gems", "type": "Consumable", "quantity": 3,
            "purchaseDate": 1_795_505_400_123i64, "price": 990, "currency": "USD",
            "storefront": "USA"
        })
    }

    #[test]
    fn a_transaction_reads_as_a_purchase_with_apples_milli_prices_in_minor_units() {
        let purchase = read(&claims()).unwrap();
        assert_eq!(purchase.transaction_id, "2000000123");
        assert_eq!(purchase.token, "2000000123");
        assert_eq!(purchase.original_transaction_id, "2000000100");
        assert_eq!(purchase.quantity, 3);
        assert_eq!(purchase.purchased_at, 1_795_505_400);
        assert_eq!(purchase.state, StorePurchaseState::Purchased);
        assert_eq!(
            purchase.price,
            Some(Money {
                minor: 99,
                currency: "USD".into()
            })
        );
        let mut yen = claims();
        yen["price"] = json!(120_000);
        yen["currency"] = json!("JPY");
        assert_eq!(read(&yen).unwrap().price.unwrap().minor, 120);
    }

    #[test]
    fn a_revocation_date_makes_it_revoked() {
        let mut revoked = claims();
        revoked["revocationDate"] = json!(1_795_600_000_000i64);
        revoked["revocationReason"] = json!(1);
        let purchase = read(&revoked).unwrap();
        assert_eq!(purchase.state, StorePurchaseState::Revoked);
        assert_eq!(purchase.revoked_at, Some(1_795_600_000));
        assert_eq!(purchase.channel_status, "REVOKED:1");
    }

    #[test]
    fn unknown_types_zero_quantities_and_negative_prices_are_malformed() {
        for (field, value) in [
            ("type", json!("Loot Box")),
            ("quantity", json!(0)),
            ("price", json!(-1)),
            ("transactionId", json!(null)),
        ] {
            let mut bad = claims();
            bad[field] = value;
            assert!(read(&bad).is_err(), "{field}");
        }
    }
}
