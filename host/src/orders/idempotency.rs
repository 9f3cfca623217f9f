//! Idempotency keys, with Stripe's semantics: the same key with the same request gets the
//! same stored answer; with a different request, 422; while the first request with that key
//! is still running, 409. Keys are per game and kept for `idempotency_ttl_h` hours.
//!
//! A key held by a request whose process died (killed, crashed) is taken over by the first
//! retry as soon as the death is known: at once after that process restarted, within
//! `store::instance::DEAD_AFTER_MS` otherwise, and after `idempotency_lock_s` at the latest.
//!
//! An answer is stored once the request changed something (an order exists). A request
//! refused before that (bad input, sold out) stores nothing, so it may be fixed and retried
//! with the same key.

use sha2::{Digest, Sha256};
use sqlx::Row;

use crate::games::GameId;
use crate::store::{Store, Tx, instance, now_ms};

/// What to do with a request that carries a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First time (or the earlier holder died): run the request, then `finish` or `release`
    /// with this lease, which proves the key is still ours.
    Run(Lease),
    /// Already answered: send this again.
    Replay { status: u16, body: String },
    /// Another request with this key is running.
    InProgress,
    /// The key was used for a different request.
    Mismatch,
}

/// What [`Idempotency::peek`] found for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peeked {
    /// The request finished: its stored answer.
    Answered { status: u16, body: String },
    /// The request is still running.
    InProgress,
    /// No answer to give: unknown, expired, released, or a different request.
    Nothing,
}

/// Proof of holding a key: the claim's time. A holder whose key was taken over (it looked
/// dead) can neither store its answer over the new holder's nor delete the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease(i64);

/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// A digest of what makes two requests "the same": method, path and the body's JSON value
/// (so whitespace and key order do not matter). Card numbers and codes never reach it.
pub fn fingerprint(method: &str, path: &str, body: &serde_json::Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b"\n");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(redact_card(body).to_string().as_bytes());
    hex::encode(hasher.finalize())
}

/// The body with `card` reduced to its last four digits and expiry: enough to tell two cards
/// apart, nothing a thief could use. (serde_json sorts object keys, so the text is canonical.)
fn redact_card(body: &serde_json::Value) -> serde_json::Value {
    let mut body = body.clone();
    if let Some(card) = body.get_mut("card").and_then(|c| c.as_object_mut()) {
        let last4 = card
            .get("number")
            .and_then(|n| n.as_str())
            .map(|n| n.get(n.len().saturating_sub(4)..).unwrap_or("").to_owned());
        card.remove("cvc");
        card.insert("number".into(), last4.into());
    }
    body
}

pub struct Idempotency {
    store: Store,
    /// This process's instance id, recorded with each key it holds.
    instance: String,
    lock_ms: i64,
    ttl_ms: i64,
}

impl Idempotency {
    pub fn new(store: Store, instance: &str, lock_s: u64, ttl_h: u64) -> Self {
        Self {
            store,
            instance: instance.to_owned(),
            lock_ms: (lock_s as i64) * 1000,
            ttl_ms: (ttl_h as i64) * 3600 * 1000,
        }
    }

    /// Claims `key` for a request with this fingerprint.
    pub async fn claim(
        &self,
        game: &GameId,
        key: &str,
        fingerprint: &str,
    ) -> Result<Claim, sqlx::Error> {
        let ask = ClaimAsk {
            game: game.as_str().to_owned(),
            key: key.to_owned(),
            fingerprint: fingerprint.to_owned(),
            instance: self.instance.clone(),
            now: now_ms(),
            ttl_ms: self.ttl_ms,
            lock_ms: self.lock_ms,
        };
        self.store
            .write(ask, |tx, ask| Box::pin(claim_in(tx, ask)))
            .await
    }

    /// What a replayed request may get, without claiming anything.
    pub async fn peek(
        &self,
        game: &GameId,
        key: &str,
        fingerprint: &str,
    ) -> Result<Peeked, sqlx::Error> {
        let row = sqlx::query(
            "SELECT request_sha256, state, response_status, response_body, created_at \
             FROM idempotency_keys WHERE game_id = $1 AND idempotency_key = $2",
        )
        .bind(game.as_str().to_owned())
        .bind(key.to_owned())
        .fetch_optional(self.store.pool())
        .await?;
        let Some(row) = row.filter(|r| {
            r.try_get::<i64, _>("created_at")
                .is_ok_and(|at| at >= now_ms() - self.ttl_ms)
        }) else {
            return Ok(Peeked::Nothing);
        };
        if row.try_get::<String, _>("request_sha256")? != fingerprint {
            return Ok(Peeked::Nothing);
        }
        if row.try_get::<String, _>("state")? != "done" {
            return Ok(Peeked::InProgress);
        }
        let status: i64 = row.try_get("response_status")?;
        Ok(Peeked::Answered {
            status: status as u16,
            body: row.try_get("response_body")?,
        })
    }

    /// Stores the answer for later replays.
    pub async fn finish(
        &self,
        game: &GameId,
        key: &str,
        lease: Lease,
        status: u16,
        body: &str,
    ) -> Result<(), sqlx::Error> {
        let answer = (
            game.as_str().to_owned(),
            key.to_owned(),
            lease.0,
            i64::from(status),
            body.to_owned(),
        );
        self.store
            .write(answer, |tx, (game, key, lease, status, body)| {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE idempotency_keys SET state = 'done', response_status = $1, \
                         response_body = $2 WHERE game_id = $3 AND idempotency_key = $4 \
                         AND state = 'running' AND locked_at = $5",
                    )
                    .bind(*status)
                    .bind(body.clone())
                    .bind(game.clone())
                    .bind(key.clone())
                    .bind(*lease)
                    .execute(&mut *tx)
                    .await?;
                    Ok(())
                })
            })
            .await
    }

    /// Forgets a key whose request changed nothing, so it can be retried.
    pub async fn release(&self, game: &GameId, key: &str, lease: Lease) -> Result<(), sqlx::Error> {
        let held = (game.as_str().to_owned(), key.to_owned(), lease.0);
        self.store
            .write(held, |tx, (game, key, lease)| {
                Box::pin(async move {
                    sqlx::query(
                        "DELETE FROM idempotency_keys WHERE game_id = $1 AND idempotency_key = $2 \
                         AND state = 'running' AND locked_at = $3",
                    )
                    .bind(game.clone())
                    .bind(key.clone())
                    .bind(*lease)
                    .execute(&mut *tx)
                    .await?;
                    Ok(())
                })
            })
            .await
    }

    /// Forgets keys older than the TTL; returns how many.
    pub async fn purge_expired(&self) -> Result<u64, sqlx::Error> {
        self.store
            .write(now_ms() - self.ttl_ms, |tx, before| {
                Box::pin(async move {
                    let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                        .bind(*before)
                        .execute(&mut *tx)
                        .await?;
                    Ok(done.rows_affected())
                })
            })
            .await
    }
}

/// A claim, as the write job sees it.
struct ClaimAsk {
    game: String,
    key: String,
    fingerprint: String,
    instance: String,
    now: i64,
    ttl_ms: i64,
    lock_ms: i64,
}

async fn claim_in(tx: &mut Tx, ask: &ClaimAsk) -> Result<Claim, sqlx::Error> {
    let insert = || {
        sqlx::query(
            "INSERT INTO idempotency_keys (game_id, idempotency_key, request_sha256, state, \
             response_status, response_body, created_at, locked_at, instance_id) \
             VALUES ($1, $2, $3, 'running', NULL, NULL, $4, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(ask.game.clone())
        .bind(ask.key.clone())
        .bind(ask.fingerprint.clone())
        .bind(ask.now)
        .bind(ask.instance.clone())
    };
    if insert().execute(&mut *tx).await?.rows_affected() == 1 {
        return Ok(Claim::Run(Lease(ask.now)));
    }
    let Some(row) = sqlx::query(
        "SELECT request_sha256, state, response_status, response_body, created_at, locked_at, \
         instance_id FROM idempotency_keys WHERE game_id = $1 AND idempotency_key = $2",
    )
    .bind(ask.game.clone())
    .bind(ask.key.clone())
    .fetch_optional(&mut *tx)
    .await?
    else {
        // Written and gone within this transaction: cannot happen; be safe.
        return Ok(Claim::InProgress);
    };
    let created_at: i64 = row.try_get("created_at")?;
    if created_at < ask.now - ask.ttl_ms {
        // Expired but not yet purged: forget it (only that old row) and claim afresh.
        sqlx::query(
            "DELETE FROM idempotency_keys \
             WHERE game_id = $1 AND idempotency_key = $2 AND created_at = $3",
        )
        .bind(ask.game.clone())
        .bind(ask.key.clone())
        .bind(created_at)
        .execute(&mut *tx)
        .await?;
        insert().execute(&mut *tx).await?;
        return Ok(Claim::Run(Lease(ask.now)));
    }
    if row.try_get::<String, _>("request_sha256")? != ask.fingerprint {
        return Ok(Claim::Mismatch);
    }
    if row.try_get::<String, _>("state")? == "done" {
        let status: i64 = row.try_get("response_status")?;
        return Ok(Claim::Replay {
            status: status as u16,
            body: row.try_get("response_body")?,
        });
    }
    // Running. If its holder is gone (its instance died: restarted, or silent) or has held the
    // key too long, take it over, atomically, so that only one retry does.
    let locked_at: i64 = row.try_get("locked_at")?;
    let holder: Option<String> = row.try_get("instance_id")?;
    let holder_gone = match holder.as_deref() {
        Some(holder) if holder != ask.instance => !instance::is_alive(&mut *tx, holder).await?,
        _ => false,
    };
    if holder_gone || locked_at < ask.now - ask.lock_ms {
        let taken = sqlx::query(
            "UPDATE idempotency_keys SET locked_at = $1, instance_id = $5 \
             WHERE game_id = $2 AND idempotency_key = $3 AND state = 'running' AND locked_at = $4",
        )
        .bind(ask.now)
        .bind(ask.game.clone())
        .bind(ask.key.clone())
        .bind(locked_at)
        .bind(ask.instance.clone())
        .execute(&mut *tx)
        .await?;
        if taken.rows_affected() == 1 {
            return Ok(Claim::Run(Lease(ask.now)));
        }
    }
    Ok(Claim::InProgress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_ignore_layout_and_never_see_the_card() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"sku":"x","card":{"number":"4242424242424242","cvc":"123"}}"#)
                .unwrap();
        let b: serde_json::Value = serde_json::from_str(
            r#"{ "card": {"cvc":"999", "number":"4000000000004242"}, "sku": "x" }"#,
        )
        .unwrap();
        assert_eq!(
            fingerprint("POST", "/v1/orders", &a),
            fingerprint("POST", "/v1/orders", &b)
        );
        let c: serde_json::Value = serde_json::from_str(r#"{"sku":"y"}"#).unwrap();
        assert_ne!(
            fingerprint("POST", "/v1/orders", &a),
            fingerprint("POST", "/v1/orders", &c)
        );
        assert_ne!(
            fingerprint("POST", "/v1/orders", &c),
            fingerprint("POST", "/v1/other", &c)
        );
        let redacted = redact_card(&a).to_string();
        assert!(
            !redacted.contains("424242424242") && !redacted.contains("123"),
            "{redacted}"
        );
    }
}
