//! The thin `tracker` binary: the tracker alone on `DATABASE_URL`, serving the OsmAnd endpoint
//! on `OSMAND_ADDR` and `/v1`, `/healthz` and `/metrics` on `HTTP_ADDR`. It applies pending
//! migrations first and prints `osmand: ADDR` and `http: ADDR` once it listens.

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context;
use axum::routing::get;
use service::settings::{ExposeSecret, Settings};
use sqlx::postgres::PgPoolOptions;
use tracker::{Tracker, TrackerConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env().context("reading settings")?;
    service::telemetry::init(settings.json_logs);
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let url = settings
        .database_url
        .as_ref()
        .context("DATABASE_URL must be set")?;

    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(3))
        .connect(url.expose_secret())
        .await
        .context("connecting to DATABASE_URL")?;
    service::schema::migrate(&pool, settings.use_timescaledb)
        .await
        .context("applying migrations")?;
    let tracker = Tracker::build(pool, TrackerConfig::default())
        .await
        .context("starting the tracker")?;

    let osmand = tokio::net::TcpListener::bind(settings.osmand_addr)
        .await
        .with_context(|| format!("binding OSMAND_ADDR {}", settings.osmand_addr))?;
    let http = tokio::net::TcpListener::bind(settings.http_addr)
        .await
        .with_context(|| format!("binding HTTP_ADDR {}", settings.http_addr))?;
    let ingest = tracker.ingest().clone();
    let app = tracker
        .api_router()
        .route(
            "/metrics",
            get(move || std::future::ready(prometheus.render())),
        )
        .route(
            "/healthz",
            get(move || {
                let healthy = ingest.is_healthy();
                async move {
                    let status = if healthy { "ok" } else { "degraded" };
                    let code = if healthy { 200 } else { 503 };
                    (
                        axum::http::StatusCode::from_u16(code).unwrap_or_default(),
                        axum::Json(serde_json::json!({"status": status, "database": healthy})),
                    )
                }
            }),
        );
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "osmand: {}", osmand.local_addr()?)?;
        writeln!(out, "http: {}", http.local_addr()?)?;
        out.flush()?;
    }
    let stop = service::shutdown::on_signals();
    let max = settings.max_connections;
    let a = tokio::spawn(service::server::serve(
        osmand,
        tracker.osmand_router(),
        max,
        stop.clone(),
    ));
    let b = tokio::spawn(service::server::serve(http, app, max, stop));
    for (name, task) in [("OSMAND_ADDR", a), ("HTTP_ADDR", b)] {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(server = name, error = %e, "Serving failed."),
            Err(e) => tracing::error!(server = name, error = %e, "The server task panicked."),
        }
    }
    tracker.shutdown().await;
    tracing::info!("Tracker stopped.");
    Ok(())
}
