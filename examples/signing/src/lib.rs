//! How a game server signs its requests to Coffer, in a few lines you can port to any
//! language (see docs/game-api.md):
//!
//! ```text
//! message   = "<unix seconds>\n<METHOD>\n<path and query as sent>\n<body bytes>"
//! signature = hex(HMAC-SHA256(key = API secret, message))
//! headers   = Coffer-Key: <key id>
//!             Coffer-Signature: t=<unix seconds>,v1=<signature>
//! ```
//!
//! This crate is written apart from Coffer's own verifier on purpose: its tests are a
//! second, independent reading of the documentation.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The `Coffer-Signature` header value for one request.
pub fn signature_header(
    secret: &str,
    unix_seconds: i64,
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key size");
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b"\n");
    mac.update(method.as_bytes());
    mac.update(b"\n");
    mac.update(path_and_query.as_bytes());
    mac.update(b"\n");
    mac.update(body);
    let signature = hex::encode(mac.finalize().into_bytes());
    format!("t={unix_seconds},v1={signature}")
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A signed client for one game's API key.
#[derive(Clone)]
pub struct GameClient {
    pub base_url: String,
    pub key_id: String,
    pub secret: String,
    http: reqwest::Client,
}

/// Coffer's answer: status, headers and the JSON body (Null when empty).
#[derive(Debug)]
pub struct Answer {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: serde_json::Value,
}

impl GameClient {
    pub fn new(base_url: &str, key_id: &str, secret: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
            key_id: key_id.to_owned(),
            secret: secret.to_owned(),
            http: reqwest::Client::new(),
        }
    }

    /// Sends a signed request. `path` includes any query string.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Answer, reqwest::Error> {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let header = signature_header(&self.secret, now_s(), method, path, &bytes);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a valid method");
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .header("coffer-key", &self.key_id)
            .header("coffer-signature", header);
        if body.is_some() {
            request = request
                .header("content-type", "application/json")
                .body(bytes);
        }
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::Value::String(text)
        });
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_worked_example_in_the_docs() {
        let header = signature_header(
            "cs_demo",
            1_767_225_600,
            "POST",
            "/v1/orders",
            br#"{"sku":"gems-100"}"#,
        );
        assert_eq!(
            header,
            "t=1767225600,v1=7dd53868edae24ee5465398de51446ca7291a0965aee41d079c2b2f6d0b97358"
        );
    }
}
