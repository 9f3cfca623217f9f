//! A sample game server: what a game's backend does with Coffer's deliveries.
//!
//! 1. Check `Coffer-Signature: t=<unix>,v1=<hex>`: HMAC-SHA256 with the game's delivery secret
//!    over `"<t>.<raw body>"`, compared in constant time, `t` within five minutes.
//! 2. Deduplicate by `event_id`: Coffer delivers at least once, so the same event may come
//!    again (a retry after a lost answer, an operator's re-delivery).
//! 3. Apply it: `order.paid` grants the order's items; `order.refunded` takes back what the
//!    refund covers.
//! 4. Answer 2xx only once the grant is stored; anything else makes Coffer retry.
//!
//! State lives in memory (a real game writes to its own database, in the same transaction as
//! the event id). Test hooks: `PUT /_control` makes it fail or go down; `GET /_state` shows
//! inventories and what was applied.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post, put};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

const TOLERANCE_S: i64 = 300;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Control {
    /// Answer 500 to the next N deliveries.
    pub fail_next: u32,
    /// Answer 503 to everything while set.
    pub down: bool,
    /// The delivery secret, when set after the start.
    pub secret: Option<String>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Ledger {
    /// player -> item -> quantity.
    pub inventories: BTreeMap<String, BTreeMap<String, i64>>,
    /// Events applied, in order.
    pub applied: Vec<String>,
    /// Deliveries received (valid signature), duplicates included.
    pub received: u64,
    /// Deliveries refused for their signature.
    pub refused: u64,
    /// Orders granted, with how many times (must stay 1).
    pub grants_per_order: BTreeMap<String, u32>,
    /// When each order was first granted, Unix milliseconds (for latency measurements).
    pub granted_at_ms: BTreeMap<String, i64>,
}

#[derive(Default)]
pub struct GameState {
    secret: Mutex<String>,
    control: Mutex<Control>,
    ledger: Mutex<Ledger>,
    seen: Mutex<HashSet<String>>,
}

pub fn verify(secret: &str, header: &str, body: &[u8], now_s: i64) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    if now_s.abs_diff(t) > TOLERANCE_S as u64 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key size");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&v1).is_ok()
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

async fn receive(State(state): State<Arc<GameState>>, headers: HeaderMap, body: Bytes) -> Response {
    {
        let mut control = state.control.lock().unwrap();
        if control.down {
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        if control.fail_next > 0 {
            control.fail_next -= 1;
            return (StatusCode::INTERNAL_SERVER_ERROR, "try again").into_response();
        }
    }
    let secret = state.secret.lock().unwrap().clone();
    let signature = headers
        .get("coffer-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !verify(&secret, signature, &body, now_s()) {
        state.ledger.lock().unwrap().refused += 1;
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    let Ok(event) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let event_id = event["event_id"].as_str().unwrap_or_default().to_owned();
    let order = &event["order"];
    let mut ledger = state.ledger.lock().unwrap();
    ledger.received += 1;
    // Idempotency: the event id is recorded with the grant, atomically (one lock here; one
    // database transaction in a real game).
    if !state.seen.lock().unwrap().insert(event_id.clone()) {
        return (StatusCode::OK, "already applied").into_response();
    }
    let player = order["player_id"].as_str().unwrap_or_default().to_owned();
    // This game takes the items back only when the whole order is refunded; a partial refund
    // (a goodwill gesture, say) leaves them. Each game decides its own rule.
    let sign = match (event["type"].as_str(), order["status"].as_str()) {
        (Some("order.paid"), _) => 1,
        (Some("order.refunded"), Some("refunded")) => -1,
        _ => 0,
    };
    if sign != 0 {
        let order_no = order["order_no"].as_str().unwrap_or_default().to_owned();
        for grant in order["grants"].as_array().into_iter().flatten() {
            let item = grant["item"].as_str().unwrap_or_default().to_owned();
            let quantity = grant["quantity"].as_i64().unwrap_or(0);
            *ledger
                .inventories
                .entry(player.clone())
                .or_default()
                .entry(item)
                .or_default() += sign * quantity;
        }
        if sign > 0 {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            ledger
                .granted_at_ms
                .entry(order_no.clone())
                .or_insert(now_ms);
            *ledger.grants_per_order.entry(order_no).or_default() += 1;
        }
    }
    ledger.applied.push(event_id);
    (StatusCode::OK, "ok").into_response()
}

async fn state_view(State(state): State<Arc<GameState>>) -> Json<Ledger> {
    Json(state.ledger.lock().unwrap().clone())
}

async fn set_control(
    State(state): State<Arc<GameState>>,
    Json(control): Json<Control>,
) -> Json<Control> {
    if let Some(secret) = &control.secret {
        *state.secret.lock().unwrap() = secret.clone();
    }
    *state.control.lock().unwrap() = Control {
        secret: None,
        ..control.clone()
    };
    Json(control)
}

pub fn router(state: Arc<GameState>) -> Router {
    Router::new()
        .route("/coffer/events", post(receive))
        .route("/_state", get(state_view))
        .route("/_control", put(set_control))
        .with_state(state)
}

pub struct RunningGameServer {
    pub addr: SocketAddr,
    /// Where Coffer should deliver: `http://<addr>/coffer/events`.
    pub delivery_url: String,
    pub state: Arc<GameState>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningGameServer {
    pub fn set_secret(&self, secret: &str) {
        *self.state.secret.lock().unwrap() = secret.to_owned();
    }

    pub fn control(&self, control: Control) {
        *self.state.control.lock().unwrap() = control;
    }

    pub fn ledger(&self) -> Ledger {
        self.state.ledger.lock().unwrap().clone()
    }
}

impl Drop for RunningGameServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the server on `listen` with the game's delivery secret.
pub async fn start(listen: SocketAddr, secret: &str) -> anyhow::Result<RunningGameServer> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let state = Arc::new(GameState::default());
    *state.secret.lock().unwrap() = secret.to_owned();
    let app = router(state.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(RunningGameServer {
        addr,
        delivery_url: format!("http://{addr}/coffer/events"),
        state,
        task,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn checks_the_documented_example() {
        // printf '1767225600.{"a":1}' | openssl dgst -sha256 -hmac cds_demo
        let header =
            "t=1767225600,v1=82238c78c8182ea87e7c9b78fb8f267f6fbc6ac7a99d7f5d800314ea4d0ab6ae";
        assert!(super::verify(
            "cds_demo",
            header,
            br#"{"a":1}"#,
            1_767_225_600
        ));
        assert!(!super::verify(
            "cds_demo",
            header,
            br#"{"a":2}"#,
            1_767_225_600
        ));
        assert!(!super::verify(
            "cds_other",
            header,
            br#"{"a":1}"#,
            1_767_225_600
        ));
        assert!(!super::verify(
            "cds_demo",
            header,
            br#"{"a":1}"#,
            1_767_225_600 + 301
        ));
    }
}
