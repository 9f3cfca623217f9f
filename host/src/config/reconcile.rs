//! `[reconcile]`: the daily reconciliation of every channel's statement.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReconcileConfig {
    /// Reconcile yesterday's statement of every channel that offers one, once a day, in this
    /// instance (safe on several at once: a day's run is claimed first).
    pub enabled: bool,
    /// How often the job looks for a day still to reconcile, in seconds.
    pub interval_s: u64,
    /// Hours east of UTC of each channel's statement day; 0 for a channel not listed.
    pub utc_offset_hours: BTreeMap<String, i32>,
}

impl Default for ReconcileConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_s: 3600,
            // Alipay and WeChat Pay cut their statements at midnight Beijing time.
            utc_offset_hours: BTreeMap::from([("alipay".into(), 8), ("wechatpay".into(), 8)]),
        }
    }
}

impl ReconcileConfig {
    /// Seconds east of UTC, by channel.
    pub fn offsets(&self) -> std::collections::HashMap<String, i32> {
        self.utc_offset_hours
            .iter()
            .map(|(channel, hours)| (channel.clone(), hours * 3600))
            .collect()
    }
}
