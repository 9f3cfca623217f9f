//! `/api/pay`, `/api/payment/status/:billNo` and `/api/get3DResult` (the old payment proxy on
//! port 5000 and 3-D Secure server on 5001), and `/api/payments/...` (the old records).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::caller::{Caller, not_allowed};
use super::page::{Outcome, result_page};
use super::{area, body_fields, fail, ok, refusal, text};
use crate::app::AppState;
use crate::legacy::{
    BillKey, BillState, LegacyError, PayForm, PaymentRow, RecordUpload, Recorder, iso_utc,
};
use crate::orders::{AttemptStatus, NextAction, OrderError, OrderView};
use crate::store::now_ms;

/// CaresPay's error shape, as the old proxy sent it when it could not get an answer.
fn pay_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "code": "ERROR", "message": message })),
    )
        .into_response()
}

/// `POST /api/pay`: the old client's CaresPay form → an order → CaresPay's answer shape.
pub async fn pay(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let legacy = area(&state);
    let player = match Caller::of(&state, &method, &uri, &headers, &body).await {
        Ok(Caller::Player(player)) => Some(player),
        Ok(Caller::Anonymous) if legacy.config().anonymous_pay => None,
        Ok(Caller::Anonymous) => return pay_error(StatusCode::UNAUTHORIZED, "请先登录"),
        Ok(_) => return pay_error(StatusCode::FORBIDDEN, "只有玩家可以支付"),
        Err(refused) => return pay_error(refused.status, &refused.message),
    };
    let form = match pay_form(&headers, &body) {
        Ok(form) => form,
        Err(why) => return pay_error(StatusCode::BAD_REQUEST, &why),
    };
    // The form carries the card: it is never logged, and only the channel receives it.
    match legacy
        .pay(&form, player.as_ref(), client_ip(peer, &headers))
        .await
    {
        Ok(view) => channel_answer(&view, &form),
        Err(LegacyError::Order(error)) => order_refusal(&error),
        Err(error @ LegacyError::DuplicateBill(_)) => {
            pay_error(StatusCode::CONFLICT, &error.to_string())
        }
        Err(LegacyError::Invalid(why)) => pay_error(StatusCode::BAD_REQUEST, &why),
        Err(error @ (LegacyError::Busy { .. } | LegacyError::GameUnavailable)) => {
            pay_error(StatusCode::SERVICE_UNAVAILABLE, &error.to_string())
        }
        Err(error) => {
            tracing::error!(%error, "legacy payment failed");
            pay_error(StatusCode::INTERNAL_SERVER_ERROR, "服务器内部错误")
        }
    }
}

/// The urlencoded form, decoded strictly (see `edge::text`): the old client always sent one.
fn pay_form(headers: &HeaderMap, body: &Bytes) -> Result<PayForm, String> {
    let urlencoded = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if !urlencoded {
        return Err("请求须为 application/x-www-form-urlencoded 表单".into());
    }
    let fields = crate::api::edge::text::decode_form(body)
        .map_err(|refused| format!("请求格式错误: {refused}"))?;
    Ok(fields.into_iter().collect())
}

/// The player's address: the connection's, or, when that is a proxy on this host or a
/// private network, the address the proxy appended last to `X-Forwarded-For`.
fn client_ip(peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    let behind_proxy = match peer.ip() {
        IpAddr::V4(ip) => ip.is_loopback() || ip.is_private(),
        IpAddr::V6(ip) => ip.is_loopback() || ip.is_unique_local(),
    };
    let forwarded = || {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
            .next_back()
    };
    behind_proxy.then(forwarded).flatten().unwrap_or(peer.ip())
}

fn order_refusal(error: &OrderError) -> Response {
    let status = match error {
        OrderError::DuplicateMerchantOrderNo { .. }
        | OrderError::SoldOut(_)
        | OrderError::LimitReached(_) => StatusCode::CONFLICT,
        OrderError::Route(_) => StatusCode::SERVICE_UNAVAILABLE,
        OrderError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let message = match error {
        OrderError::DuplicateMerchantOrderNo {
            merchant_order_no, ..
        } => {
            format!("订单号重复: {merchant_order_no}")
        }
        OrderError::Database(_) => "服务器内部错误".into(),
        other => other.to_string(),
    };
    pay_error(status, &message)
}

/// What CaresPay would have answered, from what Coffer recorded: P0001 paid, P0004 with
/// `auth3DUrl` for 3-D Secure, P0002 declined. An outcome not known yet (the channel did not
/// answer in time) is P0003 with a message telling the player not to pay again: the card
/// may have been charged, and the bill's status says so once a signed query has found out.
fn channel_answer(view: &OrderView, form: &PayForm) -> Response {
    let attempt = view.payment.as_ref();
    let (code, message, auth_url) = if view.paid_at.is_some() {
        ("P0001", "payment successful!|Success".to_owned(), None)
    } else {
        match attempt.map(|a| (a.status, a.next_action.as_ref())) {
            Some((AttemptStatus::RequiresAction, Some(NextAction::Redirect { url }))) => (
                "P0004",
                "3D Secure authentication required".to_owned(),
                Some(url.clone()),
            ),
            Some((AttemptStatus::Failed, _)) => (
                "P0002",
                attempt
                    .and_then(|a| a.failure.as_ref())
                    .map_or_else(|| "payment failed".to_owned(), |f| f.message.clone()),
                None,
            ),
            _ => (
                "P0003",
                "支付处理中，请勿重复支付；结果以订单状态为准".to_owned(),
                None,
            ),
        }
    };
    axum::Json(json!({
        "code": code,
        "message": message,
        "billNo": view.merchant_order_no,
        "orderNo": view.order_no.to_string(),
        "amount": view.amount.amount,
        "currency": form.get("currency").cloned().unwrap_or_default(),
        "tradeStatus": match code { "P0001" => "S0001", "P0002" => "S0002", _ => "S0003" },
        "auth3DUrl": auth_url,
    }))
    .into_response()
}

/// `GET /api/payment/status/:billNo`: PENDING / PAID / FAILED, as the channel confirmed it.
pub async fn status(State(state): State<AppState>, Path(bill_no): Path<String>) -> Response {
    match area(&state).bill_status(&bill_no).await {
        Ok(Some(status)) => ok(
            "",
            json!({
                "billNo": status.bill_no,
                "status": status.state.as_str(),
                "updatedAt": status.updated_at,
            }),
        ),
        Ok(None) => fail(StatusCode::OK, "未找到该订单的支付状态"),
        Err(error) => refusal(error),
    }
}

/// How long the 3-D Secure return page waits for the payment to settle after asking the
/// channel (its notification often arrives with the browser).
const RETURN_PATIENCE: Duration = Duration::from_millis(1500);

/// `GET /api/get3DResult?amount&billNo&code&message`: where the browser comes back after
/// 3-D Secure. Its parameters are unsigned and believed in nothing: the page shows what the
/// channel's signed query says.
pub async fn three_d_result(
    State(state): State<AppState>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let Some(bill_no) = query.get("billNo").filter(|b| !b.is_empty()) else {
        return (StatusCode::BAD_REQUEST, "缺少订单号").into_response();
    };
    let legacy = area(&state);
    let outcome = match legacy.find_bill(bill_no, BillKey::Channel).await {
        Ok(Some(view)) => legacy
            .confirm_open_payment(view, Some(RETURN_PATIENCE))
            .await
            .map(Some),
        other => other,
    };
    match outcome {
        Ok(Some(view)) => {
            let state = BillState::of(&view);
            let failure = view
                .payment
                .as_ref()
                .and_then(|a| a.failure.as_ref())
                .filter(|_| state == BillState::Failed)
                .map(|f| f.message.clone());
            result_page(
                StatusCode::OK,
                Outcome {
                    state: Some(state),
                    bill_no: &view.merchant_order_no,
                    amount: Some(&view.amount.amount),
                    message: failure.as_deref(),
                },
            )
        }
        Ok(None) => result_page(
            StatusCode::NOT_FOUND,
            Outcome {
                state: None,
                bill_no,
                amount: None,
                message: None,
            },
        ),
        Err(error) => {
            tracing::warn!(%error, "3-D Secure return not confirmed");
            result_page(
                StatusCode::OK,
                Outcome {
                    state: Some(BillState::Pending),
                    bill_no,
                    amount: None,
                    message: None,
                },
            )
        }
    }
}

/// `POST /api/payments/record`: accepted only for an order Coffer saw paid.
pub async fn record(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match Caller::of(&state, &method, &uri, &headers, &body).await {
        Ok(caller) => caller,
        Err(refused) => return refused.into_response(),
    };
    let fields = match body_fields(&headers, &body) {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let field = |name: &str| text(&fields, name);
    let (Some(user_id), Some(amount), Some(order_no), Some(_), Some(_)) = (
        field("user_id"),
        field("amount"),
        field("order_no"),
        field("user_name"),
        field("pay_time"),
    ) else {
        return fail(StatusCode::OK, "缺少必要参数");
    };
    let recorder = match &caller {
        Caller::Player(_) if !caller.is_player(&user_id) => {
            return fail(StatusCode::FORBIDDEN, "只能记录自己的支付");
        }
        Caller::Player(player) => Recorder::Player(player.id.to_string()),
        Caller::Anonymous => Recorder::Anonymous(client_ip(peer, &headers)),
        _ if caller.is_trusted() => Recorder::Trusted,
        _ => return fail(StatusCode::FORBIDDEN, "只读令牌不能记录支付"),
    };
    let product_details = match fields.get("product_details") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    };
    let upload = RecordUpload {
        user_id,
        amount,
        order_no,
        product_id: text(&fields, "product_id"),
        product_info: text(&fields, "product_info"),
        product_details,
    };
    match area(&state).record_payment(upload, recorder).await {
        Ok(_) => ok("记录成功", Value::Null),
        Err(error) => refusal(error),
    }
}

fn row_json(row: &PaymentRow) -> Value {
    json!({
        "id": row.id,
        "user_id": row.user_id,
        "user_name": row.user_name,
        "amount": row.amount,
        "order_no": row.order_no,
        "pay_time": iso_utc(row.pay_time),
        "created_at": iso_utc(row.created_at),
        "product_id": row.product_id,
        "product_info": row.product_info,
        "product_details": row.product_details,
    })
}

async fn listing(state: &AppState, user: Option<&str>) -> Response {
    match area(state).payments(user).await {
        Ok(rows) => ok("", Value::Array(rows.iter().map(row_json).collect())),
        Err(error) => refusal(error),
    }
}

/// `GET /api/payments/user/:user_id`: the player themself, operators, the game server.
pub async fn for_user(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match Caller::of(&state, &method, &uri, &headers, &Bytes::new()).await {
        Ok(caller) if caller.is_player(&user_id) || caller.may_read_all() => {
            listing(&state, Some(&user_id)).await
        }
        Ok(caller) => not_allowed(&caller, "只能查看自己的支付记录"),
        Err(refused) => refused.into_response(),
    }
}

/// `GET /api/payments/all`: operators and the game server.
pub async fn all(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match Caller::of(&state, &method, &uri, &headers, &Bytes::new()).await {
        Ok(caller) if caller.may_read_all() => listing(&state, None).await,
        Ok(caller) => not_allowed(&caller, "需要管理员权限"),
        Err(refused) => refused.into_response(),
    }
}

/// `GET /health` (the old proxy's and 3-D Secure server's).
pub async fn health() -> Response {
    axum::Json(json!({
        "status": "ok",
        "service": "coffer",
        "timestamp": iso_utc(now_ms()),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_player_address_is_the_connections_or_the_local_proxys() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "10.9.9.9, 198.51.100.1, 203.0.113.9".parse().unwrap(),
        );
        let proxy: SocketAddr = "127.0.0.1:5555".parse().unwrap();
        let internet: SocketAddr = "198.51.100.7:5555".parse().unwrap();
        // The proxy appends the address it saw last; earlier entries are the client's claims.
        assert_eq!(client_ip(proxy, &headers).to_string(), "203.0.113.9");
        // A client connecting directly cannot claim another address.
        assert_eq!(client_ip(internet, &headers).to_string(), "198.51.100.7");
        assert_eq!(client_ip(proxy, &HeaderMap::new()).to_string(), "127.0.0.1");
    }
}
