//! The App Store Server API: "Get Transaction Info", authorized by a JWT (ES256) that the host
//! signs with the in-app purchase key.

use coffer_plugin_sdk::serde_json::{Value, json};
use coffer_plugin_sdk::{self as sdk, *};

use crate::transaction;

/// Apple accepts tokens living up to an hour; each call makes its own, valid five minutes.
const TOKEN_LIFETIME_S: i64 = 300;

pub fn transaction_request(transaction_id: &str) -> Result<HttpRequest, ChannelError> {
    // Transaction ids are decimal digits; anything else never reaches Apple (or a URL).
    if transaction_id.is_empty()
        || transaction_id.len() > 32
        || !transaction_id.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(malformed(format!(
            "{transaction_id:?} is not an App Store transaction id"
        )));
    }
    let url = format!(
        "{}/inApps/v1/transactions/{transaction_id}",
        sdk::endpoint("api")?
    );
    Ok(HttpRequest {
        method: HttpMethod::Get,
        url,
        headers: vec![("Authorization".into(), format!("Bearer {}", api_token()?))],
        body: vec![],
    })
}

fn api_token() -> Result<String, ChannelError> {
    let now = host::now_ms().div_euclid(1000);
    let header = json!({"alg": "ES256", "kid": sdk::setting("key-id")?, "typ": "JWT"});
    let claims = json!({
        "iss": sdk::setting("issuer-id")?,
        "iat": now,
        "exp": now + TOKEN_LIFETIME_S,
        "aud": "appstoreconnect-v1",
        "bid": sdk::setting("bundle-id")?,
    });
    sdk::jws::sign(
        "api-key",
        SignatureAlgorithm::EcdsaP256Sha256,
        &header,
        &claims,
    )
}

pub fn transaction_answer(
    transaction_id: &str,
    response: &HttpResponse,
) -> Result<StorePurchase, ChannelError> {
    match response.status {
        200 => {}
        // Apple's TransactionIdNotFoundError and InvalidTransactionIdError: the proof is bogus.
        400 | 404 => {
            return Err(malformed(format!(
                "the App Store knows no transaction {transaction_id} ({})",
                apple_error(&response.body)
            )));
        }
        401 => {
            return Err(ChannelError::Config(
                "the App Store refused the API token: check issuer-id, key-id and api-key".into(),
            ));
        }
        status => {
            return Err(ChannelError::Upstream(format!(
                "the App Store answered {status} ({})",
                apple_error(&response.body)
            )));
        }
    }
    let body: Value = serde_json::from_slice(&response.body)?;
    let signed = body["signedTransactionInfo"]
        .as_str()
        .ok_or_else(|| malformed("the answer has no signedTransactionInfo"))?;
    let purchase = transaction::verified(signed)?;
    if purchase.transaction_id != transaction_id {
        return Err(malformed(format!(
            "asked for transaction {transaction_id}, the App Store signed {}",
            purchase.transaction_id
        )));
    }
    Ok(purchase)
}

fn apple_error(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| {
            Some(format!(
                "{} {}",
                v["errorCode"].as_i64()?,
                v["errorMessage"].as_str().unwrap_or_default()
            ))
        })
        .unwrap_or_else(|| "no error code".into())
}
