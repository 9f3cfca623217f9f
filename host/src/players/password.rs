//! Password hashing with Argon2id. Hashing is slow on purpose, so it runs on a blocking thread.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::PasswordHashConfig;

/// Shortest and longest passwords accepted (in characters). The upper bound keeps a request
/// from making the server hash megabytes.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=128;

/// How long a request waits for a free hashing slot before being told to come back later.
const HASHING_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing slot is busy: a flood of logins or registrations.
    #[error("too many password checks at once; retry shortly")]
    Busy,
    #[error("{0}")]
    Failed(String),
}

#[derive(Clone)]
pub struct PasswordHasherConfig {
    params: Params,
    /// Argon2 is memory- and CPU-hard on purpose; unauthenticated callers must not be able to
    /// start more of it at once than there are cores (each one takes `memory_kib`).
    slots: std::sync::Arc<tokio::sync::Semaphore>,
    /// A hash of nothing anyone knows, checked when the account does not exist, so that a
    /// login for an unknown name takes as long as one for a known name.
    decoy: std::sync::Arc<String>,
}

impl PasswordHasherConfig {
    pub fn new(config: &PasswordHashConfig) -> Result<Self, String> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|e| format!("players.password_hash: {e}"))?;
        let decoy = hash_with(&params, &crate::store::random_token(""))?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Self {
            params,
            slots: std::sync::Arc::new(tokio::sync::Semaphore::new(cores)),
            decoy: std::sync::Arc::new(decoy),
        })
    }

    async fn slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, HashError> {
        let acquire = self.slots.clone().acquire_owned();
        match tokio::time::timeout(HASHING_WAIT, acquire).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(HashError::Busy),
        }
    }

    /// A PHC string (`$argon2id$v=19$m=...`), with a fresh random salt.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let permit = self.slot().await?;
        let params = self.params.clone();
        let hashed = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hash_with(&params, &password)
        })
        .await
        .map_err(|e| HashError::Failed(e.to_string()))?;
        hashed.map_err(HashError::Failed)
    }

    /// Whether `password` matches `phc` (or the decoy, when there is no account).
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, HashError> {
        let permit = self.slot().await?;
        let exists = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.decoy.as_ref().clone());
        let matched = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let Ok(parsed) = PasswordHash::new(&phc) else {
                return false;
            };
            // The hash's own parameters are used, so older hashes keep verifying after the
            // configured cost changes.
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .await
        .unwrap_or(false);
        Ok(matched && exists)
    }
}

fn hash_with(params: &Params, password: &str) -> Result<String, String> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasherConfig {
        PasswordHasherConfig::new(&PasswordHashConfig {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn hashes_are_argon2id_salted_and_verify_only_the_password() {
        let hasher = cheap();
        let a = hasher.hash("correct horse".into()).await.unwrap();
        let b = hasher.hash("correct horse".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        let verify = |password: &str, phc: Option<String>| hasher.verify(password.into(), phc);
        assert!(verify("correct horse", Some(a.clone())).await.unwrap());
        assert!(!verify("correct horse!", Some(a)).await.unwrap());
        assert!(!verify("anything", None).await.unwrap());
        assert!(!verify("x", Some("not a hash".into())).await.unwrap());
    }
}
