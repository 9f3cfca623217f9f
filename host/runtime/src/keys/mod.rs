//! Sealed keys: key material the host holds for a channel and uses on the plugin's behalf.
//!
//! A plugin names a key ("merchant-private-key") and an operation; the bytes never enter the
//! sandbox. Each [`KeyRing`] belongs to exactly one channel.

mod chain;
mod load;
mod ops;
mod rsa_signer;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::PathBuf;

use rsa::PublicKey;
use zeroize::Zeroizing;

pub(crate) use chain::{ChainPolicy, TrustedChains, verify_with_chain};
pub use load::KeyError;
pub(crate) use ops::{KeyOpError, decrypt, keyed_digest, sign, verify};
pub use rsa_signer::RsaSigner;

/// One piece of key material.
pub enum SealedKey {
    /// An RSA private key (PKCS#1 or PKCS#8 PEM): signs.
    RsaPrivate(Box<RsaSigner>),
    /// An RSA public key (SPKI or PKCS#1 PEM): verifies the channel's signatures.
    RsaPublic(Box<PublicKey>),
    /// An EC P-256 private key (PKCS#8 PEM with its public key, as Apple's `.p8` in-app
    /// purchase keys are): signs ES256.
    EcPrivate(Box<ring::signature::EcdsaKeyPair>),
    /// An EC P-256 public key (SPKI PEM), as its uncompressed point: verifies ES256.
    EcPublic(Box<[u8]>),
    /// A root certificate (PEM), as DER: the anchor `verify-with-chain` chains up to.
    Certificate(Box<[u8]>),
    /// A shared secret (HMAC key, MD5 "append the key" secret, AES key). Wiped on drop.
    Secret(Zeroizing<Vec<u8>>),
}

// Never print key material, not even in debug logs.
impl fmt::Debug for SealedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealedKey::RsaPrivate(_) => f.write_str("SealedKey::RsaPrivate(..)"),
            SealedKey::RsaPublic(_) => f.write_str("SealedKey::RsaPublic(..)"),
            SealedKey::EcPrivate(_) => f.write_str("SealedKey::EcPrivate(..)"),
            SealedKey::EcPublic(_) => f.write_str("SealedKey::EcPublic(..)"),
            SealedKey::Certificate(_) => f.write_str("SealedKey::Certificate(..)"),
            SealedKey::Secret(bytes) => write!(f, "SealedKey::Secret({} bytes)", bytes.len()),
        }
    }
}

/// How a key file is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyFormat {
    /// PEM: RSA private key (PKCS#1 or PKCS#8) or public key (SPKI or PKCS#1); EC P-256
    /// private key (PKCS#8) or public key (SPKI); an X.509 certificate (a root to chain to).
    Pem,
    /// A secret written as hex digits.
    Hex,
    /// A secret written as standard base64.
    Base64,
    /// A secret: the file's bytes as they are, one trailing newline dropped.
    Raw,
}

/// Where a key comes from: a file and its encoding.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySource {
    pub file: PathBuf,
    pub format: KeyFormat,
}

/// The keys of one channel, by name.
#[derive(Debug, Default)]
pub struct KeyRing {
    keys: HashMap<String, SealedKey>,
}

impl KeyRing {
    /// Loads every key named in a channel's configuration. Fails on the first bad key, naming it.
    pub fn load(sources: &BTreeMap<String, KeySource>) -> Result<Self, KeyError> {
        let keys = sources
            .iter()
            .map(|(name, source)| Ok((name.clone(), load::read_key(name, source)?)))
            .collect::<Result<_, KeyError>>()?;
        Ok(Self { keys })
    }

    pub fn insert(&mut self, name: impl Into<String>, key: SealedKey) {
        self.keys.insert(name.into(), key);
    }

    pub fn get(&self, name: &str) -> Option<&SealedKey> {
        self.keys.get(name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.keys.contains_key(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

/// Runs a heavy key operation (an RSA signature: about a millisecond of CPU) on a blocking
/// thread, at most one per core at a time, so that it never holds an async worker that
/// HTTP requests and other plugin calls are waiting for.
pub(crate) async fn off_runtime<T: Send + 'static>(
    operation: impl FnOnce() -> T + Send + 'static,
) -> T {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    let slots = SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        tokio::sync::Semaphore::new(cores)
    });
    let _slot = slots
        .acquire()
        .await
        .expect("the key semaphore is never closed");
    match tokio::task::spawn_blocking(operation).await {
        Ok(value) => value,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}
