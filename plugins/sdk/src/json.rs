//! JSON chores channels need beyond serde: some sign the raw text of one member.

/// The raw text of the value of a top-level member `key` of a JSON object, exactly as it
/// appears in `body` (Alipay signs `{"..._response":{...}}`'s inner object byte for byte).
/// Only objects and strings as values; `None` if the member is missing or the text malformed.
pub fn raw_member<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    let bytes = body.as_bytes();
    let mut i = skip_ws(bytes, 0);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(bytes, i);
        let (name_start, name_end) = string_span(bytes, i)?;
        i = skip_ws(bytes, name_end);
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        let value_start = skip_ws(bytes, i + 1);
        let value_end = value_span_end(bytes, value_start)?;
        if &body[name_start + 1..name_end - 1] == key {
            return Some(&body[value_start..value_end]);
        }
        i = skip_ws(bytes, value_end);
        match bytes.get(i) {
            Some(b',') => i += 1,
            _ => return None,
        }
    }
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
        i += 1;
    }
    i
}

/// The span of a JSON string starting at `i`, quotes included.
fn string_span(bytes: &[u8], i: usize) -> Option<(usize, usize)> {
    if bytes.get(i) != Some(&b'"') {
        return None;
    }
    let mut j = i + 1;
    loop {
        match bytes.get(j)? {
            b'\\' => j += 2,
            b'"' => return Some((i, j + 1)),
            _ => j += 1,
        }
    }
}

/// Where the value starting at `i` ends: objects and arrays by bracket depth (strings
/// skipped), strings by their closing quote, scalars at the next delimiter.
fn value_span_end(bytes: &[u8], i: usize) -> Option<usize> {
    match bytes.get(i)? {
        b'"' => string_span(bytes, i).map(|(_, end)| end),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match bytes.get(j)? {
                    b'"' => {
                        j = string_span(bytes, j)?.1;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while bytes
                .get(j)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::raw_member;

    #[test]
    fn returns_the_member_text_byte_for_byte() {
        let body = r#"{"alipay_trade_query_response":{"code":"10000","msg":"Su}c\"cess","n":{"a":[1,2]}},"sign":"abc=="}"#;
        assert_eq!(
            raw_member(body, "alipay_trade_query_response"),
            Some(r#"{"code":"10000","msg":"Su}c\"cess","n":{"a":[1,2]}}"#)
        );
        assert_eq!(raw_member(body, "sign"), Some(r#""abc==""#));
        assert_eq!(raw_member(body, "missing"), None);
        assert_eq!(raw_member("{\"a\": 12 , \"b\":true}", "b"), Some("true"));
        assert_eq!(raw_member("not json", "a"), None);
        assert_eq!(
            raw_member("{\"a\":{\"b\":1", "a"),
            None,
            "unterminated object"
        );
    }
}
