//! The running service: shared state, the HTTP server and its graceful shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::channels::Channels;
use crate::config::Config;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub channels: Arc<Channels>,
    /// Set once startup has finished; `/readyz` reports it.
    pub ready: Arc<AtomicBool>,
}

/// A started service: its address and a handle to stop it.
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stops accepting, lets requests in flight finish within the grace period, and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.state.ready.store(false, Ordering::Release);
        let _ = self.shutdown.send(true);
        let grace = Duration::from_secs(self.state.config.server.shutdown_grace_s);
        let mut server = self.server;
        match tokio::time::timeout(grace, &mut server).await {
            Ok(result) => result
                .context("server task panicked")?
                .context("server failed"),
            Err(_) => {
                tracing::warn!(
                    grace_s = grace.as_secs(),
                    "requests still running after the grace period; cutting them off"
                );
                server.abort();
                Ok(())
            }
        }
    }

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn until_signal(self) -> anyhow::Result<()> {
        shutdown_signal().await;
        tracing::info!("shutting down");
        self.stop().await
    }
}

/// Loads plugins, binds the listener and starts serving.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let config = Arc::new(config);
    let channels = Arc::new(Channels::start(&config).await?);
    let state = AppState {
        config: config.clone(),
        channels,
        ready: Arc::new(AtomicBool::new(false)),
    };
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    let router = crate::api::router(state.clone());
    let (shutdown, mut stop_requested) = watch::channel(false);
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop_requested.changed().await;
            })
            .await
    });
    state.ready.store(true, Ordering::Release);
    tracing::info!(%addr, "coffer is serving");
    Ok(Running {
        addr,
        state,
        shutdown,
        server,
    })
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}
