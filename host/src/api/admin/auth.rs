use std::sync::Arc;

use axum::extract::{OriginalUri, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::api::problem::Problem;
use crate::app::AppState;
use crate::config::{AdminConfig, Role};

/// The least role a group of routes needs, with the tokens to check against.
#[derive(Clone)]
pub struct RequireRole {
    admin: Arc<AdminConfig>,
    role: Role,
}

impl RequireRole {
    pub fn new(state: &AppState, role: Role) -> Self {
        Self {
            admin: Arc::new(state.config.admin.clone()),
            role,
        }
    }
}

/// 401 without a valid bearer token, 403 when the token's role is too low.
pub async fn require_role(
    State(required): State<RequireRole>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme name is case-insensitive (RFC 9110).
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token);
    let Some(holder) = presented.and_then(|t| required.admin.authenticate(t.trim())) else {
        let mut response = Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "A valid admin bearer token is required",
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, "Bearer".parse().unwrap());
        return response;
    };
    // Nested routers see a path without the /v1/admin prefix; log the one the client sent.
    let path = request
        .extensions()
        .get::<OriginalUri>()
        .map_or_else(|| request.uri().path().to_owned(), |u| u.path().to_owned());
    if holder.role < required.role {
        tracing::warn!(token = %holder.name, role = ?holder.role, needed = ?required.role, %path, "admin request refused: role too low");
        return Problem::new(StatusCode::FORBIDDEN, "forbidden", "Role too low")
            .with_detail(format!("this route needs the {:?} role", required.role))
            .into_response();
    }
    tracing::info!(token = %holder.name, method = %request.method(), %path, "admin request");
    next.run(request).await
}
