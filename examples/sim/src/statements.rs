//! Discrepancies a test asks a channel's statement to carry, so that reconciliation can be
//! shown to find each: a payment left out, another amount, a payment or a refund Coffer never
//! saw. Applied when the statement is served; the channel's own records stay as they are.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatementEdits {
    /// Merchant order numbers whose lines are left out (Coffer's record is "short").
    pub drop: BTreeSet<String>,
    /// Merchant order numbers whose payment line shows another amount, in minor units.
    pub amounts: BTreeMap<String, i64>,
    /// Payment lines for orders the channel never told Coffer of ("long").
    pub extra_payments: Vec<ExtraLine>,
    /// Refund lines of existing payments that Coffer never recorded.
    pub extra_refunds: Vec<ExtraLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraLine {
    pub out_trade_no: String,
    pub amount_minor: i64,
}

/// The edits each channel's statement carries, by channel id.
#[derive(Default)]
pub struct StatementSwitch(Mutex<HashMap<String, StatementEdits>>);

impl StatementSwitch {
    pub fn set(&self, channel: &str, edits: StatementEdits) {
        self.0.lock().unwrap().insert(channel.to_owned(), edits);
    }

    pub fn get(&self, channel: &str) -> StatementEdits {
        self.0
            .lock()
            .unwrap()
            .get(channel)
            .cloned()
            .unwrap_or_default()
    }
}
