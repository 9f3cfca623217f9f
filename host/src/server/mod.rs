//! The listeners: accepting connections and serving HTTP/1.1 on them, with the limits that keep
//! slow, silent or idle clients from taking the service down.
//!
//! - Each listener holds at most `max_connections`; at the cap an idle connection is closed to
//!   make room for the new one (see `connections`).
//! - A client has `header_timeout` to send a request's head, counted from the connection's start
//!   or the end of its previous answer: a silent socket, half a request line, or a kept-alive
//!   connection with nothing more to ask is closed after it.
//! - The file-descriptor limit is raised to what the system allows at start, and a failed
//!   accept (e.g. out of descriptors) pauses the listener briefly instead of spinning.
//!
//! HTTP/2 is not served: put a proxy in front for TLS and HTTP/2 (see docs/operations.md).

mod connections;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use connections::{Admission, TrackedBody, Tracker};

/// At most one warning per this interval while connections are refused at capacity.
const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// How a listener treats its connections.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// Descriptors kept free for everything that is not a client connection: the database, the
/// channels, the game servers, plugin files.
const RESERVED_DESCRIPTORS: u64 = 512;

/// How long a listener pauses after a failed accept (out of descriptors, out of memory).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Raises this process's open-file limit to the hard limit, and returns how many connections
/// all `listeners` together may hold within it.
pub fn raise_descriptor_limit(listeners: usize) -> u64 {
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024);
    limit.saturating_sub(RESERVED_DESCRIPTORS) / listeners.max(1) as u64
}

/// Serves `router` on `listener` until `stop` changes; then lets the requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let tracker = Tracker::new(limits.max_connections);
    let mut connections = tokio::task::JoinSet::new();
    let mut refused_logged_at: Option<tokio::time::Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.changed() => break,
            // Reap finished connection tasks as they end, so the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (stream, remote) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "cannot accept a connection; pausing the listener");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let registered = match tracker.admit() {
            Admission::Serve(registered) => registered,
            Admission::Refuse => {
                // Every connection has a request in flight: the service is at capacity.
                let now = tokio::time::Instant::now();
                if refused_logged_at.is_none_or(|at| now - at > REFUSAL_LOG_INTERVAL) {
                    refused_logged_at = Some(now);
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "every connection is busy; refusing new ones (server.max_connections)"
                    );
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let stop = stop.clone();
        connections.spawn(async move {
            let connection = registered.0.clone();
            let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let in_flight = connection.request_started();
                let mut request = request.map(Body::new);
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(remote));
                let router = router.clone();
                async move {
                    let response = router.oneshot(request).await.unwrap_or_else(|e| match e {});
                    Ok::<_, Infallible>(
                        response.map(|body| Body::new(TrackedBody::new(body, in_flight))),
                    )
                }
            });
            serve_connection(stream, service, limits, &registered, stop).await;
        });
    }
    // Stopped: no new connections; those open finish their requests (the caller bounds the
    // wait with its grace period).
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

async fn serve_connection<S>(
    stream: tokio::net::TcpStream,
    service: S,
    limits: Limits,
    registered: &connections::Registered,
    mut stop: watch::Receiver<bool>,
) where
    S: hyper::service::Service<
            hyper::Request<Incoming>,
            Response = hyper::Response<Body>,
            Error = Infallible,
        >,
    S::Future: Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        // Closed to make room: it had no request in flight.
        () = registered.0.evicted() => {}
        _ = stop.changed() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}
