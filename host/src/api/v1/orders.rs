//! `/v1/orders`: create an order (idempotently), read it, try paying it again.

use axum::Extension;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::game_auth::SignedBy;
use super::idempotent::{Answer, Idempotent};
use crate::api::problem::Problem;
use crate::app::AppState;
use crate::orders::{
    AttemptStatus, CreateOrder, FailedBy, Failure, OrderNo, OrderView, PaymentChoice, RefundAsk,
};

/// The order, with a status that says how its payment attempt went: 201/200 when the player
/// can go on, 402 when the channel declined, 502 when the channel could not be used or its
/// outcome is unknown. In every case the order exists and is in the body.
fn order_answer(view: OrderView, success: StatusCode) -> Answer {
    let Some(payment) = &view.payment else {
        return Answer::json(success, &view);
    };
    let reason = payment
        .failure
        .as_ref()
        .map(|f| format!("{}: {}", f.code, f.message))
        .unwrap_or_default();
    let failed_by = payment.failure.as_ref().map(Failure::failed_by);
    let problem = match payment.status {
        AttemptStatus::Failed if failed_by == Some(FailedBy::Coffer) => Problem::new(
            StatusCode::BAD_GATEWAY,
            "payment-not-started",
            "The channel could not start the payment; nothing was charged",
        ),
        AttemptStatus::Failed => Problem::new(
            StatusCode::PAYMENT_REQUIRED,
            "payment-declined",
            "The channel declined the payment",
        ),
        AttemptStatus::Unknown | AttemptStatus::Created => Problem::new(
            StatusCode::BAD_GATEWAY,
            "payment-outcome-unknown",
            "The channel's answer is missing or unusable; the payment will be settled by query",
        ),
        _ => return Answer::json(success, &view),
    };
    problem
        .with_detail(format!("{reason} (order {} stays pending)", view.order_no))
        .with("order", &view)
        .into()
}

/// An order number from the path; anything else is a missing order (checked before the body).
pub struct OrderNoInPath(OrderNo);

impl<S: Send + Sync> FromRequestParts<S> for OrderNoInPath {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let Path(order_no) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| Problem::not_found("no such order"))?;
        OrderNo::parse(&order_no)
            .map(Self)
            .map_err(|_| Problem::not_found("no such order"))
    }
}

pub async fn create(request: Idempotent<CreateOrder>) -> Response {
    let (orders, signed) = (request.state().orders.clone(), request.signed().clone());
    request
        .run(|order| async move {
            let view = orders
                .create(&signed.game, &signed.default_region, order)
                .await?;
            Ok(order_answer(view, StatusCode::CREATED))
        })
        .await
}

pub async fn retry_payment(
    OrderNoInPath(order_no): OrderNoInPath,
    request: Idempotent<PaymentChoice>,
) -> Response {
    let (orders, game) = (
        request.state().orders.clone(),
        request.signed().game.clone(),
    );
    request
        .run(|choice| async move {
            let view = orders.retry_payment(&game, &order_no, choice).await?;
            Ok(order_answer(view, StatusCode::OK))
        })
        .await
}

pub async fn get(
    State(state): State<AppState>,
    Extension(signed): Extension<SignedBy>,
    OrderNoInPath(order_no): OrderNoInPath,
) -> Result<Response, Problem> {
    let view = state.orders.view_cached(&signed.game, &order_no).await?;
    Ok(axum::Json(view.as_ref()).into_response())
}

/// `POST /v1/orders/{order_no}/refunds`: 201 with the refund, whose `status` says whether the
/// channel already gave the money back (`succeeded`) or will tell later (`pending`, `unknown`).
pub async fn refund(
    OrderNoInPath(order_no): OrderNoInPath,
    request: Idempotent<RefundAsk>,
) -> Response {
    let (orders, game) = (
        request.state().orders.clone(),
        request.signed().game.clone(),
    );
    request
        .run(|ask| async move {
            let refund = orders.refund(&game, &order_no, ask).await?;
            Ok(Answer::json(StatusCode::CREATED, &refund))
        })
        .await
}
