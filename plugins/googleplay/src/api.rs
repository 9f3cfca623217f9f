//! The Play Developer API (v3): `purchases.products.get`, `:acknowledge` and
//! `purchases.voidedpurchases.list`, with the host-cached bearer token. Its answers come over
//! the connection Coffer opened to the configured endpoint (TLS in production), for the package
//! named in the URL, so they are taken as Google's.

use coffer_plugin_sdk::serde_json::Value;
use coffer_plugin_sdk::{self as sdk, *};

use crate::purchase;

/// Purchase tokens and product ids are URL-safe; anything else never reaches a URL.
fn url_safe(text: &str, what: &str, max: usize) -> Result<(), ChannelError> {
    let fine = !text.is_empty()
        && text.len() <= max
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if fine {
        Ok(())
    } else {
        Err(malformed(format!("{text:?} is not a Google Play {what}")))
    }
}

fn application_url() -> Result<String, ChannelError> {
    let package = sdk::setting("package-name")?;
    url_safe(&package, "package name", 150)?;
    Ok(format!(
        "{}/androidpublisher/v3/applications/{package}",
        sdk::endpoint("api")?
    ))
}

fn bearer() -> Result<(String, String), ChannelError> {
    let token = access::token().ok_or_else(|| {
        ChannelError::Upstream("no access token for the Play Developer API yet".into())
    })?;
    Ok(("Authorization".into(), format!("Bearer {token}")))
}

fn product_url(product_id: &str, token: &str) -> Result<String, ChannelError> {
    url_safe(product_id, "product id", 150)?;
    url_safe(token, "purchase token", 2048)?;
    Ok(format!(
        "{}/purchases/products/{product_id}/tokens/{token}",
        application_url()?
    ))
}

pub fn purchase_request(proof: &StoreProof) -> Result<HttpRequest, ChannelError> {
    if proof.product_id.is_empty() {
        return Err(malformed("a Google Play proof names its product id"));
    }
    Ok(HttpRequest {
        method: HttpMethod::Get,
        url: product_url(&proof.product_id, &proof.token)?,
        headers: vec![bearer()?],
        body: vec![],
    })
}

/// Errors the API answers with, as the plugin reports them.
fn api_error(response: &HttpResponse, what: &str) -> ChannelError {
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let message = body["error"]["message"].as_str().unwrap_or_default();
    match response.status {
        // The token is unknown to Google for this package and product: the proof is bogus.
        400 | 404 | 410 => malformed(format!("Google knows no such {what} ({message})")),
        401 | 403 => ChannelError::Upstream(format!(
            "the Play Developer API refused the access token ({message})"
        )),
        status => ChannelError::Upstream(format!(
            "the Play Developer API answered {status} ({message})"
        )),
    }
}

pub fn purchase_answer(
    proof: &StoreProof,
    response: &HttpResponse,
) -> Result<StorePurchase, ChannelError> {
    if response.status != 200 {
        return Err(api_error(response, "purchase"));
    }
    let body: Value = serde_json::from_slice(&response.body)?;
    purchase::read(&body, proof)
}

pub fn acknowledge_request(purchase: &StorePurchase) -> Result<Option<HttpRequest>, ChannelError> {
    if !purchase.needs_acknowledgement {
        return Ok(None);
    }
    let url = format!(
        "{}:acknowledge",
        product_url(&purchase.product_id, &purchase.token)?
    );
    Ok(Some(HttpRequest {
        method: HttpMethod::Post,
        url,
        headers: vec![
            bearer()?,
            ("Content-Type".into(), "application/json".into()),
        ],
        body: b"{}".to_vec(),
    }))
}

pub fn acknowledge_answer(response: &HttpResponse) -> Result<(), ChannelError> {
    match response.status {
        200 | 204 => Ok(()),
        _ => Err(ChannelError::Upstream(format!(
            "the acknowledgement was not taken ({})",
            response.status
        ))),
    }
}

pub fn voided_request(since: i64, page: Option<&str>) -> Result<HttpRequest, ChannelError> {
    let mut url = format!(
        "{}/purchases/voidedpurchases?startTime={}&maxResults=1000&type=0",
        application_url()?,
        since.saturating_mul(1000)
    );
    if let Some(page) = page {
        url_safe(page, "page token", 1024)?;
        url.push_str("&token=");
        url.push_str(page);
    }
    Ok(HttpRequest {
        method: HttpMethod::Get,
        url,
        headers: vec![bearer()?],
        body: vec![],
    })
}

pub fn voided_answer(response: &HttpResponse) -> Result<RevokedPage, ChannelError> {
    if response.status != 200 {
        return Err(api_error(response, "voided purchase list"));
    }
    let body: Value = serde_json::from_slice(&response.body)?;
    let purchases = body["voidedPurchases"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(purchase::voided)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RevokedPage {
        purchases,
        next_page: body["tokenPagination"]["nextPageToken"]
            .as_str()
            .map(str::to_owned),
    })
}
