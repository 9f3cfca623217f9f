//! Idempotent POSTs: a request that moves money runs once per `Idempotency-Key`, and its
//! answer is stored and given again, byte for byte, to a retry with the same key and body (see
//! docs/game-api.md, "Retries and replays"). A handler takes an [`Idempotent`] body and hands
//! its business to [`Idempotent::run`].

use std::time::Duration;

use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use super::game_auth::{AuthRefusal, SignedBy};
use crate::api::problem::Problem;
use crate::app::AppState;
use crate::games::SignatureError;
use crate::orders::idempotency::{Claim, MAX_KEY_LEN, Peeked, fingerprint};

/// What a handler answers, in a form that can be stored and replayed byte for byte.
pub struct Answer {
    status: StatusCode,
    body: String,
}

impl Answer {
    pub fn json(status: StatusCode, body: &impl serde::Serialize) -> Self {
        Self {
            status,
            body: serde_json::to_string(body).expect("answers serialize"),
        }
    }

    fn stored(status: u16, body: String) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
        Self { status, body }
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

/// A signed POST body of type `T` with what makes it idempotent: its key and the fingerprint
/// that tells two requests with the same key apart (method, path and the parsed body).
pub struct Idempotent<T> {
    state: AppState,
    signed: SignedBy,
    key: String,
    fingerprint: String,
    body: T,
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for Idempotent<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let signed = request
            .extensions()
            .get::<SignedBy>()
            .cloned()
            .ok_or_else(|| Problem::internal(&"the route is not behind the signature check"))
            .map_err(IntoResponse::into_response)?;
        let key = idempotency_key(request.headers()).map_err(IntoResponse::into_response)?;
        let path = request.uri().path().to_owned();
        // The signature check has buffered the body already; reading it again is free.
        let bytes = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let (value, body) =
            crate::api::body::parse_object::<T>(&bytes).map_err(IntoResponse::into_response)?;
        Ok(Self {
            state: state.clone(),
            signed,
            key,
            fingerprint: fingerprint("POST", &path, &value),
            body,
        })
    }
}

impl<T> Idempotent<T> {
    /// The game that signed the request.
    pub fn signed(&self) -> &SignedBy {
        &self.signed
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Runs `work` with the body under the request's key. `Ok` is an answer that changed
    /// something and is stored for retries; a refusal (`Err`) changed nothing, so the key is
    /// released and a corrected retry may use it. A replay of the very same signed bytes never
    /// runs `work`: it gets the stored answer, or is refused.
    ///
    /// The claim, the work and the record of its answer run on a task of their own, so that a
    /// caller who hangs up (or a request timeout) never leaves a payment half-recorded or a key
    /// held without an answer.
    pub async fn run<W, F>(self, work: W) -> Response
    where
        W: FnOnce(T) -> F,
        F: Future<Output = Result<Answer, Problem>> + Send + 'static,
    {
        let Self {
            state,
            signed,
            key,
            fingerprint,
            body,
        } = self;
        if signed.replayed {
            return answer_replay(&state, &signed, &key, &fingerprint).await;
        }
        let work = work(body);
        let task = tokio::spawn(async move {
            let idempotency = &state.idempotency;
            let game = &signed.game;
            let lease = match idempotency.claim(game, &key, &fingerprint).await {
                Ok(Claim::Run(lease)) => lease,
                Ok(Claim::Replay { status, body }) => return (Answer::stored(status, body), true),
                Ok(Claim::InProgress) => return (key_in_use().into(), false),
                Ok(Claim::Mismatch) => {
                    let refused = Problem::unprocessable(
                        "idempotency-key-reused",
                        "this Idempotency-Key was used with a different request",
                    );
                    return (refused.into(), false);
                }
                Err(e) => return (Problem::internal(&e).into(), false),
            };
            let recorded = match work.await {
                Ok(answer) => {
                    let status = answer.status.as_u16();
                    let stored = idempotency.finish(game, &key, lease, status, &answer.body);
                    (stored.await, answer)
                }
                Err(refused) => (idempotency.release(game, &key, lease).await, refused.into()),
            };
            if let (Err(e), _) = &recorded {
                tracing::error!(error = %e, "cannot record an idempotency key");
            }
            (recorded.1, false)
        });
        match task.await {
            Ok((answer, replayed)) => answer.into_response(replayed),
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => Problem::internal(&error).into_response(),
        }
    }
}

fn key_in_use() -> Problem {
    Problem::conflict(
        "idempotency-key-in-use",
        "a request with this Idempotency-Key is still being processed; retry later",
    )
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

/// How long a replay waits, at most, for the first request's claim to be written: the first
/// records its signature a moment before it claims the key.
const REPLAY_CLAIM_WAITS_MS: [u64; 3] = [5, 20, 75];

/// The answer to a replay of the same signed bytes: the stored answer, or a refusal.
async fn answer_replay(
    state: &AppState,
    signed: &SignedBy,
    key: &str,
    fingerprint: &str,
) -> Response {
    match peek_replayed(state, signed, key, fingerprint).await {
        Ok(Peeked::Answered { status, body }) => Answer::stored(status, body).into_response(true),
        Ok(Peeked::InProgress) => key_in_use().into_response(),
        Ok(Peeked::Nothing) => AuthRefusal::from(SignatureError::Replayed).into_response(),
        Err(e) => Problem::internal(&e).into_response(),
    }
}

/// What the stored record says to a replay. Nothing found yet may be the first request between
/// its signature and its claim: a few short looks, not a refusal.
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
