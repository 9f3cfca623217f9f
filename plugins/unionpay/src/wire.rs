//! UnionPay's gateway fields (5.1.0), mapped to the contract. Every request is a form of
//! `k=v` fields with `signature`; answers and notifications are the same, signed by UnionPay.

use coffer_plugin_sdk::{self as sdk, *};

use crate::signing;

/// UnionPay's clock is Beijing time, UTC+8 all year.
const BEIJING: i32 = 8 * 3600;
const VERSION: &str = "5.1.0";
/// ISO 4217 numeric for CNY, the only currency of the gateway's consume.
const CNY: &str = "156";

/// `YYYYMMDDhhmmss` in Beijing time.
fn gateway_time(unix_seconds: i64) -> String {
    time::format_datetime(unix_seconds, BEIJING)
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}

/// Amounts are whole fen.
fn fen(money: &Money) -> Result<String, ChannelError> {
    if money.currency != "CNY" {
        return Err(unsupported(format!(
            "UnionPay's gateway takes CNY, not {}",
            money.currency
        )));
    }
    Ok(money.minor.to_string())
}

/// UnionPay's `orderId`: 8 to 40 letters and digits.
fn order_id(text: &str) -> Result<&str, ChannelError> {
    if (8..=40).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphanumeric()) {
        Ok(text)
    } else {
        Err(malformed(format!("{text:?} cannot be a UnionPay orderId")))
    }
}

/// The fields every request carries, then `more`, then `signature`.
fn signed(more: &[(&'static str, String)]) -> Result<Vec<(String, String)>, ChannelError> {
    let mut fields: Vec<(&'static str, String)> = vec![
        ("version", VERSION.into()),
        ("encoding", "UTF-8".into()),
        ("signMethod", "01".into()),
        ("certId", sdk::setting("cert-id")?),
        ("merId", sdk::setting("mer-id")?),
        ("accessType", "0".into()),
        (
            "channelType",
            sdk::setting_or("channel-type", "07".to_owned()),
        ),
    ];
    fields.extend(more.iter().cloned());
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let signature = signing::sign(&pairs)?;
    let mut all: Vec<(String, String)> =
        fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    all.push(("signature".into(), signature));
    Ok(all)
}

fn gateway(path: &str) -> Result<String, ChannelError> {
    Ok(format!("{}/gateway/api/{path}", sdk::endpoint("gateway")?))
}

fn post(path: &str, fields: &[(String, String)]) -> Result<HttpRequest, ChannelError> {
    let body = form::encode(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    Ok(http::post_form(gateway(path)?, body))
}

/// A front consume: the form the player's browser posts to UnionPay's cashier.
pub fn pay(request: &PaymentRequest) -> Result<PaymentStart, ChannelError> {
    if request.flow != CheckoutFlow::Redirect {
        return Err(unsupported(
            "UnionPay's gateway is a cashier page (redirect)",
        ));
    }
    let fields = signed(&[
        ("txnType", "01".into()),
        ("txnSubType", "01".into()),
        ("bizType", "000201".into()),
        ("orderId", order_id(&request.order_no)?.to_owned()),
        ("txnTime", gateway_time(request.started_at)),
        ("txnAmt", fen(&request.amount)?),
        ("currencyCode", CNY.into()),
        ("frontUrl", request.return_url.clone()),
        ("backUrl", request.notify_url.clone()),
        ("payTimeout", gateway_time(request.expires_at)),
    ])?;
    Ok(PaymentStart::Action(NextAction::PostForm(FormPost {
        url: gateway("frontTransReq.do")?,
        fields,
    })))
}

/// Fields UnionPay sent, verified.
fn verified(body: &[u8]) -> Result<Vec<(String, String)>, ChannelError> {
    let fields = form::decode(body);
    signing::verify(&fields)?;
    let mer_id = sdk::setting("mer-id")?;
    match form::get(&fields, "merId") {
        Some(found) if found == mer_id => Ok(fields),
        found => Err(bad_signature(format!("merId {found:?} is not ours"))),
    }
}

fn amount(fields: &[(String, String)]) -> Result<Money, ChannelError> {
    let text = form::get(fields, "txnAmt").unwrap_or_default();
    if form::get(fields, "currencyCode").is_some_and(|c| c != CNY) {
        return Err(malformed("an amount in another currency than CNY"));
    }
    Ok(Money {
        minor: amount::parse_fixed(text, 0)?,
        currency: "CNY".into(),
    })
}

/// A payment's status by the codes UnionPay gives it.
fn payment_status(code: &str) -> PaymentStatus {
    match code {
        "00" | "A6" => PaymentStatus::Paid,
        // Being processed: ask again later.
        "03" | "04" | "05" => PaymentStatus::Pending,
        _ => PaymentStatus::Failed,
    }
}

/// A notification at the `backUrl`: a consume (`txnType` 01) or a refund (04).
pub fn notification(body: &[u8]) -> Result<CallbackEvent, ChannelError> {
    let fields = verified(body)?;
    let get = |k: &str| form::get(&fields, k).unwrap_or_default().to_owned();
    let (code, message) = (get("respCode"), get("respMsg"));
    let failure = (code != "00").then(|| Failure {
        code: code.clone(),
        message: message.clone(),
    });
    match get("txnType").as_str() {
        "01" => Ok(CallbackEvent::Payment(PaymentUpdate {
            order_no: get("orderId"),
            channel_txn_id: Some(get("queryId")).filter(|q| !q.is_empty()),
            status: payment_status(&code),
            amount: Some(amount(&fields)?),
            paid_at: None,
            failure,
            channel_status: code,
        })),
        // The refund request echoes the payment's reference in `reqReserved`.
        "04" => Ok(CallbackEvent::Refund(RefundUpdate {
            refund_no: get("orderId"),
            order_no: get("reqReserved"),
            channel_refund_id: Some(get("queryId")).filter(|q| !q.is_empty()),
            status: match code.as_str() {
                "00" | "A6" => RefundStatus::Succeeded,
                "03" | "04" | "05" => RefundStatus::Pending,
                _ => RefundStatus::Failed,
            },
            amount: amount(&fields)?,
            failure,
            channel_status: code,
        })),
        other => Err(malformed(format!("a notification of txnType {other:?}"))),
    }
}

/// The player's browser back at the `frontUrl`, posting what UnionPay gave it (or, on
/// Coffer's own return address, naming the order as `order_no`): a claim to confirm.
pub fn browser_return(request: &InboundRequest) -> CallbackVerdict {
    let posted = form::decode(&request.body);
    let query = form::decode(request.query.as_bytes());
    let order_no = form::get(&posted, "orderId").or_else(|| form::get(&query, "order_no"));
    match order_no {
        Some(order_no) if !order_no.is_empty() => CallbackVerdict::Unverified(UnverifiedClaim {
            order_no: order_no.to_owned(),
            claimed_status: form::get(&posted, "respCode").map(payment_status),
        }),
        _ => CallbackVerdict::Rejected(malformed("a return without orderId")),
    }
}

pub fn query(request: &QueryRequest) -> Result<HttpRequest, ChannelError> {
    let fields = signed(&[
        ("txnType", "00".into()),
        ("txnSubType", "00".into()),
        ("bizType", "000000".into()),
        ("orderId", order_id(&request.order_no)?.to_owned()),
        ("txnTime", gateway_time(request.started_at)),
    ])?;
    post("queryTrans.do", &fields)
}

/// An answer's fields: verified when UnionPay signed them; an unsigned refusal settles
/// nothing (anyone on the path could send one) and leaves the outcome unknown.
fn answer(response: &HttpResponse) -> Result<Vec<(String, String)>, ChannelError> {
    if response.status != 200 {
        return Err(ChannelError::Upstream(format!("HTTP {}", response.status)));
    }
    let fields = form::decode(&response.body);
    if form::get(&fields, "signature").is_none() {
        return Err(ChannelError::Upstream(format!(
            "unsigned answer {} {}",
            form::get(&fields, "respCode").unwrap_or_default(),
            form::get(&fields, "respMsg").unwrap_or_default()
        )));
    }
    verified(&response.body)
}

pub fn read_query(
    request: &QueryRequest,
    response: &HttpResponse,
) -> Result<PaymentUpdate, ChannelError> {
    let fields = answer(response)?;
    let get = |k: &str| form::get(&fields, k).unwrap_or_default().to_owned();
    let update = |status, channel_status: String| PaymentUpdate {
        order_no: request.order_no.clone(),
        channel_txn_id: Some(get("queryId")).filter(|q| !q.is_empty()),
        status,
        amount: None,
        paid_at: None,
        failure: None,
        channel_status,
    };
    match get("respCode").as_str() {
        "00" => {}
        // No such transaction: the player never reached the cashier (yet).
        "34" => return Ok(update(PaymentStatus::Pending, "34".into())),
        code => {
            return Err(ChannelError::Upstream(format!(
                "query refused: {code} {}",
                get("respMsg")
            )));
        }
    }
    if get("orderId") != request.order_no {
        return Err(malformed("the query answer is about another order"));
    }
    let code = get("origRespCode");
    let mut result = update(payment_status(&code), code.clone());
    result.amount = Some(amount(&fields)?);
    if result.status == PaymentStatus::Failed {
        result.failure = Some(Failure {
            code,
            message: get("origRespMsg"),
        });
    }
    Ok(result)
}

pub fn refund(request: &RefundRequest) -> Result<HttpRequest, ChannelError> {
    let original = request.channel_txn_id.as_deref().ok_or_else(|| {
        ChannelError::Unsupported("a UnionPay refund needs the payment's queryId".into())
    })?;
    let fields = signed(&[
        ("txnType", "04".into()),
        ("txnSubType", "00".into()),
        ("bizType", "000201".into()),
        ("orderId", order_id(&request.refund_no)?.to_owned()),
        ("origQryId", original.to_owned()),
        ("txnTime", gateway_time(host::now_ms().div_euclid(1000))),
        ("txnAmt", fen(&request.refund_amount)?),
        ("currencyCode", CNY.into()),
        ("backUrl", request.notify_url.clone()),
        ("reqReserved", request.order_no.clone()),
    ])?;
    post("backTransReq.do", &fields)
}

pub fn read_refund(
    request: &RefundRequest,
    response: &HttpResponse,
) -> Result<RefundUpdate, ChannelError> {
    let fields = answer(response)?;
    let get = |k: &str| form::get(&fields, k).unwrap_or_default().to_owned();
    let code = get("respCode");
    let (status, failure) = match code.as_str() {
        // Accepted: the result comes by notification.
        "00" | "03" | "04" | "05" => (RefundStatus::Pending, None),
        _ => (
            RefundStatus::Failed,
            Some(Failure {
                code: code.clone(),
                message: get("respMsg"),
            }),
        ),
    };
    Ok(RefundUpdate {
        refund_no: request.refund_no.clone(),
        order_no: request.order_no.clone(),
        channel_refund_id: Some(get("queryId")).filter(|q| !q.is_empty()),
        status,
        amount: request.refund_amount.clone(),
        failure,
        channel_status: code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_times_are_beijing_digits() {
        // 2026-11-24T07:30:00Z is 15:30 in Beijing.
        assert_eq!(gateway_time(1_795_505_400), "20261124153000");
    }

    #[test]
    fn order_ids_are_8_to_40_letters_and_digits() {
        assert!(order_id("01M8VDBWREQ24GKYACKHBE1MBE").is_ok());
        assert!(order_id("01M8VDBWREQ24GKYACKHBE1MBEP2").is_ok());
        for bad in ["ORD-1", "short", "a_b_c_d_e_f", &"9".repeat(41)] {
            assert!(order_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn codes_map_to_payment_states() {
        assert_eq!(payment_status("00"), PaymentStatus::Paid);
        assert_eq!(payment_status("05"), PaymentStatus::Pending);
        assert_eq!(payment_status("01"), PaymentStatus::Failed);
    }
}
