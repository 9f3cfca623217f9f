//! `application/x-www-form-urlencoded` bodies and query strings.

/// Encodes pairs as a form body or query string (spaces as '+', UTF-8 percent-encoded).
pub fn encode<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// Decodes a form body or query string into owned pairs, in order.
pub fn decode(input: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(input).into_owned().collect()
}

/// The first value of `name` in decoded pairs.
pub fn get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_reserved_characters() {
        let body = encode([("subject", "100 Gems & more"), ("url", "https://x/y?a=1")]);
        assert_eq!(
            body,
            "subject=100+Gems+%26+more&url=https%3A%2F%2Fx%2Fy%3Fa%3D1"
        );
        let pairs = decode(body.as_bytes());
        assert_eq!(get(&pairs, "subject"), Some("100 Gems & more"));
        assert_eq!(get(&pairs, "missing"), None);
    }
}
