//! The `dispatcher` binary: parses the command line, sets up logging and hands over to the
//! library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use dispatcher::config::Options;
use dispatcher::startup::Application;
use optimizer::model::{CourierId, RestaurantId};
use secrecy::ExposeSecret;
use service::auth::{Role, create_token};
use service::settings::Settings;
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
    /// Runs the service on DATABASE_URL and AMQP_URL (applies pending migrations first).
    Serve,
    /// Applies pending database migrations and exits.
    Migrate,
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Prints a new API token (stored hashed; the secret is shown only now).
    Create {
        /// staff, kitchen or courier.
        #[arg(long)]
        role: Role,
        /// The courier a courier token speaks for.
        #[arg(long)]
        courier: Option<String>,
        /// A restaurant a kitchen token may act for (repeat for several).
        #[arg(long = "restaurant")]
        restaurants: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::from_env().context("reading settings")?;
    service::telemetry::init(settings.json_logs);
    match cli.command {
        Command::Serve => {
            let options = Options::from_env().context("reading the dispatcher's options")?;
            let app = Application::build(&settings, options)
                .await
                .context("starting the dispatcher")?;
            tracing::info!(
                http = %app.http_addr(),
                osmand = %app.osmand_addr(),
                "Dispatcher serving."
            );
            app.run_until_stopped(service::shutdown::on_signals())
                .await
                .context("running the dispatcher")?;
        }
        Command::Migrate => {
            let url = settings
                .database_url
                .as_ref()
                .context("DATABASE_URL must be set to migrate")?;
            let mut conn = sqlx::PgConnection::connect(url.expose_secret())
                .await
                .context("connecting to DATABASE_URL")?;
            service::schema::migrate_connection(&mut conn, settings.use_timescaledb)
                .await
                .context("applying migrations")?;
            tracing::info!("Migrations applied.");
        }
        Command::Token {
            command:
                TokenCommand::Create {
                    role,
                    courier,
                    restaurants,
                },
        } => {
            let url = settings
                .database_url
                .as_ref()
                .context("DATABASE_URL must be set to create a token")?;
            let pool = sqlx::PgPool::connect(url.expose_secret())
                .await
                .context("connecting to DATABASE_URL")?;
            let courier = courier
                .map(CourierId::parse)
                .transpose()
                .context("--courier is not a valid courier id")?;
            let restaurants = restaurants
                .iter()
                .map(RestaurantId::parse)
                .collect::<Result<Vec<_>, _>>()
                .context("--restaurant is not a valid restaurant id")?;
            let secret = create_token(&pool, role, courier.as_ref(), &restaurants)
                .await
                .context("creating the token")?;
            println!("{secret}");
        }
    }
    Ok(())
}
