//! Matching a channel's statement against what Coffer recorded, without I/O: each statement
//! line and each local record of the day gets one classification. `mod.rs` acts on them
//! (confirms long payments by query, posts fees, stores the findings).

use std::collections::HashMap;

pub use crate::channels::StatementKind as LineKind;

/// One statement line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub kind: LineKind,
    /// Coffer's payment reference, when the channel echoes it.
    pub payment_ref: Option<String>,
    /// On a refund line, Coffer's refund number, when the channel echoes it.
    pub refund_no: Option<String>,
    pub channel_txn_id: String,
    /// Negative for money leaving the merchant.
    pub minor: i64,
    pub currency: String,
}

/// A payment attempt Coffer knows at this channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalPayment {
    pub payment_ref: String,
    pub channel_txn_id: Option<String>,
    pub paid: bool,
    pub minor: i64,
    pub currency: String,
    /// Paid within the statement's day: the statement must list it.
    pub due_in_day: bool,
}

/// A succeeded refund Coffer recorded at this channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalRefund {
    pub refund_no: String,
    pub payment_ref: String,
    pub minor: i64,
    pub due_in_day: bool,
}

/// What a statement line turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineOutcome {
    /// Agrees with a paid attempt.
    PaymentMatched { payment_ref: String },
    /// Agrees with a succeeded refund.
    RefundMatched {
        refund_no: String,
        payment_ref: String,
    },
    /// The channel took money Coffer does not know as paid: an attempt to confirm by query
    /// (`Some`), or no attempt at all.
    Long { payment_ref: Option<String> },
    /// The attempt exists, but the channel took another amount.
    AmountMismatch {
        payment_ref: String,
        local_minor: i64,
    },
    /// The attempt exists, but in another currency.
    CurrencyMismatch {
        payment_ref: String,
        local_currency: String,
    },
    /// The refund exists (by its number), but the channel gave back another amount.
    RefundAmountMismatch {
        refund_no: String,
        payment_ref: String,
        local_minor: i64,
    },
    /// A refund at the channel that Coffer has not recorded.
    RefundNotRecorded { payment_ref: Option<String> },
    /// Chargebacks, fees, adjustments: nothing local to match; kept for the operator.
    Unmatched,
}

impl LineOutcome {
    /// The local payment and refund this line was found to be, if any.
    pub fn local_records(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Self::PaymentMatched { payment_ref } => (Some(payment_ref), None),
            Self::RefundMatched {
                refund_no,
                payment_ref,
            } => (Some(payment_ref), Some(refund_no)),
            _ => (None, None),
        }
    }
}

/// Local records the statement does not show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// Coffer thinks it was paid within the day; the channel has no record.
    Short { payment_ref: String },
    /// Coffer recorded a refund within the day; the channel shows none.
    RefundNotAtChannel {
        refund_no: String,
        payment_ref: String,
    },
}

/// Classifies every line, and every local record due in the day that no line matched.
pub fn classify(
    lines: &[Line],
    payments: &[LocalPayment],
    refunds: &[LocalRefund],
) -> (Vec<LineOutcome>, Vec<Missing>) {
    let by_ref: HashMap<&str, usize> = payments
        .iter()
        .enumerate()
        .map(|(i, p)| (p.payment_ref.as_str(), i))
        .collect();
    let by_txn: HashMap<&str, usize> = payments
        .iter()
        .enumerate()
        .filter_map(|(i, p)| Some((p.channel_txn_id.as_deref()?, i)))
        .collect();
    let find = |line: &Line| {
        by_txn
            .get(line.channel_txn_id.as_str())
            .or_else(|| line.payment_ref.as_deref().and_then(|r| by_ref.get(r)))
            .copied()
    };
    let mut payment_seen = vec![false; payments.len()];
    let mut refund_seen = vec![false; refunds.len()];
    let refund_index = RefundIndex::new(refunds);
    let mut outcomes = Vec::with_capacity(lines.len());
    for line in lines {
        let local = find(line);
        let outcome = match line.kind {
            LineKind::Payment => match local.map(|i| (i, &payments[i])) {
                None => LineOutcome::Long {
                    payment_ref: line.payment_ref.clone(),
                },
                Some((i, payment)) => {
                    payment_seen[i] = true;
                    let payment_ref = payment.payment_ref.clone();
                    if payment.currency != line.currency {
                        LineOutcome::CurrencyMismatch {
                            payment_ref,
                            local_currency: payment.currency.clone(),
                        }
                    } else if payment.minor != line.minor {
                        LineOutcome::AmountMismatch {
                            payment_ref,
                            local_minor: payment.minor,
                        }
                    } else if !payment.paid {
                        LineOutcome::Long {
                            payment_ref: Some(payment_ref),
                        }
                    } else {
                        LineOutcome::PaymentMatched { payment_ref }
                    }
                }
            },
            LineKind::Refund => {
                let payment_ref = local.map(|i| payments[i].payment_ref.clone());
                match refund_index.find(line, payment_ref.as_deref(), refunds, &refund_seen) {
                    Some(j) => {
                        refund_seen[j] = true;
                        let refund = &refunds[j];
                        if refund.minor == -line.minor {
                            LineOutcome::RefundMatched {
                                refund_no: refund.refund_no.clone(),
                                payment_ref: refund.payment_ref.clone(),
                            }
                        } else {
                            LineOutcome::RefundAmountMismatch {
                                refund_no: refund.refund_no.clone(),
                                payment_ref: refund.payment_ref.clone(),
                                local_minor: refund.minor,
                            }
                        }
                    }
                    None => LineOutcome::RefundNotRecorded {
                        payment_ref: payment_ref.or_else(|| line.payment_ref.clone()),
                    },
                }
            }
            LineKind::Chargeback | LineKind::Fee | LineKind::Adjustment => LineOutcome::Unmatched,
        };
        outcomes.push(outcome);
    }
    let mut missing: Vec<Missing> = payments
        .iter()
        .zip(&payment_seen)
        .filter(|(p, seen)| p.paid && p.due_in_day && !**seen)
        .map(|(p, _)| Missing::Short {
            payment_ref: p.payment_ref.clone(),
        })
        .collect();
    missing.extend(
        refunds
            .iter()
            .zip(&refund_seen)
            .filter(|(r, seen)| r.due_in_day && !**seen)
            .map(|(r, _)| Missing::RefundNotAtChannel {
                refund_no: r.refund_no.clone(),
                payment_ref: r.payment_ref.clone(),
            }),
    );
    (outcomes, missing)
}

/// The local refunds by number and by payment, to find a refund line's in constant time.
struct RefundIndex<'a> {
    by_no: HashMap<&'a str, usize>,
    by_payment: HashMap<&'a str, Vec<usize>>,
}

impl<'a> RefundIndex<'a> {
    fn new(refunds: &'a [LocalRefund]) -> Self {
        let mut by_payment: HashMap<&str, Vec<usize>> = HashMap::new();
        for (j, refund) in refunds.iter().enumerate() {
            by_payment.entry(&refund.payment_ref).or_default().push(j);
        }
        Self {
            by_no: refunds
                .iter()
                .enumerate()
                .map(|(j, r)| (r.refund_no.as_str(), j))
                .collect(),
            by_payment,
        }
    }

    /// The local refund a refund line is: by the refund number the channel echoes (then its
    /// amount is checked apart), else the first not yet matched of that payment for that amount.
    fn find(
        &self,
        line: &Line,
        payment_ref: Option<&str>,
        refunds: &[LocalRefund],
        seen: &[bool],
    ) -> Option<usize> {
        if let Some(refund_no) = line.refund_no.as_deref() {
            return self.by_no.get(refund_no).copied().filter(|&j| !seen[j]);
        }
        self.by_payment
            .get(payment_ref?)?
            .iter()
            .copied()
            .find(|&j| !seen[j] && refunds[j].minor == -line.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(kind: LineKind, payment_ref: &str, txn: &str, minor: i64) -> Line {
        Line {
            kind,
            payment_ref: Some(payment_ref.to_owned()).filter(|r| !r.is_empty()),
            refund_no: None,
            channel_txn_id: txn.to_owned(),
            minor,
            currency: "CNY".into(),
        }
    }

    fn paid(payment_ref: &str, txn: Option<&str>, minor: i64) -> LocalPayment {
        LocalPayment {
            payment_ref: payment_ref.into(),
            channel_txn_id: txn.map(str::to_owned),
            paid: true,
            minor,
            currency: "CNY".into(),
            due_in_day: true,
        }
    }

    fn refunded(refund_no: &str, payment_ref: &str, minor: i64) -> LocalRefund {
        LocalRefund {
            refund_no: refund_no.into(),
            payment_ref: payment_ref.into(),
            minor,
            due_in_day: true,
        }
    }

    #[test]
    fn a_clean_day_matches_everything_by_txn_or_by_reference() {
        let lines = [
            line(LineKind::Payment, "P-1", "T-1", 600),
            // The channel does not echo the reference: found by its own id.
            line(LineKind::Payment, "", "T-2", 1999),
            // No txn id known here yet: found by the reference.
            line(LineKind::Payment, "P-3", "T-3", 100),
            line(LineKind::Refund, "P-1", "T-1", -200),
        ];
        let payments = [
            paid("P-1", Some("T-1"), 600),
            paid("P-2", Some("T-2"), 1999),
            paid("P-3", None, 100),
        ];
        let refunds = [refunded("RF-1", "P-1", 200)];
        let (outcomes, missing) = classify(&lines, &payments, &refunds);
        assert_eq!(
            outcomes,
            [
                LineOutcome::PaymentMatched {
                    payment_ref: "P-1".into()
                },
                LineOutcome::PaymentMatched {
                    payment_ref: "P-2".into()
                },
                LineOutcome::PaymentMatched {
                    payment_ref: "P-3".into()
                },
                LineOutcome::RefundMatched {
                    refund_no: "RF-1".into(),
                    payment_ref: "P-1".into()
                },
            ]
        );
        assert_eq!(missing, []);
    }

    #[test]
    fn each_discrepancy_is_named() {
        let lines = [
            // Paid at the channel, not here: long (known attempt, to confirm).
            line(LineKind::Payment, "P-1", "T-1", 600),
            // Nothing known at all: long.
            line(LineKind::Payment, "X-9", "T-9", 600),
            line(LineKind::Payment, "P-2", "T-2", 601),
            Line {
                currency: "USD".into(),
                ..line(LineKind::Payment, "P-3", "T-3", 600)
            },
            line(LineKind::Payment, "P-4", "T-4", 600),
            // A refund at the channel that Coffer never recorded.
            line(LineKind::Refund, "P-4", "T-4", -600),
            line(LineKind::Chargeback, "P-4", "T-4", -600),
        ];
        let payments = [
            LocalPayment {
                paid: false,
                ..paid("P-1", None, 600)
            },
            paid("P-2", Some("T-2"), 600),
            paid("P-3", Some("T-3"), 600),
            paid("P-4", Some("T-4"), 600),
            // Paid here, not in the statement: short.
            paid("P-5", Some("T-5"), 600),
            // Paid on another day: not due in this statement.
            LocalPayment {
                due_in_day: false,
                ..paid("P-6", Some("T-6"), 600)
            },
        ];
        let refunds = [refunded("RF-7", "P-2", 100)];
        let (outcomes, missing) = classify(&lines, &payments, &refunds);
        assert_eq!(
            outcomes,
            [
                LineOutcome::Long {
                    payment_ref: Some("P-1".into())
                },
                LineOutcome::Long {
                    payment_ref: Some("X-9".into())
                },
                LineOutcome::AmountMismatch {
                    payment_ref: "P-2".into(),
                    local_minor: 600
                },
                LineOutcome::CurrencyMismatch {
                    payment_ref: "P-3".into(),
                    local_currency: "CNY".into()
                },
                LineOutcome::PaymentMatched {
                    payment_ref: "P-4".into()
                },
                LineOutcome::RefundNotRecorded {
                    payment_ref: Some("P-4".into())
                },
                LineOutcome::Unmatched,
            ]
        );
        assert_eq!(
            missing,
            [
                Missing::Short {
                    payment_ref: "P-5".into()
                },
                Missing::RefundNotAtChannel {
                    refund_no: "RF-7".into(),
                    payment_ref: "P-2".into()
                },
            ]
        );
    }

    #[test]
    fn two_refunds_of_one_amount_match_two_lines_once_each() {
        let lines = [
            line(LineKind::Payment, "P-1", "T-1", 600),
            line(LineKind::Refund, "P-1", "T-1", -100),
            line(LineKind::Refund, "P-1", "T-1", -100),
            line(LineKind::Refund, "P-1", "T-1", -100),
        ];
        let payments = [paid("P-1", Some("T-1"), 600)];
        let refunds = [refunded("RF-1", "P-1", 100), refunded("RF-2", "P-1", 100)];
        let (outcomes, missing) = classify(&lines, &payments, &refunds);
        assert!(
            matches!(&outcomes[1], LineOutcome::RefundMatched { refund_no, .. } if refund_no == "RF-1")
        );
        assert!(
            matches!(&outcomes[2], LineOutcome::RefundMatched { refund_no, .. } if refund_no == "RF-2")
        );
        assert_eq!(
            outcomes[3],
            LineOutcome::RefundNotRecorded {
                payment_ref: Some("P-1".into())
            }
        );
        assert_eq!(missing, []);
    }

    #[test]
    fn a_refund_line_with_our_number_matches_that_refund_whatever_its_order() {
        let numbered = |refund_no: &str, minor| Line {
            refund_no: Some(refund_no.into()),
            ..line(LineKind::Refund, "P-1", "T-1", minor)
        };
        let lines = [
            line(LineKind::Payment, "P-1", "T-1", 600),
            // Listed in the other order than recorded: by amount alone RF-1 would take it.
            numbered("RF-2", -100),
            numbered("RF-1", -100),
            // Our number, another amount: named, not taken for another refund.
            numbered("RF-3", -250),
            // A number Coffer never gave.
            numbered("RF-9", -50),
        ];
        let payments = [paid("P-1", Some("T-1"), 600)];
        let refunds = [
            refunded("RF-1", "P-1", 100),
            refunded("RF-2", "P-1", 100),
            refunded("RF-3", "P-1", 200),
        ];
        let (outcomes, missing) = classify(&lines, &payments, &refunds);
        assert_eq!(
            outcomes[1..],
            [
                LineOutcome::RefundMatched {
                    refund_no: "RF-2".into(),
                    payment_ref: "P-1".into()
                },
                LineOutcome::RefundMatched {
                    refund_no: "RF-1".into(),
                    payment_ref: "P-1".into()
                },
                LineOutcome::RefundAmountMismatch {
                    refund_no: "RF-3".into(),
                    payment_ref: "P-1".into(),
                    local_minor: 200
                },
                LineOutcome::RefundNotRecorded {
                    payment_ref: Some("P-1".into())
                },
            ]
        );
        assert_eq!(missing, [], "every recorded refund was seen");
    }
}
