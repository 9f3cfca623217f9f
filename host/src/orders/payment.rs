//! Running one payment attempt: the plugin builds the request, the host sends it, the plugin
//! reads the answer. The attempt row exists (`created`) before anything is sent; what it
//! becomes depends on how far the exchange got, because "nothing was sent" (safe to try
//! again) and "sent, no answer" (the money may have moved) must never be confused.

use std::sync::Arc;

use coffer_plugin_runtime::{Channel, PluginError};

use super::AttemptStatus;
use super::model::{Attempt, Failure, NextAction, Order};
use super::request::PaymentChoice;
use crate::channels::http::ChannelHttp;
use crate::channels::{Payer, PaymentAsk, PaymentReport, PaymentState, Reason, Start, contract};
use crate::store::now_ms;

/// What begins every failure code Coffer sets itself; channels use their own codes.
pub const COFFER_CODE_PREFIX: &str = "coffer.";

/// Failure codes Coffer sets itself.
pub const NOT_SENT: &str = "coffer.not_sent";
pub const NO_ANSWER: &str = "coffer.no_answer";
pub const UNREADABLE_ANSWER: &str = "coffer.unreadable_answer";
pub const AMOUNT_MISMATCH: &str = "coffer.amount_mismatch";
pub const NOT_RECORDED: &str = "coffer.not_recorded";

/// Where the channel sends notifications and the player's browser back.
pub struct Urls {
    pub notify: String,
    pub return_to: String,
}

fn failure(code: &str, message: impl AsRef<str>) -> Option<Failure> {
    Some(Failure {
        code: scrub(code),
        message: scrub(message.as_ref()),
    })
}

/// Text a plugin or channel chose, made safe to store, show and log: the plugin saw the card,
/// so a buggy or hostile one could echo it. Runs of 12 or more digits (with spaces or dashes
/// between them) are removed, and the text is cut at 200 characters.
pub fn scrub(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(200));
    let chars: Vec<char> = text.chars().take(400).collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let mut end = i;
            let mut digits = 0;
            while end < chars.len()
                && (chars[end].is_ascii_digit() || matches!(chars[end], ' ' | '-'))
            {
                digits += usize::from(chars[end].is_ascii_digit());
                end += 1;
            }
            // A separator after the last digit belongs to the text, not the number.
            while matches!(chars[end - 1], ' ' | '-') {
                end -= 1;
            }
            if digits >= 12 {
                out.push_str("[number removed]");
            } else {
                out.extend(&chars[i..end]);
            }
            i = end;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out.chars().take(200).collect()
}

/// A channel's id for a payment or refund, kept as given (real ones are long digit strings,
/// which `scrub` would remove) but bounded: at most 128 visible ASCII characters.
pub fn clean_id(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(128)
        .collect()
}

fn plugin_failure_message(error: &PluginError) -> String {
    error.to_string()
}

/// A channel's reason, made safe to store and show.
pub fn failure_from(reason: &Reason) -> Option<Failure> {
    failure(&reason.code, &reason.message)
}

/// Runs the attempt and returns it as it should be stored. Never fails: every way the
/// exchange can go wrong is an attempt status.
pub async fn run(
    channel: Arc<Channel>,
    http: &ChannelHttp,
    order: &Order,
    choice: &PaymentChoice,
    urls: Urls,
    mut attempt: Attempt,
) -> Attempt {
    let customer = &choice.customer;
    let ask = PaymentAsk {
        payment_ref: attempt.payment_ref.clone(),
        amount: order.amount,
        method: choice.method.clone(),
        flow: choice.flow,
        subject: order.subject.clone(),
        payer: Payer {
            id: order.player_id.clone(),
            email: customer.email.clone(),
            first_name: customer.first_name.clone(),
            last_name: customer.last_name.clone(),
            phone: customer.phone.clone(),
            ip: order.client_ip.clone(),
            billing: customer.billing.clone(),
            shipping: customer.shipping.clone(),
        },
        language: choice.language.clone().unwrap_or_else(|| "en".into()),
        return_url: urls.return_to,
        notify_url: urls.notify,
        expires_at_s: order.expires_at / 1000,
        started_at_s: attempt.created_at.div_euclid(1000),
    };
    let card = choice.card.as_ref().map(|card| card.seal());
    attempt.updated_at = now_ms();
    let request = contract::payment_request(&ask);
    let start = match channel.create_payment(&request, card.as_ref()).await {
        Ok(start) => start,
        Err(error) => {
            tracing::warn!(order_no = %order.order_no, channel = channel.id(), error = %scrub(&error.to_string()), "payment not started");
            attempt.status = AttemptStatus::Failed;
            attempt.failure = failure(NOT_SENT, plugin_failure_message(&error));
            return attempt;
        }
    };
    let call = match Start::from(start) {
        Start::Act(action) => {
            attempt.next_action = Some(action);
            attempt.status = match attempt.next_action {
                Some(NextAction::Wait | NextAction::None) => AttemptStatus::Processing,
                _ => AttemptStatus::RequiresAction,
            };
            return attempt;
        }
        Start::Send(call) => call,
    };
    let response = match http.send(&call).await {
        Ok(response) => response,
        Err(crate::channels::http::SendError::InvalidRequest(why)) => {
            attempt.status = AttemptStatus::Failed;
            attempt.failure = failure(NOT_SENT, why);
            return attempt;
        }
        Err(error) => {
            tracing::warn!(order_no = %order.order_no, channel = channel.id(), %error, "payment outcome unknown");
            attempt.status = AttemptStatus::Unknown;
            attempt.failure = failure(NO_ANSWER, error.to_string());
            return attempt;
        }
    };
    let context = contract::payment_context(&ask);
    match channel.parse_payment_response(&context, &response).await {
        Ok(outcome) => apply_report(order, attempt, outcome.update.into(), outcome.action.into()),
        Err(error) => {
            tracing::warn!(order_no = %order.order_no, channel = channel.id(), error = %scrub(&error.to_string()), "channel answer not usable");
            attempt.status = AttemptStatus::Unknown;
            attempt.failure = failure(UNREADABLE_ANSWER, plugin_failure_message(&error));
            attempt
        }
    }
}

/// Maps the channel's view of the payment onto the attempt.
fn apply_report(
    order: &Order,
    mut attempt: Attempt,
    report: PaymentReport,
    action: NextAction,
) -> Attempt {
    attempt.channel_txn_id = report.channel_txn_id.as_deref().map(clean_id);
    attempt.channel_status = scrub(&report.channel_status);
    attempt.failure = report.reason.as_ref().and_then(failure_from);
    attempt.next_action = Some(action.clone());
    attempt.status = match report.state {
        PaymentState::Paid => {
            let charged = report.charged.as_ref();
            if charged.is_some_and(|c| c.is(order.amount)) {
                AttemptStatus::Paid
            } else {
                tracing::error!(order_no = %order.order_no, ?charged, expected = %order.amount, "channel reports a payment of another amount; left for an operator");
                attempt.failure = failure(
                    AMOUNT_MISMATCH,
                    "the channel reported a payment of another amount or currency",
                );
                AttemptStatus::Unknown
            }
        }
        PaymentState::Failed | PaymentState::Closed => AttemptStatus::Failed,
        PaymentState::RequiresAction => AttemptStatus::RequiresAction,
        PaymentState::Pending => match action {
            NextAction::None | NextAction::Wait => AttemptStatus::Processing,
            _ => AttemptStatus::RequiresAction,
        },
        PaymentState::Refunded | PaymentState::PartiallyRefunded | PaymentState::Chargeback => {
            tracing::error!(order_no = %order.order_no, state = ?report.state, "channel reports a refund for a payment just started");
            AttemptStatus::Unknown
        }
    };
    attempt
}

#[cfg(test)]
mod tests {
    use super::scrub;

    #[test]
    fn card_numbers_never_survive_plugin_text() {
        assert_eq!(
            scrub("declined 4242424242424242 x"),
            "declined [number removed] x"
        );
        assert_eq!(scrub("card 4242 4242 4242 4242."), "card [number removed].");
        assert_eq!(scrub("4000-0000-0000-0002"), "[number removed]");
        assert_eq!(
            scrub("E0004: code 12345, 2026-11-24"),
            "E0004: code 12345, 2026-11-24"
        );
        assert_eq!(scrub(&"x".repeat(500)).len(), 200);
    }
}
