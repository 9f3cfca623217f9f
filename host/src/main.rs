use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    coffer::cli::run(coffer::cli::Cli::parse()).await
}
