//! The `dispatcher` binary: parses the command line, sets up logging and hands over to the
//! library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use dispatcher::config::Settings;
use sqlx::Connection;

#[derive(Parser)]
#[command(
    name = "dispatcher",
    about = "Real-time courier dispatch and route optimizer"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Applies pending database migrations and exits.
    Migrate,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse();
    let settings = Settings::from_env().context("reading settings")?;
    match cli.command {
        Command::Migrate => {
            let url = settings
                .database_url
                .context("DATABASE_URL must be set to migrate")?;
            let mut conn = sqlx::PgConnection::connect(&url)
                .await
                .context("connecting to DATABASE_URL")?;
            service::schema::migrate_connection(&mut conn, settings.use_timescaledb)
                .await
                .context("applying migrations")?;
            tracing::info!("Migrations applied.");
        }
    }
    Ok(())
}
