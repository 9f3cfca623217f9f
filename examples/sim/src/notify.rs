//! Asynchronous notifications, sent like the real channels send them: retried on a schedule
//! until the merchant acknowledges, with faults applied on request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::faults::FaultSwitch;

/// An HTTP message's headers and body.
pub type Message = (Vec<(String, String)>, Vec<u8>);

/// One notification a channel sends about an order.
#[derive(Clone)]
pub struct Notification {
    pub channel: &'static str,
    pub order_no: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The same notification with a wrong signature, for the forging fault.
    pub forged: Option<Message>,
    /// Delays before each attempt, in real seconds (scaled by the simulator's time scale).
    pub schedule: &'static [u64],
    /// Whether the merchant's answer acknowledges the notification.
    pub is_ack: fn(u16, &[u8]) -> bool,
}

/// One attempt to deliver a notification, as the control API reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    pub channel: String,
    pub order_no: String,
    pub attempt: u32,
    /// The merchant's HTTP status; none if it could not be reached.
    pub status: Option<u16>,
    pub acked: bool,
    pub forged: bool,
}

pub struct Notifier {
    client: reqwest::Client,
    time_scale: f64,
    log: Arc<Mutex<Vec<Delivery>>>,
    last_by_order: Mutex<HashMap<(String, String), Notification>>,
}

impl Notifier {
    pub fn new(time_scale: f64) -> Self {
        Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("client builds"),
            time_scale,
            log: Default::default(),
            last_by_order: Default::default(),
        }
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.log.lock().unwrap().clone()
    }

    /// Sends `notification` in the background, applying whatever faults are switched on.
    pub fn send(&self, notification: Notification, faults: &FaultSwitch) {
        let key = (
            notification.channel.to_owned(),
            notification.order_no.clone(),
        );
        let previous = self
            .last_by_order
            .lock()
            .unwrap()
            .insert(key, notification.clone());
        if faults.take(|f| &mut f.drop_notifications) {
            tracing::info!(order = %notification.order_no, "fault: notification dropped");
            return;
        }
        let forged = faults.take(|f| &mut f.forge_notifications);
        let settings = faults.get();
        let extra_delay = Duration::from_millis(settings.notify_delay_ms);
        let copies = if settings.duplicate_notifications {
            2
        } else {
            1
        };
        for _ in 0..copies {
            self.spawn(notification.clone(), forged, extra_delay);
        }
        if settings.reorder_notifications
            && let Some(previous) = previous
        {
            // The stale one arrives after the new one.
            self.spawn(
                previous,
                false,
                extra_delay + self.scaled(1) + Duration::from_millis(50),
            );
        }
    }

    fn scaled(&self, seconds: u64) -> Duration {
        Duration::from_secs_f64(seconds as f64 * self.time_scale)
    }

    fn spawn(&self, notification: Notification, forged: bool, extra_delay: Duration) {
        let client = self.client.clone();
        let log = self.log.clone();
        let delays: Vec<Duration> = notification
            .schedule
            .iter()
            .map(|s| self.scaled(*s))
            .collect();
        tokio::spawn(async move {
            tokio::time::sleep(extra_delay).await;
            for (attempt, delay) in delays.into_iter().enumerate() {
                tokio::time::sleep(delay).await;
                // A forged copy takes the first attempt's place; the channel's retries are genuine.
                let forged = forged && attempt == 0 && notification.forged.is_some();
                let (headers, body) = match (&notification.forged, forged) {
                    (Some(forgery), true) => forgery.clone(),
                    _ => (notification.headers.clone(), notification.body.clone()),
                };
                let mut request = client.post(&notification.url).body(body.clone());
                for (k, v) in &headers {
                    request = request.header(k, v);
                }
                let (status, acked) = match request.send().await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let answer = response.bytes().await.unwrap_or_default();
                        (Some(status), (notification.is_ack)(status, &answer))
                    }
                    Err(_) => (None, false),
                };
                log.lock().unwrap().push(Delivery {
                    channel: notification.channel.to_owned(),
                    order_no: notification.order_no.clone(),
                    attempt: attempt as u32 + 1,
                    status,
                    acked,
                    forged,
                });
                if acked {
                    return;
                }
            }
        });
    }
}
