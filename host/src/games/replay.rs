//! The replay memory: a signed request that can change something is accepted once. Its MAC is
//! remembered, in the database that every instance shares, for as long as the signature could
//! still verify; the same bytes again are a replay (a retry is signed anew, with a new
//! timestamp). What a replay may still get is decided by the caller: the idempotency record of
//! the first request, when it carried the same Idempotency-Key.

use super::signature::{SIGNATURE_TOLERANCE_S, Verified};
use crate::store::{Store, Tx, now_ms};

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
    let used = UsedSignature {
        key_id: key_id.to_owned(),
        mac: signature.mac.clone(),
        idempotency_key: idempotency_key.map(str::to_owned),
        // A second after the last moment the signature could verify, in milliseconds.
        expires_at: (signature.timestamp + SIGNATURE_TOLERANCE_S + 1) * 1000,
    };
    store
        .write(used, |tx, used| Box::pin(remember_in(tx, used)))
        .await
}

struct UsedSignature {
    key_id: String,
    mac: String,
    idempotency_key: Option<String>,
    expires_at: i64,
}

async fn remember_in(tx: &mut Tx, used: &UsedSignature) -> Result<SignatureUse, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO used_signatures (key_id, mac, idempotency_key, expires_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(used.key_id.clone())
    .bind(used.mac.clone())
    .bind(used.idempotency_key.clone())
    .bind(used.expires_at)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(SignatureUse::First);
    }
    let stored: Option<Option<String>> = sqlx::query_scalar(
        "SELECT idempotency_key FROM used_signatures WHERE key_id = $1 AND mac = $2",
    )
    .bind(used.key_id.clone())
    .bind(used.mac.clone())
    .fetch_optional(&mut *tx)
    .await?;
    Ok(SignatureUse::Replayed {
        idempotency_key: stored.flatten(),
    })
}

/// Forgets signatures that can no longer verify; returns how many.
pub async fn purge_expired(store: &Store) -> Result<u64, sqlx::Error> {
    store
        .write(now_ms(), |tx, now| {
            Box::pin(async move {
                let done = sqlx::query("DELETE FROM used_signatures WHERE expires_at < $1")
                    .bind(*now)
                    .execute(&mut *tx)
                    .await?;
                Ok(done.rows_affected())
            })
        })
        .await
}
