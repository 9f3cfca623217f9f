//! Google Play, as Coffer meets it: the OAuth 2.0 token endpoint (a JWT-bearer grant signed by
//! the service account, checked), the Play Developer API's `purchases.products.get`,
//! `:acknowledge` and `voidedpurchases`, answering only to tokens it issued, and Real-time
//! Developer Notifications pushed the way Pub/Sub does, with a signed OIDC token.
//!
//! A test makes purchases with `POST /_control/googleplay/purchases` (pending ones too),
//! completes or voids them, makes acknowledgements fail for a while, pushes notifications (and
//! forged ones), and reads what happened with `GET /_control/googleplay/stats`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rsa::PublicKey;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::Sim;
use crate::keys::{SigningKey, random_hex};

/// The app, service accounts and push settings Coffer's configuration names.
pub const PACKAGE: &str = "com.coffer.starknights";
pub const SERVICE_ACCOUNT: &str = "coffer-play@starknights.iam.gserviceaccount.com";
pub const PUSH_SERVICE_ACCOUNT: &str = "rtdn-push@starknights.iam.gserviceaccount.com";
pub const PUSH_AUDIENCE: &str = "https://coffer.example/v1/callbacks/googleplay";
pub const PUSH_KID: &str = "simkid1";

#[derive(Clone, Serialize)]
struct Purchase {
    product_id: String,
    order_id: String,
    /// 0 purchased, 1 cancelled (voided), 2 pending.
    state: i64,
    acknowledged: bool,
    test: bool,
    quantity: i64,
    purchased_ms: i64,
    voided_ms: Option<i64>,
}

#[derive(Default)]
pub struct Ledger {
    purchases: Mutex<HashMap<String, Purchase>>,
    issued_tokens: Mutex<Vec<String>>,
    stats: Mutex<Stats>,
}

#[derive(Default, Clone, Serialize)]
struct Stats {
    token_requests: u64,
    lookups: u64,
    /// Acknowledgements taken, by purchase token.
    acks: BTreeMap<String, u64>,
    /// Acknowledgements still to refuse with a 503.
    ack_failures_left: u64,
}

pub fn router() -> Router<Arc<Sim>> {
    let app = "/androidpublisher/v3/applications/{package}/purchases";
    Router::new()
        .route("/token", post(token))
        .route(
            &format!("{app}/products/{{product}}/tokens/{{token}}"),
            get(get_purchase).post(acknowledge),
        )
        .route(&format!("{app}/voidedpurchases"), get(voided))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn api_error(status: StatusCode, message: &str) -> (StatusCode, Json<Value>) {
    (
        status,
        Json(json!({ "error": { "code": status.as_u16(), "message": message } })),
    )
}

/// A JWT's header and claims once its RS256 signature holds under `key`.
fn verified_jwt(token: &str, key: &rsa::PrivateKey) -> Option<(Value, Value)> {
    let (input, signature) = token.rsplit_once('.')?;
    let (header, claims) = input.split_once('.')?;
    let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
    PublicKey::from(key)
        .pkcs1v15_verify::<Sha256>(input.as_bytes(), &signature)
        .ok()?;
    let decode = |part: &str| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
    };
    Some((decode(header)?, decode(claims)?))
}

#[derive(Deserialize)]
struct Grant {
    grant_type: String,
    assertion: String,
}

/// `POST /token`: a JWT-bearer grant by the service account.
async fn token(State(sim): State<Arc<Sim>>, Form(grant): Form<Grant>) -> (StatusCode, Json<Value>) {
    sim.googleplay.stats.lock().unwrap().token_requests += 1;
    let refused = |why: &str| {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "invalid_grant", "error_description": why })),
        )
    };
    if grant.grant_type != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
        return refused("unsupported grant type");
    }
    let Some((header, claims)) = verified_jwt(&grant.assertion, &sim.keys.google_service_account)
    else {
        return refused("Invalid JWT Signature.");
    };
    let now = now_ms() / 1000;
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap_or(0),
        claims["exp"].as_i64().unwrap_or(0),
    );
    let fine = header["alg"] == "RS256"
        && claims["iss"] == SERVICE_ACCOUNT
        && claims["scope"] == "https://www.googleapis.com/auth/androidpublisher"
        && claims["aud"] == format!("{}/googleplay/token", sim.base_url).as_str()
        && iat <= now + 60
        && exp > now
        && exp - iat <= 3600;
    if !fine {
        return refused(&format!("claims refused: {claims}"));
    }
    let access = format!("ya29.sim-{}", random_hex(16));
    sim.googleplay
        .issued_tokens
        .lock()
        .unwrap()
        .push(access.clone());
    (
        StatusCode::OK,
        Json(json!({ "access_token": access, "expires_in": 3599, "token_type": "Bearer" })),
    )
}

fn authorized(sim: &Sim, headers: &HeaderMap) -> bool {
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    sim.googleplay
        .issued_tokens
        .lock()
        .unwrap()
        .iter()
        .any(|t| t == token)
}

/// `GET …/products/{product}/tokens/{token}`: a `ProductPurchase`.
async fn get_purchase(
    State(sim): State<Arc<Sim>>,
    Path((package, product, token)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if !authorized(&sim, &headers) {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "Request had invalid authentication credentials.",
        );
    }
    sim.googleplay.stats.lock().unwrap().lookups += 1;
    let purchases = sim.googleplay.purchases.lock().unwrap();
    let Some(purchase) = purchases
        .get(&token)
        .filter(|p| package == PACKAGE && p.product_id == product)
    else {
        return api_error(StatusCode::NOT_FOUND, "The purchase token was not found.");
    };
    let mut body = json!({
        "kind": "androidpublisher#productPurchase",
        "purchaseTimeMillis": purchase.purchased_ms.to_string(),
        "purchaseState": purchase.state,
        "consumptionState": 0,
        "orderId": purchase.order_id,
        "acknowledgementState": i64::from(purchase.acknowledged),
        "productId": purchase.product_id,
        "quantity": purchase.quantity,
        "regionCode": "US",
    });
    if purchase.test {
        body["purchaseType"] = json!(0);
        body["orderId"] = Value::Null;
    }
    (StatusCode::OK, Json(body))
}

/// `POST …/tokens/{token}:acknowledge`.
async fn acknowledge(
    State(sim): State<Arc<Sim>>,
    Path((package, product, token)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if !authorized(&sim, &headers) {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "Request had invalid authentication credentials.",
        );
    }
    let Some(token) = token.strip_suffix(":acknowledge") else {
        return api_error(StatusCode::NOT_FOUND, "No such method.");
    };
    {
        let mut stats = sim.googleplay.stats.lock().unwrap();
        if stats.ack_failures_left > 0 {
            stats.ack_failures_left -= 1;
            return api_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is currently unavailable.",
            );
        }
    }
    let mut purchases = sim.googleplay.purchases.lock().unwrap();
    let Some(purchase) = purchases
        .get_mut(token)
        .filter(|p| package == PACKAGE && p.product_id == product)
    else {
        return api_error(StatusCode::NOT_FOUND, "The purchase token was not found.");
    };
    purchase.acknowledged = true;
    *sim.googleplay
        .stats
        .lock()
        .unwrap()
        .acks
        .entry(token.to_owned())
        .or_default() += 1;
    (StatusCode::OK, Json(json!({})))
}

#[derive(Deserialize)]
struct VoidedQuery {
    #[serde(rename = "startTime")]
    start_time: Option<i64>,
}

/// `GET …/voidedpurchases`: every voided purchase since `startTime`, on one page.
async fn voided(
    State(sim): State<Arc<Sim>>,
    Path(package): Path<String>,
    Query(query): Query<VoidedQuery>,
    headers: HeaderMap,
) -> (StatusCode, Json<Value>) {
    if !authorized(&sim, &headers) || package != PACKAGE {
        return api_error(
            StatusCode::UNAUTHORIZED,
            "Request had invalid authentication credentials.",
        );
    }
    let since = query.start_time.unwrap_or(0);
    let purchases = sim.googleplay.purchases.lock().unwrap();
    let voided: Vec<Value> = purchases
        .iter()
        .filter_map(|(token, p)| Some((token, p, p.voided_ms?)))
        .filter(|(_, _, at)| *at >= since)
        .map(|(token, p, at)| {
            json!({
                "kind": "androidpublisher#voidedPurchase",
                "purchaseToken": token,
                "orderId": p.order_id,
                "purchaseTimeMillis": p.purchased_ms.to_string(),
                "voidedTimeMillis": at.to_string(),
                "voidedSource": 0,
                "voidedReason": 1,
            })
        })
        .collect();
    (StatusCode::OK, Json(json!({ "voidedPurchases": voided })))
}

/// A purchase made on a device.
#[derive(Debug, Deserialize)]
pub struct NewPurchase {
    pub product_id: String,
    /// Paid later (cash at a shop): `purchaseState` 2 until completed.
    #[serde(default)]
    pub pending: bool,
    /// A license tester's purchase.
    #[serde(default)]
    pub test: bool,
    #[serde(default = "one")]
    pub quantity: i64,
}

fn one() -> i64 {
    1
}

pub fn create_purchase(sim: &Sim, new: NewPurchase) -> Value {
    let token = format!("sim{}.{}", random_hex(12), random_hex(24));
    let digits = || u64::from_str_radix(&random_hex(4), 16).unwrap_or(0) % 10_000;
    let order_id = format!(
        "GPA.{:04}-{:04}-{:04}-{:05}",
        digits(),
        digits(),
        digits(),
        digits()
    );
    sim.googleplay.purchases.lock().unwrap().insert(
        token.clone(),
        Purchase {
            product_id: new.product_id,
            order_id: order_id.clone(),
            state: if new.pending { 2 } else { 0 },
            acknowledged: false,
            test: new.test,
            quantity: new.quantity,
            purchased_ms: now_ms(),
            voided_ms: None,
        },
    );
    json!({ "token": token, "order_id": order_id })
}

/// Completes a pending purchase (`complete`) or voids one (`void`: refunded, charged back).
pub fn change_purchase(sim: &Sim, token: &str, change: &str) -> bool {
    let mut purchases = sim.googleplay.purchases.lock().unwrap();
    let Some(purchase) = purchases.get_mut(token) else {
        return false;
    };
    match change {
        "complete" => purchase.state = 0,
        "void" => {
            purchase.state = 1;
            purchase.voided_ms = Some(now_ms());
        }
        _ => return false,
    }
    true
}

pub fn fail_acks(sim: &Sim, count: u64) {
    sim.googleplay.stats.lock().unwrap().ack_failures_left = count;
}

pub fn stats(sim: &Sim) -> Value {
    serde_json::to_value(sim.googleplay.stats.lock().unwrap().clone()).unwrap()
}

/// A developer notification to push.
#[derive(Debug, Deserialize)]
pub struct Push {
    pub url: String,
    /// `purchased`, `voided` or `test`.
    pub kind: String,
    #[serde(default)]
    pub token: Option<String>,
    /// `unsigned`, `forged_key`, `wrong_audience`, `wrong_email`, `expired`, `other_package`.
    #[serde(default)]
    pub fault: Option<String>,
}

/// Pushes a notification the way Pub/Sub does; returns Coffer's status.
pub async fn push(sim: &Sim, push: Push) -> Result<u16, String> {
    let fault = push.fault.as_deref().unwrap_or_default();
    let now = now_ms();
    let mut notification = json!({
        "version": "1.0",
        "packageName": if fault == "other_package" { "com.other.game" } else { PACKAGE },
        "eventTimeMillis": now.to_string(),
    });
    let purchase = push
        .token
        .as_ref()
        .and_then(|t| sim.googleplay.purchases.lock().unwrap().get(t).cloned());
    match (push.kind.as_str(), &push.token, purchase) {
        ("test", _, _) => notification["testNotification"] = json!({ "version": "1.0" }),
        ("purchased", Some(token), Some(p)) => {
            notification["oneTimeProductNotification"] = json!({
                "version": "1.0", "notificationType": 1, "purchaseToken": token,
                "sku": p.product_id,
            });
        }
        ("voided", Some(token), Some(p)) => {
            notification["voidedPurchaseNotification"] = json!({
                "purchaseToken": token, "orderId": p.order_id, "productType": 2,
                "refundType": 1,
            });
        }
        (kind, token, _) => return Err(format!("cannot push {kind} about {token:?}")),
    }
    let body = json!({
        "message": {
            "data": STANDARD.encode(notification.to_string()),
            "messageId": random_hex(8),
            "publishTime": "2026-12-02T10:00:00Z",
        },
        "subscription": "projects/starknights/subscriptions/coffer-rtdn",
    });
    let mut request = reqwest::Client::new()
        .post(&push.url)
        .header("content-type", "application/json")
        .body(body.to_string());
    if fault != "unsigned" {
        request = request.header(
            "authorization",
            format!("Bearer {}", push_token(sim, fault)),
        );
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    Ok(response.status().as_u16())
}

/// Pub/Sub's OIDC token for the push, or the faulty one asked for.
fn push_token(sim: &Sim, fault: &str) -> String {
    let now = now_ms() / 1000;
    let (iat, exp) = if fault == "expired" {
        (now - 7200, now - 3600)
    } else {
        (now, now + 3600)
    };
    let claims = json!({
        "iss": "https://accounts.google.com",
        "aud": if fault == "wrong_audience" { "https://attacker.example/" } else { PUSH_AUDIENCE },
        "email": if fault == "wrong_email" { "someone@attacker.iam.gserviceaccount.com" } else { PUSH_SERVICE_ACCOUNT },
        "email_verified": true,
        "sub": "1234567890",
        "iat": iat,
        "exp": exp,
    });
    let header = json!({ "alg": "RS256", "kid": PUSH_KID, "typ": "JWT" });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    // A forger signs with a key of its own under Google's key id.
    let key: &SigningKey = if fault == "forged_key" {
        &sim.keys.google_service_account
    } else {
        &sim.keys.google_push
    };
    let signature = crate::keys::sign_sha256_base64(key, input.as_bytes());
    let signature = STANDARD.decode(signature).expect("our own base64");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}
