//! The `dispatcher` binary: parses the command line, sets up logging and hands over to the
//! library.

use anyhow::Context;
use clap::{Parser, Subcommand};
use dispatcher::config::Options;
use dispatcher::demo::{Demo, DemoOptions, parse_start};
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
    /// Runs everything in one process with a simulated city: state in memory, an in-process
    /// bus; DATABASE_URL and AMQP_URL are not needed. Prints the map's address and tokens.
    Demo {
        /// Couriers in the city.
        #[arg(long, default_value_t = 50)]
        couriers: usize,
        /// Simulated seconds per wall second.
        #[arg(long, default_value_t = 1.0)]
        speedup: f64,
        /// Seeds the city: the same seed places the same orders.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Simulated time of day (UTC) to start at, HH:MM.
        #[arg(long, default_value = "11:30")]
        start: String,
    },
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
        Command::Demo {
            couriers,
            speedup,
            seed,
            start,
        } => {
            if !(speedup.is_finite() && speedup > 0.0) {
                anyhow::bail!("--speedup must be a positive number");
            }
            let demo = DemoOptions {
                couriers,
                speedup,
                seed,
                start: parse_start(&start)?,
            };
            let options = Options::from_env().context("reading the dispatcher's options")?;
            let demo = Demo::build(&settings, options, demo)
                .await
                .context("starting the demo")?;
            println!("map: http://{}/", demo.http_addr());
            println!("staff token: {}", demo.staff_token());
            println!("courier token: {}", demo.courier_token());
            println!(
                "courier app: http://{}/courier#token={}",
                demo.http_addr(),
                demo.courier_token()
            );
            println!("osmand: http://{}/", demo.osmand_addr());
            tracing::info!(
                http = %demo.http_addr(),
                osmand = %demo.osmand_addr(),
                couriers,
                speedup,
                "Demo serving."
            );
            demo.run_until_stopped(service::shutdown::on_signals())
                .await
                .context("running the demo")?;
        }
        Command::Serve => {
            let mut options = Options::from_env().context("reading the dispatcher's options")?;
            if settings.clock.speedup() != 1.0 {
                tracing::warn!(
                    speedup = settings.clock.speedup(),
                    now = %settings.clock.now(),
                    "Running on simulated time (CLOCK_SPEEDUP); for city simulations only."
                );
            }
            options.tracker.clock = settings.clock;
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
