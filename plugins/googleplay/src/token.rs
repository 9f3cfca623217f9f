//! The service account's OAuth 2.0 token: a JWT-bearer grant (RFC 7523) signed RS256 with the
//! sealed service-account key. The host keeps the token for its lifetime (`access.token`).

use coffer_plugin_sdk::serde_json::{Value, json};
use coffer_plugin_sdk::{self as sdk, *};

const SCOPE: &str = "https://www.googleapis.com/auth/androidpublisher";
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Google takes assertions of at most an hour.
const ASSERTION_LIFETIME_S: i64 = 3600;

pub fn token_url() -> Result<String, ChannelError> {
    Ok(format!("{}/token", sdk::endpoint("oauth")?))
}

pub fn request() -> Result<HttpRequest, ChannelError> {
    let url = token_url()?;
    let now = host::now_ms().div_euclid(1000);
    let claims = json!({
        "iss": sdk::setting("service-account-email")?,
        "scope": SCOPE,
        "aud": url,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME_S,
    });
    let header = json!({ "alg": "RS256", "typ": "JWT" });
    let assertion = sdk::jws::sign(
        "service-account-key",
        SignatureAlgorithm::RsaPkcs1Sha256,
        &header,
        &claims,
    )?;
    let body = sdk::form::encode([
        ("grant_type", GRANT_TYPE),
        ("assertion", assertion.as_str()),
    ]);
    Ok(HttpRequest {
        method: HttpMethod::Post,
        url,
        headers: vec![(
            "Content-Type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        body: body.into_bytes(),
    })
}

pub fn answer(response: &HttpResponse) -> Result<AccessToken, ChannelError> {
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    match response.status {
        200 => {}
        400 | 401 | 403 => {
            return Err(ChannelError::Config(format!(
                "Google refused the service account's assertion: {} {}",
                body["error"].as_str().unwrap_or("?"),
                body["error_description"].as_str().unwrap_or_default()
            )));
        }
        status => {
            return Err(ChannelError::Upstream(format!(
                "Google's token endpoint answered {status}"
            )));
        }
    }
    let token = body["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| malformed("the token answer has no access_token"))?;
    let expires_in = body["expires_in"]
        .as_u64()
        .and_then(|s| u32::try_from(s).ok())
        .ok_or_else(|| malformed("the token answer has no expires_in"))?;
    Ok(AccessToken {
        token: token.to_owned(),
        expires_in,
    })
}
