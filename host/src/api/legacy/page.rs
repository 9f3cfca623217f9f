//! The page the player's browser lands on after 3-D Secure (`/api/get3DResult`): the old
//! page's content, with every value escaped and only its own script allowed to run.

use std::sync::LazyLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::api::callbacks::escape_html;
use crate::legacy::BillState;

/// Closes the window on the button, or by itself after five seconds, as the old page did.
const SCRIPT: &str = "document.getElementById('close').addEventListener('click',function(){window.close()});setTimeout(function(){window.close()},5000);";

/// The CSP allowing exactly [`SCRIPT`] and nothing else.
static POLICY: LazyLock<HeaderValue> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(SCRIPT));
    HeaderValue::from_str(&format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{hash}'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ))
    .expect("a header-safe policy")
});

/// What the page says about a bill.
pub struct Outcome<'a> {
    pub state: Option<BillState>,
    pub bill_no: &'a str,
    pub amount: Option<&'a str>,
    pub message: Option<&'a str>,
}

pub fn result_page(status: StatusCode, outcome: Outcome<'_>) -> Response {
    let (heading, colour) = match outcome.state {
        Some(BillState::Paid) => ("支付成功", "#2e7d32"),
        Some(BillState::Failed) => ("支付失败", "#c62828"),
        Some(BillState::Pending) => ("正在确认支付结果", "#555"),
        None => ("未找到该订单", "#c62828"),
    };
    let line = |label: &str, value: Option<&str>| {
        value.map_or_else(String::new, |v| {
            format!("<p>{label}: {}</p>", escape_html(v))
        })
    };
    let note = match outcome.state {
        Some(BillState::Pending) => "<p>支付结果确认后，道具将发放到游戏中。</p>",
        _ => "",
    };
    let html = format!(
        "<!DOCTYPE html><html lang=\"zh\"><head><meta charset=\"utf-8\"><title>支付结果</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"></head>\
         <body style=\"font-family:sans-serif;text-align:center;padding:2em\">\
         <h1 style=\"color:{colour}\">{heading}</h1>{bill}{amount}{message}{note}\
         <p>请关闭此窗口并返回游戏继续。</p><button id=\"close\">关闭窗口</button>\
         <script>{SCRIPT}</script></body></html>",
        bill = line("订单号", Some(outcome.bill_no)),
        amount = line("金额", outcome.amount),
        message = line("消息", outcome.message),
    );
    let mut response = (status, Html(html)).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, POLICY.clone());
    response
}
