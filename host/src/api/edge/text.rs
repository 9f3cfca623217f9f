//! The one rule for text that enters from outside: valid UTF-8 and no control characters
//! (tab and line breaks allowed inside free text). PostgreSQL cannot store NUL in text at all,
//! logs and pages must not carry escape sequences, and a "name" of U+FFFD replacement
//! characters is a request gone wrong: all of it is refused at the edge, the same way on both
//! databases, before any area sees it.
//!
//! Applied to every path segment and query parameter (a middleware), every string of a JSON
//! body (the JSON extractor), and every field of a urlencoded form (the legacy routes).

use std::borrow::Cow;

use serde_json::Value;

/// Why text from a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{0} is not valid UTF-8")]
    NotUtf8(String),
    #[error("{0} contains a control character")]
    Control(String),
}

/// Whether `c` may appear in free text: no control characters but tab, line feed and carriage
/// return (a description may span lines).
fn allowed_in_text(c: char) -> bool {
    !c.is_control() || matches!(c, '\t' | '\n' | '\r')
}

/// Checks free text (a JSON string, a form value).
pub fn check_text(what: &str, text: &str) -> Result<(), TextError> {
    if text.chars().all(allowed_in_text) {
        Ok(())
    } else {
        Err(TextError::Control(what.to_owned()))
    }
}

/// Checks an identifier-like piece (a path segment, a query parameter, a JSON key): no control
/// characters at all.
pub fn check_name(what: &str, text: &str) -> Result<(), TextError> {
    if text.chars().any(char::is_control) {
        Err(TextError::Control(what.to_owned()))
    } else {
        Ok(())
    }
}

/// Checks every key and string of a JSON document; a refusal names the field
/// (`card.holder_name`, `items[2]`).
pub fn check_json(value: &Value) -> Result<(), TextError> {
    walk(value, &mut String::new())
}

/// [`check_json`] for the fields of an object.
pub fn check_fields(fields: &serde_json::Map<String, Value>) -> Result<(), TextError> {
    walk_fields(fields, &mut String::new())
}

fn walk(value: &Value, at: &mut String) -> Result<(), TextError> {
    match value {
        Value::String(s) => check_text(field_name(at), s),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = at.len();
                at.push_str(&format!("[{i}]"));
                walk(item, at)?;
                at.truncate(len);
            }
            Ok(())
        }
        Value::Object(fields) => walk_fields(fields, at),
        _ => Ok(()),
    }
}

fn walk_fields(fields: &serde_json::Map<String, Value>, at: &mut String) -> Result<(), TextError> {
    for (key, item) in fields {
        let len = at.len();
        if !at.is_empty() {
            at.push('.');
        }
        at.push_str(key);
        check_name(&format!("the name of field {}", field_name(at)), key)?;
        walk(item, at)?;
        at.truncate(len);
    }
    Ok(())
}

fn field_name(at: &str) -> &str {
    if at.is_empty() { "the body" } else { at }
}

/// Percent-decodes `part` strictly: the result must be UTF-8 (`+` is a space when `plus_is_space`,
/// as in forms and query strings).
fn decode(what: &str, part: &str, plus_is_space: bool) -> Result<String, TextError> {
    let bytes: Cow<'_, [u8]> = if plus_is_space && part.contains('+') {
        Cow::Owned(part.replace('+', " ").into_bytes())
    } else {
        Cow::Borrowed(part.as_bytes())
    };
    let decoded: Vec<u8> = percent_decode(&bytes);
    String::from_utf8(decoded).map_err(|_| TextError::NotUtf8(what.to_owned()))
}

fn percent_decode(bytes: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (
            bytes[i],
            bytes.get(i + 1).copied(),
            bytes.get(i + 2).copied(),
        ) {
            (b'%', Some(h), Some(l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap() * 16 + hex(l).unwrap()) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Decodes a urlencoded form (or query string) strictly: every name and value must decode to
/// UTF-8 text without control characters (tab and line breaks allowed in values).
pub fn decode_form(body: &[u8]) -> Result<Vec<(String, String)>, TextError> {
    let text = std::str::from_utf8(body).map_err(|_| TextError::NotUtf8("the form".into()))?;
    let mut fields = Vec::new();
    for pair in text.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode("a field name", name, true)?;
        check_name("a field name", &name)?;
        let value = decode(&format!("field {name}"), value, true)?;
        check_text(&format!("field {name}"), &value)?;
        fields.push((name, value));
    }
    Ok(fields)
}

/// Checks a request's path and query: each path segment and query parameter, decoded, must be
/// UTF-8 without control characters.
pub fn check_uri(path: &str, query: Option<&str>) -> Result<(), TextError> {
    for segment in path.split('/') {
        let decoded = decode("the path", segment, false)?;
        check_name("the path", &decoded)?;
    }
    if let Some(query) = query {
        for (name, value) in decode_form(query.as_bytes())? {
            check_name(&format!("query parameter {name}"), &value)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_and_escape_characters_are_refused_everywhere() {
        assert!(check_uri("/api/users/%00", None).is_err());
        assert!(check_uri("/api/users/%1B%5B31m", None).is_err());
        assert!(check_uri("/v1/admin/players", Some("search=%00")).is_err());
        assert!(check_uri("/api/users/%E7%8E%A9%E5%AE%B6", Some("search=a+b")).is_ok());
        let body: Value = serde_json::from_str(r#"{"card":{"holder_name":"A\u0000"}}"#).unwrap();
        assert_eq!(
            check_json(&body),
            Err(TextError::Control("card.holder_name".into()))
        );
        let keys: Value = serde_json::from_str(r#"{"a\u0007":1}"#).unwrap();
        assert!(check_json(&keys).is_err());
        let lines: Value = serde_json::from_str(r#"{"description":"one\ntwo\tthree"}"#).unwrap();
        assert!(check_json(&lines).is_ok());
        assert!(decode_form(b"billNo=1%002").is_err());
    }

    #[test]
    fn invalid_utf8_is_refused_not_replaced() {
        assert_eq!(
            decode_form(b"pid=%FF%FE&name=x"),
            Err(TextError::NotUtf8("field pid".into()))
        );
        assert!(check_uri("/api/users/%FF", None).is_err());
        assert_eq!(
            decode_form("productInfo=%E9%92%BB%E7%9F%B3&amount=6".as_bytes()).unwrap(),
            vec![
                ("productInfo".to_owned(), "钻石".to_owned()),
                ("amount".to_owned(), "6".to_owned())
            ]
        );
        // A literal percent sign that starts no escape stays as it is.
        assert_eq!(decode_form(b"a=100%").unwrap()[0].1, "100%");
    }
}
