//! Who is calling a legacy route: a player with a session, an operator with an admin token, the
//! game server with its signature, or nobody in particular.

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::{area, fail};
use crate::app::AppState;
use crate::config::Role;
use crate::players::Player;

/// Why the caller was refused; each route family answers it in its own shape.
pub struct Refusal {
    pub status: StatusCode,
    pub message: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        fail(self.status, &self.message)
    }
}

pub enum Caller {
    Anonymous,
    Player(Player),
    Admin(Role),
    /// The legacy game's server, by its `Coffer-Key` signature.
    GameServer,
}

impl Caller {
    /// From the request's `Authorization: Bearer` token or its game-server signature. A
    /// presented credential that is not valid is refused, never taken as anonymous.
    pub async fn of(
        state: &AppState,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Self, Refusal> {
        let refused = |status, message: &str| Refusal {
            status,
            message: message.to_owned(),
        };
        if headers.contains_key("coffer-key") {
            let signed =
                crate::api::v1::game_auth::verify_request(state, method, uri, headers, body)
                    .await
                    .map_err(|e| refused(e.status(), &format!("签名无效: {e}")))?;
            if &signed.game != area(state).game() {
                return Err(refused(StatusCode::FORBIDDEN, "该游戏无权访问"));
            }
            return Ok(Self::GameServer);
        }
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Ok(Self::Anonymous);
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .unwrap_or_default();
        if let Some(holder) = state.config.admin.authenticate(token) {
            return Ok(Self::Admin(holder.role));
        }
        match area(state).session_player(token).await {
            Some(player) => Ok(Self::Player(player)),
            None => Err(refused(StatusCode::UNAUTHORIZED, "登录已失效，请重新登录")),
        }
    }

    /// Reads of other players' data: operators (any role) and the game server.
    pub fn may_read_all(&self) -> bool {
        matches!(self, Self::Admin(_) | Self::GameServer)
    }

    /// Operators (operator role or above) and the game server: may change game state (level,
    /// gold) and say whose an anonymous payment was.
    pub fn is_trusted(&self) -> bool {
        matches!(self, Self::Admin(role) if *role >= Role::Operator)
            || matches!(self, Self::GameServer)
    }

    /// Whether this is the player `pid` themself.
    pub fn is_player(&self, pid: &str) -> bool {
        matches!(self, Self::Player(p) if p.username == pid)
    }
}

/// 401 for nobody, 403 for somebody without the right.
pub fn not_allowed(caller: &Caller, message: &str) -> Response {
    match caller {
        Caller::Anonymous => fail(StatusCode::UNAUTHORIZED, "请先登录"),
        _ => fail(StatusCode::FORBIDDEN, message),
    }
}
