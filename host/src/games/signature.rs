//! Game-server request signatures.
//!
//! `Coffer-Key: <key id>` names the key; `Coffer-Signature: t=<unix seconds>,v1=<hex>` carries
//! HMAC-SHA256, keyed with the key's secret, over
//!
//! ```text
//! <t> "\n" <METHOD> "\n" <path>["?" <query>] "\n" <body>
//! ```
//!
//! The path and query exactly as sent (no re-encoding), the query part only when the URL has
//! one. A signature more than five minutes away from the server's clock is refused, so a
//! captured request cannot be replayed later; within those five minutes, a request that can
//! change something is accepted once (see `replay`).

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// How far a signature's timestamp may be from the server's clock.
pub const SIGNATURE_TOLERANCE_S: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Coffer-Key and Coffer-Signature headers are required")]
    Missing,
    #[error("Coffer-Signature must look like t=<unix seconds>,v1=<hex HMAC-SHA256>")]
    Malformed,
    #[error("unknown or expired API key")]
    UnknownKey,
    #[error(
        "the signature timestamp is more than {SIGNATURE_TOLERANCE_S} s from the server's clock"
    )]
    Stale,
    #[error("the signature does not match the request")]
    Mismatch,
    #[error(
        "this signed request was already received: sign it again (a new timestamp) to retry, \
         with the same Idempotency-Key to get the first answer"
    )]
    Replayed,
}

/// A signature that verified: what the replay memory keeps of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The timestamp it was made at (Unix seconds).
    pub timestamp: i64,
    /// The MAC, as hex.
    pub mac: String,
}

/// The bytes that are signed.
pub fn canonical_message(
    timestamp: i64,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut message = format!("{timestamp}\n{method}\n{path_and_query}\n").into_bytes();
    message.extend_from_slice(body);
    message
}

/// Checks a `Coffer-Signature` header value against the request and the key's secret.
pub fn verify_signature(
    header: &str,
    secret: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now_s: i64,
) -> Result<Verified, SignatureError> {
    let (timestamp, signature) = parse_header(header)?;
    // abs_diff: a hostile `t` near i64::MIN must not overflow.
    if now_s.abs_diff(timestamp) > SIGNATURE_TOLERANCE_S as u64 {
        return Err(SignatureError::Stale);
    }
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(&canonical_message(timestamp, method, path_and_query, body));
    // Constant-time comparison.
    mac.verify_slice(&signature)
        .map_err(|_| SignatureError::Mismatch)?;
    Ok(Verified {
        timestamp,
        mac: hex::encode(signature),
    })
}

fn parse_header(header: &str) -> Result<(i64, Vec<u8>), SignatureError> {
    let mut timestamp = None;
    let mut signature = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) if timestamp.is_none() => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) if signature.is_none() => signature = hex::decode(value).ok(),
            // Unknown schemes are ignored so a later v2 can be sent beside v1.
            Some((name, _)) if name != "t" && name != "v1" => {}
            _ => return Err(SignatureError::Malformed),
        }
    }
    match (timestamp, signature) {
        (Some(t), Some(s)) if s.len() == 32 => Ok((t, s)),
        _ => Err(SignatureError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, t: i64, method: &str, path: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(&canonical_message(t, method, path, body));
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    /// Computed independently: printf "1767225600\nPOST\n/v1/orders\n{\"sku\":\"gems-100\"}" | openssl dgst -sha256 -hmac cs_demo
    const EXAMPLE_HEADER: &str =
        "t=1767225600,v1=7dd53868edae24ee5465398de51446ca7291a0965aee41d079c2b2f6d0b97358";

    #[test]
    fn the_documented_example_verifies() {
        // The worked example in docs/game-api.md.
        let body = br#"{"sku":"gems-100"}"#;
        let message = canonical_message(1_767_225_600, "POST", "/v1/orders", body);
        assert_eq!(
            message,
            b"1767225600\nPOST\n/v1/orders\n{\"sku\":\"gems-100\"}"
        );
        let header = sign("cs_demo", 1_767_225_600, "POST", "/v1/orders", body);
        assert_eq!(header, EXAMPLE_HEADER);
        let verified = verify_signature(
            &header,
            "cs_demo",
            "POST",
            "/v1/orders",
            body,
            1_767_225_600,
        )
        .unwrap();
        assert_eq!(verified.timestamp, 1_767_225_600);
        assert!(EXAMPLE_HEADER.ends_with(&verified.mac));
    }

    #[test]
    fn tampering_staleness_and_garbage_are_refused() {
        let now = 1_767_225_600;
        let header = sign("secret", now, "POST", "/v1/orders?x=1", b"{}");
        let check = |h: &str, secret, method, path, body: &[u8], at| {
            verify_signature(h, secret, method, path, body, at).map(|_| ())
        };
        assert_eq!(
            check(
                &header,
                "secret",
                "POST",
                "/v1/orders?x=1",
                b"{}",
                now + 300
            ),
            Ok(())
        );
        assert_eq!(
            check(&header, "secret", "POST", "/v1/orders?x=1", b"{ }", now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(&header, "secret", "POST", "/v1/orders?x=2", b"{}", now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(&header, "secret", "GET", "/v1/orders?x=1", b"{}", now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(&header, "other", "POST", "/v1/orders?x=1", b"{}", now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check(
                &header,
                "secret",
                "POST",
                "/v1/orders?x=1",
                b"{}",
                now + 301
            ),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(
                &header,
                "secret",
                "POST",
                "/v1/orders?x=1",
                b"{}",
                now - 301
            ),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(
                &format!("t={},v1={}", i64::MIN, "00".repeat(32)),
                "secret",
                "POST",
                "/",
                b"",
                now
            ),
            Err(SignatureError::Stale)
        );
        for garbage in [
            "",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            "t=1,v1=zz",
            "t=1,v1=0011",
            "t=1,t=2,v1=00",
        ] {
            assert_eq!(
                check(garbage, "secret", "POST", "/", b"", 1),
                Err(SignatureError::Malformed),
                "{garbage}"
            );
        }
    }
}
