//! What channels and players' browsers send back: notifications at `/v1/callbacks/{channel}`
//! and browser returns at `/v1/return/{channel}`. Both are handed, raw, to the channel's
//! plugin; only what it verifies is applied, and an unverified claim is only a reason to ask
//! the channel with a signed query.

use crate::app::AppState;
use crate::channels::{Ack, Notice, contract};
use crate::orders::{AttemptStatus, Notified, OrderStatus};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};

/// The plugin's answer for the channel, with only the headers an answer may carry.
fn answer(ack: Ack) -> Response {
    let status = StatusCode::from_u16(ack.status).unwrap_or(StatusCode::OK);
    let mut response = (status, ack.body).into_response();
    for (name, value) in ack.headers {
        let allowed = name.eq_ignore_ascii_case("content-type")
            || name.to_ascii_lowercase().starts_with("x-");
        if let (true, Ok(name), Ok(value)) = (
            allowed,
            HeaderName::try_from(name),
            HeaderValue::try_from(value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// `POST|GET /v1/callbacks/{channel}`: a channel's notification.
pub async fn notify(
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(channel) = state.channels.registry.get(&channel_id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let Some(request) = contract::inbound_request(false, &method, &uri, &headers, body) else {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    };
    let outcome = match channel.parse_callback(&request).await {
        Ok(outcome) => outcome,
        Err(error) => {
            // The plugin failed, not the channel: ask it to retry later.
            let error = crate::orders::scrub(&error.to_string());
            tracing::error!(channel = %channel_id, %error, "plugin failed on a notification");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let notified = match Notice::from(outcome.verdict) {
        Notice::Store(event) => state.stores.apply_event(&channel_id, event).await,
        Notice::StoreClaim(proof) => state.stores.confirm_claim(&channel_id, proof).await,
        notice => state.orders.apply_notification(&channel_id, notice).await,
    };
    match notified {
        Notified::Recorded => answer(outcome.ack_accepted.into()),
        Notified::Rejected => answer(refusal_ack(outcome.ack_rejected.into(), true)),
        Notified::NotRecorded => answer(refusal_ack(outcome.ack_rejected.into(), false)),
    }
}

/// The channel's own "failed" body with a status whose class is Coffer's to choose, whatever
/// the plugin put: a forged, tampered or malformed notification gets a 4xx (sending it again
/// will not help, and nobody is paged), one Coffer could not record a 5xx (the channel retries
/// it, and a 5xx is worth an alert).
fn refusal_ack(mut ack: Ack, rejected: bool) -> Ack {
    ack.status = match (rejected, ack.status) {
        (true, status @ 400..=499) | (false, status @ 500..=599) => status,
        (true, _) => 400,
        (false, _) => 503,
    };
    ack
}

/// How long a return page waits for the payment to settle after asking the channel (its
/// notification often arrives with the browser).
const RETURN_PATIENCE: std::time::Duration = std::time::Duration::from_millis(1500);

/// `GET /v1/return/{channel}`: the player's browser back from the channel. Never trusted: the
/// page says what a signed query confirms.
pub async fn browser_return(
    State(state): State<AppState>,
    Path(channel_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(channel) = state.channels.registry.get(&channel_id) else {
        return page(StatusCode::NOT_FOUND, "Unknown payment channel", None, "");
    };
    let Some(request) = contract::inbound_request(true, &method, &uri, &headers, body) else {
        return page(
            StatusCode::METHOD_NOT_ALLOWED,
            "Unsupported request",
            None,
            "",
        );
    };
    let notice = channel
        .parse_callback(&request)
        .await
        .map(|o| Notice::from(o.verdict));
    let payment_ref = match notice {
        Ok(Notice::Claim { payment_ref }) => payment_ref,
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                "We could not read this payment result",
                None,
                "Please go back to the game; your order's status is shown there.",
            );
        }
    };
    match state
        .orders
        .confirm_return(&channel_id, &payment_ref, RETURN_PATIENCE)
        .await
    {
        Ok(view) => {
            let attempt = view.payment.as_ref().map(|a| a.status);
            let (title, text) = match (view.status, attempt) {
                (s, _) if s.is_paid() || s == OrderStatus::Refunded => (
                    "Payment received",
                    "Thank you! Your items are on their way to the game.",
                ),
                (_, Some(AttemptStatus::Failed)) => (
                    "Payment failed",
                    "The payment did not go through. You can try again from the game.",
                ),
                _ => (
                    "Still confirming",
                    "We are waiting for the payment channel's confirmation. Your items will \
                     arrive once it does.",
                ),
            };
            page(StatusCode::OK, title, Some(view.order_no.as_str()), text)
        }
        Err(error) => {
            tracing::warn!(channel = %channel_id, %error, "browser return not confirmed");
            page(
                StatusCode::OK,
                "Still confirming",
                None,
                "We could not confirm the payment yet. Your order's status is shown in the game.",
            )
        }
    }
}

/// A small page; everything it shows is escaped.
fn page(status: StatusCode, title: &str, order_no: Option<&str>, text: &str) -> Response {
    let order = order_no
        .map(|no| format!("<p>Order <code>{}</code></p>", escape_html(no)))
        .unwrap_or_default();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"></head>\
         <body><h1>{title}</h1>{order}<p>{text}</p></body></html>",
        title = escape_html(title),
        text = escape_html(text),
    );
    let mut response = (status, Html(html)).into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'"),
    );
    response
}

pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_notifications_get_a_4xx_and_unrecorded_ones_a_5xx_whatever_the_plugin_said() {
        let ack = |status| Ack {
            status,
            headers: vec![],
            body: br#"{"code":"FAIL"}"#.to_vec(),
        };
        // WeChat Pay's plugin answers failures with 500: a forgery must not page anyone.
        assert_eq!(refusal_ack(ack(500), true).status, 400);
        assert_eq!(refusal_ack(ack(200), true).status, 400);
        assert_eq!(refusal_ack(ack(401), true).status, 401);
        assert_eq!(refusal_ack(ack(500), false).status, 500);
        assert_eq!(refusal_ack(ack(200), false).status, 503);
        assert_eq!(refusal_ack(ack(400), false).status, 503);
        assert_eq!(refusal_ack(ack(500), true).body, ack(500).body);
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            super::escape_html("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }
}
