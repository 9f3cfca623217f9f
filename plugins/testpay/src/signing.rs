//! TestPay's HMAC signatures.

use coffer_plugin_sdk::{self as sdk, *};

/// The name of the shared secret in this channel's key ring.
pub const SECRET: &str = "api-secret";

/// Answers older or newer than this are refused, so a captured one cannot be replayed later.
const MAX_SKEW_SECONDS: i64 = 300;

/// Adds the timestamp and signature headers to a request.
pub fn signed(mut request: HttpRequest) -> Result<HttpRequest, ChannelError> {
    let timestamp = (host::now_ms() / 1000).to_string();
    let path = path_and_query(&request.url);
    let mut message = format!(
        "{timestamp}\n{}\n{path}\n",
        http::method_name(request.method)
    )
    .into_bytes();
    message.extend_from_slice(&request.body);
    let signature = keys::sign(SECRET, SignatureAlgorithm::HmacSha256, &message)?;
    request.headers.extend([
        ("x-testpay-timestamp".into(), timestamp),
        ("x-testpay-signature".into(), hex::encode(signature)),
        (
            "user-agent".into(),
            format!("coffer-testpay/{}", crate::VERSION),
        ),
    ]);
    Ok(request)
}

/// Checks an answer's or a notification's signature and freshness.
pub fn verify_answer(headers: &[Field], body: &[u8]) -> Result<(), ChannelError> {
    let timestamp = http::header(headers, "x-testpay-timestamp")
        .ok_or_else(|| bad_signature("missing X-TestPay-Timestamp"))?;
    let signature = http::header(headers, "x-testpay-signature")
        .and_then(|s| hex::decode(s).ok())
        .ok_or_else(|| bad_signature("missing or non-hex X-TestPay-Signature"))?;
    let seconds: i64 = timestamp
        .parse()
        .map_err(|_| bad_signature("X-TestPay-Timestamp is not a number"))?;
    if (host::now_ms() / 1000 - seconds).abs() > MAX_SKEW_SECONDS {
        return Err(bad_signature("timestamp is more than 5 minutes off"));
    }
    let mut message = format!("{timestamp}\n").into_bytes();
    message.extend_from_slice(body);
    if sdk::keys::verify(SECRET, SignatureAlgorithm::HmacSha256, &message, &signature)? {
        Ok(())
    } else {
        Err(bad_signature("signature does not match"))
    }
}

/// "/api/payments?x=1" from "https://host:port/api/payments?x=1".
fn path_and_query(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    after_scheme.find('/').map_or("/", |i| &after_scheme[i..])
}
