//! Authentication of game-server requests by their HMAC signature (see `games::signature`).

use axum::body::Body;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::problem::Problem;
use crate::app::AppState;
use crate::games::replay::{self, SignatureUse};
use crate::games::{GameId, Region, SignatureError, verify_signature};

/// The game a signed request came from; handlers take it as an `Extension`.
#[derive(Debug, Clone)]
pub struct SignedBy {
    pub game: GameId,
    pub default_region: Region,
    /// The very same signed bytes were received before, with the same Idempotency-Key: the
    /// request may only be answered from that key's record, never run again.
    pub replayed: bool,
}

/// Why a game server's request was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthRefusal {
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("this game is disabled")]
    GameDisabled,
    #[error("the signature could not be checked")]
    Internal(String),
}

impl AuthRefusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Signature(_) => StatusCode::UNAUTHORIZED,
            Self::GameDisabled => StatusCode::FORBIDDEN,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AuthRefusal {
    fn into_response(self) -> Response {
        let kind = match &self {
            Self::Signature(SignatureError::Missing) => "signature-missing",
            Self::Signature(SignatureError::Malformed) => "signature-malformed",
            Self::Signature(SignatureError::UnknownKey) => "unknown-api-key",
            Self::Signature(SignatureError::Stale) => "signature-stale",
            Self::Signature(SignatureError::Mismatch) => "signature-mismatch",
            Self::Signature(SignatureError::Replayed) => "signature-replayed",
            Self::GameDisabled => {
                return Problem::new(
                    StatusCode::FORBIDDEN,
                    "game-disabled",
                    "This game is disabled",
                )
                .into_response();
            }
            Self::Internal(error) => return Problem::internal(error).into_response(),
        };
        Problem::new(
            StatusCode::UNAUTHORIZED,
            kind,
            "The request signature was refused",
        )
        .with_detail(self.to_string())
        .into_response()
    }
}

/// Buffers the body (it is part of what is signed), checks the key and the signature, and
/// passes the request on with [`SignedBy`].
pub async fn require_signature(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let limit = state.config.server.body_limit_kib << 10;
    let Ok(bytes) = axum::body::to_bytes(body, limit).await else {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "The request body is too large",
        )
        .into_response();
    };
    let uri = parts
        .extensions
        .get::<OriginalUri>()
        .map_or_else(|| parts.uri.clone(), |u| u.0.clone());
    match verify_request(&state, &parts.method, &uri, &parts.headers, &bytes).await {
        Ok(signed) => {
            parts.extensions.insert(signed);
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// Checks a game server's `Coffer-Key` and `Coffer-Signature` over the method, the path with
/// its query, and the body.
pub async fn verify_request(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<SignedBy, AuthRefusal> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(key_id), Some(signature)) = (header("coffer-key"), header("coffer-signature")) else {
        return Err(SignatureError::Missing.into());
    };
    let key = match state.games.key(key_id.trim()).await {
        Ok(Some(key)) => key,
        Ok(None) => return Err(SignatureError::UnknownKey.into()),
        Err(e) => return Err(AuthRefusal::Internal(e.to_string())),
    };
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let now_s = crate::store::now_ms() / 1000;
    let verified = match verify_signature(
        signature,
        &key.secret,
        method.as_str(),
        path_and_query,
        body,
        now_s,
    ) {
        Ok(verified) => verified,
        Err(error) => {
            tracing::warn!(key_id = %key_id, game = %key.game_id, %error, "game request refused");
            return Err(error.into());
        }
    };
    if !key.game_enabled {
        return Err(AuthRefusal::GameDisabled);
    }
    let replayed = if can_change_something(method) {
        let idempotency_key = header("idempotency-key").map(str::trim);
        match replay::remember(&state.store, key_id.trim(), &verified, idempotency_key).await {
            Ok(SignatureUse::First) => false,
            Ok(SignatureUse::Replayed {
                idempotency_key: first,
            }) if first.is_some() && first.as_deref() == idempotency_key => true,
            Ok(SignatureUse::Replayed { .. }) => {
                tracing::warn!(key_id = %key_id, game = %key.game_id, "replayed signed request refused");
                return Err(SignatureError::Replayed.into());
            }
            Err(e) => return Err(AuthRefusal::Internal(e.to_string())),
        }
    } else {
        false
    };
    Ok(SignedBy {
        game: key.game_id,
        default_region: key.default_region,
        replayed,
    })
}

/// Whether a request of this method may change something (and so must not run twice).
fn can_change_something(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}
