//! `coffer-sim`: plays the payment channels Coffer talks to, on loopback, with their real
//! signatures. For the demo and the tests; it never reaches the internet.
//!
//! - CaresPay (card, 2D and 3-D Secure) under `/carespay`
//! - Alipay (open platform gateway, cashier page, QR) under `/alipay`
//! - WeChat Pay API v3 under `/wechatpay`
//! - the App Store Server API and Server Notifications V2 under `/appstore`
//! - Google's token endpoint, the Play Developer API and RTDN pushes under `/googleplay`
//! - UnionPay's online gateway (全渠道 5.1.0) under `/unionpay`
//! - a control API under `/_control` to drive "the player paid" without a browser and to
//!   inject faults (timeouts, 5xx, lost, late, duplicated, reordered and forged notifications).
//!
//! Notifications are sent with each channel's retry schedule, multiplied by `time_scale`.

pub mod alipay;
pub mod appstore;
pub mod carespay;
mod control;
pub mod faults;
pub mod googleplay;
pub mod keys;
mod notify;
mod page;
pub mod statements;
pub mod unionpay;
pub mod wechatpay;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;

pub use faults::Faults;
pub use keys::SimKeys;
pub use notify::Delivery;

/// How to run the simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub listen: SocketAddr,
    /// Multiplies every retry delay: 1.0 is real time, 0.001 turns an hour into 3.6 s.
    pub time_scale: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9100)),
            time_scale: 1.0,
        }
    }
}

/// State shared by every channel.
pub struct Sim {
    pub base_url: String,
    pub keys: SimKeys,
    pub faults: faults::FaultSwitch,
    /// Discrepancies the statements carry.
    pub statements: statements::StatementSwitch,
    pub notifier: notify::Notifier,
    pub carespay: carespay::Ledger,
    pub alipay: alipay::Ledger,
    pub wechatpay: wechatpay::Ledger,
    pub appstore: appstore::Ledger,
    pub googleplay: googleplay::Ledger,
    pub unionpay: unionpay::Ledger,
}

/// A running simulator.
pub struct RunningSim {
    pub addr: SocketAddr,
    pub sim: Arc<Sim>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningSim {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url)
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start(config: SimConfig, keys: SimKeys) -> anyhow::Result<RunningSim> {
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let sim = Arc::new(Sim {
        notifier: notify::Notifier::new(config.time_scale),
        faults: Default::default(),
        statements: Default::default(),
        carespay: Default::default(),
        alipay: Default::default(),
        wechatpay: Default::default(),
        appstore: Default::default(),
        googleplay: Default::default(),
        unionpay: Default::default(),
        keys,
        base_url,
    });
    let app = Router::new()
        .nest("/carespay", carespay::router())
        .nest("/alipay", alipay::router())
        .nest("/wechatpay", wechatpay::router())
        .nest("/appstore", appstore::router())
        .nest("/googleplay", googleplay::router())
        .nest("/unionpay", unionpay::router())
        .nest("/_control", control::router())
        .with_state(sim.clone());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(RunningSim { addr, sim, task })
}
