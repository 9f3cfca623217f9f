//! Faults a test can switch on, to see Coffer survive a misbehaving channel.

use std::sync::Mutex;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// Every API answer waits this long first (to provoke client timeouts).
    pub api_delay_ms: u64,
    /// The next N API calls answer 503 without doing anything.
    pub api_unavailable: u32,
    /// The next N notifications are never sent (lost callbacks).
    pub drop_notifications: u32,
    /// Every notification is sent twice.
    pub duplicate_notifications: bool,
    /// Every notification waits this much longer before its first attempt.
    pub notify_delay_ms: u64,
    /// After a notification, the order's previous notification is sent again (out of order).
    pub reorder_notifications: bool,
    /// The next N notifications carry a wrong signature.
    pub forge_notifications: u32,
    /// CaresPay answers pay and query requests without `merNo` and `md5Info`, as a gateway
    /// that does not sign its answers would (the signature is an inferred detail).
    pub unsigned_answers: bool,
}

#[derive(Default)]
pub struct FaultSwitch(Mutex<Faults>);

impl FaultSwitch {
    pub fn set(&self, faults: Faults) {
        *self.0.lock().unwrap() = faults;
    }

    pub fn get(&self) -> Faults {
        self.0.lock().unwrap().clone()
    }

    /// Applies the API faults: waits, and answers 503 if one is due.
    pub async fn api(&self) -> Option<Response> {
        let (delay, unavailable) = {
            let mut f = self.0.lock().unwrap();
            let unavailable = f.api_unavailable > 0;
            f.api_unavailable = f.api_unavailable.saturating_sub(1);
            (f.api_delay_ms, unavailable)
        };
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        unavailable
            .then(|| (StatusCode::SERVICE_UNAVAILABLE, "service unavailable").into_response())
    }

    /// Takes one from a counter, telling whether it applies to this notification.
    pub(crate) fn take(&self, pick: impl Fn(&mut Faults) -> &mut u32) -> bool {
        let mut f = self.0.lock().unwrap();
        let counter = pick(&mut f);
        let due = *counter > 0;
        *counter = counter.saturating_sub(1);
        due
    }
}
