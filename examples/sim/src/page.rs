//! Minimal HTML pages (3-D Secure challenge, cashier) with everything printed escaped.

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A page with a title, a line of text and two buttons posting to `approve` and `deny`.
pub fn decision(title: &str, text: &str, approve: &str, deny: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title></head><body>\
         <h1>{t}</h1><p>{x}</p>\
         <form method=\"post\" action=\"{a}\"><button type=\"submit\">Approve</button></form>\
         <form method=\"post\" action=\"{d}\"><button type=\"submit\">Deny</button></form>\
         <p><small>coffer-sim: a simulator, not a real payment page</small></p></body></html>",
        t = escape(title),
        x = escape(text),
        a = escape(approve),
        d = escape(deny),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
