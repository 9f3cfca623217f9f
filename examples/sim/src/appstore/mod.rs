//! The App Store, as Coffer meets it: the App Store Server API's "Get Transaction Info" (JWT
//! authorization checked as Apple documents it) and App Store Server Notifications V2, every
//! payload a JWS signed by the simulated chain (`chain`).
//!
//! A test creates transactions with `POST /_control/appstore/transactions` (a purchase made on
//! a device) and sends notifications with `POST /_control/appstore/notify`; faults
//! (`self_signed`, `rogue_chain`, `tampered`, `wrong_bundle`, `sandbox`) make the signed
//! payload what a forger or a misconfigured app would send.

pub mod chain;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Sim;

/// The app the simulated store sells for; Coffer's `bundle-id` setting.
pub const BUNDLE_ID: &str = "com.coffer.starknights";
/// The App Store Connect ids Coffer's settings name.
pub const ISSUER_ID: &str = "57246542-96fe-1a63-e053-0824d011072a";
pub const KEY_ID: &str = "SIMKEY2X9R";

/// Transactions made on devices, by transaction id: their decoded payloads.
#[derive(Default)]
pub struct Ledger {
    transactions: Mutex<HashMap<String, Value>>,
    next_id: Mutex<u64>,
}

/// What a forger or a misconfigured app sends instead of a genuine payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JwsFault {
    /// One self-signed certificate instead of Apple's chain.
    SelfSigned,
    /// A chain that looks like Apple's, under another root.
    RogueChain,
    /// Signed, then the payload changed (a cheaper product made dearer, say).
    Tampered,
    /// Signed genuinely, for another app.
    WrongBundle,
    /// Signed genuinely, in the sandbox.
    Sandbox,
}

pub fn router() -> Router<Arc<Sim>> {
    Router::new().route("/inApps/v1/transactions/{id}", get(get_transaction))
}

/// `GET /inApps/v1/transactions/{id}`: the signed transaction, for a caller whose JWT holds.
async fn get_transaction(
    State(sim): State<Arc<Sim>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if let Err(why) = check_api_token(&sim, &headers) {
        tracing::warn!(%why, "App Store API token refused");
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({ "errorCode": 4010, "errorMessage": why })),
        );
    }
    let known = sim.appstore.transactions.lock().unwrap().get(&id).cloned();
    match known {
        Some(claims) => {
            let fault = claims["_fault"]
                .as_str()
                .and_then(|f| serde_json::from_value::<JwsFault>(Value::String(f.into())).ok());
            let signed = sign(&sim, &without_fault(claims), fault);
            (
                StatusCode::OK,
                Json(json!({ "signedTransactionInfo": signed })),
            )
        }
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({ "errorCode": 4040010, "errorMessage": "Transaction id not found." })),
        ),
    }
}

/// Apple's rules for the API token: ES256 by the configured key id, issuer, audience, bundle,
/// and a lifetime of at most an hour that covers now.
fn check_api_token(sim: &Sim, headers: &HeaderMap) -> Result<(), String> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or("no bearer token")?;
    let parts: Vec<&str> = token.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err("not a JWT".into());
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|e| e.to_string());
    let header: Value = serde_json::from_slice(&decode(header)?).map_err(|e| e.to_string())?;
    let claims_json: Value = serde_json::from_slice(&decode(claims)?).map_err(|e| e.to_string())?;
    if header["alg"] != "ES256" || header["kid"] != KEY_ID {
        return Err(format!("header {header}"));
    }
    let key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_FIXED,
        sim.keys.appstore_api_public(),
    );
    let input = &token[..token.rfind('.').unwrap_or(0)];
    key.verify(input.as_bytes(), &decode(signature)?)
        .map_err(|_| "bad signature".to_owned())?;
    let now = now_s();
    let (iat, exp) = (
        claims_json["iat"].as_i64().unwrap_or(0),
        claims_json["exp"].as_i64().unwrap_or(0),
    );
    let fine = claims_json["iss"] == ISSUER_ID
        && claims_json["aud"] == "appstoreconnect-v1"
        && claims_json["bid"] == BUNDLE_ID
        && iat <= now + 60
        && exp > now
        && exp - iat <= 3600;
    if fine {
        Ok(())
    } else {
        Err(format!("claims {claims_json}"))
    }
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn without_fault(mut claims: Value) -> Value {
    if let Some(map) = claims.as_object_mut() {
        map.remove("_fault");
    }
    claims
}

/// Signs `claims` as the App Store would, or as `fault` says a forger would.
fn sign(sim: &Sim, claims: &Value, fault: Option<JwsFault>) -> String {
    let certs = &sim.keys.appstore;
    let mut claims = claims.clone();
    match fault {
        None | Some(JwsFault::Tampered) => {}
        Some(JwsFault::SelfSigned) => return certs.self_signed.sign(&claims),
        Some(JwsFault::RogueChain) => return certs.rogue.sign(&claims),
        Some(JwsFault::WrongBundle) => set_everywhere(&mut claims, "bundleId", "com.other.game"),
        Some(JwsFault::Sandbox) => set_everywhere(&mut claims, "environment", "Sandbox"),
    }
    let signed = certs.genuine.sign(&claims);
    if fault == Some(JwsFault::Tampered) {
        return tamper(&signed, &claims);
    }
    signed
}

/// Sets `key` on the payload and on a notification's `data`.
fn set_everywhere(claims: &mut Value, key: &str, value: &str) {
    claims[key] = json!(value);
    if claims["data"].is_object() {
        claims["data"][key] = json!(value);
    }
}

/// The same header and signature over a payload that says something else.
fn tamper(signed: &str, claims: &Value) -> String {
    let mut changed = claims.clone();
    changed["quantity"] = json!(claims["quantity"].as_i64().unwrap_or(1) * 100);
    changed["productId"] = json!("com.coffer.starknights.gems10000");
    let parts: Vec<&str> = signed.split('.').collect();
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(changed.to_string()),
        parts[2]
    )
}

/// A purchase made on a device.
#[derive(Debug, Deserialize)]
pub struct NewTransaction {
    pub product_id: String,
    /// Thousandths of the currency unit, as Apple writes prices (990 is 0.99).
    #[serde(default = "default_price")]
    pub price_milli: i64,
    #[serde(default = "default_currency")]
    pub currency: String,
    #[serde(default = "consumable")]
    pub kind: String,
    #[serde(default = "one")]
    pub quantity: i64,
    /// Renews this subscription (its original transaction id).
    #[serde(default)]
    pub renews: Option<String>,
    #[serde(default)]
    pub fault: Option<JwsFault>,
}

fn default_price() -> i64 {
    1990
}
fn default_currency() -> String {
    "USD".into()
}
fn consumable() -> String {
    "Consumable".into()
}
fn one() -> i64 {
    1
}

/// Records a device purchase; returns its transaction id and the signed transaction.
pub fn create_transaction(sim: &Sim, new: NewTransaction) -> Value {
    let id = {
        let mut next = sim.appstore.next_id.lock().unwrap();
        *next += 1;
        format!("{}", 2_000_000_000_000_000u64 + *next + random_offset())
    };
    let now_ms = now_s() * 1000;
    let original = new.renews.clone().unwrap_or_else(|| id.clone());
    let mut claims = json!({
        "transactionId": id,
        "originalTransactionId": original,
        "bundleId": BUNDLE_ID,
        "productId": new.product_id,
        "purchaseDate": now_ms,
        "originalPurchaseDate": now_ms,
        "quantity": new.quantity,
        "type": new.kind,
        "inAppOwnershipType": "PURCHASED",
        "signedDate": now_ms,
        "environment": "Production",
        "transactionReason": if new.renews.is_some() { "RENEWAL" } else { "PURCHASE" },
        "storefront": "USA",
        "storefrontId": "143441",
        "price": new.price_milli,
        "currency": new.currency,
    });
    if new.kind == "Auto-Renewable Subscription" {
        claims["expiresDate"] = json!(now_ms + 30 * 86_400_000);
    }
    let signed = sign(sim, &claims, new.fault);
    if let Some(fault) = new.fault {
        claims["_fault"] = serde_json::to_value(fault).unwrap();
    }
    sim.appstore
        .transactions
        .lock()
        .unwrap()
        .insert(id.clone(), claims);
    json!({ "transaction_id": id, "signed_transaction": signed })
}

/// Transaction ids unique across simulator runs sharing a database.
fn random_offset() -> u64 {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).expect("OS randomness");
    u64::from(u32::from_le_bytes(bytes)) * 1000
}

/// A notification to send to Coffer.
#[derive(Debug, Deserialize)]
pub struct Notify {
    /// Coffer's `/v1/callbacks/appstore`.
    pub url: String,
    pub notification_type: String,
    #[serde(default)]
    pub subtype: Option<String>,
    /// The transaction it is about (none for `TEST`).
    #[serde(default)]
    pub transaction_id: Option<String>,
    #[serde(default)]
    pub fault: Option<JwsFault>,
    /// Signs a subscription's renewal info as this forger would.
    #[serde(default)]
    pub renewal_fault: Option<JwsFault>,
}

/// Signs a Server Notification V2 and posts it; returns Coffer's status. `REFUND` and `REVOKE`
/// first mark the transaction revoked, as Apple does.
pub async fn notify(sim: &Sim, notify: Notify) -> Result<u16, String> {
    let now_ms = now_s() * 1000;
    let transaction = match &notify.transaction_id {
        Some(id) => {
            let mut transactions = sim.appstore.transactions.lock().unwrap();
            let claims = transactions
                .get_mut(id)
                .ok_or_else(|| format!("no transaction {id}"))?;
            if matches!(notify.notification_type.as_str(), "REFUND" | "REVOKE") {
                claims["revocationDate"] = json!(now_ms);
                claims["revocationReason"] = json!(0);
            }
            claims["signedDate"] = json!(now_ms);
            Some(without_fault(claims.clone()))
        }
        None => None,
    };
    let mut data = json!({
        "appAppleId": 1_234_567_890,
        "bundleId": BUNDLE_ID,
        "environment": "Production",
    });
    if let Some(transaction) = &transaction {
        data["signedTransactionInfo"] = json!(sign(sim, transaction, None));
        if transaction["type"] == "Auto-Renewable Subscription" {
            let renewal = json!({
                "originalTransactionId": transaction["originalTransactionId"],
                "autoRenewProductId": transaction["productId"],
                "productId": transaction["productId"],
                "autoRenewStatus": i64::from(notify.notification_type != "EXPIRED"),
                "environment": "Production",
                "signedDate": now_ms,
                "recentSubscriptionStartDate": transaction["originalPurchaseDate"],
            });
            data["signedRenewalInfo"] = json!(sign(sim, &renewal, notify.renewal_fault));
        }
    }
    let mut payload = json!({
        "notificationType": notify.notification_type,
        "notificationUUID": format!("{:032x}", u128::from(random_offset()) << 64 | now_ms as u128),
        "data": data,
        "version": "2.0",
        "signedDate": now_ms,
    });
    if let Some(subtype) = &notify.subtype {
        payload["subtype"] = json!(subtype);
    }
    let body = json!({ "signedPayload": sign(sim, &payload, notify.fault) });
    let response = reqwest::Client::new()
        .post(&notify.url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    Ok(response.status().as_u16())
}
