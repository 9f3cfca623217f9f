//! JSON Web Signatures in compact form (RFC 7515), as the app stores use them: Apple signs
//! transactions and notifications (ES256, the certificate chain in `x5c`), Google signs its
//! push tokens (RS256), and the App Store Server API wants a JWT signed with a sealed key.
//!
//! Parsing only splits and decodes; whoever verifies pins the algorithm (never trusting the
//! header's `alg` to choose it) and checks the claims.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::Value;

use crate::{ChannelResult, SignatureAlgorithm, keys, malformed};

/// A compact JWS, split and decoded, not verified.
#[derive(Debug, Clone)]
pub struct Jws {
    pub header: Value,
    /// The payload's bytes (usually JSON claims).
    pub payload: Vec<u8>,
    /// `header.payload` as sent: what the signature covers.
    pub signing_input: String,
    pub signature: Vec<u8>,
}

impl Jws {
    pub fn parse(compact: &str) -> ChannelResult<Self> {
        let mut parts = compact.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed("a JWS has three parts"));
        };
        let decode = |part: &str, what: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|e| malformed(format!("JWS {what}: {e}")))
        };
        let header_bytes = decode(header, "header")?;
        Ok(Self {
            header: serde_json::from_slice(&header_bytes)
                .map_err(|e| malformed(format!("JWS header: {e}")))?,
            payload: decode(payload, "payload")?,
            signing_input: format!("{header}.{payload}"),
            signature: decode(signature, "signature")?,
        })
    }

    /// The header's `alg`, which must be `expected`: the verifier chose the algorithm.
    pub fn require_alg(&self, expected: &str) -> ChannelResult<()> {
        match self.header["alg"].as_str() {
            Some(alg) if alg == expected => Ok(()),
            other => Err(crate::bad_signature(format!(
                "JWS algorithm {other:?}, expected {expected}"
            ))),
        }
    }

    /// The `x5c` certificates (DER, leaf first).
    pub fn x5c(&self) -> ChannelResult<Vec<Vec<u8>>> {
        self.header["x5c"]
            .as_array()
            .ok_or_else(|| malformed("the JWS header has no x5c"))?
            .iter()
            .map(|cert| {
                let text = cert
                    .as_str()
                    .ok_or_else(|| malformed("an x5c entry is not a string"))?;
                STANDARD
                    .decode(text)
                    .map_err(|e| malformed(format!("x5c: {e}")))
            })
            .collect()
    }

    /// The payload as JSON.
    pub fn claims(&self) -> ChannelResult<Value> {
        serde_json::from_slice(&self.payload).map_err(|e| malformed(format!("JWS payload: {e}")))
    }
}

/// A compact JWS of `claims` with `header` (which must carry the `alg` matching `algorithm`),
/// signed by the host with sealed key `key`.
pub fn sign(
    key: &str,
    algorithm: SignatureAlgorithm,
    header: &Value,
    claims: &Value,
) -> ChannelResult<String> {
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = keys::sign(key, algorithm, signing_input.as_bytes())?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compact(header: &str, payload: &str, signature: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    #[test]
    fn a_jws_splits_into_its_decoded_parts() {
        let text = compact(r#"{"alg":"ES256","x5c":["AAEC"]}"#, r#"{"a":1}"#, &[9, 9]);
        let jws = Jws::parse(&text).unwrap();
        assert_eq!(jws.claims().unwrap()["a"], 1);
        assert_eq!(jws.signature, vec![9, 9]);
        assert_eq!(jws.x5c().unwrap(), vec![vec![0, 1, 2]]);
        assert!(text.starts_with(&jws.signing_input));
        jws.require_alg("ES256").unwrap();
        assert!(jws.require_alg("RS256").is_err());
    }

    #[test]
    fn anything_but_three_parts_is_malformed() {
        for text in ["", "a.b", "a.b.c.d", "!!.e30.AA"] {
            assert!(Jws::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn alg_none_is_refused() {
        let jws = Jws::parse(&compact(r#"{"alg":"none"}"#, "{}", &[])).unwrap();
        assert!(jws.require_alg("ES256").is_err());
    }
}
