//! Password hashing with Argon2id. Hashing is slow on purpose, so it runs on a blocking thread.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::PasswordHashConfig;

/// Shortest and longest passwords accepted (in characters). The upper bound keeps a request
/// from making the server hash megabytes.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=128;

#[derive(Clone)]
pub struct PasswordHasherConfig {
    params: Params,
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
        Ok(Self {
            params,
            decoy: std::sync::Arc::new(decoy),
        })
    }

    /// A PHC string (`$argon2id$v=19$m=...`), with a fresh random salt.
    pub async fn hash(&self, password: String) -> Result<String, String> {
        let params = self.params.clone();
        tokio::task::spawn_blocking(move || hash_with(&params, &password))
            .await
            .map_err(|e| e.to_string())?
    }

    /// Whether `password` matches `phc` (or the decoy, when there is no account).
    pub async fn verify(&self, password: String, phc: Option<String>) -> bool {
        let exists = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.decoy.as_ref().clone());
        let matched = tokio::task::spawn_blocking(move || {
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
        matched && exists
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
        assert!(hasher.verify("correct horse".into(), Some(a.clone())).await);
        assert!(!hasher.verify("correct horse!".into(), Some(a)).await);
        assert!(!hasher.verify("anything".into(), None).await);
        assert!(!hasher.verify("x".into(), Some("not a hash".into())).await);
    }
}
