//! `dispatcher demo` as a user runs it: the real binary, with no DATABASE_URL or AMQP_URL, on
//! port 0; the test reads the printed address and token and watches the city through the API.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The demo process, killed when dropped (a failed assertion must not leave it running).
struct DemoProcess(Child);

impl Drop for DemoProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the demo and returns it with its printed `map:` address and `staff token:`.
fn start_demo() -> (DemoProcess, String, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dispatcher"))
        .args(["demo", "--couriers", "20", "--speedup", "20"])
        .env_remove("DATABASE_URL")
        .env_remove("AMQP_URL")
        .env("HTTP_ADDR", "127.0.0.1:0")
        .env("OSMAND_ADDR", "127.0.0.1:0")
        .env("PLANNER_INTERVAL_MS", "1000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the dispatcher binary starts");
    let stdout = child.stdout.take().expect("stdout is piped");
    let process = DemoProcess(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut map, mut staff, mut courier) = (None, None, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    while map.is_none() || staff.is_none() || courier.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("the demo prints `map:`, `staff token:` and `courier token:` within 30 s");
        if let Some(url) = line.strip_prefix("map: ") {
            map = Some(url.trim_end_matches('/').to_string());
        } else if let Some(token) = line.strip_prefix("staff token: ") {
            staff = Some(token.to_string());
        } else if let Some(token) = line.strip_prefix("courier token: ") {
            courier = Some(token.to_string());
        }
    }
    (process, map.unwrap(), staff.unwrap(), courier.unwrap())
}

/// Each courier's id and position, from `GET /v1/couriers`.
async fn positions(
    client: &reqwest::Client,
    base: &str,
    token: &str,
) -> Vec<(String, Option<serde_json::Value>)> {
    let body: serde_json::Value = client
        .get(format!("{base}/v1/couriers"))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET /v1/couriers answers")
        .error_for_status()
        .expect("GET /v1/couriers is 2xx")
        .json()
        .await
        .expect("a JSON body");
    let list = body
        .get("couriers")
        .or_else(|| body.get("items"))
        .unwrap_or(&body)
        .as_array()
        .cloned()
        .unwrap_or_default();
    list.into_iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or_default().to_string(),
                c.get("position").filter(|p| !p.is_null()).cloned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_demo_runs_a_city_with_no_database_or_broker() {
    let (_demo, base, staff, courier) = start_demo();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");
    let client = reqwest::Client::new();

    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let health: serde_json::Value = health.json().await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");

    // The courier token is a courier's: staff-only routes are refused to it.
    let forbidden = client
        .get(format!("{base}/v1/orders/x/candidates"))
        .bearer_auth(&courier)
        .send()
        .await
        .unwrap();
    assert!(
        forbidden.status().is_client_error(),
        "{}",
        forbidden.status()
    );

    // Couriers move: some position differs within 5 s. The 20 simulated couriers report
    // positions; the courier whose token is printed is left to a person (no position yet).
    let before = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let all = positions(&client, &base, &staff).await;
            if all.len() == 21 && all.iter().filter(|(_, p)| p.is_some()).count() == 20 {
                break all;
            }
            assert!(
                Instant::now() < deadline,
                "20 simulated couriers with positions and one left to a person within 10 s: {all:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = positions(&client, &base, &staff).await;
        let moved = now.iter().any(|(id, p)| {
            let old = before
                .iter()
                .find(|(b, _)| b == id)
                .and_then(|(_, p)| p.as_ref());
            match (old, p) {
                (Some(o), Some(n)) => o["lat"] != n["lat"] || o["lon"] != n["lon"],
                _ => false,
            }
        });
        if moved {
            break;
        }
        assert!(Instant::now() < deadline, "a courier moves within 5 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Orders get delivered.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let page: serde_json::Value = client
            .get(format!("{base}/v1/orders?status=delivered"))
            .bearer_auth(&staff)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = page
            .get("orders")
            .or_else(|| page.get("items"))
            .unwrap_or(&page);
        if items.as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "an order is delivered within 120 s: {page}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
