//! RSA private keys and their signatures.
//!
//! PKCS#1 v1.5 with SHA-256 (what Alipay's RSA2 and most channels use) is signed with `ring`:
//! audited, constant-time, with assembly Montgomery arithmetic, several times faster than the
//! pure-Rust `rsa` crate (see `cargo xtask bench`). `ring` signs only with 2048- to 4096-bit
//! keys and never with SHA-1, so SHA-1 (some channels' legacy signature) and keys outside that
//! range are signed with `rsa`. Both give the same bytes: PKCS#1 v1.5 is deterministic.
//!
//! A signature takes about a millisecond of CPU: callers run it off the async workers (see
//! [`super::sign_off_runtime`]).

use pkcs1::EncodeRsaPrivateKey;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rsa::PrivateKey;
use sha1::Sha1;
use sha2::Sha256;

/// An RSA private key, ready to sign.
pub struct RsaSigner {
    key: PrivateKey,
    /// The same key for `ring`, when `ring` accepts it.
    fast: Option<RsaKeyPair>,
}

/// Signing failed (a key `rsa` cannot use, an exhausted random source for blinding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigningFailed;

impl RsaSigner {
    pub fn new(key: PrivateKey) -> Self {
        let fast = key
            .to_pkcs1_der()
            .ok()
            .and_then(|der| RsaKeyPair::from_der(der.as_bytes()).ok());
        Self { key, fast }
    }

    /// Whether SHA-256 signatures are made by `ring`.
    pub fn is_fast(&self) -> bool {
        self.fast.is_some()
    }

    /// RSASSA-PKCS1-v1_5 over SHA-256.
    pub fn sign_sha256(&self, data: &[u8]) -> Result<Vec<u8>, SigningFailed> {
        let Some(pair) = &self.fast else {
            return self
                .key
                .pkcs1v15_sign::<Sha256>(data)
                .map_err(|_| SigningFailed);
        };
        let mut signature = vec![0; pair.public().modulus_len()];
        // The random source blinds the private-key operation against timing attacks.
        let random = ring::rand::SystemRandom::new();
        pair.sign(&RSA_PKCS1_SHA256, &random, data, &mut signature)
            .map_err(|_| SigningFailed)?;
        Ok(signature)
    }

    /// The key signed by the `rsa` crate only: to compare both implementations (tests and
    /// benchmarks), never for serving.
    pub fn portable(key: PrivateKey) -> Self {
        Self { key, fast: None }
    }

    /// This key, signed by the `rsa` crate only (see [`RsaSigner::portable`]).
    pub fn to_portable(&self) -> Self {
        Self::portable(self.key.clone())
    }

    /// RSASSA-PKCS1-v1_5 over SHA-1 (legacy channel signatures).
    pub fn sign_sha1(&self, data: &[u8]) -> Result<Vec<u8>, SigningFailed> {
        self.key
            .pkcs1v15_sign::<Sha1>(data)
            .map_err(|_| SigningFailed)
    }
}
