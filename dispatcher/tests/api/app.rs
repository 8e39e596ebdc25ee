//! The whole service in the test process: [`spawn_app`] builds `dispatcher serve` on a database
//! of the test's own and a suffixed RabbitMQ topology, binds port 0, and hands back a
//! [`TestApp`] that talks HTTP, OsmAnd and AMQP to it as kitchens, couriers and staff do.

use std::time::Duration;

use dispatcher::bus::Topology;
use dispatcher::config::Options;
use dispatcher::startup::Application;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, Consumer};
use serde_json::{Value, json};
use service::auth::{Role, create_token};
use service::settings::Settings;
use service::testing::TestDb;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::helpers;

/// A running dispatcher and the clients to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The OsmAnd endpoint's base URL.
    pub osmand: String,
    /// The test's database.
    pub db: Option<TestDb>,
    /// The test's exchanges and queues.
    pub topology: Topology,
    /// A staff token.
    pub staff: String,
    /// HTTP client.
    pub http: reqwest::Client,
    /// A broker connection for publishing and watching.
    pub amqp: Connection,
    /// Publishes with confirms.
    pub channel: Channel,
    /// Stops the app.
    pub shutdown: CancellationToken,
    /// The app's task.
    pub task: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Options fast enough for tests: a short debounce and a 1 s timer.
pub fn test_options(topology: &Topology) -> Options {
    let mut options = Options {
        topology: topology.clone(),
        ..Options::default()
    };
    options.planner.debounce = Duration::from_millis(20);
    options.planner.interval = Duration::from_secs(1);
    options.planner.budget = Duration::from_millis(300);
    options.planner.threads = 1;
    options
}

/// Settings for an app on `database_url` with both listeners on port 0, and `ROAD_NETWORK` set
/// to `road_network`.
pub fn test_settings_on(database_url: &str, road_network: Option<&str>) -> Settings {
    let amqp = service::testing::amqp_url();
    let db = database_url.to_string();
    let roads = road_network.map(str::to_string);
    Settings::from_lookup(move |name| match name {
        "DATABASE_URL" => Some(db.clone()),
        "AMQP_URL" => Some(amqp.clone()),
        "HTTP_ADDR" | "OSMAND_ADDR" => Some("127.0.0.1:0".into()),
        "LOG_FORMAT" => Some("text".into()),
        "ROAD_NETWORK" => roads.clone(),
        _ => None,
    })
    .expect("test settings parse")
}

/// Starts the app on a fresh database and topology.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(None).await
}

/// Starts the app on a fresh database and topology, with `ROAD_NETWORK=road_network`.
pub async fn spawn_app_on(road_network: Option<&str>) -> TestApp {
    service::telemetry::init_for_tests();
    let db = TestDb::new(true).await;
    let topology = helpers::topology();
    let app = start_on(&db.url, &topology, road_network).await;
    let staff = create_token(&db.pool, Role::Staff, None, &[])
        .await
        .expect("creating a staff token");
    let amqp = helpers::connect().await;
    let channel = amqp.create_channel().await.expect("a channel");
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let (base, osmand, shutdown, task) = app;
    TestApp {
        base,
        osmand,
        db: Some(db),
        topology,
        staff,
        http: reqwest::Client::new(),
        amqp,
        channel,
        shutdown,
        task: Some(task),
    }
}

/// Builds and runs an application; returns its URLs, its stop token and its task.
pub async fn start(
    database_url: &str,
    topology: &Topology,
) -> (
    String,
    String,
    CancellationToken,
    JoinHandle<anyhow::Result<()>>,
) {
    start_on(database_url, topology, None).await
}

/// [`start`] with `ROAD_NETWORK=road_network`.
pub async fn start_on(
    database_url: &str,
    topology: &Topology,
    road_network: Option<&str>,
) -> (
    String,
    String,
    CancellationToken,
    JoinHandle<anyhow::Result<()>>,
) {
    let settings = test_settings_on(database_url, road_network);
    let app = Application::build(&settings, test_options(topology))
        .await
        .expect("the dispatcher starts");
    let base = format!("http://{}", app.http_addr());
    let osmand = format!("http://{}", app.osmand_addr());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    (base, osmand, shutdown, task)
}

impl TestApp {
    /// The test database's pool.
    pub fn pool(&self) -> &sqlx::PgPool {
        &self
            .db
            .as_ref()
            .expect("the database is kept until the end")
            .pool
    }

    /// Sends a request with the staff token.
    pub async fn staff_request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.request(method, path, body, &self.staff.clone()).await
    }

    /// Sends a request with `token`; returns the status and the JSON body (`null` when empty).
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        token: &str,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.expect("the request is answered");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Registers a courier, puts it on shift and reports a position; returns its id and a
    /// courier token.
    pub async fn courier_on_shift(&self, device: &str, lat: f64, lon: f64) -> (String, String) {
        let (status, body) = self
            .staff_request(
                reqwest::Method::POST,
                "/v1/couriers",
                Some(json!({"name": device, "vehicle": "scooter", "device_id": device})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let id = body["id"].as_str().expect("a courier id").to_string();
        let (status, body) = self
            .staff_request(
                reqwest::Method::POST,
                &format!("/v1/couriers/{id}/shift"),
                Some(json!({"state": "on"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        self.position(device, lat, lon).await;
        let courier = optimizer::model::CourierId::parse(&id).expect("a valid id");
        let token = create_token(self.pool(), Role::Courier, Some(&courier), &[])
            .await
            .expect("a courier token");
        (id, token)
    }

    /// Reports a position over the OsmAnd protocol (now) and checks it is stored.
    pub async fn position(&self, device: &str, lat: f64, lon: f64) {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let resp = self
            .http
            .get(format!(
                "{}/?id={device}&lat={lat}&lon={lon}&timestamp={now}",
                self.osmand
            ))
            .send()
            .await
            .expect("the OsmAnd endpoint answers");
        assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
    }

    /// Publishes a kitchen message and waits for the broker's confirm.
    pub async fn publish(&self, routing_key: &str, message_id: Option<&str>, body: &[u8]) {
        let mut props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into());
        if let Some(id) = message_id {
            props = props.with_message_id(id.into());
        }
        self.channel
            .basic_publish(
                self.topology.kitchen_exchange.as_str().into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                props,
            )
            .await
            .expect("publishing")
            .await
            .expect("the broker confirms");
    }

    /// A queue bound to every routing key of the `dispatch` exchange, to watch events.
    pub async fn watch_dispatch(&self) -> Consumer {
        let ch = self.amqp.create_channel().await.expect("a channel");
        let queue = format!("watch.{}", uuid::Uuid::new_v4().simple());
        ch.queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..QueueDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
        .expect("declaring a watch queue");
        // The app declares the exchange when its link connects; wait for it.
        let mut bound = false;
        for _ in 0..50 {
            let probe = self.amqp.create_channel().await.expect("a channel");
            if probe
                .queue_bind(
                    queue.as_str().into(),
                    self.topology.dispatch_exchange.as_str().into(),
                    "#".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .is_ok()
            {
                bound = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(bound, "the dispatch exchange was never declared");
        ch.basic_consume(
            queue.as_str().into(),
            "watch".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consuming the watch queue")
    }

    /// Stops the app and removes its database and topology.
    pub async fn finish(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
        }
        helpers::delete(&self.amqp, &self.topology).await;
        if let Some(db) = self.db.take() {
            db.drop_database().await;
        }
    }
}

/// The next event on a watch queue: (routing key, message id, body), acked.
pub async fn next_event(
    consumer: &mut Consumer,
    within: Duration,
) -> Option<(String, String, Value)> {
    let delivery = tokio::time::timeout(within, consumer.next())
        .await
        .ok()??
        .ok()?;
    delivery.ack(BasicAckOptions::default()).await.ok()?;
    let key = delivery.routing_key.to_string();
    let id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_default();
    Some((
        key,
        id,
        serde_json::from_slice(&delivery.data).unwrap_or(Value::Null),
    ))
}

/// An `order.created` body for `id`, ready in `ready_in_s` seconds, near Helsinki's centre.
pub fn order_created(id: &str, ready_in_s: i64) -> Value {
    let now = time::OffsetDateTime::now_utc();
    let fmt = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .expect("formats")
    };
    json!({
        "order_id": id,
        "restaurant": {"id": "r1", "lat": 60.1699, "lon": 24.9384},
        "dropoff": {"lat": 60.1756, "lon": 24.9500},
        "placed_at": fmt(now),
        "ready_at": fmt(now + time::Duration::seconds(ready_in_s)),
        "deliver_by": fmt(now + time::Duration::minutes(45)),
    })
}
