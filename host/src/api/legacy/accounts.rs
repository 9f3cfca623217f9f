//! `/api/auth/...`, `/api/users...` and `/api/health`: the old account service (port 3001).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::caller::{Caller, not_allowed};
use super::{area, body_fields, fail, ok, refusal, text};
use crate::app::AppState;
use crate::legacy::{NewProfile, Profile, ProfileChange, iso_utc};
use crate::store::now_ms;

fn listed(profile: &Profile) -> Value {
    json!({
        "id": profile.id,
        "pid": profile.pid,
        "name": profile.name,
        "level": profile.level,
        "gold": profile.gold,
        "icon": profile.icon,
        "created_at": iso_utc(profile.created_at),
    })
}

/// The password exactly as typed (not trimmed, unlike other fields); empty when absent.
fn password(fields: &serde_json::Map<String, Value>) -> String {
    match fields.get("password") {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

/// `POST /api/auth/register` {pid, name, password}.
pub async fn register(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let fields = match body_fields(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let new = NewProfile {
        pid: text(&fields, "pid").unwrap_or_default(),
        name: text(&fields, "name").unwrap_or_default(),
        password: password(&fields),
    };
    match area(&state).register(new).await {
        Ok(profile) => ok(
            "注册成功",
            json!({
                "id": profile.id,
                "pid": profile.pid,
                "name": profile.name,
                "level": profile.level,
                "gold": profile.gold,
            }),
        ),
        Err(error) => refusal(error),
    }
}

/// `POST /api/auth/login` {pid, password}: the old answer plus a session token.
pub async fn login(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let fields = match body_fields(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let pid = text(&fields, "pid").unwrap_or_default();
    let password = password(&fields);
    match area(&state).login(&pid, &password).await {
        Ok((profile, session)) => {
            let mut answer = json!({
                "success": true,
                "message": "登录成功",
                "data": {
                    "id": profile.id,
                    "pid": profile.pid,
                    "name": profile.name,
                    "level": profile.level,
                    "gold": profile.gold,
                    "icon": profile.icon,
                },
            });
            // Extra fields the old client ignores; a new one sends the token as a bearer.
            answer["token"] = session.token.into();
            answer["expires_at"] = session.expires_at.into();
            axum::Json(answer).into_response()
        }
        Err(error) => refusal(error),
    }
}

/// `GET /api/users/:pid`: public, as in the old system (no password or secret in it).
pub async fn profile(State(state): State<AppState>, Path(pid): Path<String>) -> Response {
    match area(&state).profile(&pid).await {
        Ok(profile) => ok("", listed(&profile)),
        Err(error) => refusal(error),
    }
}

/// `PUT /api/users/:pid` {level?, gold?, icon?}: a player may change their own icon; level
/// and gold only the game server or an operator.
pub async fn update(
    State(state): State<AppState>,
    Path(pid): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match Caller::of(&state, &method, &uri, &headers, &body).await {
        Ok(caller) => caller,
        Err(refused) => return refused.into_response(),
    };
    let fields = match body_fields(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let number = |name: &str| -> Result<Option<i64>, Response> {
        match text(&fields, name) {
            None => Ok(None),
            Some(t) => t
                .parse()
                .map(Some)
                .map_err(|_| fail(StatusCode::OK, &format!("{name}须为整数"))),
        }
    };
    let change = match (number("level"), number("gold")) {
        (Ok(level), Ok(gold)) => ProfileChange {
            level,
            gold,
            icon: text(&fields, "icon"),
        },
        (Err(refused), _) | (_, Err(refused)) => return refused,
    };
    let allowed = if change.touches_game_state() {
        caller.is_trusted()
    } else {
        caller.is_player(&pid) || caller.is_trusted()
    };
    if !allowed {
        let why = if change.touches_game_state() {
            "等级和金币只能由游戏服务器或管理员修改"
        } else {
            "只能修改自己的资料"
        };
        return not_allowed(&caller, why);
    }
    match area(&state).update_profile(&pid, change).await {
        Ok(_) => ok("更新成功", Value::Null),
        Err(error) => refusal(error),
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    page: Option<String>,
    #[serde(default)]
    limit: Option<String>,
    #[serde(default)]
    search: Option<String>,
}

/// `GET /api/users?page&limit&search`: operators and the game server only.
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let caller = match Caller::of(&state, &method, &uri, &headers, &Bytes::new()).await {
        Ok(caller) => caller,
        Err(refused) => return refused.into_response(),
    };
    if !caller.may_read_all() {
        return not_allowed(&caller, "需要管理员权限");
    }
    let number = |value: Option<String>, default: u32| {
        value
            .filter(|v| !v.is_empty())
            .map_or(Ok(default), |v| v.parse::<u32>())
    };
    let (Ok(page), Ok(limit)) = (number(query.page, 1), number(query.limit, 20)) else {
        return fail(StatusCode::OK, "page和limit须为正整数");
    };
    let search = query.search.unwrap_or_default();
    match area(&state).list_profiles(page, limit, &search).await {
        Ok(list) => {
            let pages = (list.total + i64::from(limit) - 1) / i64::from(limit);
            ok(
                "",
                json!({
                    "users": list.users.iter().map(listed).collect::<Vec<_>>(),
                    "pagination": {
                        "page": page,
                        "limit": limit,
                        "total": list.total,
                        "pages": pages,
                    },
                }),
            )
        }
        Err(error) => refusal(error),
    }
}

/// `GET /api/health`.
pub async fn health() -> Response {
    axum::Json(json!({
        "success": true,
        "message": "服务器运行正常",
        "timestamp": iso_utc(now_ms()),
    }))
    .into_response()
}
