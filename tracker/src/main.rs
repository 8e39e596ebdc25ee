//! The thin `tracker` binary: the tracker alone on `DATABASE_URL`, serving the OsmAnd endpoint
//! on `OSMAND_ADDR` and `/v1`, `/healthz` and `/metrics` on `HTTP_ADDR`. It applies pending
//! migrations first and prints `osmand: ADDR` and `http: ADDR` once it listens.

use std::io::Write as _;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::get;
use sqlx::postgres::PgPoolOptions;
use tracker::{Tracker, TrackerConfig};

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    let url = var("DATABASE_URL").context("DATABASE_URL must be set")?;
    let osmand_addr = var("OSMAND_ADDR").unwrap_or_else(|| "127.0.0.1:5055".into());
    let http_addr = var("HTTP_ADDR").unwrap_or_else(|| "127.0.0.1:8080".into());
    let use_timescaledb = !matches!(var("TIMESCALEDB").as_deref(), Some("off" | "false" | "0"));

    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(3))
        .connect(&url)
        .await
        .context("connecting to DATABASE_URL")?;
    tracker::schema::migrate(&pool, use_timescaledb)
        .await
        .context("applying migrations")?;
    let tracker = Tracker::build(pool, TrackerConfig::default())
        .await
        .context("starting the tracker")?;

    let osmand = tokio::net::TcpListener::bind(&osmand_addr)
        .await
        .with_context(|| format!("binding OSMAND_ADDR {osmand_addr}"))?;
    let http = tokio::net::TcpListener::bind(&http_addr)
        .await
        .with_context(|| format!("binding HTTP_ADDR {http_addr}"))?;
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
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let serve = |listener, router: Router, mut stop: tokio::sync::watch::Receiver<bool>| {
        tokio::spawn(async move {
            tracker::api::serve(listener, router, async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
        })
    };
    let a = serve(osmand, tracker.osmand_router(), stop_rx.clone());
    let b = serve(http, app, stop_rx);
    let _ = a.await.context("OsmAnd server task")?;
    let _ = b.await.context("HTTP server task")?;
    tracker.shutdown().await;
    tracing::info!("Tracker stopped.");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
