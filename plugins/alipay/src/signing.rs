//! Alipay's RSA2 signatures: SHA256withRSA, base64.
//!
//! Requests and notifications sign the parameters sorted by name as `k=v&k=v`, leaving out
//! `sign` (and for notifications `sign_type`) and empty values, with raw (not URL-encoded)
//! values. Answers sign the raw text of their `*_response` member.

use coffer_plugin_sdk::base64::Engine as _;
use coffer_plugin_sdk::base64::engine::general_purpose::STANDARD;
use coffer_plugin_sdk::*;

/// The merchant's application private key (signs requests).
pub const APP_PRIVATE_KEY: &str = "app-private-key";
/// Alipay's public key (verifies answers and notifications).
pub const ALIPAY_PUBLIC_KEY: &str = "alipay-public-key";

pub fn sign_params(params: &[(&str, &str)]) -> Result<String, ChannelError> {
    let content = canonical::sorted_pairs(params.iter().copied(), &["sign"]);
    let signature = keys::sign(
        APP_PRIVATE_KEY,
        SignatureAlgorithm::RsaPkcs1Sha256,
        content.as_bytes(),
    )?;
    Ok(STANDARD.encode(signature))
}

/// Verifies a base64 signature over `content` with Alipay's public key.
pub fn verify(content: &str, signature_base64: &str) -> Result<(), ChannelError> {
    let signature = STANDARD
        .decode(signature_base64.trim())
        .map_err(|_| bad_signature("sign is not base64"))?;
    if keys::verify(
        ALIPAY_PUBLIC_KEY,
        SignatureAlgorithm::RsaPkcs1Sha256,
        content.as_bytes(),
        &signature,
    )? {
        Ok(())
    } else {
        Err(bad_signature("RSA2 signature does not verify"))
    }
}

/// Verifies a notification's parameters: sorted, without `sign` and `sign_type`.
///
/// The signed string joins raw values with `&` and leaves empty values out, so two different
/// forms can sign the same: a duplicated key (an empty copy first), or a value hiding
/// `&key=value` (which reads as one more parameter). Both are refused. A value with a bare `&`
/// ("Gems & Gold") cannot be read as another parameter and is accepted: Alipay echoes the
/// order's `subject` and `body`, and Coffer keeps `&`, `=` and `/` out of those anyway
/// ([`channel_safe_text`]).
pub fn verify_notification(params: &[(String, String)]) -> Result<(), ChannelError> {
    for (i, (key, value)) in params.iter().enumerate() {
        if params[..i].iter().any(|(k, _)| k == key) {
            return Err(bad_signature(format!("parameter {key} appears twice")));
        }
        let hides_a_parameter = value.split('&').skip(1).any(|part| part.contains('='));
        if key.contains(['&', '=']) || hides_a_parameter {
            return Err(bad_signature(format!(
                "parameter {key} would change the signed string"
            )));
        }
    }
    let sign =
        form::get(params, "sign").ok_or_else(|| bad_signature("notification without sign"))?;
    if form::get(params, "sign_type").is_some_and(|t| t != "RSA2") {
        return Err(bad_signature("only RSA2 notifications are accepted"));
    }
    let content = canonical::sorted_pairs(
        params.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        &["sign", "sign_type"],
    );
    verify(&content, sign)
}

/// Text for `subject` and `body`: Alipay forbids `/`, `=` and `&` in them ("不可使用特殊字符，
/// 如 /，=，&"), and echoes them in its notifications, so they become their full-width forms
/// (which read the same to a player). Control characters become spaces; at most 256 characters.
pub fn channel_safe_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '/' => '／',
            '=' => '＝',
            '&' => '＆',
            c if c.is_control() => ' ',
            c => c,
        })
        .take(256)
        .collect()
}
