//! The replay memory: a signed request that can change something is accepted once. Its MAC is
//! remembered, in the database that every instance shares, for as long as the signature could
//! still verify; the same bytes again are a replay (a retry is signed anew, with a new
//! timestamp). What a replay may still get is decided by the caller: the idempotency record of
//! the first request, when it carried the same Idempotency-Key.

use super::signature::{SIGNATURE_TOLERANCE_S, Verified};
use crate::store::{Store, is_unique_violation, now_ms};

/// What became of a signature handed to [`remember`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureUse {
    /// Never seen: the request may run.
    First,
    /// Seen before, with this Idempotency-Key (if any).
    Replayed { idempotency_key: Option<String> },
}

/// Remembers `signature` of key `key_id` (with the request's Idempotency-Key), or reports that
/// it was used before.
pub async fn remember(
    store: &Store,
    key_id: &str,
    signature: &Verified,
    idempotency_key: Option<&str>,
) -> Result<SignatureUse, sqlx::Error> {
    // A second after the last moment the signature could verify, in milliseconds.
    let expires_at = (signature.timestamp + SIGNATURE_TOLERANCE_S + 1) * 1000;
    let inserted = sqlx::query(
        "INSERT INTO used_signatures (key_id, mac, idempotency_key, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(key_id.to_owned())
    .bind(signature.mac.clone())
    .bind(idempotency_key.map(str::to_owned))
    .bind(expires_at)
    .execute(store.writer())
    .await;
    match inserted {
        Ok(_) => Ok(SignatureUse::First),
        Err(e) if is_unique_violation(&e) => {
            let stored: Option<Option<String>> = sqlx::query_scalar(
                "SELECT idempotency_key FROM used_signatures WHERE key_id = $1 AND mac = $2",
            )
            .bind(key_id.to_owned())
            .bind(signature.mac.clone())
            .fetch_optional(store.writer())
            .await?;
            Ok(SignatureUse::Replayed {
                idempotency_key: stored.flatten(),
            })
        }
        Err(e) => Err(e),
    }
}

/// Forgets signatures that can no longer verify; returns how many.
pub async fn purge_expired(store: &Store) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM used_signatures WHERE expires_at < $1")
        .bind(now_ms())
        .execute(store.writer())
        .await?;
    Ok(done.rows_affected())
}
