//! Real-time Developer Notifications by Pub/Sub push. The push carries a Google-signed OIDC
//! token (`Authorization: Bearer`): `alg` pinned to RS256, its key one of the configured Google
//! keys (`push-key-<kid>`), `iss` Google's, `aud` the configured push audience, `email` the
//! configured push service account with `email_verified`, a bounded lifetime. Even then the
//! message is only a claim: the host looks the purchase up before changing anything.

use coffer_plugin_sdk::base64::Engine as _;
use coffer_plugin_sdk::base64::engine::general_purpose::STANDARD;
use coffer_plugin_sdk::jws::Jws;
use coffer_plugin_sdk::serde_json::Value;
use coffer_plugin_sdk::{self as sdk, *};

/// Clock skew tolerated on `iat` and `exp`.
const SKEW_S: i64 = 60;
/// Google's push tokens live an hour.
const MAX_LIFETIME_S: i64 = 3600 + SKEW_S;

pub fn parse(request: &InboundRequest) -> CallbackOutcome {
    let answer = |status| HttpAnswer {
        status,
        headers: vec![],
        body: vec![],
    };
    let verdict = match request.kind {
        InboundKind::BrowserReturn => {
            CallbackVerdict::Rejected(unsupported("Google Play has no browser return"))
        }
        InboundKind::Notify => match verified_push(request).and_then(|()| verdict(&request.body)) {
            Ok(verdict) => verdict,
            Err(error) => CallbackVerdict::Rejected(error),
        },
    };
    CallbackOutcome {
        verdict,
        ack_accepted: answer(204),
        ack_rejected: answer(400),
    }
}

fn header<'r>(request: &'r InboundRequest, name: &str) -> Option<&'r str> {
    request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn verified_push(request: &InboundRequest) -> Result<(), ChannelError> {
    let token = header(request, "authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| bad_signature("the push has no bearer token"))?;
    let jws = Jws::parse(token)?;
    jws.require_alg("RS256")?;
    let kid = jws.header["kid"]
        .as_str()
        .ok_or_else(|| bad_signature("the push token names no key"))?;
    // Only configured keys are named: naming another would abort the call.
    let known = sdk::setting("push-key-ids")?;
    if !known.split(',').map(str::trim).any(|k| k == kid) {
        return Err(bad_signature(format!(
            "push token key {kid:?} is not configured"
        )));
    }
    let key = format!("push-key-{kid}");
    let signed = sdk::keys::verify(
        &key,
        SignatureAlgorithm::RsaPkcs1Sha256,
        jws.signing_input.as_bytes(),
        &jws.signature,
    )?;
    if !signed {
        return Err(bad_signature("the push token's signature does not verify"));
    }
    check_claims(&jws.claims()?)
}

fn check_claims(claims: &Value) -> Result<(), ChannelError> {
    let refuse = |why: String| Err(bad_signature(why));
    match claims["iss"].as_str() {
        Some("https://accounts.google.com" | "accounts.google.com") => {}
        other => return refuse(format!("push token issued by {other:?}")),
    }
    let audience = sdk::setting("push-audience")?;
    if claims["aud"].as_str() != Some(audience.as_str()) {
        return refuse(format!("push token for audience {}", claims["aud"]));
    }
    let account = sdk::setting("push-service-account")?;
    if claims["email"].as_str() != Some(account.as_str()) || claims["email_verified"] != true {
        return refuse(format!(
            "push token of {} (verified: {})",
            claims["email"], claims["email_verified"]
        ));
    }
    let now = host::now_ms().div_euclid(1000);
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
        return refuse("push token without iat or exp".into());
    };
    if iat > now + SKEW_S || exp < now - SKEW_S || exp - iat > MAX_LIFETIME_S {
        return refuse(format!("push token valid {iat}..{exp}, now is {now}"));
    }
    Ok(())
}

/// What the developer notification in a verified push claims.
fn verdict(body: &[u8]) -> Result<CallbackVerdict, ChannelError> {
    let push: Value = serde_json::from_slice(body)?;
    let data = push["message"]["data"]
        .as_str()
        .ok_or_else(|| malformed("the push has no message data"))?;
    let data = STANDARD
        .decode(data)
        .map_err(|e| malformed(format!("message data: {e}")))?;
    let notification: Value = serde_json::from_slice(&data)?;
    let package = sdk::setting("package-name")?;
    if notification["packageName"].as_str() != Some(package.as_str()) {
        return Err(bad_signature(format!(
            "a notification for package {}",
            notification["packageName"]
        )));
    }
    let claim = |token: &Value, product: &Value| -> Result<CallbackVerdict, ChannelError> {
        let token = token
            .as_str()
            .filter(|t| !t.is_empty())
            .ok_or_else(|| malformed("a notification without a purchase token"))?;
        Ok(CallbackVerdict::StoreClaim(StoreProof {
            token: token.to_owned(),
            product_id: product.as_str().unwrap_or_default().to_owned(),
        }))
    };
    if let Some(one_time) = notification.get("oneTimeProductNotification") {
        return claim(&one_time["purchaseToken"], &one_time["sku"]);
    }
    if let Some(voided) = notification.get("voidedPurchaseNotification") {
        return claim(&voided["purchaseToken"], &Value::Null);
    }
    let what = if notification.get("testNotification").is_some() {
        "TEST".to_owned()
    } else if notification.get("subscriptionNotification").is_some() {
        "subscription notification (subscriptions are not handled yet)".to_owned()
    } else {
        "an unknown developer notification".to_owned()
    };
    Ok(CallbackVerdict::Verified(CallbackEvent::Store(
        StoreEvent::Informational(what),
    )))
}
