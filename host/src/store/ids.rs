//! Identifiers and secrets made here.

/// Crockford's base32: no I, L, O or U, so ids read aloud and typed by hand survive.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new id: `prefix` then 26 characters, the first ten the creation time in milliseconds,
/// so ids sort by creation time. The other 80 bits are random.
pub fn new_id(prefix: &str) -> String {
    let mut random = [0u8; 10];
    getrandom::fill(&mut random).expect("the operating system's random source works");
    encode_time_sortable(crate::store::now_ms() as u64, random, prefix)
}

pub(crate) fn encode_time_sortable(time_ms: u64, random: [u8; 10], prefix: &str) -> String {
    let mut value: u128 = u128::from(time_ms & 0xFFFF_FFFF_FFFF) << 80;
    for (i, byte) in random.iter().enumerate() {
        value |= u128::from(*byte) << (72 - 8 * i);
    }
    let mut out = String::with_capacity(prefix.len() + 26);
    out.push_str(prefix);
    for i in (0..26).rev() {
        out.push(CROCKFORD[((value >> (5 * i)) & 31) as usize] as char);
    }
    out
}

/// A new secret: `prefix` then 32 random bytes as lower-case hex.
pub fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source works");
    format!("{prefix}{}", hex::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_are_alphanumeric() {
        let early = encode_time_sortable(1_700_000_000_000, [0xff; 10], "");
        let late = encode_time_sortable(1_700_000_000_001, [0; 10], "");
        assert!(early < late);
        assert_eq!(early.len(), 26);
        assert!(early.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(new_id("p"), new_id("p"));
        assert!(new_id("pl_").starts_with("pl_"));
    }
}
