//! A world for channel tests: the simulator on loopback, the real plugin runtime loading the
//! built plugins, the host's HTTP client sending what the plugins build, and a merchant
//! endpoint that hands the simulator's notifications to the plugin, like Coffer's callback
//! route.

pub use crate::support::{fixture, shared_keys};

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use coffer::channels::http::ChannelHttp;
use coffer::config::{ChannelSection, load_channel_configs};
use coffer_plugin_runtime::contract::*;
use coffer_plugin_runtime::{
    ArtifactCache, Channel, Limits, PluginEngine, PluginError, Registry, SecretCard,
};
use coffer_sim::{RunningSim, SimConfig};

pub struct ChannelWorld {
    pub sim: RunningSim,
    pub channel: Arc<Channel>,
    pub http: ChannelHttp,
    pub merchant: Merchant,
    _registry: Arc<Registry>,
    _dir: tempfile::TempDir,
}

/// What the merchant endpoint saw: every notification's verdict, in arrival order.
#[derive(Clone, Default)]
pub struct Merchant {
    pub url: String,
    pub verdicts: Arc<Mutex<Vec<CallbackVerdict>>>,
    /// The next N notifications are answered as if recording them failed (the channel retries).
    pub failing: Arc<std::sync::atomic::AtomicU32>,
}

impl Merchant {
    pub fn verdicts(&self) -> Vec<CallbackVerdict> {
        self.verdicts.lock().unwrap().clone()
    }

    /// Waits (bounded) until `count` notifications have arrived.
    pub async fn wait_for(&self, count: usize) -> Vec<CallbackVerdict> {
        for _ in 0..200 {
            let seen = self.verdicts();
            if seen.len() >= count {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("expected {count} notifications, got {:?}", self.verdicts());
    }
}

impl ChannelWorld {
    /// Starts the simulator and loads the `channel` plugin configured by `section`, which gets
    /// the simulator's base URL and the keys directory to fill in.
    pub async fn start(plugin_file: &str, section: impl Fn(&str, &Path) -> String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = shared_keys();
        keys.write_for_coffer(dir.path()).unwrap();
        let sim = coffer_sim::start(
            SimConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                time_scale: 0.001,
            },
            keys,
        )
        .await
        .unwrap();

        let text = section(&sim.sim.base_url, dir.path());
        let sections: std::collections::BTreeMap<String, ChannelSection> =
            coffer::config::Config::from_toml(&text).unwrap().channels;
        let configs = load_channel_configs(&sections).unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        std::fs::copy(fixture(plugin_file), plugins.join(plugin_file)).unwrap();
        let engine = PluginEngine::new(Limits::default()).unwrap();
        let registry = Arc::new(Registry::new(
            engine,
            &plugins,
            ArtifactCache::default(),
            configs,
        ));
        let report = registry.reload().await;
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        let channel = registry.channels().into_iter().next().unwrap();
        let merchant = start_merchant(channel.clone()).await;
        Self {
            sim,
            channel,
            http: ChannelHttp::new(Duration::from_secs(5), 4 << 20),
            merchant,
            _registry: registry,
            _dir: dir,
        }
    }

    /// A refund of `refund_amount` out of an order of `order_amount`, notified to the merchant.
    pub fn refund_of(
        &self,
        order_no: &str,
        refund_no: &str,
        order_amount: Money,
        refund_amount: Money,
    ) -> RefundRequest {
        RefundRequest {
            refund_no: refund_no.into(),
            order_no: order_no.into(),
            channel_txn_id: None,
            order_amount,
            refund_amount,
            reason: "player request".into(),
            notify_url: self.merchant.url.clone(),
        }
    }

    /// create-payment: what the plugin makes of a payment request.
    pub async fn create(&self, payment: &impl Payment) -> Result<PaymentStart, PluginError> {
        let (request, card) = payment.parts();
        self.channel.create_payment(request, card).await
    }

    /// create-payment, send, parse: the host's side of starting a payment.
    pub async fn pay(&self, payment: &impl Payment) -> Result<PaymentOutcome, PluginError> {
        let start = self.create(payment).await?;
        let request = payment.parts().0;
        let PaymentStart::Call(call) = start else {
            panic!("expected a request to send, got {start:?}");
        };
        let response = self.http.send(&call).await.expect("simulator answers");
        let context = PaymentContext {
            order_no: request.order_no.clone(),
            amount: request.amount.clone(),
            method: request.method.clone(),
            flow: request.flow,
            channel_txn_id: None,
        };
        self.channel
            .parse_payment_response(&context, &response)
            .await
    }

    pub async fn query(&self, request: &QueryRequest) -> Result<PaymentUpdate, PluginError> {
        let call = self.channel.build_query(request).await?;
        let response = self.http.send(&call).await.expect("simulator answers");
        self.channel.parse_query_response(request, &response).await
    }

    pub async fn refund(&self, request: &RefundRequest) -> Result<RefundUpdate, PluginError> {
        let call = self.channel.build_refund(request).await?;
        let response = self.http.send(&call).await.expect("simulator answers");
        self.channel.parse_refund_response(request, &response).await
    }

    /// Fetches and parses one day's statement, following download links.
    pub async fn statement(&self, day: &str) -> Result<Vec<StatementLine>, PluginError> {
        let mut call = self.channel.build_statement_request(day).await?;
        for _ in 0..4 {
            let response = self.http.send(&call).await.expect("simulator answers");
            match self
                .channel
                .parse_statement_response(day, &response)
                .await?
            {
                StatementStep::Document(document) => {
                    return self.channel.parse_statement(&document).await;
                }
                StatementStep::Follow(next) => call = next,
            }
        }
        panic!("statement download did not end");
    }

    /// A browser return as Coffer's return route would hand it to the plugin.
    pub async fn browser_return(&self, url: &str) -> CallbackVerdict {
        let query = url.split_once('?').map_or("", |(_, q)| q);
        let request = InboundRequest {
            kind: InboundKind::BrowserReturn,
            method: HttpMethod::Get,
            path: "/v1/return/test".into(),
            query: query.into(),
            headers: vec![],
            body: vec![],
        };
        self.channel.parse_callback(&request).await.unwrap().verdict
    }

    /// Every notification attempt the simulator made, from its control API.
    pub async fn deliveries(&self) -> Vec<serde_json::Value> {
        let log: serde_json::Value = reqwest::get(self.sim.url("/_control/notifications"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        log["deliveries"].as_array().unwrap().clone()
    }

    pub async fn set_faults(&self, faults: serde_json::Value) {
        let response = reqwest::Client::new()
            .put(self.sim.url("/_control/faults"))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }
}

async fn start_merchant(channel: Arc<Channel>) -> Merchant {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let merchant = Merchant {
        url: format!(
            "http://{}/v1/callbacks/{}",
            listener.local_addr().unwrap(),
            channel.id()
        ),
        ..Default::default()
    };
    let app = axum::Router::new()
        .route("/v1/callbacks/{channel}", axum::routing::post(receive))
        .with_state((channel, merchant.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    merchant
}

async fn receive(
    State((channel, merchant)): State<(Arc<Channel>, Merchant)>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Bytes,
) -> Response {
    let request = InboundRequest {
        kind: InboundKind::Notify,
        method: HttpMethod::Post,
        path: uri.path().to_owned(),
        query: uri.query().unwrap_or_default().to_owned(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    v.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    let outcome = channel.parse_callback(&request).await.unwrap();
    let failing = merchant
        .failing
        .fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |n| n.checked_sub(1),
        )
        .is_ok();
    // Like the host once it has recorded the event (or, for a claim, confirmed it by query).
    let ack = match outcome.verdict {
        CallbackVerdict::Verified(_) | CallbackVerdict::Unverified(_) if !failing => {
            outcome.ack_accepted
        }
        _ => outcome.ack_rejected,
    };
    merchant.verdicts.lock().unwrap().push(outcome.verdict);
    let mut response = (StatusCode::from_u16(ack.status).unwrap(), ack.body).into_response();
    for (k, v) in ack.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::try_from(k).unwrap(),
            v.parse().unwrap(),
        );
    }
    response
}

/// A status query for an order of `amount`.
pub fn query(order_no: &str, amount: Money) -> QueryRequest {
    QueryRequest {
        order_no: order_no.into(),
        channel_txn_id: None,
        amount,
        started_at: now_s(),
    }
}

pub fn cny(minor: i64) -> Money {
    money(minor, "CNY")
}

pub fn money(minor: i64, currency: &str) -> Money {
    Money {
        minor,
        currency: currency.into(),
    }
}

pub fn payment(
    order_no: &str,
    amount: Money,
    flow: CheckoutFlow,
    notify_url: &str,
) -> PaymentRequest {
    PaymentRequest {
        order_no: order_no.into(),
        amount,
        method: "card".into(),
        flow,
        subject: "100 Gems".into(),
        description: String::new(),
        customer: Customer {
            id: "player-1".into(),
            email: "player@example.test".into(),
            first_name: "Ada".into(),
            last_name: "Player".into(),
            phone: "+1 555 0100".into(),
            ip: "203.0.113.7".into(),
            billing: Some(Address {
                country: "US".into(),
                state: "CA".into(),
                city: "San Francisco".into(),
                line1: "1 Market St".into(),
                line2: String::new(),
                postal_code: "94105".into(),
            }),
            shipping: None,
        },
        card: None,
        language: "en".into(),
        return_url: "http://127.0.0.1:8080/v1/return/test".into(),
        notify_url: notify_url.into(),
        expires_at: 4_102_444_800,
        started_at: now_s(),
    }
}

/// The wall clock in Unix seconds: when a test's payment attempt starts.
pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

pub fn card(number: &str) -> SecretCard {
    SecretCard::new(number, 12, 2031, "123", "Ada Player")
}

/// A payment to start: a request, with a card for the direct-card flow.
pub trait Payment {
    fn parts(&self) -> (&PaymentRequest, Option<&SecretCard>);
}

impl Payment for PaymentRequest {
    fn parts(&self) -> (&PaymentRequest, Option<&SecretCard>) {
        (self, None)
    }
}

/// A direct-card payment: the card travels beside the request, never inside it.
pub struct CardPayment {
    pub request: PaymentRequest,
    pub card: SecretCard,
}

impl Payment for CardPayment {
    fn parts(&self) -> (&PaymentRequest, Option<&SecretCard>) {
        (&self.request, Some(&self.card))
    }
}
