//! The running service: shared state, the HTTP server and its graceful shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::catalog::Catalog;
use crate::channels::Channels;
use crate::config::Config;
use crate::legacy::Legacy;
use crate::orders::Orders;
use crate::orders::idempotency::Idempotency;
use crate::players::{PasswordHasherConfig, Players};
use crate::store::Store;
use crate::store::instance::{self, Instance};

/// What every handler can reach: cloned for every request, so one reference count.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The parts of [`AppState`].
pub struct Shared {
    pub config: Arc<Config>,
    pub channels: Arc<Channels>,
    pub store: Store,
    pub players: Players,
    /// Games and their keys, remembered briefly for every request.
    pub games: crate::games::Games,
    pub catalog: Catalog,
    pub orders: Orders,
    /// App store purchases (`docs/stores.md`).
    pub stores: crate::stores::Stores,
    /// Channel statements against what was recorded (`docs/ledger.md`).
    pub reconciler: crate::reconcile::Reconciler,
    pub idempotency: Arc<Idempotency>,
    /// The old three-service system's routes, when `[legacy]` is on.
    pub legacy: Option<Legacy>,
    /// Set once startup has finished; `/readyz` reports it.
    pub ready: Arc<AtomicBool>,
}

/// A started service: its address and a handle to stop it.
pub struct Running {
    pub addr: std::net::SocketAddr,
    pub state: AppState,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    /// Housekeeping and the delivery dispatcher: stopped with the server.
    background: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, lets requests in flight finish within the grace period, and waits.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.state.ready.store(false, Ordering::Release);
        let _ = self.shutdown.send(true);
        for task in &self.background {
            task.abort();
        }
        let grace = Duration::from_secs(self.state.config.server.shutdown_grace_s);
        let mut server = self.server;
        let outcome = match tokio::time::timeout(grace, &mut server).await {
            Ok(result) => result
                .context("server task panicked")
                .and_then(|r| r.context("server failed")),
            Err(_) => {
                tracing::warn!(
                    grace_s = grace.as_secs(),
                    "requests still running after the grace period; cutting them off"
                );
                server.abort();
                Ok(())
            }
        };
        self.state.store.close().await;
        outcome
    }

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn until_signal(self) -> anyhow::Result<()> {
        shutdown_signal().await;
        tracing::info!("shutting down");
        self.stop().await
    }
}

/// Opens the database (migrating it unless told not to), as configured.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let url = config.database.effective_url();
    let store = Store::connect(&url, config.database.max_connections)
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(&url)))?;
    if config.database.migrate_on_start {
        store
            .migrate()
            .await
            .context("cannot migrate the database")?;
    }
    Ok(store)
}

/// A database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// The areas a purchase goes through, on an open store and loaded channels.
pub struct Commerce {
    pub games: crate::games::Games,
    pub players: Players,
    pub catalog: Catalog,
    pub orders: Orders,
}

/// Builds the order center and the areas it calls (for the service, and for commands that
/// settle payments, such as `coffer reconcile`).
pub fn commerce(config: &Config, channels: &Channels, store: &Store) -> anyhow::Result<Commerce> {
    let hasher =
        PasswordHasherConfig::new(&config.players.password_hash).map_err(anyhow::Error::msg)?;
    let catalog = Catalog::new(
        store.clone(),
        Duration::from_secs(config.catalog.cache_ttl_s),
    );
    let games = crate::games::Games::new(store.clone());
    let players = Players::new(
        store.clone(),
        games.clone(),
        hasher,
        config.players.session_ttl_s,
    );
    let orders = Orders::new(
        store.clone(),
        catalog.clone(),
        players.clone(),
        channels.registry.clone(),
        config.orders.clone(),
        &config.server.public_url,
    );
    Ok(Commerce {
        games,
        players,
        catalog,
        orders,
    })
}

/// Loads plugins, opens the database, binds the listener and starts serving.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let config = Arc::new(config);
    // Plugins and their keys first: a configuration mistake there stops the start before
    // anything is created on disk.
    let channels = Arc::new(Channels::start(&config).await?);
    let store = open_store(&config).await?;
    let Commerce {
        games,
        players,
        catalog,
        orders,
    } = commerce(&config, &channels, &store)?;
    let legacy = Legacy::new(
        store.clone(),
        players.clone(),
        orders.clone(),
        games.clone(),
        &config.legacy,
    );
    // Bound before registering: holding the address is what tells this process replaces the
    // one that ran there before (see `store::instance`).
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    let addr = listener.local_addr()?;
    let instance = Instance::register(&store, &instance::host_key(addr))
        .await
        .context("cannot register this instance in the database")?;
    let reconciler = crate::reconcile::Reconciler::new(
        store.clone(),
        orders.clone(),
        channels.registry.clone(),
        config.reconcile.offsets(),
    );
    let stores = crate::stores::Stores::new(
        store.clone(),
        orders.clone(),
        catalog.clone(),
        players.clone(),
        channels.registry.clone(),
        Duration::from_millis(config.orders.channel_timeout_ms),
    );
    let state = AppState(Arc::new(Shared {
        config: config.clone(),
        stores,
        channels,
        games,
        players,
        catalog,
        reconciler,
        orders,
        legacy,
        idempotency: Arc::new(Idempotency::new(
            store.clone(),
            instance.id(),
            config.orders.idempotency_lock_s,
            config.orders.idempotency_ttl_h,
        )),
        store,
        ready: Arc::new(AtomicBool::new(false)),
    }));
    let mut background = vec![
        tokio::spawn(housekeeping(state.clone())),
        tokio::spawn(instance.keep_alive(state.store.clone())),
    ];
    if config.delivery.enabled {
        let dispatcher = Arc::new(crate::fulfillment::Dispatcher::new(
            state.store.clone(),
            config.delivery.clone(),
        ));
        background.push(tokio::spawn(dispatcher.run()));
    }
    if let Some(url) = config.stream.effective_url() {
        let publisher = crate::fulfillment::stream::StreamPublisher::new(
            state.store.clone(),
            config.stream.clone(),
            &url,
        )
        .context("invalid Redis URL for the event stream")?;
        background.push(tokio::spawn(publisher.run()));
    }
    if config.jobs.enabled {
        let jobs = crate::jobs::run(state.orders.clone(), config.jobs.clone());
        background.push(tokio::spawn(jobs));
    }
    if config.stores.enabled {
        let chores = crate::stores::chores::run(state.stores.clone(), config.stores.clone());
        background.push(tokio::spawn(chores));
    }
    if config.reconcile.enabled {
        let daily = crate::reconcile::job::run(
            state.reconciler.clone(),
            Duration::from_secs(config.reconcile.interval_s.max(1)),
        );
        background.push(tokio::spawn(daily));
    }
    let (shutdown, stop_requested) = watch::channel(false);
    let limits = listener_limits(&config);
    let mut servers = vec![crate::server::serve(
        listener,
        crate::api::router(state.clone()),
        limits,
        stop_requested.clone(),
    )];
    if state.legacy.is_some() {
        for legacy_addr in &config.legacy.listen {
            let listener = TcpListener::bind(legacy_addr)
                .await
                .with_context(|| format!("cannot listen on {legacy_addr} (legacy.listen)"))?;
            tracing::info!(addr = %legacy_addr, "serving the legacy routes");
            servers.push(crate::server::serve(
                listener,
                crate::api::legacy_router(state.clone()),
                limits,
                stop_requested.clone(),
            ));
        }
    }
    // One task for all listeners: it ends when they all have, or at the first that fails.
    let server = tokio::spawn(async move {
        let mut servers: tokio::task::JoinSet<_> = servers.into_iter().collect();
        while let Some(done) = servers.join_next().await {
            done.map_err(std::io::Error::other)??;
        }
        Ok(())
    });
    state.ready.store(true, Ordering::Release);
    tracing::info!(%addr, "coffer is serving");
    Ok(Running {
        addr,
        state,
        shutdown,
        server,
        background,
    })
}

/// The connection limits of every listener: as configured, within what the process's
/// file-descriptor limit can hold.
fn listener_limits(config: &Config) -> crate::server::Limits {
    let listeners = 1 + if config.legacy.enabled {
        config.legacy.listen.len()
    } else {
        0
    };
    let affordable = crate::server::raise_descriptor_limit(listeners);
    let configured = config.server.max_connections;
    let max_connections = configured.min(affordable.max(1) as usize);
    if max_connections < configured {
        tracing::warn!(
            configured,
            max_connections,
            "server.max_connections lowered to fit the open-file limit (ulimit -n)"
        );
    }
    crate::server::Limits {
        max_connections,
        header_timeout: Duration::from_secs(config.server.header_timeout_s),
    }
}

/// How often expired rows are purged: they are never read as valid (every read checks the
/// expiry), so this only bounds the tables' size.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Forgets what has expired: idempotency keys past their TTL, signatures that can no longer
/// verify, and ended sessions. Safe on
/// several instances at once (plain deletes of expired rows).
async fn housekeeping(state: AppState) {
    let mut every = tokio::time::interval(HOUSEKEEPING_INTERVAL);
    loop {
        every.tick().await;
        match state.idempotency.purge_expired().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(keys = n, "expired idempotency keys purged"),
            Err(e) => tracing::warn!(error = %e, "cannot purge idempotency keys"),
        }
        if let Err(e) = crate::games::replay::purge_expired(&state.store).await {
            tracing::warn!(error = %e, "cannot purge used signatures");
        }
        if let Err(e) = state.players.purge_expired_sessions().await {
            tracing::warn!(error = %e, "cannot purge expired sessions");
        }
    }
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
