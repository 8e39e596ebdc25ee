//! The web pages, built from `dispatcher/web/` (TypeScript, vite) into `dispatcher/web/dist/`
//! and embedded in the binary, so `dispatcher demo` and `serve` need no Node and no files at
//! run time: `/` the support map, `/courier` the courier app (with its manifest and service
//! worker), `/t/{tracking_id}` the customer's tracking page, the hashed bundles under
//! `/assets/`, and `/config.json` (the map's basemap, from `MAP_TILES`).
//!
//! The built `dist/` is committed: a machine without Node compiles the last committed build, and
//! `scripts/test` rebuilds it and fails when the committed one is stale. Bundles have content
//! hashes in their names and are cached for a year; pages are revalidated with their ETag.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rust_embed::RustEmbed;
use serde::Serialize;

/// The built front end.
#[derive(RustEmbed)]
#[folder = "web/dist/"]
struct Dist;

/// Where the map's basemap comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WebConfig {
    /// A raster tile URL template (`https://host/{z}/{x}/{y}.png`, e.g. a self-hosted
    /// OpenStreetMap tile server) or `pmtiles://URL` of a raster PMTiles archive; none: the
    /// map draws its layers on a plain background.
    pub tiles: Option<String>,
    /// The attribution shown with the basemap.
    pub attribution: Option<String>,
}

impl WebConfig {
    /// Reads `MAP_TILES` and `MAP_ATTRIBUTION` through `get`.
    ///
    /// # Errors
    /// When `MAP_TILES` is neither an `http(s)://` template with `{z}`, `{x}` and `{y}` nor a
    /// `pmtiles://` URL.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<WebConfig> {
        let var = |name: &str| {
            get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let tiles = var("MAP_TILES");
        if let Some(t) = &tiles {
            let template = (t.starts_with("http://") || t.starts_with("https://"))
                && ["{z}", "{x}", "{y}"].iter().all(|p| t.contains(p));
            let pmtiles = t.starts_with("pmtiles://");
            if !template && !pmtiles {
                anyhow::bail!(
                    "MAP_TILES={t:?}: expected https://host/{{z}}/{{x}}/{{y}}.png or pmtiles://URL"
                );
            }
        }
        Ok(WebConfig {
            tiles,
            attribution: var("MAP_ATTRIBUTION"),
        })
    }
}

/// The pages, their files and `/config.json`.
pub fn router(config: WebConfig) -> Router {
    Router::new()
        .route(
            "/",
            get(|h: HeaderMap| async move { file("index.html", &h) }),
        )
        .route(
            "/courier",
            get(|h: HeaderMap| async move { file("courier.html", &h) }),
        )
        .route(
            "/t/{tracking_id}",
            get(|h: HeaderMap| async move { file("track.html", &h) }),
        )
        .route(
            "/courier.webmanifest",
            get(|h: HeaderMap| async move { file("courier.webmanifest", &h) }),
        )
        .route(
            "/courier-sw.js",
            get(|h: HeaderMap| async move { file("courier-sw.js", &h) }),
        )
        .route("/assets/{*path}", get(asset))
        .route("/icons/{*path}", get(icon))
        .route("/config.json", get(web_config))
        .with_state(config)
}

async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    file(&format!("assets/{path}"), &headers)
}

async fn icon(Path(path): Path<String>, headers: HeaderMap) -> Response {
    file(&format!("icons/{path}"), &headers)
}

async fn web_config(State(config): State<WebConfig>) -> Response {
    let mut response = axum::Json(config).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The embedded file at `path`, with its type, ETag and caching; 304 when the client holds it.
fn file(path: &str, request: &HeaderMap) -> Response {
    let Some(file) = Dist::get(path) else {
        return missing(path);
    };
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let cache = if path.starts_with("assets/") {
        // Content-hashed names: a changed file has a new name.
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, v);
    }
    if request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    if let Ok(v) = HeaderValue::from_str(content_type(path)) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    if path == "courier-sw.js" {
        // The worker sits at the root but only serves the courier app.
        headers.insert(
            "service-worker-allowed",
            HeaderValue::from_static("/courier"),
        );
    }
    (StatusCode::OK, headers, file.data.into_owned()).into_response()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("woff2") => "font/woff2",
        Some("map") => "application/json",
        _ => "application/octet-stream",
    }
}

/// A page that was not built, or a file that is not there.
fn missing(path: &str) -> Response {
    if path.ends_with(".html") {
        let body = "<!doctype html><meta charset=utf-8><title>Web UI not built</title>\
            <p>The web pages were not built into this binary. Build them with \
            <code>npm ci &amp;&amp; npm run build</code> in <code>dispatcher/web</code>, then \
            rebuild the dispatcher.";
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response();
    }
    service::error::ApiError::NotFound(format!("no file {path}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tile_template_or_a_pmtiles_url_is_taken() {
        let c = WebConfig::from_lookup(|n| {
            (n == "MAP_TILES").then(|| "https://tiles.example/{z}/{x}/{y}.png".into())
        })
        .unwrap();
        assert_eq!(
            c.tiles.as_deref(),
            Some("https://tiles.example/{z}/{x}/{y}.png")
        );
        let c =
            WebConfig::from_lookup(|n| (n == "MAP_TILES").then(|| "pmtiles://x.pmtiles".into()))
                .unwrap();
        assert_eq!(c.tiles.as_deref(), Some("pmtiles://x.pmtiles"));
        assert_eq!(
            WebConfig::from_lookup(|_| None).unwrap(),
            WebConfig::default()
        );
        assert!(
            WebConfig::from_lookup(|n| (n == "MAP_TILES").then(|| "tiles.example".into())).is_err()
        );
    }

    #[test]
    fn every_page_is_embedded() {
        for page in [
            "index.html",
            "courier.html",
            "track.html",
            "courier.webmanifest",
            "courier-sw.js",
        ] {
            assert!(Dist::get(page).is_some(), "{page} is in web/dist");
        }
    }
}
