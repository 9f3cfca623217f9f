//! The one way a JSON request body is read: it must be an object with the documented fields
//! (serde would otherwise take `[1]` as a struct's fields by position), and every key and
//! string in it must pass the text rule (`edge::text`). Anything else is a problem answer and
//! changes nothing.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::edge::text;
use super::problem::Problem;

/// Parses `body` as a JSON object and reads it as `T`. Returns the document too (idempotency
/// fingerprints are taken over it).
pub fn parse_object<T: DeserializeOwned>(body: &[u8]) -> Result<(Value, T), Problem> {
    let refused = |status, kind| Problem::new(status, kind, "The request body was refused");
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        refused(StatusCode::BAD_REQUEST, "malformed-json").with_detail(e.to_string())
    })?;
    if !value.is_object() {
        return Err(refused(StatusCode::BAD_REQUEST, "malformed-json")
            .with_detail("the body must be a JSON object"));
    }
    text::check_json(&value)
        .map_err(|e| refused(StatusCode::BAD_REQUEST, "invalid-text").with_detail(e.to_string()))?;
    let parsed = T::deserialize(&value).map_err(|e| {
        refused(StatusCode::UNPROCESSABLE_ENTITY, "invalid-body").with_detail(e.to_string())
    })?;
    Ok((value, parsed))
}

/// A JSON object body read with [`parse_object`]; refusals are problem documents.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim();
                mime.eq_ignore_ascii_case("application/json")
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "The request body was refused",
            )
            .with_detail("expected Content-Type: application/json"));
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|e| {
            Problem::new(
                e.status(),
                "body-unreadable",
                "The request body was refused",
            )
            .with_detail(e.body_text())
        })?;
        parse_object(&bytes).map(|(_, parsed)| Self(parsed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Ask {
        #[serde(default)]
        #[allow(dead_code)]
        amount_minor: Option<i64>,
    }

    #[test]
    fn only_objects_are_bodies() {
        for body in ["[]", "[1]", "1", "\"x\"", "null"] {
            let problem = parse_object::<Ask>(body.as_bytes()).unwrap_err();
            assert_eq!(problem.status, 400, "{body}");
        }
        assert!(parse_object::<Ask>(b"{}").is_ok());
        let nul = parse_object::<Ask>(br#"{"reason":"x\u0000"}"#).unwrap_err();
        assert!(nul.kind.ends_with("invalid-text"));
    }
}
