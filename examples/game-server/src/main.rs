//! `coffer-game-server --listen 127.0.0.1:9200 --secret cds_...`: the sample game server.

use clap::Parser;

#[derive(Parser)]
#[command(about = "A sample game server receiving Coffer's signed deliveries")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:9200")]
    listen: std::net::SocketAddr,
    /// The game's delivery secret (cds_...); can also be set later with PUT /_control.
    #[arg(
        long,
        env = "COFFER_DELIVERY_SECRET",
        default_value = "",
        hide_env_values = true
    )]
    secret: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let args = Args::parse();
    let server = coffer_game_server::start(args.listen, &args.secret).await?;
    tracing::info!(url = %server.delivery_url, "sample game server receiving deliveries");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
