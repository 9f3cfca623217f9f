//! CaresPay's signatures: lower-case hex MD5 with the shared md5Key appended, computed by the
//! host's sealed key (the plugin never sees the key).

use coffer_plugin_sdk::*;

/// The shared key's name in this channel's key ring.
pub const MD5_KEY: &str = "md5-key";

/// MD5(text + md5Key), lower-case hex.
pub fn md5_with_key(text: &str) -> Result<String, ChannelError> {
    keys::keyed_digest_hex(MD5_KEY, DigestAlgorithm::Md5, text.as_bytes(), b"")
}

/// MD5("k1=v1&k2=v2&key=" + md5Key): the query, refund and batch-list signature.
pub fn md5_pairs_with_key(pairs: &[(&str, &str)]) -> Result<String, ChannelError> {
    let mut text = canonical::join_pairs(pairs);
    text.push_str("&key=");
    md5_with_key(&text)
}

/// Compares a signature from the gateway with the expected one, in constant time.
pub fn same(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.to_ascii_lowercase().into_bytes());
    a.len() == b.len() && a.iter().zip(&b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
