//! The dispatcher: claims due events, POSTs each to its game's delivery URL, signed, and records
//! the outcomes. Claiming sets a lease on the rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL; the
//! single writer on SQLite), so two instances never send the same event at once. Delivery is
//! at least once: a game server deduplicates by `event_id`.
//!
//! A round claims up to `delivery.batch` events in one statement, sends them all at once, and
//! records every outcome in one write (a few statements for the whole round), so the delivery
//! side keeps pace with the purchases without taking the writer from them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use sqlx::Row;

use crate::config::DeliveryConfig;
use crate::games::{DeliveryTarget, GameId};
use crate::store::{Backend, Store, Tx, now_ms, placeholders};

/// One claimed event, ready to send.
struct Claimed {
    event_id: String,
    game: String,
    order_no: String,
    kind: String,
    payload: String,
    attempts: i64,
    window_started_at: i64,
}

/// What became of one send.
struct Outcome {
    event_id: String,
    attempt_no: i64,
    http_status: Option<u16>,
    /// `None` when the game acknowledged it.
    error: Option<String>,
    duration_ms: i64,
    /// For a failure: when to try again, or `None` to dead-letter it.
    retry_at: Option<i64>,
}

/// A round's outcomes, recorded in one write while the round's lease still holds.
struct Outcomes {
    lease_until: i64,
    outcomes: Vec<Outcome>,
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
        let now = now_ms();
        // Long enough for the sends and the bookkeeping; a crashed holder's events come back.
        let lease_until = now + (self.config.timeout_ms as i64) * 2 + 30_000;
        let claim = (
            lease_until,
            now,
            i64::from(self.config.batch),
            self.store.backend(),
        );
        let claimed = self
            .store
            .write(claim, |tx, (lease_until, now, batch, backend)| {
                Box::pin(claim_in(tx, *lease_until, *now, *batch, *backend))
            })
            .await?;
        let count = claimed.len();
        if count == 0 {
            return Ok(0);
        }
        let mut targets: HashMap<String, Option<DeliveryTarget>> = HashMap::new();
        for event in &claimed {
            if !targets.contains_key(&event.game) {
                let target = match GameId::parse(&event.game) {
                    Ok(game) => crate::games::delivery_target(&self.store, &game).await?,
                    Err(_) => None,
                };
                targets.insert(event.game.clone(), target);
            }
        }
        let mut sends = tokio::task::JoinSet::new();
        for event in claimed {
            let this = self.clone();
            let target = targets.get(&event.game).cloned().flatten();
            sends.spawn(async move { this.deliver(event, target).await });
        }
        let mut outcomes = Vec::with_capacity(count);
        while let Some(done) = sends.join_next().await {
            match done {
                Ok(outcome) => outcomes.push(outcome),
                Err(error) => tracing::error!(%error, "a delivery task failed"),
            }
        }
        let round = Outcomes {
            lease_until,
            outcomes,
        };
        self.store
            .write(round, |tx, round| Box::pin(record_in(tx, round)))
            .await?;
        Ok(count)
    }

    async fn deliver(&self, event: Claimed, target: Option<DeliveryTarget>) -> Outcome {
        let started = Instant::now();
        let (http_status, error) = match target {
            Some(target) => self.send(&event, &target).await,
            None => (None, Some("the game is gone".to_owned())),
        };
        let retry_at = error.as_ref().and_then(|error| {
            let now = now_ms();
            let give_up =
                now - event.window_started_at >= (self.config.give_up_after_s as i64) * 1000;
            if give_up {
                tracing::error!(event_id = %event.event_id, order_no = %event.order_no, attempts = event.attempts, %error, "delivery dead-lettered");
                None
            } else {
                Some(now + self.backoff_ms(event.attempts))
            }
        });
        Outcome {
            event_id: event.event_id,
            attempt_no: event.attempts,
            http_status,
            error,
            duration_ms: started.elapsed().as_millis() as i64,
            retry_at,
        }
    }

    async fn send(
        &self,
        event: &Claimed,
        target: &DeliveryTarget,
    ) -> (Option<u16>, Option<String>) {
        let body = event.payload.clone().into_bytes();
        let signature = delivery_signature(&target.secret, now_ms() / 1000, &body);
        let sent = self
            .http
            .post(&target.url)
            .header("content-type", "application/json")
            .header("coffer-signature", signature)
            .header("coffer-event-id", &event.event_id)
            .header("coffer-event-type", &event.kind)
            .body(body)
            .send()
            .await;
        match &sent {
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
        }
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

/// Claims up to `batch` due events with a lease until `lease_until`.
async fn claim_in(
    tx: &mut Tx,
    lease_until: i64,
    now: i64,
    batch: i64,
    backend: Backend,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let lock = match backend {
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
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(lease_until)
        .bind(now)
        .bind(batch)
        .fetch_all(&mut *tx)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(Claimed {
                event_id: row.try_get("event_id")?,
                game: row.try_get("game_id")?,
                order_no: row.try_get("order_no")?,
                kind: row.try_get("kind")?,
                payload: row.try_get("payload")?,
                attempts: row.try_get("attempts")?,
                window_started_at: row.try_get("window_started_at")?,
            })
        })
        .collect()
}

/// Records a round's outcomes, only for the events this round's lease still holds: every
/// attempt, the events delivered (and their orders, paid -> delivered), and each failure's
/// next try or dead letter.
async fn record_in(tx: &mut Tx, round: &Outcomes) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let outcomes = &round.outcomes;
    if outcomes.is_empty() {
        return Ok(());
    }
    let rows = (0..outcomes.len())
        .map(|i| format!("({})", placeholders(i * 6 + 1, 6)))
        .collect::<Vec<_>>()
        .join(", ");
    let mut attempts = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO delivery_attempts (event_id, attempt_no, at, http_status, error, duration_ms) \
         VALUES {rows} ON CONFLICT DO NOTHING"
    )))
    .persistent(false);
    for outcome in outcomes {
        attempts = attempts
            .bind(outcome.event_id.clone())
            .bind(outcome.attempt_no)
            .bind(now)
            .bind(outcome.http_status.map(i64::from))
            .bind(outcome.error.clone())
            .bind(outcome.duration_ms);
    }
    attempts.execute(&mut *tx).await?;

    let delivered: Vec<&Outcome> = outcomes.iter().filter(|o| o.error.is_none()).collect();
    if !delivered.is_empty() {
        let mut marked = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE outbox_events SET status = 'delivered', delivered_at = $1, \
             locked_until = NULL, last_error = NULL \
             WHERE locked_until = $2 AND event_id IN ({}) RETURNING order_no, kind",
            placeholders(3, delivered.len())
        )))
        .persistent(false)
        .bind(now)
        .bind(round.lease_until);
        for outcome in &delivered {
            marked = marked.bind(outcome.event_id.clone());
        }
        let marked = marked.fetch_all(&mut *tx).await?;
        // Only a paid order becomes delivered; a refunded one stays refunded.
        let paid_orders: Vec<String> = marked
            .iter()
            .filter(|row| {
                row.try_get::<String, _>("kind")
                    .is_ok_and(|kind| kind == super::EventKind::OrderPaid.as_str())
            })
            .filter_map(|row| row.try_get("order_no").ok())
            .collect();
        if !paid_orders.is_empty() {
            crate::orders::mark_delivered_in(tx, &paid_orders, now).await?;
        }
    }
    for outcome in outcomes.iter().filter(|o| o.error.is_some()) {
        let (status, next) = match outcome.retry_at {
            Some(at) => ("pending", at),
            None => ("dead", now),
        };
        sqlx::query(
            "UPDATE outbox_events SET status = $1, next_attempt_at = $2, locked_until = NULL, \
             last_error = $3 WHERE event_id = $4 AND locked_until = $5",
        )
        .bind(status)
        .bind(next)
        .bind(outcome.error.clone())
        .bind(outcome.event_id.clone())
        .bind(round.lease_until)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
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
