//! The load generator: HTTP/1.1 over kept-alive connections, like wrk. A closed loop (each
//! connection sends its next request as soon as the answer is in: the most the service
//! sustains) or an open loop (requests at a fixed rate, each timed from when it was due, so a
//! stalled service shows in the latency instead of slowing the load).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;

/// One request to send.
pub struct Request {
    pub method: hyper::Method,
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn get(path: impl Into<String>) -> Self {
        Self {
            method: hyper::Method::GET,
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

/// Makes request number `n` (unique across the run).
pub type MakeRequest = Arc<dyn Fn(u64) -> Request + Send + Sync>;

/// What a run measured.
#[derive(Default)]
pub struct Outcome {
    pub latencies_us: Vec<u32>,
    /// Answers by HTTP status (0: no answer).
    pub statuses: BTreeMap<u16, u64>,
    pub elapsed: Duration,
}

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        self.latencies_us.extend(other.latencies_us);
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
    }

    pub fn requests(&self) -> u64 {
        self.statuses.values().sum()
    }

    pub fn per_second(&self) -> f64 {
        self.requests() as f64 / self.elapsed.as_secs_f64()
    }

    /// Answers outside 2xx.
    pub fn errors(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(s, _)| !(200..300).contains(*s))
            .map(|(_, n)| n)
            .sum()
    }

    /// The latency below which `q` of the requests answered, in milliseconds.
    pub fn percentile_ms(&mut self, q: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        self.latencies_us.sort_unstable();
        let i = ((self.latencies_us.len() as f64 * q) as usize).min(self.latencies_us.len() - 1);
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one request on `sender` (reconnecting if the connection is gone); returns the status
/// (0 when there was no answer).
async fn exchange(
    addr: SocketAddr,
    sender: &mut Option<SendRequest<Full<Bytes>>>,
    request: Request,
) -> u16 {
    let mut built = hyper::Request::builder()
        .method(request.method)
        .uri(request.path)
        .header("host", addr.to_string());
    for (name, value) in request.headers {
        built = built.header(name, value);
    }
    let built = built
        .body(Full::new(Bytes::from(request.body)))
        .expect("a valid request");
    if sender.as_ref().is_none_or(|s| s.is_closed()) {
        *sender = connect(addr).await.ok();
    }
    let Some(live) = sender.as_mut() else {
        return 0;
    };
    if live.ready().await.is_err() {
        *sender = None;
        return 0;
    }
    match live.send_request(built).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let _ = response.into_body().collect().await;
            status
        }
        Err(_) => {
            *sender = None;
            0
        }
    }
}

/// `connections` connections sending back to back for `duration`.
pub async fn closed_loop(
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
    make: MakeRequest,
) -> Outcome {
    let sequence = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (make, sequence) = (make.clone(), sequence.clone());
        workers.spawn(async move {
            let mut outcome = Outcome::default();
            let mut sender = connect(addr).await.ok();
            while Instant::now() < deadline {
                let request = make(sequence.fetch_add(1, Ordering::Relaxed));
                let sent = Instant::now();
                let status = exchange(addr, &mut sender, request).await;
                outcome
                    .latencies_us
                    .push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                *outcome.statuses.entry(status).or_default() += 1;
            }
            outcome
        });
    }
    let mut all = Outcome::default();
    while let Some(done) = workers.join_next().await {
        all.merge(done.expect("a load worker"));
    }
    all.elapsed = started.elapsed();
    all
}

/// `per_second` requests a second for `duration`, over up to `connections` connections;
/// latency counted from when each request was due.
pub async fn open_loop(
    addr: SocketAddr,
    per_second: u64,
    duration: Duration,
    connections: usize,
    make: MakeRequest,
) -> Outcome {
    let total = per_second * duration.as_secs();
    let interval = Duration::from_secs(1) / per_second as u32;
    let (due_tx, due_rx) = tokio::sync::mpsc::channel::<(u64, Instant)>(total as usize + 1);
    let due_rx = Arc::new(tokio::sync::Mutex::new(due_rx));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let (make, due_rx) = (make.clone(), due_rx.clone());
        workers.spawn(async move {
            let mut outcome = Outcome::default();
            let mut sender = connect(addr).await.ok();
            loop {
                let next = due_rx.lock().await.recv().await;
                let Some((n, due)) = next else { break };
                let status = exchange(addr, &mut sender, make(n)).await;
                outcome
                    .latencies_us
                    .push(due.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                *outcome.statuses.entry(status).or_default() += 1;
            }
            outcome
        });
    }
    for n in 0..total {
        let due = started + interval * n as u32;
        tokio::time::sleep_until(due.into()).await;
        if due_tx.send((n, due)).await.is_err() {
            break;
        }
    }
    drop(due_tx);
    let mut all = Outcome::default();
    while let Some(done) = workers.join_next().await {
        all.merge(done.expect("a load worker"));
    }
    all.elapsed = started.elapsed();
    all
}
