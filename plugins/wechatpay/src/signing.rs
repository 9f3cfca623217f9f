//! WeChat Pay API v3 signatures.
//!
//! Requests: `Authorization: WECHATPAY2-SHA256-RSA2048 mchid="..",nonce_str="..",
//! signature="..",timestamp="..",serial_no=".."`, the signature being base64 SHA256withRSA with
//! the merchant's API key over `METHOD\nPATH?QUERY\ntimestamp\nnonce\nbody\n`.
//! Answers and notifications: `Wechatpay-Timestamp/Nonce/Signature/Serial` headers, the
//! signature over `timestamp\nnonce\nbody\n` with the platform key named by the serial.

use coffer_plugin_sdk::base64::Engine as _;
use coffer_plugin_sdk::base64::engine::general_purpose::STANDARD;
use coffer_plugin_sdk::{self as sdk, *};

pub const MERCHANT_PRIVATE_KEY: &str = "merchant-private-key";
pub const PLATFORM_PUBLIC_KEY: &str = "platform-public-key";
pub const API_V3_KEY: &str = "api-v3-key";

/// Answers and notifications older or newer than this are refused (replays).
const MAX_SKEW_SECONDS: i64 = 300;

/// "/v3/pay/transactions/native?x=1" from an absolute URL.
fn path_and_query(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    after_scheme.find('/').map_or("/", |i| &after_scheme[i..])
}

/// Adds the `Authorization` header to a request.
pub fn signed(mut request: HttpRequest) -> Result<HttpRequest, ChannelError> {
    let timestamp = (host::now_ms() / 1000).to_string();
    let nonce = hex::encode_upper(host::random_bytes(16));
    let message = canonical::lines(&[
        http::method_name(request.method),
        path_and_query(&request.url),
        &timestamp,
        &nonce,
        std::str::from_utf8(&request.body).map_err(|_| malformed("request body is not UTF-8"))?,
    ]);
    let signature = keys::sign(
        MERCHANT_PRIVATE_KEY,
        SignatureAlgorithm::RsaPkcs1Sha256,
        message.as_bytes(),
    )?;
    let authorization = format!(
        "WECHATPAY2-SHA256-RSA2048 mchid=\"{}\",nonce_str=\"{nonce}\",signature=\"{}\",timestamp=\"{timestamp}\",serial_no=\"{}\"",
        sdk::setting("mch-id")?,
        STANDARD.encode(signature),
        sdk::setting("merchant-serial")?,
    );
    request
        .headers
        .push(("authorization".into(), authorization));
    Ok(request)
}

/// Checks the platform's signature on an answer or a notification: a serial we hold, a fresh
/// timestamp, a signature that verifies.
pub fn verify(headers: &[Field], body: &[u8]) -> Result<(), ChannelError> {
    let header =
        |name| http::header(headers, name).ok_or_else(|| bad_signature(format!("missing {name}")));
    let serial = header("wechatpay-serial")?;
    if serial != sdk::setting("platform-serial")? {
        return Err(bad_signature(format!("unknown platform serial {serial}")));
    }
    let timestamp = header("wechatpay-timestamp")?;
    let seconds: i64 = timestamp
        .parse()
        .map_err(|_| bad_signature("Wechatpay-Timestamp is not a number"))?;
    if (host::now_ms() / 1000 - seconds).abs() > MAX_SKEW_SECONDS {
        return Err(bad_signature("timestamp is more than 5 minutes off"));
    }
    let nonce = header("wechatpay-nonce")?;
    let signature = STANDARD
        .decode(header("wechatpay-signature")?)
        .map_err(|_| bad_signature("Wechatpay-Signature is not base64"))?;
    let body = std::str::from_utf8(body).map_err(|_| malformed("body is not UTF-8"))?;
    let message = canonical::lines(&[timestamp, nonce, body]);
    if keys::verify(
        PLATFORM_PUBLIC_KEY,
        SignatureAlgorithm::RsaPkcs1Sha256,
        message.as_bytes(),
        &signature,
    )? {
        Ok(())
    } else {
        Err(bad_signature("platform signature does not verify"))
    }
}

/// Opens a notification's `resource` (AEAD_AES_256_GCM with the APIv3 key).
pub fn decrypt_resource(
    ciphertext_base64: &str,
    nonce: &str,
    associated_data: &str,
) -> Result<Vec<u8>, ChannelError> {
    let ciphertext = STANDARD
        .decode(ciphertext_base64)
        .map_err(|_| malformed("resource ciphertext is not base64"))?;
    keys::decrypt(
        API_V3_KEY,
        AeadAlgorithm::Aes256Gcm,
        nonce.as_bytes(),
        associated_data.as_bytes(),
        &ciphertext,
    )
    .map_err(|_| bad_signature("resource does not decrypt with the APIv3 key"))
}
