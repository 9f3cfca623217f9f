//! The old three-service system's routes, with its request and response shapes:
//! `{success, message, data}` on the account and record routes (HTTP 200 even when
//! `success` is false, as the old services answered), CaresPay's own JSON on `/api/pay`.
//! What the old system left open is closed here; see docs/legacy.md.

// Helpers here return the refusal a handler sends as it is: one per request, never stored.
#![allow(clippy::result_large_err)]

mod accounts;
mod caller;
mod page;
mod payments;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use tower_http::cors::{Any, CorsLayer};

use crate::app::AppState;
use crate::legacy::{Legacy, LegacyError};

pub use caller::Caller;

/// The legacy routes. Empty when `[legacy]` is off.
pub fn router(state: &AppState) -> Router<AppState> {
    if state.legacy.is_none() {
        return Router::new();
    }
    // The old game client may run in a browser on another origin; it authenticates with a
    // bearer token, never a cookie, so any origin may call.
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::AUTHORIZATION,
            HeaderName::from_static("coffer-key"),
            HeaderName::from_static("coffer-signature"),
        ]);
    Router::new()
        .route("/api/auth/register", post(accounts::register))
        .route("/api/auth/login", post(accounts::login))
        .route("/api/users", get(accounts::list))
        .route(
            "/api/users/{pid}",
            get(accounts::profile).put(accounts::update),
        )
        .route("/api/health", get(accounts::health))
        .route("/api/pay", post(payments::pay))
        .route("/api/payment/status/{bill_no}", get(payments::status))
        .route("/api/get3DResult", get(payments::three_d_result))
        .route("/api/payments/record", post(payments::record))
        .route("/api/payments/user/{user_id}", get(payments::for_user))
        .route("/api/payments/all", get(payments::all))
        .route("/api/{*rest}", axum::routing::any(no_such_route))
        .route("/health", get(payments::health))
        .layer(cors)
}

pub(super) async fn no_such_route() -> Response {
    fail(StatusCode::NOT_FOUND, "接口不存在")
}

/// `{success: true, message, data}`.
fn ok(message: &str, data: Value) -> Response {
    let mut body = json!({ "success": true });
    if !message.is_empty() {
        body["message"] = message.into();
    }
    if !data.is_null() {
        body["data"] = data;
    }
    axum::Json(body).into_response()
}

/// `{success: false, message}` with `status`.
fn fail(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "success": false, "message": message })),
    )
        .into_response()
}

/// The old services answered refusals with HTTP 200 and `success: false`; failures of Coffer
/// itself get a 5xx.
fn refusal(error: LegacyError) -> Response {
    match error {
        LegacyError::Busy { retry_after_s } => {
            let mut refused = fail(StatusCode::TOO_MANY_REQUESTS, &error.to_string());
            refused
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after_s.into());
            refused
        }
        LegacyError::GameUnavailable => fail(StatusCode::SERVICE_UNAVAILABLE, &error.to_string()),
        LegacyError::Internal(why) => {
            tracing::error!(error = %why, "legacy request failed");
            fail(StatusCode::INTERNAL_SERVER_ERROR, "服务器内部错误")
        }
        LegacyError::Order(e) => fail(StatusCode::OK, &e.to_string()),
        other => fail(StatusCode::OK, &other.to_string()),
    }
}

/// The legacy area; the routes exist only when it does.
fn area(state: &AppState) -> &Legacy {
    state
        .legacy
        .as_ref()
        .expect("legacy routes are mounted only with the legacy area")
}

/// A body as the old services read it: JSON, or a urlencoded form.
fn body_fields(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, Response> {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if form {
        return match crate::api::edge::text::decode_form(body) {
            Ok(fields) => Ok(fields
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect()),
            Err(refused) => Err(fail(
                StatusCode::BAD_REQUEST,
                &format!("请求格式错误: {refused}"),
            )),
        };
    }
    if body.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => match crate::api::edge::text::check_fields(&map) {
            Ok(()) => Ok(map),
            Err(refused) => Err(fail(
                StatusCode::BAD_REQUEST,
                &format!("请求格式错误: {refused}"),
            )),
        },
        _ => Err(fail(StatusCode::BAD_REQUEST, "请求格式错误")),
    }
}

/// A field as text: strings as they are, numbers printed (the old client sends both).
fn text(fields: &Map<String, Value>, name: &str) -> Option<String> {
    match fields.get(name)? {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
    .filter(|s| !s.is_empty())
}
