//! Building requests and reading answers.

use crate::{Field, HttpAnswer, HttpMethod, HttpRequest};

/// The first header named `name`, compared case-insensitively.
pub fn header<'a>(headers: &'a [Field], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// A POST with a form body.
pub fn post_form(url: String, body: String) -> HttpRequest {
    HttpRequest {
        method: HttpMethod::Post,
        url,
        headers: vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        )],
        body: body.into_bytes(),
    }
}

/// A POST with a JSON body.
pub fn post_json(url: String, body: String) -> HttpRequest {
    HttpRequest {
        method: HttpMethod::Post,
        url,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("accept".into(), "application/json".into()),
        ],
        body: body.into_bytes(),
    }
}

/// A GET without a body.
pub fn get(url: String) -> HttpRequest {
    HttpRequest {
        method: HttpMethod::Get,
        url,
        headers: vec![("accept".into(), "application/json".into())],
        body: Vec::new(),
    }
}

/// The method as it appears in a signed message ("GET", "POST").
pub fn method_name(method: HttpMethod) -> &'static str {
    match method {
        HttpMethod::Get => "GET",
        HttpMethod::Post => "POST",
        HttpMethod::Put => "PUT",
        HttpMethod::Patch => "PATCH",
        HttpMethod::Delete => "DELETE",
    }
}

/// True for a 2xx status.
pub fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// A plain-text answer to a channel ("success", "fail").
pub fn text_answer(status: u16, body: &str) -> HttpAnswer {
    HttpAnswer {
        status,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: body.as_bytes().to_vec(),
    }
}
