use std::path::PathBuf;

use clap::Parser;

/// Plays CaresPay, Alipay and WeChat Pay on loopback for Coffer's demo and tests.
#[derive(Parser)]
#[command(name = "coffer-sim")]
struct Args {
    /// Address to listen on (loopback only makes sense).
    #[arg(long, default_value = "127.0.0.1:9100")]
    listen: std::net::SocketAddr,
    /// Where to write the merchant's side of the keys, for Coffer's configuration.
    #[arg(long, default_value = "data/sim-keys")]
    keys_dir: PathBuf,
    /// Multiplies notification retry delays (1.0 = the channels' real schedules).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let args = Args::parse();
    let keys = coffer_sim::SimKeys::generate();
    keys.write_for_coffer(&args.keys_dir)?;
    let config = coffer_sim::SimConfig {
        listen: args.listen,
        time_scale: args.time_scale,
    };
    let running = coffer_sim::start(config, keys).await?;
    tracing::info!(addr = %running.addr, keys = %args.keys_dir.display(), "coffer-sim is serving");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
