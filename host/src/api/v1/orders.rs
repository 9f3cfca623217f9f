//! `/v1/orders`: create an order (idempotently), read it, try paying it again.

use std::time::Duration;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::game_auth::SignedBy;
use crate::api::problem::Problem;
use crate::app::AppState;
use crate::orders::idempotency::{Claim, MAX_KEY_LEN, Peeked, fingerprint};
use crate::orders::{AttemptStatus, CreateOrder, OrderNo, OrderView, PaymentChoice, RefundAsk};

/// What a handler answers, in a form that can be stored and replayed byte for byte.
struct Answer {
    status: StatusCode,
    body: String,
}

impl Answer {
    fn json(status: StatusCode, body: &impl serde::Serialize) -> Self {
        Self {
            status,
            body: serde_json::to_string(body).expect("answers serialize"),
        }
    }

    fn into_response(self, replayed: bool) -> Response {
        let content_type = if self.status.is_success() {
            "application/json"
        } else {
            "application/problem+json"
        };
        let mut response = (self.status, self.body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if replayed {
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
        }
        response
    }
}

impl From<Problem> for Answer {
    fn from(problem: Problem) -> Self {
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        Self::json(status, &problem)
    }
}

/// The order, with a status that says how its payment attempt went: 201/200 when the player
/// can go on, 402 when the channel declined, 502 when the channel could not be used or its
/// outcome is unknown. In every case the order exists and is in the body.
fn order_answer(view: OrderView, success: StatusCode) -> Answer {
    let Some(payment) = &view.payment else {
        return Answer::json(success, &view);
    };
    let reason = payment
        .failure
        .as_ref()
        .map(|f| format!("{}: {}", f.code, f.message))
        .unwrap_or_default();
    let problem = match payment.status {
        AttemptStatus::Failed if reason.starts_with("coffer.") => Problem::new(
            StatusCode::BAD_GATEWAY,
            "payment-not-started",
            "The channel could not start the payment; nothing was charged",
        ),
        AttemptStatus::Failed => Problem::new(
            StatusCode::PAYMENT_REQUIRED,
            "payment-declined",
            "The channel declined the payment",
        ),
        AttemptStatus::Unknown | AttemptStatus::Created => Problem::new(
            StatusCode::BAD_GATEWAY,
            "payment-outcome-unknown",
            "The channel's answer is missing or unusable; the payment will be settled by query",
        ),
        _ => return Answer::json(success, &view),
    };
    problem
        .with_detail(format!("{reason} (order {} stays pending)", view.order_no))
        .with("order", &view)
        .into()
}

/// The request's Idempotency-Key. Required: these requests move money, and a signed request
/// must never be run twice (see docs/game-api.md, "Retries and replays").
fn idempotency_key(headers: &HeaderMap) -> Result<String, Problem> {
    let Some(value) = headers.get("idempotency-key") else {
        return Err(Problem::new(
            StatusCode::BAD_REQUEST,
            "idempotency-key-required",
            "An Idempotency-Key header is required",
        )
        .with_detail("requests that move money need an Idempotency-Key, unique per operation"));
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN)
        .ok_or_else(|| {
            Problem::bad_request(format!(
                "Idempotency-Key must be 1-{MAX_KEY_LEN} visible ASCII characters"
            ))
        })?;
    Ok(key.to_owned())
}

/// What every idempotent POST starts with: its key, its body parsed, and the fingerprint
/// that tells two requests with the same key apart.
struct Prepared<T> {
    key: String,
    fingerprint: String,
    body: T,
}

fn prepare<T: serde::de::DeserializeOwned>(
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Prepared<T>, Problem> {
    let key = idempotency_key(headers)?;
    let (value, body) = crate::api::body::parse_object::<T>(body)?;
    Ok(Prepared {
        key,
        fingerprint: fingerprint("POST", path, &value),
        body,
    })
}

/// An order number from the path; anything else is a missing order.
fn order_no_in_path(order_no: &str) -> Result<OrderNo, Problem> {
    OrderNo::parse(order_no).map_err(|_| Problem::not_found("no such order"))
}

/// How long a replay waits, at most, for the first request's claim to be written: the first
/// records its signature a moment before it claims the key.
const REPLAY_CLAIM_WAITS_MS: [u64; 3] = [5, 20, 75];

/// What the stored record says to a replay of the same signed bytes. Nothing found yet may be
/// the first request between its signature and its claim: a few short looks, not a refusal.
async fn peek_replayed(
    state: &AppState,
    signed: &SignedBy,
    key: &str,
    fingerprint: &str,
) -> Result<Peeked, sqlx::Error> {
    let idempotency = &state.idempotency;
    for wait_ms in REPLAY_CLAIM_WAITS_MS {
        match idempotency.peek(&signed.game, key, fingerprint).await? {
            Peeked::Nothing => tokio::time::sleep(Duration::from_millis(wait_ms)).await,
            seen => return Ok(seen),
        }
    }
    idempotency.peek(&signed.game, key, fingerprint).await
}

/// Runs `work` under the request's Idempotency-Key. `work` answers
/// `(answer, changed_something)`; only answers that changed something are stored. A replay of
/// the very same signed bytes never runs `work`: it gets the stored answer, or is refused.
async fn idempotently<F>(
    state: &AppState,
    signed: &SignedBy,
    key: String,
    fingerprint: String,
    work: F,
) -> Response
where
    F: Future<Output = (Answer, bool)> + Send + 'static,
{
    if signed.replayed {
        return match peek_replayed(state, signed, &key, &fingerprint).await {
            Ok(Peeked::Answered { status, body }) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                Answer { status, body }.into_response(true)
            }
            Ok(Peeked::InProgress) => Problem::conflict(
                "idempotency-key-in-use",
                "a request with this Idempotency-Key is still being processed; retry later",
            )
            .into_response(),
            Ok(Peeked::Nothing) => {
                super::game_auth::AuthRefusal::from(crate::games::SignatureError::Replayed)
                    .into_response()
            }
            Err(e) => Problem::internal(&e).into_response(),
        };
    }
    // The claim, the work and the record of its answer run on a task of their own, so that a
    // caller who hangs up (or a request timeout) never leaves a payment half-recorded or a key
    // held without an answer.
    let state = state.clone();
    let game = signed.game.clone();
    let task = tokio::spawn(async move {
        let idempotency = &state.idempotency;
        let lease = match idempotency.claim(&game, &key, &fingerprint).await {
            Ok(Claim::Run(lease)) => lease,
            Ok(Claim::Replay { status, body }) => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
                return (Answer { status, body }, true);
            }
            Ok(Claim::InProgress) => {
                let refused = Problem::conflict(
                    "idempotency-key-in-use",
                    "a request with this Idempotency-Key is still being processed; retry later",
                );
                return (refused.into(), false);
            }
            Ok(Claim::Mismatch) => {
                let refused = Problem::unprocessable(
                    "idempotency-key-reused",
                    "this Idempotency-Key was used with a different request",
                );
                return (refused.into(), false);
            }
            Err(e) => return (Problem::internal(&e).into(), false),
        };
        let (answer, changed) = work.await;
        let recorded = if changed {
            idempotency
                .finish(&game, &key, lease, answer.status.as_u16(), &answer.body)
                .await
        } else {
            idempotency.release(&game, &key, lease).await
        };
        if let Err(e) = recorded {
            tracing::error!(error = %e, "cannot record an idempotency key");
        }
        (answer, false)
    });
    match task.await {
        Ok((answer, replayed)) => answer.into_response(replayed),
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => Problem::internal(&error).into_response(),
    }
}

pub async fn create(
    State(state): State<AppState>,
    Extension(signed): Extension<SignedBy>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let prepared = match prepare::<CreateOrder>("/v1/orders", &headers, &body) {
        Ok(prepared) => prepared,
        Err(refused) => return refused.into_response(),
    };
    let request = prepared.body;
    let (orders, by) = (state.orders.clone(), signed.clone());
    let work = async move {
        match orders.create(&by.game, &by.default_region, request).await {
            Ok(view) => (order_answer(view, StatusCode::CREATED), true),
            Err(error) => (Problem::from(error).into(), false),
        }
    };
    idempotently(&state, &signed, prepared.key, prepared.fingerprint, work).await
}

pub async fn retry_payment(
    State(state): State<AppState>,
    Extension(signed): Extension<SignedBy>,
    Path(order_no): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let order_no = match order_no_in_path(&order_no) {
        Ok(order_no) => order_no,
        Err(refused) => return refused.into_response(),
    };
    let path = format!("/v1/orders/{order_no}/payments");
    let prepared = match prepare::<PaymentChoice>(&path, &headers, &body) {
        Ok(prepared) => prepared,
        Err(refused) => return refused.into_response(),
    };
    let choice = prepared.body;
    let (orders, game) = (state.orders.clone(), signed.game.clone());
    let work = async move {
        match orders.retry_payment(&game, &order_no, choice).await {
            Ok(view) => (order_answer(view, StatusCode::OK), true),
            Err(error) => (Problem::from(error).into(), false),
        }
    };
    idempotently(&state, &signed, prepared.key, prepared.fingerprint, work).await
}

pub async fn get(
    State(state): State<AppState>,
    Extension(signed): Extension<SignedBy>,
    Path(order_no): Path<String>,
) -> Result<Response, Problem> {
    let order_no = OrderNo::parse(&order_no).map_err(|_| Problem::not_found("no such order"))?;
    let view = state.orders.view_cached(&signed.game, &order_no).await?;
    Ok(axum::Json(view.as_ref()).into_response())
}

/// `POST /v1/orders/{order_no}/refunds`: 201 with the refund, whose `status` says whether the
/// channel already gave the money back (`succeeded`) or will tell later (`pending`, `unknown`).
pub async fn refund(
    State(state): State<AppState>,
    Extension(signed): Extension<SignedBy>,
    Path(order_no): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let order_no = match order_no_in_path(&order_no) {
        Ok(order_no) => order_no,
        Err(refused) => return refused.into_response(),
    };
    let path = format!("/v1/orders/{order_no}/refunds");
    let prepared = match prepare::<RefundAsk>(&path, &headers, &body) {
        Ok(prepared) => prepared,
        Err(refused) => return refused.into_response(),
    };
    let ask = prepared.body;
    let (orders, game) = (state.orders.clone(), signed.game.clone());
    let work = async move {
        match orders.refund(&game, &order_no, ask).await {
            Ok(refund) => (Answer::json(StatusCode::CREATED, &refund), true),
            Err(error) => (Problem::from(error).into(), false),
        }
    };
    idempotently(&state, &signed, prepared.key, prepared.fingerprint, work).await
}
