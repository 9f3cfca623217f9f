//! Every answer in the shape its route family promises, whatever produced it: a handler, an
//! extractor's rejection (a bad path, a body over the limit), the router (no such method), the
//! request timeout. `/v1` answers errors as RFC 9457 problem documents; the legacy routes as
//! the old services did (`{success: false, message}`, and CaresPay's `{code: "ERROR", message}`
//! on `/api/pay`). Answers to channels (callbacks) keep the channel's own format.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::problem::Problem;

/// Largest error body read back to be reshaped (extractor messages are a line or two).
const REJECTION_BODY_LIMIT_BYTES: usize = 4096;

/// Which promise a path falls under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `/v1` and the service's own routes: problem+json.
    Api,
    /// `/v1/callbacks/...` and `/v1/return/...`: answers to channels and browsers, in their own
    /// format; only empty answers (from the router or a layer) are given a problem document.
    Channel,
    /// `/api/pay`: CaresPay's error shape.
    LegacyPay,
    /// The other legacy routes: `{success: false, message}`.
    Legacy,
}

impl Family {
    pub fn of(path: &str) -> Self {
        if path.starts_with("/v1/callbacks/") || path.starts_with("/v1/return/") {
            Self::Channel
        } else if path == "/api/pay" || path == "/api/pay/" {
            Self::LegacyPay
        } else if path.starts_with("/api/") || path == "/api" || path == "/health" {
            Self::Legacy
        } else {
            Self::Api
        }
    }

    /// A refusal in this family's shape.
    pub fn refusal(self, status: StatusCode, message: &str) -> Response {
        match self {
            Self::Api | Self::Channel => problem_for(status, message).into_response(),
            Self::LegacyPay => (
                status,
                axum::Json(json!({ "code": "ERROR", "message": message })),
            )
                .into_response(),
            Self::Legacy => (
                status,
                axum::Json(json!({ "success": false, "message": message })),
            )
                .into_response(),
        }
    }

    /// Whether `response` already keeps this family's promise.
    fn kept_by(self, response: &Response) -> bool {
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        match self {
            Self::Api => content_type.starts_with("application/problem+json"),
            Self::Channel => !is_empty(response),
            Self::LegacyPay | Self::Legacy => {
                content_type.starts_with("application/json")
                    || content_type.starts_with("text/html")
            }
        }
    }
}

fn is_empty(response: &Response) -> bool {
    http_body::Body::size_hint(response.body()).exact() == Some(0)
}

/// A problem document for an answer some layer produced with only a status and a line of text.
fn problem_for(status: StatusCode, text: &str) -> Problem {
    let (kind, title) = match status {
        StatusCode::NOT_FOUND => ("not-found", "Not found"),
        StatusCode::METHOD_NOT_ALLOWED => ("method-not-allowed", "Method not allowed"),
        StatusCode::PAYLOAD_TOO_LARGE => ("body-too-large", "The request body is too large"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ("unsupported-media-type", "Unsupported content type")
        }
        StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => {
            ("timeout", "The request took too long")
        }
        StatusCode::UNPROCESSABLE_ENTITY => ("invalid-body", "The request body was refused"),
        s if s.is_server_error() => ("internal", "Internal error"),
        _ => ("bad-request", "Bad request"),
    };
    let problem = Problem::new(status, kind, title);
    if text.is_empty() {
        problem
    } else {
        problem.with_detail(text)
    }
}

/// The message a legacy client sees for an answer produced by a layer.
fn legacy_message(status: StatusCode, text: &str) -> String {
    let what = match status {
        StatusCode::NOT_FOUND => "接口不存在",
        StatusCode::METHOD_NOT_ALLOWED => "不支持的请求方法",
        StatusCode::PAYLOAD_TOO_LARGE => "请求体过大",
        StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => "请求超时，请稍后重试",
        s if s.is_server_error() => "服务器内部错误",
        _ => "请求格式错误",
    };
    if text.is_empty() || status.is_server_error() {
        what.to_owned()
    } else {
        format!("{what}: {text}")
    }
}

/// Reshapes `response` for `family` if it is an error not already in the family's shape.
pub async fn shape(family: Family, response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || family.kept_by(&response) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, REJECTION_BODY_LIMIT_BYTES).await {
        Ok(bytes) => text_of(&bytes),
        Err(_) => String::new(),
    };
    let shaped = match family {
        Family::Api | Family::Channel => family.refusal(status, &text),
        Family::LegacyPay | Family::Legacy => {
            family.refusal(status, &legacy_message(status, &text))
        }
    };
    // Keep every header the producer set (allowed methods, Retry-After, CORS) but those that
    // describe the old body.
    let (mut shaped_parts, shaped_body) = shaped.into_parts();
    let mut headers = parts.headers;
    headers.remove(header::CONTENT_LENGTH);
    if let Some(content_type) = shaped_parts.headers.remove(header::CONTENT_TYPE) {
        headers.insert(header::CONTENT_TYPE, content_type);
    }
    shaped_parts.headers = headers;
    Response::from_parts(shaped_parts, shaped_body)
}

fn text_of(bytes: &Bytes) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect()
}

/// An answer with only a status, for layers that refuse before any route family code runs.
pub fn bare(status: StatusCode, text: &str) -> Response {
    let mut response = Response::new(Body::from(text.to_owned()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn layer_answers_take_each_familys_shape() {
        let plain = || bare(StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded");
        let api = shape(Family::of("/v1/orders"), plain()).await;
        assert_eq!(
            api.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(body_json(api).await["status"], 413);

        let legacy = shape(Family::of("/api/users/p1"), plain()).await;
        let legacy = body_json(legacy).await;
        assert_eq!(legacy["success"], false);
        assert!(
            legacy["message"]
                .as_str()
                .unwrap()
                .starts_with("请求体过大")
        );

        let pay = body_json(shape(Family::of("/api/pay"), plain()).await).await;
        assert_eq!(pay["code"], "ERROR");
    }

    #[tokio::test]
    async fn a_channels_own_answer_is_left_alone_and_methods_are_kept() {
        let ack = bare(StatusCode::BAD_REQUEST, "fail");
        let kept = shape(Family::of("/v1/callbacks/alipay"), ack).await;
        assert_eq!(
            axum::body::to_bytes(kept.into_body(), 100).await.unwrap(),
            "fail"
        );
        let mut empty = StatusCode::METHOD_NOT_ALLOWED.into_response();
        empty
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
        let shaped = shape(Family::of("/v1/orders"), empty).await;
        assert_eq!(shaped.headers()[header::ALLOW], "GET,HEAD");
        assert_eq!(
            body_json(shaped).await["type"],
            "https://coffer.dev/problems/method-not-allowed"
        );
    }
}
