//! `coffer-bench`: Coffer's binary under HTTP load, next to its channel simulator and sample
//! game server (each its own process, all on this machine's cores), measured as a load
//! generator sees it: requests per second, latency percentiles, Coffer's CPU and memory.
//!
//! Scenarios, in order: the legacy routes the old three-service system served (`/api/pay` with
//! an approved card, payment records, profile and health reads), `POST /v1/orders` (a card
//! paid at once) in a closed loop and at a steady 1,000/s, and the whole purchase pipeline
//! (order, payment at the simulator, the channel's notification, delivery to the game server)
//! for CaresPay (MD5: a direct card, and 3-D Secure) and Alipay QR (RSA-2048).
//!
//! `cargo xtask bench` builds the release binaries and runs it; `--bin-dir` and `--plugins`
//! point at another build, to compare two side by side.

mod load;
mod postgres;
mod processes;
mod scenarios;
mod world;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Parser;

#[derive(Parser)]
#[command(about = "Coffer under HTTP load, with its simulator and sample game server")]
struct Args {
    /// The directory holding coffer, coffer-sim and coffer-game-server.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// The channel plugins (carespay.wasm, alipay.wasm).
    #[arg(long, default_value = "target/wasm-fixtures")]
    plugins: PathBuf,
    /// Run on PostgreSQL instead of a SQLite file: a URL of this server (e.g.
    /// `postgres://postgres@127.0.0.1:5432/postgres`), where a database of the run's own is
    /// created and dropped afterwards.
    #[arg(long)]
    postgres: Option<String>,
    /// Seconds each closed-loop scenario runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Connections of the closed-loop scenarios.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Purchases per pipeline run.
    #[arg(long, default_value_t = 4000)]
    purchases: usize,
    /// Only these scenarios (comma-separated names, see the output's first column).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// A label printed with every line (e.g. "before", "after").
    #[arg(long, default_value = "")]
    label: String,
}

fn main() -> Result<()> {
    let args = Args::parse();
    // Two threads: the load generator is one more process sharing the cores, as wrk would be.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    let binaries = world::Binaries {
        coffer: args.bin_dir.join("coffer"),
        sim: args.bin_dir.join("coffer-sim"),
        game_server: args.bin_dir.join("coffer-game-server"),
        plugins: args.plugins.clone(),
    };
    let database = match &args.postgres {
        Some(server) => Some(postgres::BenchDatabase::create(server).await?),
        None => None,
    };
    let url = database.as_ref().map(|database| database.url.as_str());
    let backend = if database.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let world = world::World::start(&binaries, url).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "{}coffer idle: {:.0} MiB resident; {backend}, {} connections, {} s per closed loop",
        label(&args.label),
        world.coffer.rss_mib(),
        args.connections,
        args.seconds
    );
    println!(
        "{:<34} {:>9} {:>8} {:>8} {:>7} {:>10} {:>8} {:>9}",
        "scenario", "per s", "p50 ms", "p99 ms", "errors", "coffer CPU", "RSS MiB", "jobs/commit"
    );
    let settings = scenarios::Settings {
        seconds: Duration::from_secs(args.seconds),
        connections: args.connections,
        purchases: args.purchases,
        label: args.label.clone(),
    };
    let ran = scenarios::run_all(&world, &settings, &args.only).await;
    drop(world);
    if let Some(database) = database {
        database.drop_database().await?;
    }
    ran
}

fn label(label: &str) -> String {
    if label.is_empty() {
        String::new()
    } else {
        format!("[{label}] ")
    }
}
