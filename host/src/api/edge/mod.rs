//! What every request and answer passes through first and last, on every listener: the text
//! rule on paths and queries, the request timeout, and answers in the shape of their route
//! family whatever produced them.

mod shape;
pub mod text;

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

pub use shape::Family;

/// Checks the request's path and query, runs it within `timeout`, and shapes the answer.
pub async fn guard(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let family = Family::of(path);
    // A channel's notification or a browser return is handed raw to its plugin, which is the
    // authority on its format (some channels send GBK); only the path is checked here.
    let query = match family {
        Family::Channel => None,
        _ => request.uri().query(),
    };
    if let Err(refused) = text::check_uri(path, query) {
        return family.refusal(StatusCode::BAD_REQUEST, &refused.to_string());
    }
    let response = match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                timeout_s = timeout.as_secs(),
                family = family_name(family),
                "request timed out"
            );
            shape::bare(
                StatusCode::SERVICE_UNAVAILABLE,
                "the request took too long; a payment already sent to its channel is still \
                 being finished: check the order's status",
            )
        }
    };
    shape::shape(family, response).await
}

fn family_name(family: Family) -> &'static str {
    match family {
        Family::Api => "api",
        Family::Channel => "channel",
        Family::LegacyPay | Family::Legacy => "legacy",
    }
}
