//! Authentication of game-server requests by their HMAC signature (see `games::signature`).

use axum::body::Body;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::problem::Problem;
use crate::app::AppState;
use crate::games::{GameId, Region, SignatureError, verify_signature};

/// The game a signed request came from; handlers take it as an `Extension`.
#[derive(Debug, Clone)]
pub struct SignedBy {
    pub game: GameId,
    pub default_region: Region,
}

fn unauthorized(error: SignatureError) -> Response {
    let kind = match error {
        SignatureError::Missing => "signature-missing",
        SignatureError::Malformed => "signature-malformed",
        SignatureError::UnknownKey => "unknown-api-key",
        SignatureError::Stale => "signature-stale",
        SignatureError::Mismatch => "signature-mismatch",
    };
    Problem::new(
        StatusCode::UNAUTHORIZED,
        kind,
        "The request signature was refused",
    )
    .with_detail(error.to_string())
    .into_response()
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
        Err(refusal) => refusal,
    }
}

/// Checks a game server's `Coffer-Key` and `Coffer-Signature` over the method, the path with
/// its query, and the body. The refusal is a ready answer.
pub async fn verify_request(
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<SignedBy, Response> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(key_id), Some(signature)) = (header("coffer-key"), header("coffer-signature")) else {
        return Err(unauthorized(SignatureError::Missing));
    };
    let key = match crate::games::find_key(&state.store, key_id.trim()).await {
        Ok(Some(key)) => key,
        Ok(None) => return Err(unauthorized(SignatureError::UnknownKey)),
        Err(e) => return Err(Problem::internal(&e).into_response()),
    };
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let now_s = crate::store::now_ms() / 1000;
    if let Err(error) = verify_signature(
        signature,
        &key.secret,
        method.as_str(),
        path_and_query,
        body,
        now_s,
    ) {
        tracing::warn!(key_id = %key_id, game = %key.game_id, %error, "game request refused");
        return Err(unauthorized(error));
    }
    if !key.game_enabled {
        return Err(Problem::new(
            StatusCode::FORBIDDEN,
            "game-disabled",
            "This game is disabled",
        )
        .into_response());
    }
    Ok(SignedBy {
        game: key.game_id,
        default_region: key.default_region,
    })
}
