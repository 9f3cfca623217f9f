//! The dispatcher: claims due events, POSTs each to its game's delivery URL, signed, and records
//! the outcome. Claiming sets a lease on the rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL; the
//! single writer on SQLite), so two instances never send the same event at once. Delivery is
//! at least once: a game server deduplicates by `event_id`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use sqlx::Row;

use crate::config::DeliveryConfig;
use crate::orders::{OrderNo, OrderStatus, transition};
use crate::store::{Backend, Store, now_ms};

/// One claimed event, ready to send.
struct Claimed {
    event_id: String,
    order_no: String,
    kind: String,
    payload: String,
    attempts: i64,
    window_started_at: i64,
    /// The lease this claim holds; the outcome is recorded only while it still holds it.
    lease_until: i64,
    url: String,
    secret: String,
}

#[derive(Clone)]
pub struct Dispatcher {
    store: Store,
    config: DeliveryConfig,
    http: reqwest::Client,
}

/// `t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`: what the game checks.
pub fn delivery_signature(secret: &str, unix_seconds: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key size");
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={unix_seconds},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

impl Dispatcher {
    pub fn new(store: Store, config: DeliveryConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("coffer/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("a client with these settings always builds");
        Self {
            store,
            config,
            http,
        }
    }

    /// Runs until the task is dropped.
    pub async fn run(self: Arc<Self>) {
        loop {
            let sent = match self.dispatch_once().await {
                Ok(n) => n,
                Err(error) => {
                    tracing::warn!(%error, "delivery round failed");
                    0
                }
            };
            if sent == 0 {
                tokio::time::sleep(Duration::from_millis(self.config.poll_ms)).await;
            }
        }
    }

    /// Claims and sends one batch; returns how many events were attempted.
    pub async fn dispatch_once(&self) -> Result<usize, sqlx::Error> {
        let claimed = self.claim().await?;
        let count = claimed.len();
        let mut sends = tokio::task::JoinSet::new();
        for event in claimed {
            let this = self.clone();
            sends.spawn(async move { this.deliver(event).await });
        }
        while let Some(done) = sends.join_next().await {
            if let Ok(Err(error)) = done {
                tracing::warn!(%error, "cannot record a delivery");
            }
        }
        Ok(count)
    }

    async fn claim(&self) -> Result<Vec<Claimed>, sqlx::Error> {
        let now = now_ms();
        // Long enough for the send and the bookkeeping; a crashed holder's events come back.
        let lease_until = now + (self.config.timeout_ms as i64) * 2 + 30_000;
        let lock = match self.store.backend() {
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE outbox_events SET locked_until = $1, attempts = attempts + 1 \
             WHERE event_id IN (SELECT event_id FROM outbox_events \
               WHERE status = 'pending' AND next_attempt_at <= $2 \
               AND (locked_until IS NULL OR locked_until < $2) \
               ORDER BY next_attempt_at LIMIT $3 {lock}) \
             RETURNING event_id, game_id, order_no, kind, payload, attempts, window_started_at"
        );
        let mut tx = self.store.begin_write().await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(lease_until)
            .bind(now)
            .bind(i64::from(self.config.batch))
            .fetch_all(&mut *tx)
            .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in rows {
            let game_id: String = row.try_get("game_id")?;
            let game = sqlx::query("SELECT delivery_url, delivery_secret FROM games WHERE id = $1")
                .bind(game_id)
                .fetch_one(&mut *tx)
                .await?;
            claimed.push(Claimed {
                event_id: row.try_get("event_id")?,
                order_no: row.try_get("order_no")?,
                kind: row.try_get("kind")?,
                payload: row.try_get("payload")?,
                attempts: row.try_get("attempts")?,
                window_started_at: row.try_get("window_started_at")?,
                lease_until,
                url: game.try_get("delivery_url")?,
                secret: game.try_get("delivery_secret")?,
            });
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn deliver(&self, event: Claimed) -> Result<(), sqlx::Error> {
        let started = Instant::now();
        let body = event.payload.clone().into_bytes();
        let signature = delivery_signature(&event.secret, now_ms() / 1000, &body);
        let sent = self
            .http
            .post(&event.url)
            .header("content-type", "application/json")
            .header("coffer-signature", signature)
            .header("coffer-event-id", &event.event_id)
            .header("coffer-event-type", &event.kind)
            .body(body)
            .send()
            .await;
        let duration_ms = started.elapsed().as_millis() as i64;
        let (http_status, error) = match &sent {
            Ok(response) if response.status().is_success() => {
                (Some(response.status().as_u16()), None)
            }
            Ok(response) => (
                Some(response.status().as_u16()),
                Some(format!("the game answered {}", response.status())),
            ),
            Err(e) if e.is_timeout() => (None, Some("the game did not answer in time".to_owned())),
            Err(_) => (
                None,
                Some("cannot reach the game's delivery URL".to_owned()),
            ),
        };
        self.record(&event, http_status, error, duration_ms).await
    }

    /// Records the attempt and what becomes of the event, in one transaction.
    async fn record(
        &self,
        event: &Claimed,
        http_status: Option<u16>,
        error: Option<String>,
        duration_ms: i64,
    ) -> Result<(), sqlx::Error> {
        let now = now_ms();
        let mut tx = self.store.begin_write().await?;
        sqlx::query(
            "INSERT INTO delivery_attempts (event_id, attempt_no, at, http_status, error, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(event.event_id.clone())
        .bind(event.attempts)
        .bind(now)
        .bind(http_status.map(i64::from))
        .bind(error.clone())
        .bind(duration_ms)
        .execute(&mut *tx)
        .await?;
        match &error {
            None => {
                let recorded = sqlx::query(
                    "UPDATE outbox_events SET status = 'delivered', delivered_at = $1, \
                     locked_until = NULL, last_error = NULL WHERE event_id = $2 AND locked_until = $3",
                )
                .bind(now)
                .bind(event.event_id.clone())
                .bind(event.lease_until)
                .execute(&mut *tx)
                .await?;
                if recorded.rows_affected() == 1
                    && event.kind == super::EventKind::OrderPaid.as_str()
                    && let Ok(order_no) = OrderNo::parse(&event.order_no)
                {
                    // Only a paid order becomes delivered; a refunded one stays refunded.
                    let _ = transition(
                        &mut tx,
                        &order_no,
                        OrderStatus::Paid,
                        OrderStatus::Delivered,
                        "the game acknowledged order.paid",
                    )
                    .await
                    .map_err(|e| tracing::error!(%e, "cannot mark an order delivered"));
                }
            }
            Some(error) => {
                let give_up =
                    now - event.window_started_at >= (self.config.give_up_after_s as i64) * 1000;
                let delay = self.backoff_ms(event.attempts);
                let status = if give_up { "dead" } else { "pending" };
                if give_up {
                    tracing::error!(event_id = %event.event_id, order_no = %event.order_no, attempts = event.attempts, %error, "delivery dead-lettered");
                }
                sqlx::query(
                    "UPDATE outbox_events SET status = $1, next_attempt_at = $2, locked_until = NULL, \
                     last_error = $3 WHERE event_id = $4 AND locked_until = $5",
                )
                .bind(status)
                .bind(now + delay)
                .bind(error.clone())
                .bind(event.event_id.clone())
                .bind(event.lease_until)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await
    }

    /// Exponential backoff with jitter: base x 2^(attempt-1), capped, then a random 50-100 %
    /// of it so that retries after an outage do not arrive all at once.
    fn backoff_ms(&self, attempts: i64) -> i64 {
        let exponent = (attempts.max(1) - 1).min(30) as u32;
        let full = self
            .config
            .retry_base_ms
            .saturating_mul(1u64 << exponent)
            .min(self.config.retry_max_ms);
        let mut byte = [0u8; 1];
        getrandom::fill(&mut byte).expect("the operating system's random source works");
        let jittered = full / 2 + (full / 2) * u64::from(byte[0]) / 255;
        jittered as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_time_and_body() {
        // printf '1767225600.{"a":1}' | openssl dgst -sha256 -hmac cds_demo
        let header = delivery_signature("cds_demo", 1_767_225_600, br#"{"a":1}"#);
        assert_eq!(
            header,
            "t=1767225600,v1=82238c78c8182ea87e7c9b78fb8f267f6fbc6ac7a99d7f5d800314ea4d0ab6ae"
        );
        assert_ne!(
            header,
            delivery_signature("cds_demo", 1_767_225_601, br#"{"a":1}"#)
        );
        assert_ne!(
            header,
            delivery_signature("cds_other", 1_767_225_600, br#"{"a":1}"#)
        );
    }
}
