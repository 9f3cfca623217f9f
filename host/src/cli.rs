//! The `coffer` command line.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use coffer_plugin_runtime::{ArtifactCache, ChannelConfigs, PluginEngine, Registry};

use crate::config::{Config, Role, new_token};

#[derive(Debug, Parser)]
#[command(
    name = "coffer",
    version,
    about = "Payment and commerce center for game studios"
)]
pub struct Cli {
    /// Configuration file (TOML). Default: ./coffer.toml if present, else built-in defaults.
    #[arg(long, short, global = true, env = "COFFER_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service.
    Serve,
    /// Inspect channel plugins.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
    /// Check the configuration, key files included, and print it without secrets.
    CheckConfig,
    /// Create or update the database schema (`serve` also does, unless
    /// `database.migrate_on_start` is off).
    Migrate,
    /// Admin tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum PluginsCommand {
    /// Load every plugin in the plugins directory and list what loaded and what failed.
    List,
    /// Compile and validate one plugin file, as a reload would.
    Check { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Print a new random admin token and the configuration entry that grants it.
    New {
        #[arg(long, default_value = "operator")]
        name: String,
        #[arg(long, value_enum, default_value = "operator")]
        role: RoleArg,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    Viewer,
    Operator,
    Admin,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Viewer => Role::Viewer,
            RoleArg::Operator => Role::Operator,
            RoleArg::Admin => Role::Admin,
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Token {
        command: TokenCommand::New { name, role },
    } = &cli.command
    {
        let (token, sha256) = new_token();
        let role = format!("{:?}", Role::from(*role)).to_lowercase();
        println!("token (give it to {name}, it is shown only once):\n  {token}\n");
        println!(
            "configuration entry:\n  [[admin.tokens]]\n  name = {name:?}\n  role = \"{role}\"\n  sha256 = \"{sha256}\""
        );
        return Ok(());
    }
    let config = Config::load(cli.config.as_deref())?;
    crate::telemetry::init(&config.log);
    match cli.command {
        Command::Serve => crate::app::start(config).await?.until_signal().await,
        Command::Plugins {
            command: PluginsCommand::List,
        } => list_plugins(&config).await,
        Command::Plugins {
            command: PluginsCommand::Check { file },
        } => check_plugin(&config, &file).await,
        Command::CheckConfig => {
            crate::config::load_channel_configs(&config.channels)?;
            println!("{}", to_json(&config)?);
            Ok(())
        }
        Command::Migrate => {
            let url = config.database.effective_url();
            let store = crate::store::Store::connect(&url, 1)
                .await
                .with_context(|| format!("cannot open {}", crate::app::redact_url(&url)))?;
            store.migrate().await?;
            store.close().await;
            println!("database {} is up to date", crate::app::redact_url(&url));
            Ok(())
        }
        Command::Token { .. } => unreachable!("handled above"),
    }
}

fn to_json(config: &Config) -> anyhow::Result<String> {
    // Key sections are skipped when serializing; only their names would be there anyway.
    let mut config = config.clone();
    config.database.url = crate::app::redact_url(&config.database.effective_url());
    config.stream.redis_url = config
        .stream
        .effective_url()
        .map(|url| crate::app::redact_url(&url))
        .unwrap_or_default();
    serde_json::to_string_pretty(&config).context("cannot print the configuration")
}

async fn list_plugins(config: &Config) -> anyhow::Result<()> {
    let registry = crate::channels::build_registry(config)?;
    let report = registry.reload().await;
    println!(
        "{:<12} {:<10} {:<8} {:<12} FILE",
        "CHANNEL", "VERSION", "CONTRACT", "SHA256"
    );
    for status in registry.statuses() {
        println!(
            "{:<12} {:<10} {:<8} {:<12} {}",
            status.channel,
            status.version,
            status.contract_version,
            &status.sha256[..12],
            status.file
        );
        for (what, missing) in [
            ("keys", &status.missing_keys),
            ("settings", &status.missing_settings),
            ("endpoints", &status.missing_endpoints),
        ] {
            if !missing.is_empty() {
                println!("  missing {what}: {}", missing.join(", "));
            }
        }
    }
    for failure in &report.failed {
        println!("FAILED {}: {}", failure.file, failure.error);
    }
    anyhow::ensure!(
        report.failed.is_empty(),
        "{} plugin file(s) failed to load",
        report.failed.len()
    );
    Ok(())
}

async fn check_plugin(config: &Config, file: &Path) -> anyhow::Result<()> {
    // A fresh private directory: a predictable one could hold someone else's files.
    let temp = tempfile::tempdir()?;
    let dir = temp.path().to_owned();
    let name = file.file_name().context("not a file")?;
    std::fs::copy(file, dir.join(name))
        .with_context(|| format!("cannot read {}", file.display()))?;
    let engine = PluginEngine::new(config.plugins.limits.to_runtime())?;
    let registry = Arc::new(Registry::new(
        engine,
        &dir,
        ArtifactCache::default(),
        ChannelConfigs::default(),
    ));
    let report = registry.reload().await;
    if let Some(failure) = report.failed.first() {
        anyhow::bail!("{}: {}", file.display(), failure.error);
    }
    for channel in registry.channels() {
        let info = channel.info();
        println!(
            "ok: channel {} ({}) version {} for contract {}; methods {:?}, currencies {:?}",
            info.id, info.name, info.version, info.contract_version, info.methods, info.currencies
        );
    }
    Ok(())
}
