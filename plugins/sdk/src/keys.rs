//! Sealed-key calls with errors mapped to `channel-error`. The host holds the key bytes.

use crate::bindings::coffer::channel::sealed_keys::{self, KeyError};
use crate::{
    AeadAlgorithm, ChainPolicy, ChannelError, ChannelResult, DigestAlgorithm, SignatureAlgorithm,
};

fn key_error(e: KeyError) -> ChannelError {
    match e {
        KeyError::WrongKind(why) | KeyError::InvalidInput(why) => ChannelError::Key(why),
        // A chain that does not lead to the configured root is a forgery as far as the
        // channel is concerned.
        KeyError::UntrustedChain(why) => ChannelError::BadSignature(why),
    }
}

pub fn sign(key: &str, algorithm: SignatureAlgorithm, data: &[u8]) -> ChannelResult<Vec<u8>> {
    sealed_keys::sign(key, algorithm, data).map_err(key_error)
}

/// True if `signature` is right. A malformed signature is simply not right.
pub fn verify(
    key: &str,
    algorithm: SignatureAlgorithm,
    data: &[u8],
    signature: &[u8],
) -> ChannelResult<bool> {
    sealed_keys::verify(key, algorithm, data, signature).map_err(key_error)
}

pub fn decrypt(
    key: &str,
    algorithm: AeadAlgorithm,
    nonce: &[u8],
    associated_data: &[u8],
    ciphertext: &[u8],
) -> ChannelResult<Vec<u8>> {
    sealed_keys::decrypt(key, algorithm, nonce, associated_data, ciphertext).map_err(key_error)
}

/// Lower-case hex of digest(prefix || secret || suffix).
pub fn keyed_digest_hex(
    key: &str,
    algorithm: DigestAlgorithm,
    prefix: &[u8],
    suffix: &[u8],
) -> ChannelResult<String> {
    sealed_keys::keyed_digest(key, algorithm, prefix, suffix)
        .map(hex::encode)
        .map_err(key_error)
}

/// True if `signature` over `data` is right by the leaf of `chain` (DER, leaf first), once the
/// host has verified the chain up to the root certificate configured as key `root` under
/// `policy`. A chain that does not lead there is `ChannelError::BadSignature`.
pub fn verify_with_chain(
    root: &str,
    chain: &[Vec<u8>],
    policy: &ChainPolicy,
    algorithm: SignatureAlgorithm,
    data: &[u8],
    signature: &[u8],
) -> ChannelResult<bool> {
    sealed_keys::verify_with_chain(root, chain, policy, algorithm, data, signature)
        .map_err(key_error)
}
